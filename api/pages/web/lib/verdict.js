// Offline verdicts in the browser: a port of scanner/offline.py (judge), ledger/trustbundle.py
// (verify_bundle), ledger/tags.py (EIP-712 + secp256k1 recovery), ledger/digital_link.py and
// ledger/verdicts.py (decide, signer_reason, summaries). Same verdicts and reason codes as
// `borderledger scan --offline` without a location (route rules stay online); a test feeds the
// same tags and bundle to both (tests/pages/test_offline.py).
//
// The bundle's Ed25519 signature is checked with WebCrypto over the exact signed bytes before
// anything in them is read; secp256k1 recovery and keccak-256 come from @noble/curves and
// @noble/hashes (audited, maintained, no dependencies).
import { secp256k1 } from "@noble/curves/secp256k1";
import { keccak_256 } from "@noble/hashes/sha3";

const ENVELOPE_FORMAT = "borderledger/trust-bundle-envelope/1";
const PAYLOAD_FORMATS = ["borderledger/trust-bundle/2", "borderledger/trust-bundle/1"];
const N = secp256k1.CURVE.n;
const HALF_N = N / 2n;
const enc = new TextEncoder();

/** A bundle that must not be used: unreadable, tampered, signed by another key. */
export class BundleRefused extends Error {}
/** A code that cannot be judged at all (bad GTIN, serial, link): a data error, no verdict. */
export class InvalidInput extends Error {}

const refuse = (what) => new BundleRefused(`trust bundle refused: ${what}`);

// ------------------------------------------------------------------------------- bytes

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(text) {
  const clean = text.replace(/^0x/, "");
  if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new InvalidInput(`not hex: ${text}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function b64urlDecode(text) {
  const std = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function b64urlEncode(bytes) {
  return b64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64Encode(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Strict base64url (one spelling per byte string), as ledger.trustbundle._unb64. */
function strictB64url(text, what, error) {
  let data;
  try {
    if (!B64URL.test(text) || text.length % 4 === 1) throw new Error();
    data = b64urlDecode(text);
  } catch {
    throw error(`its ${what} is not base64url`);
  }
  if (b64urlEncode(data) !== text) throw error(`its ${what} is not canonical base64url`);
  return data;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** The first 16 hex digits of SHA-256 of a raw public key (ledger.trustbundle.key_id). */
export async function keyId(publicHex) {
  return hex(await sha256(fromHex(publicHex))).slice(0, 16);
}

// ------------------------------------------------------------------------------- bundle

/** Check the envelope's Ed25519 signature with the pinned key (64 hex), then parse the payload.
 * Throws BundleRefused saying what is wrong, as ledger.trustbundle.verify_bundle. */
export async function verifyBundle(envelope, pinnedHex) {
  if (!envelope || typeof envelope !== "object" || envelope.format !== ENVELOPE_FORMAT) {
    throw refuse(`not a ${ENVELOPE_FORMAT} envelope`);
  }
  const pinned = String(pinnedHex).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(pinned)) throw refuse("the pinned gateway key is not 64 hex digits");
  const signature = envelope.signature;
  if (!signature || typeof signature !== "object" || typeof envelope.payload !== "string") {
    throw refuse("the envelope lacks payload or signature");
  }
  if (signature.algorithm !== "Ed25519") {
    throw refuse(`signature algorithm ${JSON.stringify(signature.algorithm)}; expected Ed25519`);
  }
  if (typeof signature.value !== "string") throw refuse("the signature has no value");
  const data = strictB64url(envelope.payload, "payload", refuse);
  const sig = strictB64url(signature.value, "signature", refuse);
  const key = await crypto.subtle.importKey("raw", fromHex(pinned), { name: "Ed25519" }, false, [
    "verify",
  ]);
  const ok = sig.length === 64 && (await crypto.subtle.verify({ name: "Ed25519" }, key, sig, data));
  const pinnedId = await keyId(pinned);
  if (!ok) {
    if (typeof signature.publicKey === "string" && signature.publicKey !== pinned) {
      throw refuse(
        `it is signed by key '${signature.keyId}' (${signature.publicKey.slice(0, 16)}…), not by ` +
          `the pinned gateway key '${pinnedId}' (${pinned.slice(0, 16)}…)`,
      );
    }
    throw refuse(
      "its signature does not match its contents (the bundle was altered after the gateway signed it)",
    );
  }
  if (signature.publicKey !== pinned || signature.keyId !== pinnedId) {
    throw refuse("the envelope's publicKey/keyId were altered after signing");
  }
  let payload;
  try {
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (exc) {
    throw refuse(`signed payload is not JSON (${exc.message})`);
  }
  if (!payload || typeof payload !== "object" || !PAYLOAD_FORMATS.includes(payload.format)) {
    throw refuse(`the signed payload is not ${PAYLOAD_FORMATS[1]} nor ${PAYLOAD_FORMATS[0]}`);
  }
  return indexBundle(payload, pinned, pinnedId);
}

const STATUS = ["active", "recalled", "stolen", "destroyed", "decommissioned"];

function parseStatus(text) {
  const s = String(text).trim().toLowerCase();
  if (!STATUS.includes(s)) throw new Error(`status '${text}' is not one of: ${STATUS.join(", ")}`);
  return s;
}

function int(value, what, optional = false) {
  if ((value === null || value === undefined) && optional) return null;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new BundleRefused(`trust bundle refused: ${what} is not an integer`);
  }
  return value;
}

/** A verified payload indexed for judging (scanner.offline.TrustBundle.from_payload). */
function indexBundle(payload, publicKey, keyIdText) {
  const bundle = {
    payload,
    publicKey,
    keyId: keyIdText,
    holders: new Map(),
    gtinOwners: new Map(),
    prefixOwners: new Map(),
    signers: new Map(),
    batches: new Map(),
    batchesByGtin: new Map(),
    items: new Map(),
  };
  try {
    const index = payload.index;
    bundle.chainId = int(payload.chainId, "chainId");
    bundle.registry = toChecksumAddress(String(payload.registry));
    bundle.issuedAt = int(payload.issuedAt, "issuedAt");
    bundle.indexBlock = int(index.block, "index.block");
    bundle.blockTime = int(index.blockTime, "index.blockTime", true);
    for (const h of payload.holders) {
      bundle.holders.set(String(h.address), h);
      for (const gtin of h.boundGtins || []) bundle.gtinOwners.set(String(gtin), String(h.address));
      for (const prefix of h.boundPrefixes || []) bundle.prefixOwners.set(String(prefix), String(h.address));
    }
    for (const s of payload.signers) {
      bundle.signers.set(String(s.address), {
        holder: String(s.holder),
        addedAt: int(s.addedAt, "signer addedAt"),
        revokedAt: int(s.revokedAt, "signer revokedAt", true),
      });
    }
    for (const b of payload.batches) {
      const batch = {
        batchId: String(b.batchId).toLowerCase(),
        gtin: String(b.gtin),
        lot: String(b.lot),
        holder: String(b.holder),
        registeredAt: int(b.registeredAt, "batch registeredAt"),
        status: parseStatus(b.status),
        block: Number(b.block || 0),
      };
      bundle.batches.set(batch.batchId, batch);
      if (!bundle.batchesByGtin.has(batch.gtin)) bundle.batchesByGtin.set(batch.gtin, []);
      bundle.batchesByGtin.get(batch.gtin).push(batch);
    }
    for (const i of payload.items) {
      const key = `${String(i.batchId).toLowerCase()}/${String(i.itemKey).toLowerCase()}`;
      bundle.items.set(key, parseStatus(i.status));
    }
  } catch (exc) {
    if (exc instanceof BundleRefused) throw exc;
    throw refuse(`the signed payload is malformed (${exc.name}: ${exc.message})`);
  }
  for (const list of bundle.batchesByGtin.values()) {
    list.sort((a, b) => a.registeredAt - b.registeredAt || a.block - b.block);
  }
  return bundle;
}

/**
 * The rights holder of a GTIN-14 by the registry's rule (`resolveGtinHolder`, and
 * ledger.gs1.resolve_holder): its own binding, else the longest bound company prefix of its
 * GTIN-13 (6 to 12 digits after the indicator digit), else undefined.
 */
export function ownerOf(bundle, gtin) {
  const own = bundle.gtinOwners.get(gtin);
  if (own !== undefined || gtin.length !== 14) return own;
  for (let length = 12; length >= 6; length--) {
    const holder = bundle.prefixOwners?.get(gtin.slice(1, 1 + length));
    if (holder !== undefined) return holder;
  }
  return undefined;
}

function iso(epoch) {
  if (epoch === null || epoch === undefined) return null;
  return new Date(epoch * 1000).toISOString().replace(".000Z", "+00:00");
}

/** How old the bundle is (scanner.offline.TrustBundle.age). */
export function bundleAge(bundle, maxAge, now = Date.now() / 1000) {
  const issuedAge = now - bundle.issuedAt;
  const blockAge = bundle.blockTime !== null ? now - bundle.blockTime : null;
  const oldest = Math.max(issuedAge, blockAge !== null ? blockAge : issuedAge);
  return {
    keyId: bundle.keyId,
    block: bundle.indexBlock,
    blockTime: iso(bundle.blockTime),
    issuedAt: iso(bundle.issuedAt),
    ageSeconds: Math.round(issuedAge),
    blockAgeSeconds: blockAge !== null ? Math.round(blockAge) : null,
    maxAgeSeconds: maxAge,
    stale: oldest > maxAge,
  };
}

// ------------------------------------------------------------------------------- GS1

const CSET82 = new Set(
  "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
);

export function normalizeGtin(value) {
  if (typeof value !== "string" || !/^[0-9]+$/.test(value)) {
    throw new InvalidInput(`GTIN '${value}' must contain only digits`);
  }
  if (![8, 12, 13, 14].includes(value.length)) {
    throw new InvalidInput(`GTIN '${value}' has ${value.length} digits; expected 8, 12, 13 or 14`);
  }
  const gtin = value.padStart(14, "0");
  let total = 0;
  for (let i = 0; i < 13; i++) total += Number(gtin[12 - i]) * (i % 2 === 0 ? 3 : 1);
  const expected = (10 - (total % 10)) % 10;
  if (Number(gtin[13]) !== expected) {
    throw new InvalidInput(
      `GTIN '${value}' has check digit ${gtin[13]}; the digits before it give ${expected}`,
    );
  }
  return gtin;
}

function cset82(value, what) {
  if (typeof value !== "string" || !value) throw new InvalidInput(`${what} must not be empty`);
  if (value.length > 20) {
    throw new InvalidInput(`${what} '${value}' has ${value.length} characters; at most 20`);
  }
  for (const c of value) {
    if (!CSET82.has(c)) throw new InvalidInput(`${what} '${value}' has '${c}', not in GS1 CSET 82`);
  }
  return value;
}

function decodeSignature(text) {
  if (!text || !B64URL.test(text)) {
    throw new InvalidInput(`sig '${text}' is not base64url (A-Z a-z 0-9 - _, no padding)`);
  }
  const bad = (what) => new InvalidInput(`sig '${text}' ${what}`);
  const raw = strictB64url(text, "sig", () => bad("is not the canonical base64url of its bytes"));
  if (raw.length !== 65) {
    throw bad(`decodes to ${raw.length} bytes; a tag signature is 65 bytes`);
  }
  return raw;
}

function unquote(segment, uri) {
  if (/%(?![0-9A-Fa-f]{2})/.test(segment)) {
    throw new InvalidInput(`tag URI path segment '${segment}' has a '%' not followed by two hex digits`);
  }
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidInput(`tag URI ${uri} has percent-escapes that are not UTF-8`);
  }
}

/** A GS1 Digital Link tag URI (ledger.digital_link.parse_digital_link). */
export function parseTag(uri) {
  if (typeof uri !== "string" || !uri.trim()) throw new InvalidInput("tag URI is empty");
  if (uri.length > 2048) {
    throw new InvalidInput(`tag URI is ${uri.length} characters; at most 2048 are accepted`);
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/s.exec(uri.trim());
  if (!m || !["http", "https"].includes(m[1].toLowerCase()) || !m[2]) {
    throw new InvalidInput(`tag URI ${uri} is not an http(s) URL with a host`);
  }
  const path = m[3];
  const segments = path.split("/").slice(1);
  const start = segments.indexOf("01");
  if (start < 0) throw new InvalidInput(`tag URI ${uri} has no GTIN (/01/<gtin>) in its path`);
  const tail = segments.slice(start);
  if (tail.length !== 6 || tail[2] !== "10" || tail[4] !== "21") {
    throw new InvalidInput(`tag URI path '${path}' must end in /01/<gtin>/10/<lot>/21/<serial>`);
  }
  const lotText = unquote(tail[3], uri);
  const serialText = unquote(tail[5], uri);
  const gtin = normalizeGtin(tail[1]);
  const lot = cset82(lotText, "lot");
  const serial = cset82(serialText, "serial");
  const sigs = [];
  for (const field of (m[4] || "").split("&")) {
    if (!field) continue;
    const eq = field.indexOf("=");
    const name = eq < 0 ? field : field.slice(0, eq);
    if (decodeURIComponent(name.replace(/\+/g, " ")) === "sig") {
      sigs.push(eq < 0 ? "" : decodeURIComponent(field.slice(eq + 1).replace(/\+/g, " ")));
    }
  }
  if (sigs.length > 1) {
    throw new InvalidInput(`tag URI ${uri} has ${sigs.length} sig attributes; expected one`);
  }
  const signature = sigs.length ? decodeSignature(sigs[0]) : null;
  return { gtin, lot, serial, signature, kind: "tag" };
}

/** What was scanned: `{tag}` or `{gtin, serial, lot?}` (ledger.scanned.Scanned.from_request). */
export function scanned(request) {
  if (request.tag) return parseTag(String(request.tag));
  return {
    gtin: normalizeGtin(String(request.gtin ?? "")),
    serial: cset82(String(request.serial ?? ""), "serial"),
    lot: request.lot ? cset82(String(request.lot), "lot") : null,
    signature: null,
    kind: "typed",
  };
}

// ------------------------------------------------------------------------------- hashing

const word = (n) => {
  const out = new Uint8Array(32);
  let v = BigInt(n);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
};

/** keccak256(abi.encode(string a, string b)) (ledger.batch.batch_id_of / item_key_of). */
function abiKey(a, b) {
  const head = [];
  const tail = [];
  let offset = 64;
  for (const value of [a, b]) {
    const raw = enc.encode(value);
    const padded = new Uint8Array(Math.ceil(raw.length / 32) * 32);
    padded.set(raw);
    head.push(word(offset));
    const part = concat(word(raw.length), padded);
    tail.push(part);
    offset += part.length;
  }
  return "0x" + hex(keccak_256(concat(...head, ...tail)));
}

export const batchIdOf = (gtin, lot) => abiKey(gtin, lot);
export const itemKeyOf = (gtin, serial) => abiKey(gtin, serial);

export function toChecksumAddress(address) {
  const raw = address.toLowerCase().replace(/^0x/, "");
  if (!/^[0-9a-f]{40}$/.test(raw)) throw new Error(`'${address}' is not a 20-byte hex address`);
  const digest = hex(keccak_256(enc.encode(raw)));
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(digest[i], 16) >= 8 ? raw[i].toUpperCase() : raw[i];
  return out;
}

const k = (text) => keccak_256(enc.encode(text));
const DOMAIN_TYPEHASH = k(
  "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
);
const TAG_TYPEHASH = k("Tag(string gtin,string serial,string lot)");

function domainSeparator(chainId, registry) {
  const address = new Uint8Array(32);
  address.set(fromHex(registry), 12);
  return keccak_256(
    concat(DOMAIN_TYPEHASH, k("BorderLedger"), k("1"), word(chainId), address),
  );
}

function tagDigest(separator, gtin, serial, lot) {
  const struct = keccak_256(concat(TAG_TYPEHASH, k(gtin), k(serial), k(lot)));
  return keccak_256(concat(Uint8Array.of(0x19, 0x01), separator, struct));
}

const toBig = (bytes) => BigInt("0x" + (hex(bytes) || "0"));

/** The address that signed `digest`, or null where OpenZeppelin's ECDSA.recover refuses
 * (ledger.tags.recover_signer: 65 bytes, v 27/28, 0 < r < n, 0 < s <= n/2). */
function recoverSigner(digest, signature) {
  if (signature.length !== 65) return null;
  const r = toBig(signature.slice(0, 32));
  const s = toBig(signature.slice(32, 64));
  const v = signature[64];
  if (v !== 27 && v !== 28) return null;
  if (!(r > 0n && r < N) || s === 0n || s > HALF_N) return null;
  try {
    const point = new secp256k1.Signature(r, s).addRecoveryBit(v - 27).recoverPublicKey(digest);
    const pub = point.toRawBytes(false).slice(1);
    return toChecksumAddress(hex(keccak_256(pub).slice(-20)));
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------------------- verdicts

const SUSPECT = new Set([
  "GTIN_UNKNOWN",
  "BATCH_UNKNOWN",
  "SERIAL_UNKNOWN",
  "SIGNATURE_INVALID",
  "SIGNER_UNKNOWN",
  "SIGNER_FOREIGN",
  "SIGNER_REVOKED",
  "ITEM_DESTROYED",
]);

function statusReason(status, batchLevel) {
  if (status === "recalled") return batchLevel ? "BATCH_RECALLED" : "ITEM_RECALLED";
  return {
    stolen: "ITEM_STOLEN",
    decommissioned: "ITEM_DECOMMISSIONED",
    destroyed: "ITEM_DESTROYED",
  }[status] ?? null;
}

function decide(reasons, status) {
  if (reasons.some((r) => SUSPECT.has(r))) return "COUNTERFEIT_SUSPECT";
  if (reasons.includes("REGISTRATION_PENDING")) return "PENDING";
  if (status === "stolen") return "STOLEN";
  if (status === "recalled") return "RECALLED";
  if (status === "decommissioned") return "DECOMMISSIONED";
  if (reasons.includes("SIGNATURE_VALID")) return "GENUINE";
  if (reasons.includes("SERIAL_IN_BATCH")) return "GENUINE_UNSIGNED";
  if (reasons.includes("MEMBERSHIP_NOT_CHECKED")) return "UNVERIFIED";
  return "COUNTERFEIT_SUSPECT";
}

function signerReason(key, batchHolder, registeredAt, holderRevokedAt) {
  if (!key) return "SIGNER_UNKNOWN";
  if (key.holder !== batchHolder) return "SIGNER_FOREIGN";
  let revokedAt = key.revokedAt || 0;
  if (holderRevokedAt && (!revokedAt || holderRevokedAt < revokedAt)) revokedAt = holderRevokedAt;
  if (revokedAt && !(key.addedAt <= registeredAt && registeredAt < revokedAt)) {
    return "SIGNER_REVOKED";
  }
  return "SIGNATURE_VALID";
}

/** ledger.verdicts.SUMMARIES, offline wording (no findings: route rules stay online). */
export const SUMMARIES = {
  GENUINE:
    "Genuine: signed by the rights holder and registered on chain " +
    "(offline: membership in the batch not checked).",
  COUNTERFEIT_SUSPECT:
    "Potential suspect: the ledger does not vouch for this item. Investigate.",
  RECALLED: "Recalled by the rights holder: do not release.",
  STOLEN: "Reported stolen by the rights holder: hold and notify.",
  DECOMMISSIONED:
    "Already decommissioned (pack inactive): a code seen again may be copied.",
  UNVERIFIED:
    "Not verifiable offline: no signature, and serials cannot be checked without the " +
    "gateway. Hold until verified online.",
};

/** The offline verdict on `item` (from `scanned`), shaped like scanner.offline.judge's. */
export function judge(bundle, item, { maxAge = 86400, now = Date.now() / 1000 } = {}) {
  const age = bundleAge(bundle, maxAge, now);
  const reasons = [];
  if (age.stale) reasons.push("BUNDLE_STALE");
  const answer = {
    verdict: "COUNTERFEIT_SUSPECT",
    offline: true,
    item: { gtin: item.gtin, lot: item.lot, serial: item.serial },
    product: {},
    batchId: null,
    signer: null,
    bundle: age,
    judgedAt: new Date(now * 1000).toISOString(),
  };
  const done = (verdict) => {
    answer.verdict = verdict;
    answer.summary = SUMMARIES[verdict];
    answer.reasons = reasons;
    return answer;
  };
  const candidates = bundle.batchesByGtin.get(item.gtin) || [];
  if (!candidates.length) {
    reasons.unshift("GTIN_UNKNOWN");
    return done("COUNTERFEIT_SUSPECT");
  }
  const holderAddress = ownerOf(bundle, item.gtin) ?? candidates[0].holder;
  const holder = bundle.holders.get(holderAddress) || {};
  answer.product = {
    gtin: item.gtin,
    rightsHolder: {
      address: holderAddress,
      name: holder.name ?? null,
      recordation: holder.recordation ?? null,
      revokedAt: holder.revokedAt ?? null,
    },
  };
  const itemKey = itemKeyOf(item.gtin, item.serial);
  let batch;
  if (item.lot !== null) {
    batch = bundle.batches.get(batchIdOf(item.gtin, item.lot));
    if (!batch) {
      reasons.unshift("BATCH_UNKNOWN");
      return done("COUNTERFEIT_SUSPECT");
    }
  } else {
    const flagged = candidates.filter((b) => bundle.items.has(`${b.batchId}/${itemKey}`));
    batch = flagged.length ? flagged[0] : candidates[0];
  }
  answer.batchId = batch.batchId;
  reasons.push("MEMBERSHIP_NOT_CHECKED");
  if (item.signature !== null && item.lot !== null) {
    const digest = tagDigest(
      domainSeparator(bundle.chainId, bundle.registry),
      item.gtin,
      item.serial,
      item.lot,
    );
    const signer = recoverSigner(digest, item.signature);
    if (signer === null) {
      reasons.unshift("SIGNATURE_INVALID");
    } else {
      answer.signer = signer;
      const revoked = (bundle.holders.get(batch.holder) || {}).revokedAt;
      const reason = signerReason(
        bundle.signers.get(signer),
        batch.holder,
        batch.registeredAt,
        Number.isInteger(revoked) ? revoked : null,
      );
      if (reason === "SIGNATURE_VALID") reasons.push(reason);
      else reasons.unshift(reason);
    }
  } else if (item.signature === null) {
    reasons.push("SIGNATURE_MISSING");
  }
  let status = bundle.items.get(`${batch.batchId}/${itemKey}`) ?? "active";
  const batchLevel = status === "active";
  if (batchLevel) status = batch.status;
  const flag = statusReason(status, batchLevel);
  if (flag !== null) reasons.push(flag);
  return done(decide(reasons, status));
}
