// The auditor's "find an item" page (static/audit_find.js): reads the item's label from the
// camera or a photo (lib/label_reader.js, the Scan page's reader) and sends the decoded GS1
// Digital Link in the form's `tag` field; the server answers with the item's timeline or a
// message. Without script the typed GTIN and serial work the same way.
import { labelReader } from "./lib/label_reader.js";

const form = document.getElementById("find-form");
const tagInput = document.getElementById("tag");

labelReader({
  elements: {
    status: document.getElementById("camera-status"),
    messages: document.getElementById("camera-messages").dataset,
    photo: document.getElementById("photo"),
    video: document.getElementById("camera-view"),
    startButton: document.getElementById("camera-start"),
    stopButton: document.getElementById("camera-stop"),
  },
  onTag: (tag) => {
    tagInput.value = tag;
    form.setAttribute("novalidate", ""); // the typed fields are not needed for a tag
    form.requestSubmit();
  },
});
window.__auditFindReady = true;
