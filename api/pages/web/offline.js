// The officer's app offline (static/offline.js): registers the service worker, keeps the
// latest signed trust bundle, judges scans in the browser when the network is gone, queues
// them signed by this device's key and syncs them when it is back. Loaded by the Scan page
// (templates/_offline.html) and the Device page. The scan form (#scan-form) stays the Scan
// page's own: offline, its htmx request is cancelled and the verdict painted into #verdict.
import {
  BundleRefused,
  InvalidInput,
  bundleAge,
  judge,
  scanned,
  verifyBundle,
} from "./lib/verdict.js";
import * as device from "./lib/device.js";

export { judge, scanned, verifyBundle, bundleAge, device };

/** Settings.bundle_max_age_seconds' default, used only when the page does not say. */
export const MAX_AGE = 86400;
/** A shipment reference, as /v1/verify and signed records take it (ledger.scan_record). */
const SHIPMENT = /^[A-Za-z0-9][A-Za-z0-9 ./-]{0,34}$/;
const TONES = {
  GENUINE: "ok",
  COUNTERFEIT_SUSPECT: "bad",
  RECALLED: "bad",
  STOLEN: "bad",
  DECOMMISSIONED: "warn",
  UNVERIFIED: "neutral",
};

/** The service worker's cache (web/sw.js). */
const SHELL_CACHE = "borderledger-shell-v1";
/** This page as the server sent it, before anything here changes it: on the first visit the
 * service worker does not control the page yet, so the page puts itself in the shell cache. */
const SNAPSHOT = "<!doctype html>\n" + document.documentElement.outerHTML;

async function keepPage() {
  if (!("caches" in window) || !["/scan", "/device"].includes(location.pathname)) return;
  const cache = await caches.open(SHELL_CACHE);
  const headers = { "Content-Type": "text/html; charset=utf-8" };
  await cache.put(location.pathname, new Response(SNAPSHOT, { headers }));
}

const texts = () => JSON.parse(document.getElementById("offline-texts")?.textContent || "{}");
const t = (key, fallback) => texts()[key] ?? fallback;

/** The gateway's bundle_max_age_seconds, written into the page (templates/_offline.html):
 * an older bundle gives no verdict. */
export function maxAge() {
  const value = Number(texts().maxAgeSeconds);
  return Number.isFinite(value) && value > 0 ? value : MAX_AGE;
}

let verified = null; // {as, bundle}: the stored bundle, its signature checked once

/** The stored bundle, verified against the pinned key (BundleRefused when tampered). */
export async function currentBundle() {
  const stored = await device.storedBundle();
  if (!stored) return null;
  // The signed bytes, signature and pin as stored: anything changed is verified again.
  const as = `${stored.pin}.${stored.envelope.payload}.${stored.envelope.signature?.value}`;
  if (verified && verified.as === as) return verified.bundle;
  const bundle = await verifyBundle(stored.envelope, stored.pin);
  verified = { as, bundle };
  return bundle;
}

function status(text, tone = "") {
  const line = document.getElementById("offline-status");
  if (line) {
    line.textContent = text;
    line.dataset.tone = tone;
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function paintError(message) {
  const target = document.getElementById("verdict");
  target.replaceChildren(el("p", { class: "error", role: "alert" }, message));
}

function paint(answer, queued) {
  const words = t("words", {});
  const target = document.getElementById("verdict");
  const reasons = el("ul", { class: "reasons" });
  for (const r of answer.reasons) reasons.append(el("li", {}, el("code", {}, r)));
  const facts = el("dl", { class: "facts" });
  const fact = (name, value) => facts.append(el("dt", {}, name), el("dd", {}, String(value)));
  fact(t("item", "Item"), `${answer.item.gtin} / ${answer.item.serial}`);
  const holder = answer.product.rightsHolder;
  if (holder && holder.name) fact(t("holder", "Rights holder"), holder.name);
  if (answer.item.lot) fact(t("lot", "Lot"), answer.item.lot);
  fact(t("bundleBlock", "Bundle block"), answer.bundle.block);
  target.replaceChildren(
    el(
      "div",
      {
        class: `verdict tone-${TONES[answer.verdict] || "neutral"}`,
        "data-verdict": answer.verdict,
        "data-offline": "true",
      },
      el("p", { class: "word" }, words[answer.verdict] || answer.verdict),
      el("p", { class: "sentence" }, answer.summary),
    ),
    el("p", { class: "offline-note" }, queued ? t("queued", "Judged offline; queued.") : ""),
    el("h2", {}, t("reasons", "Reasons")),
    reasons,
    facts,
  );
}

function formRequest(form) {
  const data = new FormData(form);
  const value = (name) => String(data.get(name) ?? "").trim();
  const port = value("port").toUpperCase();
  const shipment = value("shipment");
  const tag = value("tag");
  if (tag) return { request: { tag }, payload: tag, kind: "tag", tag, port, shipment };
  const lot = value("lot");
  const request = { gtin: value("gtin"), serial: value("serial"), lot: lot || null };
  const payload = [request.gtin, request.serial, lot].filter(Boolean).join(" ");
  return { request, payload, kind: "typed", tag: null, port, shipment };
}

/** Judge the form's code from the stored bundle, paint the verdict, queue the signed record.
 * A missing, tampered or outdated bundle: a message and no verdict. */
export async function judgeOffline(form) {
  const started = performance.now();
  let bundle;
  try {
    bundle = await currentBundle();
  } catch (exc) {
    if (exc instanceof BundleRefused) {
      paintError(`${t("tampered", "The offline trust bundle cannot be used:")} ${exc.message}`);
      return null;
    }
    throw exc;
  }
  if (!bundle) {
    paintError(t("noBundle", "No trust bundle on this device: connect once to fetch it."));
    return null;
  }
  const limit = maxAge();
  const age = bundleAge(bundle, limit);
  if (age.stale) {
    const hours = Math.round(Math.max(age.ageSeconds, age.blockAgeSeconds ?? 0) / 3600);
    paintError(t("outdated", "The offline trust bundle is outdated ({hours} h old): connect to refresh it.").replace("{hours}", hours));
    return null;
  }
  const { request, payload, kind, tag, port, shipment } = formRequest(form);
  if (shipment && !SHIPMENT.test(shipment)) {
    paintError(t("badShipment", "Shipment reference: letters, digits, space . / -, starting with a letter or digit, at most 35 characters."));
    return null;
  }
  let item;
  try {
    item = scanned(request);
  } catch (exc) {
    if (exc instanceof InvalidInput) {
      paintError(exc.message);
      return null;
    }
    throw exc;
  }
  const answer = judge(bundle, item, { maxAge: limit });
  const key = await device.get("device", "key");
  let queued = false;
  if (key && key.registered) {
    await device.enqueue({
      item,
      payload,
      kind,
      tag,
      location: /^[A-Z]{2}[A-Z2-9]{3}$/.test(port) ? port : null,
      shipment: shipment || null,
      verdict: { verdict: answer.verdict, reasons: answer.reasons, bundleBlock: age.block },
      user: texts().user,
    });
    queued = true;
  }
  paint(answer, queued);
  answer.elapsedMs = performance.now() - started;
  window.dispatchEvent(new CustomEvent("offline-verdict", { detail: answer }));
  await showQueue();
  return answer;
}

async function showQueue() {
  const count = (await device.pending()).length;
  const line = document.getElementById("offline-queue");
  if (line) line.textContent = t("queueCount", "Scans waiting to sync: {n}").replace("{n}", count);
  return count;
}

/** Online: refresh the bundle, send the queue. A revoked device forgets both. */
export async function refresh() {
  if (!navigator.onLine) {
    status(t("offline", "Offline: verdicts come from the trust bundle on this device."), "warn");
    return;
  }
  let sent = 0;
  try {
    const key = await device.get("device", "key");
    if (key && key.revoked) {
      status(t("revoked", "This device was revoked: its bundle and queue were cleared."), "bad");
      return;
    }
    if (key && key.registered) {
      const counts = (await device.pending()).length
        ? await device.sync()
        : { accepted: 0, duplicate: 0, rejected: 0 };
      if (!counts.revoked && (await device.revokedNow())) counts.revoked = "revoked";
      if (counts.revoked) {
        verified = null;
        if ("caches" in window) {
          for (const name of await caches.keys()) await (await caches.open(name)).delete("/v1/trust-bundle");
        }
        status(`${t("revoked", "This device was revoked: its bundle and queue were cleared.")} (${counts.revoked})`, "bad");
        await showQueue();
        return;
      }
      sent = counts.accepted + counts.duplicate + counts.rejected;
    }
    const envelope = await device.fetchBundle(verifyBundle);
    verified = null;
    const bundle = await currentBundle();
    const ready = t("ready", "Ready offline: trust bundle at block {block}.");
    const synced = sent ? " " + t("synced", "Synced: {n} scans sent.").replace("{n}", sent) : "";
    status(ready.replace("{block}", bundle.indexBlock) + synced, "ok");
    return envelope;
  } catch (exc) {
    status(`${t("failed", "Offline preparation failed:")} ${exc.message}`, "bad");
  } finally {
    await showQueue();
  }
}

/** Judge offline; whatever fails (storage refused, a bug) is a message, never a blank. */
function judgeSafely(form) {
  judgeOffline(form).catch((exc) => {
    paintError(`${t("failed", "Offline preparation failed:")} ${exc.message}`);
  });
}

function hookScanForm(form) {
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt !== form || navigator.onLine) return;
    event.preventDefault(); // no network: judged here, not sent
    judgeSafely(form);
  });
  document.body.addEventListener("htmx:sendError", (event) => {
    if (event.detail.elt === form) judgeSafely(form); // the network dropped mid-request
  });
}

async function setupDevicePage(button) {
  // A registered device is not offered registration again: its state and name instead.
  const show = async () => {
    const key = await device.get("device", "key");
    document.getElementById("device-id").textContent = key ? key.deviceId : t("none", "none yet");
    document.getElementById("device-state").textContent = key?.registered
      ? t("registered", "registered")
      : key?.revoked
        ? t("revokedState", "revoked")
        : t("unregistered", "not registered");
    const registered = Boolean(key?.registered);
    document.getElementById("device-registered-name").textContent = registered
      ? key.name || t("nameUnknown", "(name not known on this device)")
      : "";
    for (const node of document.querySelectorAll("[data-registered-name]")) node.hidden = !registered;
    document.getElementById("device-register").hidden = registered;
  };
  const named = async () => {
    if (await device.describe()) await show(); // the name the gateway has (another tab renamed)
  };
  button.addEventListener("click", async () => {
    const name = document.getElementById("device-name").value.trim();
    try {
      await device.register(name || "Officer phone");
      status(t("registeredNow", "This device is registered."), "ok");
      await refresh();
    } catch (exc) {
      status(`${t("registerFailed", "Registration failed:")} ${exc.message}`, "bad");
    }
    await show();
  });
  await show();
  named().catch(() => {});
  return show;
}

async function main() {
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((exc) => {
      status(`${t("failed", "Offline preparation failed:")} ${exc.message}`, "bad");
    });
  }
  keepPage().catch(() => {}); // no cache storage (private mode): the app still works online
  // Signing out: the cached pages (they name the officer) go; the device key stays the phone's.
  document.querySelector('form[action="/logout"]')?.addEventListener("submit", () => {
    if ("caches" in window) {
      caches.open(SHELL_CACHE).then((c) => Promise.all(["/scan", "/device"].map((p) => c.delete(p))));
    }
  });
  const form = document.getElementById("scan-form");
  if (form) hookScanForm(form);
  const button = document.getElementById("register-device");
  const show = button ? await setupDevicePage(button) : null;
  // A refresh can learn the device was revoked: the Device page then offers registration.
  const refreshed = async () => {
    await refresh();
    if (show) await show();
  };
  window.addEventListener("online", refreshed);
  window.addEventListener("offline", refreshed);
  await refreshed();
  document.documentElement.dataset.offlineReady = "true";
}

if (document.getElementById("offline-texts")) main();
