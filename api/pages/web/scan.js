// The Scan page's own module (static/scan.js): reads QR codes and GS1 DataMatrix in the
// browser with zxing-wasm (the same zxing-cpp engine as the Python scanner), from the camera
// or from a photo, and sends the tag through the page's scan form (#scan-form, htmx → the
// verdict in #verdict) — the officer types nothing. The port and the shipment reference are
// kept on the device and sent with every scan. Its .wasm is served by the gateway
// (/static/zxing_reader.wasm, copied at `make setup`), never fetched from a CDN.
import { labelReader } from "./lib/label_reader.js";

const KEPT = ["port", "shipment"];

const form = document.getElementById("scan-form");
const tagInput = document.getElementById("tag");
const status = document.getElementById("camera-status");

// Timings for `borderledger bench ui`: the press of "Scan with camera" and the verdict painted.
window.__scanTimings = [];
let pressedAt = null;

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

keepWhere();
labelReader({
  elements: {
    status,
    messages: document.getElementById("camera-messages").dataset,
    photo: document.getElementById("photo"),
    video: document.getElementById("camera-view"),
    startButton: document.getElementById("camera-start"),
    stopButton: document.getElementById("camera-stop"),
  },
  onTag: send,
  onPress: () => {
    pressedAt = performance.now();
  },
});
// Ready for a scan (the bench and the tests wait for this, not for a fixed time).
window.__scanReady = true;
