"""One module per resource; `api.main` includes every router listed in ROUTERS."""

from api.routes import (
    alerts,
    batches,
    custody,
    devices,
    gs1,
    jobs,
    meta,
    organizations,
    rights,
    trust,
    verify,
    webhooks,
)

ROUTERS = [
    meta.router,
    organizations.router,
    rights.router,
    batches.router,
    jobs.router,
    verify.router,
    gs1.router,
    alerts.router,
    webhooks.router,
    trust.router,
    devices.router,
    custody.router,
]
