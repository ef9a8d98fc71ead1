"""One module per resource; `api.main` includes every router listed in ROUTERS."""

from api.routes import alerts, batches, custody, gs1, meta, organizations, verify

ROUTERS = [
    meta.router,
    organizations.router,
    batches.router,
    verify.router,
    gs1.router,
    alerts.router,
    custody.router,
]
