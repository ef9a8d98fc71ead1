// The Scan page's own module (static/scan.js): reads QR codes and GS1 DataMatrix in the
// browser with zxing-wasm (the same zxing-cpp engine as the Python scanner), from the camera
// or from a photo, and sends the tag through the page's scan form (#scan-form, htmx → the
// verdict in #verdict) — the officer types nothing. The port and the shipment reference are
// kept on the device and sent with every scan. Its .wasm is served by the gateway
// (/static/zxing_reader.wasm, copied at `make setup`), never fetched from a CDN.
import { prepareZXingModule, readBarcodes } from "zxing-wasm/reader";

const WASM = "/static/zxing_reader.wasm";
const KEPT = ["port", "shipment"];
const READER = { formats: ["QRCode", "DataMatrix"], tryHarder: true, maxNumberOfSymbols: 1 };
// Frames decoded per second at most (each decode is a few ms to tens of ms of CPU).
const FRAME_GAP_MS = 60;
// After this long without a read, say so (and keep looking).
const UNREADABLE_AFTER_MS = 4000;

prepareZXingModule({
  overrides: {
    locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM : prefix + path),
  },
  fireImmediately: false,
});

const form = document.getElementById("scan-form");
const tagInput = document.getElementById("tag");
const video = document.getElementById("camera-view");
const status = document.getElementById("camera-status");
const startButton = document.getElementById("camera-start");
const stopButton = document.getElementById("camera-stop");
const photo = document.getElementById("photo");
const messages = document.getElementById("camera-messages").dataset;

// Timings for `borderledger bench ui`: the press of "Scan with camera" and the verdict painted.
window.__scanTimings = [];
let pressedAt = null;

let stream = null;
let looking = false;

function say(key, kind = "notice") {
  status.hidden = false;
  status.textContent = messages[key];
  status.className = kind;
  status.setAttribute("role", kind === "error" ? "alert" : "status");
}

function keepWhere() {
  for (const name of KEPT) {
    const input = document.getElementById(name);
    const kept = localStorage.getItem(`borderledger.${name}`);
    if (kept && !input.value) input.value = kept;
    input.addEventListener("change", () => {
      localStorage.setItem(`borderledger.${name}`, input.value.trim());
    });
  }
}

// A product tag is a GS1 Digital Link URI with a GTIN (/01/) and a serial (/21/).
function isTag(text) {
  return /^https?:\/\/[^/]+\/(.*\/)?01\/\d{8,14}(\/10\/[^/]+)?\/21\/[^/?]+/.test(text);
}

function send(tag) {
  tagInput.value = tag;
  // The typed fields are not needed for a tag: skip the browser's required-field check.
  form.setAttribute("novalidate", "");
  form.requestSubmit();
}

form.addEventListener("htmx:afterRequest", () => {
  tagInput.value = "";
  form.removeAttribute("novalidate");
});

document.body.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target?.id !== "verdict") return;
  status.hidden = true; // the verdict (or its error) says it now
  if (pressedAt === null) return;
  const started = pressedAt;
  pressedAt = null;
  requestAnimationFrame(() => window.__scanTimings.push(performance.now() - started));
});

async function decode(input) {
  const results = await readBarcodes(input, READER);
  const found = results.find((r) => r.isValid && r.text);
  return found ? found.text : null;
}

function stopCamera() {
  looking = false;
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null;
  video.hidden = true;
  video.srcObject = null;
  stopButton.hidden = true;
  startButton.hidden = false;
}

async function startCamera() {
  pressedAt = performance.now();
  if (!navigator.mediaDevices?.getUserMedia) {
    say("absent", "error");
    return;
  }
  say("starting");
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" } },
      audio: false,
    });
  } catch (error) {
    const name = error?.name;
    if (name === "NotAllowedError" || name === "SecurityError") say("refused", "error");
    else if (name === "NotFoundError" || name === "OverconstrainedError") say("absent", "error");
    else say("failed", "error");
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  startButton.hidden = true;
  stopButton.hidden = false;
  try {
    await video.play();
  } catch {
    stopCamera();
    say("failed", "error");
    return;
  }
  say("looking");
  looking = true;
  lookForCode();
}

async function lookForCode() {
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const since = performance.now();
  let warned = false;
  while (looking) {
    if (video.readyState >= 2 && video.videoWidth > 0) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      let text = null;
      try {
        text = await decode(context.getImageData(0, 0, canvas.width, canvas.height));
      } catch {
        stopCamera();
        say("decoder", "error");
        return;
      }
      if (!looking) return;
      if (text && isTag(text)) {
        stopCamera();
        say("read");
        send(text);
        return;
      }
      if (text && !warned) {
        warned = true;
        say("notATag", "error");
      } else if (!warned && performance.now() - since > UNREADABLE_AFTER_MS) {
        warned = true;
        say("unreadable", "error");
      }
    }
    await new Promise((resolve) => setTimeout(resolve, FRAME_GAP_MS));
  }
}

async function readPhoto() {
  const file = photo.files?.[0];
  if (!file) return;
  pressedAt = performance.now();
  stopCamera();
  let text = null;
  try {
    text = await decode(file);
  } catch {
    say("decoder", "error");
    return;
  } finally {
    photo.value = "";
  }
  if (!text) say("photoUnreadable", "error");
  else if (!isTag(text)) say("notATag", "error");
  else {
    say("read");
    send(text);
  }
}

keepWhere();
startButton.addEventListener("click", startCamera);
stopButton.addEventListener("click", stopCamera);
photo.addEventListener("change", readPhoto);
// Ready for a scan (the bench and the tests wait for this, not for a fixed time).
window.__scanReady = true;
