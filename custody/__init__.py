"""Chain of custody: the tamper-evident log of scans and custody events.

Its domain modules (`log`, `entries`, `audit`) import neither FastAPI nor web3, so the gateway,
the auditor's command and the benchmark share one implementation of the log's hashing and
proofs; `custody.cli` (`borderledger audit`) reads the chain through `chain`.
"""
