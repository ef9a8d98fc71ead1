"""The gateway's pages for people (docs/architecture.md, "Pages"): server-rendered Jinja2,
htmx for partial updates, one small ES module bundled with esbuild at set-up.

Every page but sign-in and invitation needs a session (`bl_session` cookie, api/users.py);
every form carries a CSRF token: the session's synchronizer token once signed in, a
double-submit cookie (`bl_csrf`) before. Text goes through Babel message catalogs
(`api.pages.i18n`), in the user's language. Bad input is a message on the page, never a
stack trace.
"""

from api.pages.routes import router

__all__ = ["router"]
