"""The verification gateway (FastAPI) that officers, rights holders and auditors talk to.

Built in issue 3 on top of `ledger`; nothing is exported yet.
"""
