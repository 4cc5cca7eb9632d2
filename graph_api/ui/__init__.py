"""The web pages under /ui/: server-rendered (Jinja2), signed in by a session cookie, every script and
style served from this package (no CDN: a campus intranet has no internet).

Each page calls the API's own router functions, so roles, masking, the self-only check, the access
log and the audit trail are the API's. `PATHS` are exact paths (no path parameters) that the request
guard lets through without a bearer token: every one of them checks the session cookie itself."""

from __future__ import annotations

from fastapi import APIRouter

from graph_api.ui import cypher, entities, forms, lineage, me, portraits, quality, review, signin

PAGES = (signin.router, me.router, review.router, entities.router, quality.router, lineage.router, forms.router,
         portraits.router, cypher.router)
router = APIRouter(include_in_schema=False)  # pages, not API: documented in docs/api.md, "Web pages"
for _pages in PAGES:
    router.include_router(_pages)

PATHS = frozenset(route.path for pages in PAGES for route in pages.routes)
if any("{" in p for p in PATHS):
    raise RuntimeError("the request guard matches UI paths exactly: no path parameters under /ui/")
