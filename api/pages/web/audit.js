// The auditor's timeline page (api/pages/audit.py): checks every entry of the server-rendered
// timeline against the chain through the RPC the auditor picks, trusting nothing the gateway
// says (lib/custody_audit.js holds the checks, the same as `borderledger audit`). Chain reads
// go through ethers' JsonRpcProvider, which sends the reads started together as one JSON-RPC
// batch. The page's Content-Security-Policy admits only the deployment's configured RPC
// origins: another origin is refused by the browser, and said so here.
import { Interface, JsonRpcProvider, Network } from "ethers";
import { auditTimeline, hash32, parseKeepingFloats } from "./lib/custody_audit.js";

const REGISTRY_ABI = [
  "function checkpointRoot(address agency, uint64 size) view returns (bytes32)",
  "function customsAgency(address agency) view returns (string)",
  "function getBatch(bytes32 batchId) view returns (tuple(bytes32 root, address holder, uint48 itemCount, uint40 registeredAt, uint8 status))",
];
const registryAbi = new Interface(REGISTRY_ABI);
const TIMEOUT_MS = 15000;
const blocked = new Set();

document.addEventListener("securitypolicyviolation", (event) => {
  if (event.effectiveDirective === "connect-src") blocked.add(event.blockedURI);
});

/** custody/audit.py's ChainView over the auditor's RPC (ethers). */
function chainView(rpcUrl, registry, claimedChainId) {
  // A static network: ethers does not probe the RPC on its own; the chain id is read below
  // and compared with the timeline's by the audit.
  const provider = new JsonRpcProvider(rpcUrl, Network.from(Number(claimedChainId) || 1), {
    staticNetwork: true,
    batchMaxCount: 200,
  });
  const call = async (name, args) => {
    const data = registryAbi.encodeFunctionData(name, args);
    const raw = await provider.call({ to: registry, data });
    return registryAbi.decodeFunctionResult(name, raw);
  };
  return {
    provider,
    chainId: async () => Number(BigInt(await provider.send("eth_chainId", []))),
    registry: () => registry,
    agencyName: async (agency) => String((await call("customsAgency", [agency]))[0]),
    checkpointRoot: async (agency, size) =>
      hash32((await call("checkpointRoot", [agency, size]))[0]) || new Uint8Array(32),
    batchRoot: async (batchId) => {
      if (!/^0x[0-9a-fA-F]{64}$/.test(batchId)) return null;
      const [batch] = await call("getBatch", [batchId]);
      return Number(batch.registeredAt) > 0 ? String(batch.root) : null;
    },
    txBlock: async (txHash) => {
      if (!/^0x[0-9a-fA-F]{64}$/.test(txHash)) return null;
      try {
        const receipt = await provider.getTransactionReceipt(txHash);
        if (!receipt || receipt.status !== 1) return null;
        return [receipt.blockNumber, String(receipt.to || "")];
      } catch {
        return null;
      }
    },
  };
}

function setState(element, state, text) {
  if (!element) return;
  element.dataset.state = state;
  element.textContent = text;
}

const WORDS = { verified: "Verified", failed: "Not verified", pending: "Pending anchoring" };

/** Put the report on the page: each row's proof cell, the summary, the list of checks. */
function show(report, ms) {
  const byEntry = new Map();
  const history = new Map();
  for (const check of report.checks) {
    const entry = /^entry (\d+) /.exec(check.subject);
    if (entry) byEntry.set(entry[1], check);
    const gap = /^entry (\d+) follows entry/.exec(check.detail);
    if (check.subject.startsWith("history of ") && gap) history.set(gap[1], check);
  }
  for (const cell of document.querySelectorAll("[data-proof]")) {
    const subject = cell.dataset.proof;
    let check = null;
    const index = /^entry (\d+)$/.exec(subject);
    if (index) {
      check = byEntry.get(index[1]) || null;
      const gap = history.get(index[1]);
      if (gap && (!check || check.state !== "failed")) check = gap;
    } else {
      check = report.checks.find((c) => c.subject === subject) || null;
    }
    if (!check) continue;
    const word = WORDS[check.state] || check.state;
    setState(cell, check.state, check.state === "verified" ? word : `${word}: ${check.detail}`);
  }
  const list = document.getElementById("audit-checks");
  list.replaceChildren(
    ...report.checks.map((check) => {
      const item = document.createElement("li");
      item.dataset.subject = check.subject;
      item.dataset.state = check.state;
      const strong = document.createElement("strong");
      strong.textContent = `${WORDS[check.state] || check.state}: `;
      item.append(strong, `${check.subject} — ${check.detail}`);
      return item;
    }),
  );
  const summary = document.getElementById("audit-summary");
  const text = report.failed
    ? `${report.failed} of ${report.checks.length} checks NOT verified against the chain.`
    : `All ${report.verified} checks verified against the chain` +
      (report.pending ? ` (${report.pending} pending anchoring).` : ".");
  summary.dataset.ms = String(Math.round(ms));
  summary.dataset.doneAt = String(Math.round(performance.now())); // from the navigation's start
  setState(summary, report.failed ? "failed" : "verified", text);
}

function failAll(reason) {
  for (const cell of document.querySelectorAll("[data-proof]")) {
    setState(cell, "failed", `Not verified: ${reason}`);
  }
  document.getElementById("audit-checks").replaceChildren();
  setState(document.getElementById("audit-summary"), "failed", `Not checked: ${reason}`);
}

async function check(form, timeline) {
  const rpcUrl = form.elements.rpc.value.trim();
  const summary = document.getElementById("audit-summary");
  let origin;
  try {
    origin = new URL(rpcUrl).origin;
  } catch {
    failAll(`"${rpcUrl}" is not a URL`);
    return;
  }
  setState(summary, "checking", `Checking against ${rpcUrl}…`);
  for (const cell of document.querySelectorAll("[data-proof]")) setState(cell, "checking", "Checking…");
  const started = performance.now();
  const registry = form.elements.registry.value.trim();
  if (!/^0x[0-9a-fA-F]{40}$/.test(registry)) {
    failAll(`"${registry}" is not a registry address (0x and 40 hex digits)`);
    return;
  }
  const chain = chainView(rpcUrl, registry, timeline.log.chainId);
  try {
    const report = await Promise.race([
      auditTimeline(timeline, chain, { registry }),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS),
      ),
    ]);
    show(report, performance.now() - started);
  } catch (exc) {
    // The browser reports a refused connection in a task of its own, after fetch failed.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = [...blocked].some((uri) => uri.startsWith(origin));
    failAll(
      refused
        ? `${origin} is not an RPC this deployment admits (Content-Security-Policy)`
        : `cannot read the chain at ${rpcUrl}: ${exc.shortMessage || exc.message}`,
    );
  } finally {
    chain.provider.destroy();
  }
}

function start() {
  const form = document.getElementById("audit-form");
  const data = document.getElementById("timeline-json");
  if (!form || !data) return;
  let timeline = null;
  const run = () => {
    timeline = timeline || parseKeepingFloats(data.textContent);
    check(form, timeline);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  // After the server-rendered timeline is painted: the check never delays the first paint.
  requestAnimationFrame(() => setTimeout(run, 0));
}

start();
