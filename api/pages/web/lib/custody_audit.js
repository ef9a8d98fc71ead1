// Auditing an item's custody timeline in the browser, trusting nothing the gateway says: the
// same checks, in the same order and with the same subjects, as `custody/audit.py` (what
// `borderledger audit` runs), so the page and the command flag the same entries.
//
// Pure over a `chain` object (the auditor's own RPC connection, see audit.js):
//   chainId() -> number, registry() -> address, agencyName(agency) -> string,
//   checkpointRoot(agency, size) -> Uint8Array(32), batchRoot(batchId) -> "0x…" | null,
//   txBlock(txHash) -> [block, to] | null
// All chain reads are started together, so an RPC that batches (ethers does) answers them in
// one round trip whatever the number of checkpoints.
//
// Hashing is RFC 6962 as docs/custody-log.md (SHA-256 of 0x00 || entry for a leaf, of
// 0x01 || l || r for a node), with @noble/hashes; entries are RFC 8785 canonical JSON (v2) or
// Python's sorted json.dumps (v1), as custody/entries.py.
import { sha256 } from "@noble/hashes/sha256";
import { keccak_256 } from "@noble/hashes/sha3";

const ZERO32 = new Uint8Array(32);
const ENC = new TextEncoder();

export function hex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** 32 bytes from "0x…" hex, or null (what `_hash` does in custody/audit.py). */
export function hash32(text) {
  if (typeof text !== "string") return null;
  const digits = text.startsWith("0x") ? text.slice(2) : text;
  if (digits.length !== 64 || !/^[0-9a-fA-F]*$/.test(digits)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function equal(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function isCount(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

function intOf(value) {
  return Number.isSafeInteger(value) ? value : null;
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

export function leafHash(entry) {
  return sha256(concat(Uint8Array.of(0), entry));
}

export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

// Halving and parity without 32-bit bit operators (sizes may pass 2^31).
const half = (n) => Math.floor(n / 2);
const odd = (n) => n % 2 === 1;

/** RFC 9162 §2.1.3.2: the root `proof` leads to from `leaf` at `index` of `size`, or null. */
export function rootFromInclusion(leaf, index, size, proof) {
  if (!isCount(index) || !isCount(size) || index >= size || leaf?.length !== 32) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0 || p?.length !== 32) return null;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!odd(fn)) {
        while (fn !== 0 && !odd(fn)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : null;
}

export function verifyInclusion(leaf, index, size, proof, root) {
  const computed = rootFromInclusion(leaf, index, size, proof);
  return computed !== null && equal(computed, root);
}

const EMPTY_ROOT = sha256(new Uint8Array(0));

/** RFC 9162 §2.1.4.2, as custody.log.verify_consistency. */
export function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  if (!isCount(oldSize) || !isCount(newSize) || oldSize > newSize) return false;
  if (oldRoot?.length !== 32 || newRoot?.length !== 32) return false;
  if (oldSize === newSize) return proof.length === 0 && equal(oldRoot, newRoot);
  if (oldSize === 0) return proof.length === 0 && equal(oldRoot, EMPTY_ROOT);
  if (proof.length === 0 || !proof.every((p) => p?.length === 32)) return false;
  const path = [...proof];
  if (Number.isInteger(Math.log2(oldSize))) path.unshift(oldRoot); // a power of two
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!odd(fn)) {
        while (fn !== 0 && !odd(fn)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return equal(fr, oldRoot) && equal(sr, newRoot) && sn === 0;
}

/** A list of "0x…" hashes, or throws naming the bad element (custody.log.proof_from_hex). */
export function proofFromHex(items) {
  if (!Array.isArray(items)) throw new Error("a proof must be a list of hashes");
  return items.map((item, i) => {
    const h = hash32(item);
    if (h === null) throw new Error(`proof element ${i} is not 32 bytes of hex`);
    return h;
  });
}

// --- entries -----------------------------------------------------------------------------

/** A number written as a float by the gateway (v1 entries: Python writes 52.0, not 52). */
export class PyFloat {
  constructor(value) {
    this.value = value;
  }
}

/** Read the timeline's JSON keeping which numbers were floats (JSON.parse source text). */
export function parseKeepingFloats(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === "number" && context && typeof context.source === "string") {
      return /[.eE]/.test(context.source) ? new PyFloat(value) : value;
    }
    return value;
  });
}

function jcs(value) {
  if (value === null || typeof value === "boolean") return String(value);
  if (value instanceof PyFloat) return jcs(value.value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`${value} is not a JSON number`);
    return JSON.stringify(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jcs).join(",")}]`;
  if (typeof value === "object") {
    const names = Object.keys(value).sort(); // UTF-16 code units, as RFC 8785
    return `{${names.map((n) => `${JSON.stringify(n)}:${jcs(value[n])}`).join(",")}}`;
  }
  throw new Error(`a ${typeof value} is not a JSON value`);
}

/** Python's float repr (shortest round-trip digits; exponent from 1e16 and below 1e-4). */
function pythonFloat(x) {
  if (!Number.isFinite(x)) throw new Error(`${x} is not a JSON number`);
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, exp] = x.toExponential().split("e");
  const e = Number(exp);
  if (e < -4 || e >= 16) {
    return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  const text = String(x); // plain decimal in this range for ECMAScript too
  return text.includes(".") ? text : `${text}.0`;
}

function codePointOrder(a, b) {
  const x = Array.from(a).map((c) => c.codePointAt(0));
  const y = Array.from(b).map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function pyString(text) {
  // json.dumps(ensure_ascii=False): JSON.stringify's escapes are the same for well-formed text
  return JSON.stringify(text);
}

function pythonJson(value) {
  if (value === null) return "null";
  if (typeof value === "boolean") return String(value);
  if (value instanceof PyFloat) return pythonFloat(value.value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) return pythonFloat(value);
    return String(value);
  }
  if (typeof value === "string") return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(",")}]`;
  if (typeof value === "object") {
    const names = Object.keys(value).sort(codePointOrder);
    return `{${names.map((n) => `${pyString(n)}:${pythonJson(value[n])}`).join(",")}}`;
  }
  throw new Error(`a ${typeof value} is not a JSON value`);
}

const ENCODERS = { 1: pythonJson, 2: jcs };
const KINDS = new Set(["scan", "epcis", "case"]);

/** The leaf of an entry as custody.entries.entry_leaf (throws when it cannot be written). */
export function entryLeaf(kind, record, previous, version) {
  if (!KINDS.has(kind)) throw new Error(`unknown log entry kind '${kind}'`);
  const encode = Number.isInteger(version) ? ENCODERS[version] : undefined;
  if (!encode) throw new Error(`unknown log entry version ${version}; known: 1, 2`);
  const text = encode({ v: version, kind, record, previous });
  return leafHash(ENC.encode(text));
}

// --- the audit ---------------------------------------------------------------------------

function numberOf(value) {
  return value instanceof PyFloat ? value.value : value;
}

/** abi.encode(string, string[, bytes32]) as ledger.abi (keccak inputs of batch ids, leaves). */
function abiStrings(strings, word) {
  const heads = [];
  const tails = [];
  const count = strings.length + (word ? 1 : 0);
  let offset = 32 * count;
  const u256 = (n) => {
    const out = new Uint8Array(32);
    let v = BigInt(n);
    for (let i = 31; i >= 0 && v > 0n; i--, v >>= 8n) out[i] = Number(v & 0xffn);
    return out;
  };
  for (const s of strings) {
    const bytes = ENC.encode(s);
    const padded = new Uint8Array(Math.ceil(bytes.length / 32) * 32);
    padded.set(bytes);
    heads.push(u256(offset));
    tails.push(u256(bytes.length), padded);
    offset += 32 + padded.length;
  }
  if (word) heads.push(word);
  return concat(...heads, ...tails);
}

export function batchIdOf(gtin, lot) {
  return `0x${hex(keccak_256(abiStrings([gtin, lot])))}`;
}

function merkleLeaf(gtin, serial, salt) {
  return keccak_256(keccak_256(abiStrings([gtin, serial], salt)));
}

function merkleVerify(root, leaf, path) {
  let computed = leaf;
  for (const sibling of path) {
    const [a, b] = hex(computed) <= hex(sibling) ? [computed, sibling] : [sibling, computed];
    computed = keccak_256(concat(a, b));
  }
  return equal(computed, root);
}

/**
 * Check `timeline` against `chain` (custody/audit.py's audit_timeline without pinned previous
 * registries). Returns {ok, verified, failed, pending, checks: [{subject, state, detail}]}.
 */
export async function auditTimeline(timeline, chain, { registry = null, strict = false } = {}) {
  if (!timeline || typeof timeline.log !== "object" || timeline.log === null) {
    throw new Error("not a custody timeline: no 'log' object");
  }
  const checks = [];
  const add = (subject, ok, detail, state = "") =>
    checks.push({ subject, state: state || (ok ? "verified" : "failed"), detail, ok });
  const log = timeline.log;
  const agency = log.agency;
  const listed = timeline.checkpoints || [];
  const enrollment = timeline.enrollment;
  const changes = timeline.statusChanges || [];
  // Every chain read at once (one batched round trip).
  const agencyOk = typeof agency === "string" && /^0x[0-9a-fA-F]{40}$/.test(agency);
  const reads = {
    chainId: chain.chainId(),
    agencyName: agency ? (agencyOk ? chain.agencyName(agency) : Promise.resolve("")) : null,
    roots: listed.map((cp) => {
      const size = intOf(cp.size);
      if (!agencyOk || size === null || size <= 0) return Promise.resolve(ZERO32);
      return chain.checkpointRoot(agency, size);
    }),
    batchRoot: enrollment ? chain.batchRoot(String(enrollment.batchId)) : null,
    registrationTx: enrollment ? chain.txBlock(String(enrollment.batchRegistrationTx)) : null,
    statusTx: changes.map((c) => chain.txBlock(String(c.txHash))),
  };
  const [chainId, agencyName, roots, batchRoot, registrationTx, statusTx] = await Promise.all([
    reads.chainId,
    reads.agencyName,
    Promise.all(reads.roots),
    reads.batchRoot,
    reads.registrationTx,
    Promise.all(reads.statusTx),
  ]);

  // 1. the chain
  add(
    "chain",
    log.chainId === chainId,
    `timeline names chain ${log.chainId}, the RPC serves chain ${chainId}`,
  );
  const claimed = String(log.registry || "");
  if (registry) {
    add(
      "registry",
      claimed.toLowerCase() === registry.toLowerCase(),
      `timeline names registry ${claimed}, expected ${registry}`,
    );
  }
  if (agency) {
    add(
      "anchoring agency",
      Boolean(agencyName),
      agencyName
        ? `${agency} is accredited on chain as '${agencyName}'`
        : `${agency} is not an accredited customs agency`,
    );
  }

  // 2. checkpoints and their consistency
  const confirmed = new Map();
  listed.forEach((cp, i) => {
    const size = intOf(cp.size);
    const root = hash32(cp.root);
    const subject = `checkpoint ${size}`;
    if (size === null || size <= 0 || root === null || typeof agency !== "string") {
      add(subject, false, "malformed checkpoint (size, root or agency)");
      return;
    }
    if (cp.agency !== undefined && cp.agency !== null && cp.agency !== agency) {
      add(subject, false, `anchored by ${cp.agency}, not the log's agency`);
      return;
    }
    const anchored = roots[i];
    if (equal(anchored, root)) {
      confirmed.set(size, root);
      add(subject, true, `root ${hex(root).slice(0, 16)}… anchored on chain by ${agency}`);
    } else if (equal(anchored, ZERO32)) {
      add(subject, false, `never anchored on chain by ${agency} at size ${size}`);
    } else {
      add(
        subject,
        false,
        `chain holds root ${hex(anchored).slice(0, 16)}…, not ${hex(root).slice(0, 16)}…`,
      );
    }
  });
  const sizes = listed.map((c) => intOf(c.size) || 0).sort((a, b) => a - b);
  const proofs = new Map();
  for (const p of timeline.consistency || []) proofs.set(`${intOf(p.from)}:${intOf(p.to)}`, p.proof);
  for (let i = 0; i + 1 < sizes.length; i++) {
    const [older, newer] = [sizes[i], sizes[i + 1]];
    const subject = `consistency ${older} → ${newer}`;
    const proof = proofs.get(`${older}:${newer}`);
    if (proof === undefined || proof === null) {
      add(subject, false, "no consistency proof given");
      continue;
    }
    if (!confirmed.has(older) || !confirmed.has(newer)) {
      add(subject, false, "a checkpoint is not confirmed on chain");
      continue;
    }
    let ok = false;
    try {
      ok = verifyConsistency(older, newer, confirmed.get(older), confirmed.get(newer), proofFromHex(proof));
    } catch {
      ok = false;
    }
    add(subject, ok, ok ? "nothing deleted or rewritten" : "proof does not verify");
  }

  // 3. entries
  for (const entry of timeline.entries || []) {
    const index = intOf(entry.logIndex);
    const subject = `entry ${index} (${entry.kind}: ${entry.summary ?? ""})`;
    let leaf;
    if (entry.withheld === true) {
      leaf = hash32(entry.leafHash);
      if (leaf === null) {
        add(subject, false, "withheld entry without a leaf hash");
        continue;
      }
    } else {
      try {
        leaf = entryLeaf(String(entry.kind), entry.record || {}, entry.previous || {}, numberOf(entry.v ?? 1));
      } catch (exc) {
        add(subject, false, `cannot recompute the entry: ${exc.message}`);
        continue;
      }
    }
    if (index === null) {
      add(subject, false, "no log index");
      continue;
    }
    const size = intOf(entry.checkpointSize);
    if (entry.anchoring !== "anchored" || size === null) {
      add(
        subject,
        !strict,
        "pending anchoring: no anchored checkpoint covers it yet",
        strict ? "failed" : "pending",
      );
      continue;
    }
    if (!confirmed.has(size)) {
      add(subject, false, `its checkpoint ${size} is not confirmed on chain`);
      continue;
    }
    let proof;
    try {
      proof = proofFromHex(entry.inclusionProof || []);
    } catch (exc) {
      add(subject, false, `malformed inclusion proof: ${exc.message}`);
      continue;
    }
    if (verifyInclusion(leaf, index, size, proof, confirmed.get(size))) {
      const shown = entry.withheld === true ? "its leaf hash" : "it";
      add(subject, true, `${shown} in checkpoint ${size} anchored on chain`);
    } else {
      add(subject, false, `the shown record does not hash into checkpoint ${size}: changed since logged`);
    }
  }

  // 4. the item's chain of entries
  const key = (timeline.item || {}).key;
  const shown = new Map();
  for (const e of timeline.entries || []) {
    if (e.previous && Object.hasOwn(e.previous, key)) shown.set(intOf(e.logIndex), e);
  }
  const missing = [];
  for (const [index, e] of shown) {
    const prev = numberOf(e.previous[key]);
    if (prev !== null && !shown.has(prev)) missing.push([index, prev]);
  }
  missing.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  for (const [index, prev] of missing) {
    add(`history of ${key}`, false, `entry ${index} follows entry ${prev}, which the timeline does not show (deleted?)`);
  }
  if (shown.size && !missing.length) add(`history of ${key}`, true, `${shown.size} entries, none missing between`);

  // 5. enrollment
  if (!enrollment) {
    add("enrollment", true, "the gateway names no enrollment for this item", "pending");
  } else {
    const problems = [];
    const { gtin, serial, lot } = enrollment;
    const batchId = String(enrollment.batchId);
    const root = hash32(enrollment.root);
    const salt = hash32(enrollment.salt);
    const claimedLeaf = hash32(enrollment.leaf);
    const holder = String(enrollment.registry || chain.registry());
    const trusted = new Set([chain.registry().toLowerCase(), ...(log.previousRegistries || []).map((r) => String(r).toLowerCase())]);
    if (registry) {
      for (const r of [...trusted]) if (r !== registry.toLowerCase()) trusted.delete(r);
    }
    if (!trusted.has(holder.toLowerCase())) problems.push(`registry ${holder} is neither the timeline's nor one it replaced`);
    if (typeof gtin !== "string" || typeof serial !== "string" || typeof lot !== "string") {
      problems.push("GTIN, serial or lot missing");
    } else if (batchIdOf(gtin, lot) !== batchId) {
      problems.push(`batch id ${batchId} is not that of GTIN ${gtin} lot ${lot}`);
    }
    if (root === null || salt === null) {
      problems.push("root or salt missing");
    } else if (typeof gtin === "string" && typeof serial === "string") {
      const leaf = merkleLeaf(gtin, serial, salt);
      const path = (enrollment.merkleProof || []).map(hash32).filter(Boolean);
      if (claimedLeaf !== null && !equal(leaf, claimedLeaf)) problems.push("the leaf is not that of (GTIN, serial, salt)");
      if (!merkleVerify(root, leaf, path)) problems.push("the item is not under the batch root");
    }
    if (batchRoot === null || batchRoot === undefined) {
      problems.push(`batch ${batchId} is not registered on chain`);
    } else if (root !== null && batchRoot.toLowerCase() !== `0x${hex(root)}`) {
      problems.push(`the chain holds root ${batchRoot} for the batch`);
    }
    if (registrationTx === null) {
      problems.push(`registration tx ${enrollment.batchRegistrationTx} not found on chain or failed`);
    } else {
      const [block, to] = registrationTx;
      if (block !== enrollment.batchRegistrationBlock) problems.push(`registration tx is in block ${block}, not the stated one`);
      if (to.toLowerCase() !== holder.toLowerCase()) problems.push(`registration tx was not sent to the registry ${holder}`);
    }
    add(
      "enrollment",
      problems.length === 0,
      problems.join("; ") || `in batch ${batchId.slice(0, 18)}…, registered in block ${registrationTx && registrationTx[0]}`,
    );
  }

  // 6. status changes
  changes.forEach((change, i) => {
    const found = statusTx[i];
    const ok = found !== null && found[0] === change.blockNumber;
    add(
      `status change ${change.status} (${change.level})`,
      ok,
      `tx ${change.txHash} in block ${change.blockNumber}${ok ? "" : ": not found on chain in that block"}`,
    );
  });

  const count = (state) => checks.filter((c) => c.state === state).length;
  return {
    ok: checks.every((c) => c.ok),
    verified: count("verified"),
    failed: count("failed"),
    pending: count("pending"),
    checks: checks.map(({ subject, state, detail }) => ({ subject, state, detail })),
  };
}
