// "Check a product" (static/check.js): a photo of a label is read in the browser
// (lib/label_reader.js, as on the Scan page) and its tag URL sent with the page's form.
// Typing GTIN and serial, or pasting the URL, needs no script.
import { labelReader } from "./lib/label_reader.js";

const form = document.getElementById("check-form");
const tag = document.getElementById("check-tag");

labelReader({
  elements: {
    status: document.getElementById("check-photo-status"),
    messages: document.getElementById("check-messages").dataset,
    photo: document.getElementById("check-photo"),
  },
  onTag: (text) => {
    tag.value = text;
    form.requestSubmit();
  },
});

// Wired: a photo chosen from now on is read (the tests wait for this, not for a fixed time).
window.__checkReady = true;
