"""Chain of custody: the tamper-evident log of scans and custody events (issue 5).

A domain package: it imports neither fastapi nor web3, so the gateway, the auditor CLI and the
benchmark share one implementation of the log's hashing and proofs.
"""
