// The batch upload page's module (static/batches.js). The chosen File is the body of
// POST /v1/batches, sent by XMLHttpRequest: the browser streams it from disk, so a
// 1,000,000-line file is never read into a JavaScript string and the page stays responsive.
// upload.onprogress drives the bar while it is sent; once the gateway has parsed it the page
// goes to the enrollment job's progress page (htmx polls it until "on chain"), or to the
// batch itself when it was small enough to enroll at once. Without JavaScript the form
// posts as multipart to /batches/new, which takes the same path on the server.
const form = document.getElementById("upload-form");
const section = document.getElementById("upload-progress");
const bar = document.getElementById("upload-bar");
const status = document.getElementById("upload-status");
const problem = document.getElementById("upload-error");
const messages = document.getElementById("upload-messages").dataset;
const csrf = document.querySelector('meta[name="csrf-token"]').content;

function fail(text) {
  problem.textContent = text;
  problem.hidden = false;
  section.hidden = true;
  form.querySelector("button[type=submit]").disabled = false;
}

function megabytes(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = form.elements.file.files[0];
  if (!file) {
    fail(messages.noFile);
    return;
  }
  problem.hidden = true;
  const query = new URLSearchParams();
  for (const name of ["gtin", "lot", "expiry"]) {
    const value = form.elements[name].value.trim();
    if (value) query.set(name, value);
  }
  const request = new XMLHttpRequest();
  request.open("POST", `/v1/batches?${query}`);
  request.setRequestHeader("Content-Type", "text/csv");
  request.setRequestHeader("X-CSRF-Token", csrf);
  request.upload.addEventListener("progress", (progress) => {
    if (!progress.lengthComputable) return;
    bar.max = progress.total;
    bar.value = progress.loaded;
    status.textContent = messages.uploading
      .replace("%(sent)s", megabytes(progress.loaded))
      .replace("%(size)s", megabytes(progress.total));
  });
  request.upload.addEventListener("load", () => {
    bar.removeAttribute("value"); // indeterminate while the gateway parses the file
    status.textContent = messages.parsing;
  });
  request.addEventListener("load", () => {
    let body = null;
    try {
      body = JSON.parse(request.responseText);
    } catch {
      body = null;
    }
    if (request.status === 202 && body?.jobId) {
      window.location.assign(`/batches/jobs/${body.jobId}`);
    } else if ((request.status === 200 || request.status === 201) && body?.batchId) {
      window.location.assign(`/batches/${body.batchId}`);
    } else {
      fail(body?.error?.message || `${messages.failed} (${request.status})`);
    }
  });
  request.addEventListener("error", () => fail(messages.network));
  section.hidden = false;
  bar.value = 0;
  form.querySelector("button[type=submit]").disabled = true;
  request.send(file);
});
