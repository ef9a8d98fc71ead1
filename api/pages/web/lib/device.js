// The phone as an officer's device (scanner/device.py, scanner/queue.py, scanner/sync.py in
// the browser): a non-extractable Ed25519 key made by WebCrypto and kept in IndexedDB, the
// latest signed trust bundle with the key it was pinned with, and the queue of scans judged
// offline, each a signed `borderledger/offline-scan/4` record (ledger/scan_record.py) sent to
// POST /v1/scans/sync when the network is back.
import { b64Encode, hex } from "./verdict.js";

const DB = "borderledger-offline";
const STORES = ["device", "bundle", "queue"];

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let opened = null;
function db() {
  if (!opened) {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      for (const name of STORES) {
        if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name);
      }
    };
    opened = request(req);
  }
  return opened;
}

async function tx(store, mode, work) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const t = conn.transaction(store, mode);
    let result;
    Promise.resolve(work(t.objectStore(store))).then((r) => (result = r), reject);
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error("IndexedDB transaction aborted"));
  });
}

export const get = (store, key) => tx(store, "readonly", (s) => request(s.get(key)));
export const put = (store, key, value) => tx(store, "readwrite", (s) => request(s.put(value, key)));
const clear = (store) => tx(store, "readwrite", (s) => request(s.clear()));
const all = (store) => tx(store, "readonly", (s) => request(s.getAll()));

// ------------------------------------------------------------------------------- JCS

/** RFC 8785 canonical JSON of strings, finite numbers, booleans, null, arrays and objects:
 * ECMAScript's own number and string serialisation, keys sorted by UTF-16 code units. */
export function canonical(value) {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new Error("not finite");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

// ------------------------------------------------------------------------------- key

/** The device key: made once, never leaves the browser (non-extractable private key). */
export async function deviceKey() {
  const known = await get("device", "key");
  if (known) return known;
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  const key = {
    privateKey: pair.privateKey,
    publicKey: b64Encode(raw),
    deviceId: "dev-" + hex(digest.slice(0, 16)),
    registered: false,
  };
  await put("device", "key", key);
  return key;
}

function csrf() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, data };
}

export function problem(data, status) {
  const error = data && data.error;
  return (error && (error.message || error.code)) || `the gateway answered ${status}`;
}

/** Register this browser's key for the signed-in officer's agency (POST /v1/devices). */
export async function register(name) {
  const old = await get("device", "key");
  if (old && old.revoked) await tx("device", "readwrite", (s) => request(s.delete("key")));
  const key = await deviceKey(); // a revoked key is never registered again: a new one
  const { status, data } = await api("POST", "/v1/devices", { name, publicKey: key.publicKey });
  if (status !== 201 && status !== 200) throw new Error(problem(data, status));
  key.registered = true;
  key.name = data.name || name;
  await put("device", "key", key);
  return key;
}

/** The gateway's record of this device (its name, whether revoked), or null when it cannot be
 * asked (offline, not registered): the Device page shows the name it was registered under. */
export async function describe() {
  const key = await get("device", "key");
  if (!key || !key.registered) return null;
  try {
    const { status, data } = await api("GET", `/v1/devices/${key.deviceId}`);
    if (status !== 200) return null;
    if (data.name && data.name !== key.name) await put("device", "key", { ...key, name: data.name });
    return data;
  } catch {
    return null; // no network: the stored name stands
  }
}

// ------------------------------------------------------------------------------- bundle

/** Fetch the latest signed bundle and the key to pin (first contact: trust on first use,
 * as `borderledger bundle fetch`; afterwards the pinned key only). */
export async function fetchBundle(verify) {
  const stored = await get("bundle", "current");
  let pin = stored?.pin;
  if (!pin) {
    const key = await api("GET", "/v1/trust-bundle/key");
    if (key.status !== 200) throw new Error(problem(key.data, key.status));
    pin = key.data.publicKey;
  }
  const { status, data } = await api("GET", "/v1/trust-bundle");
  if (status !== 200) throw new Error(problem(data, status));
  await verify(data, pin); // a bundle that does not verify never replaces the one we have
  await put("bundle", "current", { envelope: data, pin, fetchedAt: Date.now() });
  return data;
}

export const storedBundle = () => get("bundle", "current");

// ------------------------------------------------------------------------------- queue

function timestamp(date) {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** Sign and queue one judged scan as an offline-scan/4 record (ledger.scan_record), with the
 * shipment reference the officer set (null when none). */
export async function enqueue({ item, payload, kind, tag, location, shipment, verdict, user }) {
  const key = await deviceKey();
  const record = canonical({
    schema: "borderledger/offline-scan/4",
    scanId: crypto.randomUUID(),
    deviceId: key.deviceId,
    scannedAt: timestamp(new Date()),
    location: location || null,
    payload,
    kind,
    tag: tag || null,
    gtin: item.gtin,
    serial: item.serial,
    lot: item.lot,
    offlineVerdict: verdict,
    user: user || null,
    shipment: shipment || null,
  });
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, new TextEncoder().encode(record)),
  );
  const entry = { record, signature: b64Encode(signature), status: "pending", seq: Date.now() };
  await put("queue", JSON.parse(record).scanId, entry);
  return entry;
}

export async function pending() {
  return (await all("queue")).filter((e) => e.status === "pending").sort((a, b) => a.seq - b.seq);
}

async function mark(scanId, status, result) {
  const entry = await get("queue", scanId);
  if (entry && entry.status === "pending") await put("queue", scanId, { ...entry, status, result });
}

/** What a device refused at sync must forget: the bundle and the queue (the gateway will
 * never take these scans; a lost phone must not keep judging with its bundle). */
export async function forget() {
  await clear("queue");
  await clear("bundle");
  const key = await get("device", "key");
  if (key) await put("device", "key", { ...key, revoked: true, registered: false });
}

/** Whether the gateway says this device was revoked (then forget the bundle and queue). */
export async function revokedNow() {
  const key = await get("device", "key");
  if (!key || !key.registered) return false;
  const { status, data } = await api("GET", `/v1/devices/${key.deviceId}`);
  if (status === 200 && data.revokedAt) {
    await forget();
    return true;
  }
  return false;
}

/** Send every pending scan, oldest first, 100 a request (scanner/sync.py). Returns the
 * counts, or `{revoked: message}` when the gateway refuses the device (403): then the
 * cached bundle and queue are cleared. */
export async function sync() {
  const key = await get("device", "key");
  const counts = { accepted: 0, duplicate: 0, rejected: 0 };
  if (!key) return counts;
  for (;;) {
    const batch = (await pending()).slice(0, 100);
    if (!batch.length) return counts;
    const { status, data } = await api("POST", "/v1/scans/sync", {
      deviceId: key.deviceId,
      scans: batch.map((e) => ({ record: e.record, signature: e.signature })),
    });
    if (status === 403) {
      // Refused: revoked (forget everything) or not registered yet (keep the scans).
      const device = await api("GET", `/v1/devices/${key.deviceId}`);
      if (device.status === 200 && device.data.revokedAt) {
        await forget();
        return { ...counts, revoked: problem(data, status) };
      }
      throw new Error(problem(data, status));
    }
    if (status !== 200) throw new Error(problem(data, status));
    let answered = 0;
    for (const result of data.results) {
      const entry = batch[result.position];
      if (!entry || !(result.status in counts)) continue;
      await mark(JSON.parse(entry.record).scanId, result.status, result);
      counts[result.status] += 1;
      answered += 1;
    }
    if (!answered) throw new Error("the gateway answered for none of the queued scans");
  }
}
