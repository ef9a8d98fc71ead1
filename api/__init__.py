"""The verification gateway (FastAPI) that officers, rights holders and auditors talk to.

Routes (`api.routes`) validate and call services; storage, indexer, outbox, webhooks and jobs sit
beside them. Nothing is exported: the application is built by `api.main`.
"""
