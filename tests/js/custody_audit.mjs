// The auditor page's checks (api/pages/web/lib/custody_audit.js) outside the browser, for a
// cross-check against custody/log.py and custody/entries.py.
// stdin: {"text": json text of {"entries": [...], "inclusion": [...], "consistency": [...]}}
// stdout: {"leaves": [hex | {"error"}], "inclusion": [bool], "consistency": [bool], "batch": hex}
import {
  batchIdOf,
  entryLeaf,
  hash32,
  hex,
  parseKeepingFloats,
  proofFromHex,
  verifyConsistency,
  verifyInclusion,
} from "../../api/pages/web/lib/custody_audit.js";
import { readJsonStdin, writeJson } from "./_stdin.mjs";

const input = await readJsonStdin();
const data = parseKeepingFloats(input.text);
const leaves = data.entries.map((e) => {
  try {
    return `0x${hex(entryLeaf(e.kind, e.record, e.previous, e.v))}`;
  } catch (error) {
    return { error: String(error.message || error) };
  }
});
const guarded = (f) => {
  try {
    return f();
  } catch {
    return false;
  }
};
const inclusion = data.inclusion.map((p) =>
  guarded(() => verifyInclusion(hash32(p.leaf), p.index, p.size, proofFromHex(p.proof), hash32(p.root))),
);
const consistency = data.consistency.map((c) =>
  guarded(() => verifyConsistency(c.from, c.to, hash32(c.old), hash32(c.new), proofFromHex(c.proof))),
);
writeJson({ leaves, inclusion, consistency, batch: batchIdOf(data.gtin, data.lot) });
