"""The gateway's pages for people (docs/architecture.md, "Pages"): server-rendered Jinja2,
htmx for partial updates, small ES modules bundled with esbuild at set-up.

Every page but sign-in and invitation needs a session (`bl_session` cookie, api/users.py);
every form carries a CSRF token: the session's synchronizer token once signed in, a
double-submit cookie (`bl_csrf`) before. Text goes through Babel message catalogs
(`api.pages.i18n`), in the user's language. Bad input is a message on the page, never a
stack trace. Shared helpers live in `api.pages.kit`; each module below holds one area's
routes, and a new area adds its router to `ROUTERS`.
"""

from fastapi import APIRouter

from api.pages import (
    admin_ops,
    admin_orgs,
    api_keys,
    audit,
    audit_find,
    auth,
    batches,
    cases,
    guides,
    home,
    inbox,
    offline,
    people,
    product_alerts,
    scan,
    statistics,
    webhooks,
)

#: Every page module's router, in the order FastAPI matches them.
ROUTERS: list[APIRouter] = [
    auth.router,
    home.router,
    scan.router,
    people.router,
    offline.router,
    inbox.router,
    cases.router,
    guides.router,
    statistics.router,
    batches.router,
    audit.router,
    product_alerts.router,
    webhooks.router,
    api_keys.router,
    admin_orgs.router,
    admin_ops.router,
    audit_find.router,
]

router = APIRouter(include_in_schema=False)
for _module_router in ROUTERS:
    router.include_router(_module_router)

__all__ = ["ROUTERS", "router"]
