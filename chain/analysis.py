"""Static analysis of the registry with Slither, over the Hardhat build (no compiler download).

`python -m chain.analysis` (part of `make lint`) runs Slither on the build-info Hardhat wrote
for `BorderLedgerRegistry` (`--hardhat-ignore-compile`: Slither reads the solc output and AST
Hardhat kept, so it needs no solc of its own) and compares its findings with the triage file
`contracts/slither-triage.json`. It fails on any High or Medium finding, on a Low or
informational finding nobody accepted there with a reason, and on an accepted entry that no
longer matches a finding (so the list never outlives the code).

Only the build-info the registry's artifact points to is analysed: an older one Hardhat left
behind after an incremental compile would bring in the previous version of the contract.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.config import PROJECT_ROOT

TRIAGE = PROJECT_ROOT / "contracts" / "slither-triage.json"
ARTIFACT_DBG = (
    PROJECT_ROOT / "artifacts/contracts/BorderLedgerRegistry.sol/BorderLedgerRegistry.dbg.json"
)
REFUSED_IMPACTS = frozenset({"High", "Medium"})
FILTER_PATHS = "node_modules|contracts/baseline|contracts/legacy"


@dataclass(frozen=True)
class Finding:
    check: str
    impact: str
    function: str
    description: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.check, self.function)


def _slither() -> str:
    found = shutil.which("slither", path=str(Path(sys.executable).parent)) or shutil.which(
        "slither"
    )
    if found is None:
        raise SystemExit("slither is not installed: `make setup` installs slither-analyzer")
    return found


def run_slither(root: Path = PROJECT_ROOT) -> list[Finding]:
    """Slither's findings on the registry's current Hardhat build."""
    if not ARTIFACT_DBG.exists():
        raise SystemExit(f"no Hardhat build at {ARTIFACT_DBG}: run `make setup`")
    build_info = (ARTIFACT_DBG.parent / json.loads(ARTIFACT_DBG.read_text())["buildInfo"]).resolve()
    with tempfile.TemporaryDirectory(prefix="slither-") as tmp:
        (Path(tmp) / "build-info").mkdir()
        shutil.copy(build_info, Path(tmp) / "build-info" / build_info.name)
        out = Path(tmp) / "slither.json"
        proc = subprocess.run(
            [
                _slither(),
                str(root),
                "--hardhat-ignore-compile",
                "--hardhat-artifacts-directory",
                tmp,
                "--filter-paths",
                FILTER_PATHS,
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            cwd=root,
        )
        if not out.exists():
            raise SystemExit(f"slither failed:\n{proc.stderr[-4000:]}")
        report: dict[str, Any] = json.loads(out.read_text())
    if not report.get("success"):
        raise SystemExit(f"slither failed: {report.get('error')}")
    findings = []
    for result in report.get("results", {}).get("detectors", []):
        functions = [e["name"] for e in result.get("elements", []) if e.get("type") == "function"]
        findings.append(
            Finding(
                result["check"],
                result["impact"],
                functions[0] if functions else "",
                str(result.get("description", "")).strip(),
            )
        )
    return findings


def judge(findings: list[Finding], accepted: list[dict[str, str]]) -> list[str]:
    """What is wrong (empty: the gate passes)."""
    problems = []
    allowed = {(a["check"], a["function"]) for a in accepted}
    for finding in findings:
        if finding.impact in REFUSED_IMPACTS:
            problems.append(f"{finding.impact} finding, not acceptable: {finding.description}")
        elif finding.key not in allowed:
            problems.append(
                f"{finding.impact} finding not in {TRIAGE.name} (fix it, or accept it there "
                f"with a reason): {finding.description}"
            )
    seen = {f.key for f in findings}
    for entry in accepted:
        if (entry["check"], entry["function"]) not in seen:
            problems.append(
                f"{TRIAGE.name} accepts {entry['check']} in {entry['function']}, which Slither "
                "no longer reports: remove the entry"
            )
        if not entry.get("reason"):
            problems.append(f"{TRIAGE.name}: {entry['check']}/{entry['function']} has no reason")
    return problems


def main() -> int:
    findings = run_slither()
    accepted = json.loads(TRIAGE.read_text())["accepted"]
    problems = judge(findings, accepted)
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.impact] = counts.get(finding.impact, 0) + 1
    print(json.dumps({"findings": counts, "accepted": len(accepted), "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
