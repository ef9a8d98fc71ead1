// Cross-check for ledger/merkle.py against @openzeppelin/merkle-tree's StandardMerkleTree.
//
// stdin:  {"cases": [{"values": [[gtin, serial, saltHex], ...],
//                     "checks": [{"root": hex, "value": [gtin, serial, saltHex], "proof": [hex]}]}]}
// stdout: {"cases": [{"root": hex, "leafHashes": [hex], "proofs": [[hex]], "dump": {...},
//                     "checks": [bool]}]}
// proofs[i] is tree.getProof(i) for values[i]; checks[j] is StandardMerkleTree.verify(...)
// for checks[j] (proofs computed by the Python side, some of them deliberately broken).
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

import { readJsonStdin, writeJson } from "./_stdin.mjs";

const ENCODING = ["string", "string", "bytes32"];

function runCase({ values, checks = [] }) {
  const tree = StandardMerkleTree.of(values, ENCODING);
  return {
    root: tree.root,
    leafHashes: values.map((value) => tree.leafHash(value)),
    proofs: values.map((_, i) => tree.getProof(i)),
    dump: tree.dump(),
    checks: checks.map(({ root, value, proof }) =>
      StandardMerkleTree.verify(root, ENCODING, value, proof),
    ),
  };
}

const input = await readJsonStdin();
writeJson({ cases: input.cases.map(runCase) });
