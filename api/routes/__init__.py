"""One module per resource; `api.main` includes every router listed in ROUTERS (the pages
for people, `api.pages`, last)."""

from api import pages
from api.routes import (
    alerts,
    batches,
    case_documents,
    cases,
    chain_writes,
    custody,
    devices,
    grants,
    gs1,
    guides,
    jobs,
    meta,
    organizations,
    people,
    rights,
    trust,
    verify,
    webhooks,
)

ROUTERS = [
    meta.router,
    organizations.router,
    grants.router,
    rights.router,
    batches.router,
    jobs.router,
    chain_writes.router,
    verify.router,
    gs1.router,
    alerts.router,
    webhooks.router,
    trust.router,
    devices.router,
    custody.router,
    cases.router,
    case_documents.router,
    guides.router,
    people.router,
    pages.router,
]
