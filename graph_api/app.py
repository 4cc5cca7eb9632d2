"""The FastAPI application: thin routers over the served graph and the state store."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from campus_kg import __version__
from campus_kg.settings import Settings
from campus_kg.state import StateStore
from campus_kg.workspace import Workspace
from graph_api import cypher_guard, ui
from graph_api.applier import Applier
from graph_api.cypher_worker import CypherWorkerPool
from graph_api.errors import install_error_handlers
from graph_api.request_guard import RequestGuard
from graph_api.routers import analysts, auditors, forms, health, persons, portraits, review
from graph_api.served_graph import GraphUnavailable, ServedGraph


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    workspace = Workspace.at(settings.workspace)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        cypher_guard.check("RETURN 1 AS warm")  # the parser's first use costs ~0.4 s: pay it before traffic
        yield
        app.state.applier.close()
        app.state.cypher_pool.close()
        app.state.graph.close()

    app = FastAPI(
        title="campus-kg graph API",
        version=__version__,
        description="高校主数据知识图谱 API / Master data knowledge graph of a university: personal records "
                    "with their sources, one-form prefill, the stewards' duplicate queue, read-only Cypher, "
                    "lineage and the access log. Bearer tokens from `campus-kg users add`; deny by default. "
                    "Every read of a person's record is logged.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.workspace = workspace
    app.state.graph = ServedGraph(settings, workspace)
    app.state.cypher_pool = CypherWorkerPool(settings)  # analysts' Cypher, apart from the server; started lazily
    app.state.applier = Applier(settings, workspace)
    app.state.state_store = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value(),
                                       settings.token_ttl_days)
    install_error_handlers(app)

    @app.exception_handler(GraphUnavailable)
    def _no_graph(_: Request, exc: GraphUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    for router in (health.router, persons.router, forms.router, review.router, analysts.router, auditors.router,
                   portraits.router):
        app.include_router(router)
    app.include_router(ui.router)  # the web pages under /ui/ (graph_api/ui), signed in by a session cookie
    # Size limit and token before the body is read; only the service status and its documentation are public.
    public = {"/health", app.openapi_url, app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url,
              *ui.PATHS}  # the pages check their session cookie themselves
    app.add_middleware(RequestGuard, max_request_bytes=settings.max_request_bytes,
                       public_paths={p for p in public if p}, verify=app.state.state_store.verify,
                       token_cache_seconds=settings.token_cache_seconds)
    return app
