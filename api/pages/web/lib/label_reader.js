// Reading a product's label in the browser, from the camera or a photo: the part the Scan
// page, the auditor's "find an item" page and "check a product" share. The page gives its
// elements and what to do with a tag; messages come from the page's data-* attributes (so
// they are translated with the page). Decoding is lib/barcode.js (zxing-wasm).
import { decode, isTag } from "./barcode.js";

// Frames decoded per second at most (each decode is a few ms to tens of ms of CPU).
const FRAME_GAP_MS = 60;
// After this long without a read, say so (and keep looking).
const UNREADABLE_AFTER_MS = 4000;

// Wire a page's reader. `elements`: { status, messages (a DOMStringMap), photo, and for the
// camera video, startButton, stopButton }. `onTag(text)` gets a decoded product tag;
// `onPress()` is told when the person starts a read (the bench times from it). Message keys:
// starting, looking, read, absent, refused, failed, decoder, notATag, unreadable,
// photoUnreadable (a page without a camera needs only those of a photo).
export function labelReader({ elements, onTag, onPress = () => {} }) {
  const { status, messages, photo, video, startButton, stopButton } = elements;
  let stream = null;
  let looking = false;

  function say(key, kind = "notice") {
    status.hidden = false;
    status.textContent = messages[key];
    status.className = kind;
    status.setAttribute("role", kind === "error" ? "alert" : "status");
  }

  function stopCamera() {
    looking = false;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    if (!video) return;
    video.hidden = true;
    video.srcObject = null;
    stopButton.hidden = true;
    startButton.hidden = false;
  }

  async function startCamera() {
    onPress();
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
          onTag(text);
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
    onPress();
    stopCamera();
    if (messages.reading) say("reading");
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
      onTag(text);
    }
  }

  if (video) {
    startButton.addEventListener("click", startCamera);
    stopButton.addEventListener("click", stopCamera);
  }
  photo.addEventListener("change", readPhoto);
  return { say };
}
