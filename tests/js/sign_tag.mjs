// Cross-check for ledger/tags.py against ethers v6 EIP-712 signing.
//
// stdin:  {"cases": [{"privateKey": hex, "domain": {name, version, chainId, verifyingContract},
//                     "tags": [{"gtin", "serial", "lot", "pythonSignature": hex}]}]}
// stdout: {"cases": [{"address": checksummed, "tags": [{"digest": hex, "signature": hex,
//                     "pythonSigner": checksummed}]}]}
// digest is TypedDataEncoder.hash, signature is Wallet.signTypedData, and pythonSigner is
// verifyTypedData over the signature the Python side made.
import { ethers } from "ethers";

import { readJsonStdin, writeJson } from "./_stdin.mjs";

const TYPES = {
  Tag: [
    { name: "gtin", type: "string" },
    { name: "serial", type: "string" },
    { name: "lot", type: "string" },
  ],
};

async function runCase({ privateKey, domain, tags }) {
  const wallet = new ethers.Wallet(privateKey);
  const results = [];
  for (const { gtin, serial, lot, pythonSignature } of tags) {
    const value = { gtin, serial, lot };
    results.push({
      digest: ethers.TypedDataEncoder.hash(domain, TYPES, value),
      signature: await wallet.signTypedData(domain, TYPES, value),
      pythonSigner: ethers.verifyTypedData(domain, TYPES, value, pythonSignature),
    });
  }
  return { address: wallet.address, tags: results };
}

const input = await readJsonStdin();
const cases = [];
for (const c of input.cases) cases.push(await runCase(c));
writeJson({ cases });
