"""``livectx serve``: ``get_context`` over HTTP for agents not written in Python.

``POST /v1/context`` takes the same arguments as :meth:`ContextClient.get_context` as JSON and returns the
same context (features, similar items, freshness, degraded reasons) with the same budget semantics.
Errors are JSON ``{"error": message}``: 400/422 for a bad request, 503 when ``strict`` and a part is
missing. With authentication on (a :class:`~livectx_agents.auth.TenantAuth`), ``/v1/*`` needs an API key:
401 without a valid one, 403 for a request outside the key's tenant; searches are scoped to its namespace.
Health, readiness and metrics stay open (probes and scrapers carry no tenant). The OpenAPI document is
at ``/openapi.json`` (and ``/docs``); Prometheus metrics at ``/metrics``.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from livectx import prometheus as prom
from livectx.errors import LivectxError
from livectx.repo.tenants import TenantSpec
from livectx.vectors.records import VectorFilter
from livectx_agents.auth import Forbidden, TenantAuth, Unauthenticated
from livectx_agents.context import AsyncContextClient, ContextUnavailable


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str | None = None
    categories: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    since_ms: int | None = None
    until_ms: int | None = None


class ContextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entities: list[str] = Field(
        default_factory=list, max_length=1000, description="Ids of the feature service's entity (e.g. user ids)."
    )
    feature_service: str | None = Field(
        None, description="A feature service the repo declares (default: its only one; GET /v1/services lists them)."
    )
    memory_view: str | None = Field(None, description="Search only this memory view of the repo.")
    query_text: str | None = Field(None, max_length=8000)
    query_vector: list[float] | None = None
    top_k: int = Field(10, ge=1, le=1000)
    filters: Filters | None = None
    budget_ms: float | None = Field(None, gt=0, le=60_000)
    strict: bool = False

    @model_validator(mode="after")
    def _one_query(self) -> ContextRequest:
        if self.query_text is not None and self.query_vector is not None:
            raise ValueError("give query_text or query_vector, not both")
        if not self.entities and self.query_text is None and self.query_vector is None:
            raise ValueError("nothing to fetch: give entities, a query, or both")
        return self


def create_app(
    client: AsyncContextClient | None = None, settings: Any = None, auth: TenantAuth | None = None
) -> FastAPI:
    """The app; ``client`` is injected by tests, else built from settings at start-up. ``auth`` ``None``
    serves without authentication (the loopback dev default, see :func:`livectx_agents.auth.auth_required`)."""
    state: dict[str, AsyncContextClient] = {}

    def caller(request: Request) -> TenantSpec | None:
        if auth is None:
            return None
        try:
            return auth.caller(request.headers)
        except Unauthenticated as exc:
            raise _Refused(401, str(exc)) from None

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        state["client"] = client or AsyncContextClient.from_settings(settings)
        # Before the first call is accepted (uvicorn binds after start-up): the model's first pass and the
        # stores' connections are paid here, not by the first callers.
        await asyncio.get_running_loop().run_in_executor(None, state["client"].sync.warm_up)
        yield
        state["client"].close()

    app = FastAPI(
        title="livectx context API",
        version="1",
        description="Online features + similar items + freshness for AI agents, within a latency budget.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"error": f"{where}: {first['msg']}", "details": details})

    @app.exception_handler(_Refused)
    async def refused(_request: Request, exc: _Refused) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(status_code=exc.status, content={"error": exc.message}, headers=headers)

    @app.exception_handler(LivectxError)
    async def livectx_error(_request: Request, exc: LivectxError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.post("/v1/context", summary="Features + similar items + freshness in one call")
    # ``Depends`` as a default, FastAPI's idiom: ``Annotated[...]`` would be a string here (postponed
    # annotations) that FastAPI cannot resolve to the local ``caller``.
    async def context(
        request: ContextRequest,
        tenant: TenantSpec | None = Depends(caller),  # noqa: B008
    ) -> dict[str, Any]:
        where = VectorFilter(
            request.filters.tenant,
            tuple(request.filters.categories),
            tuple(request.filters.sources),
            request.filters.since_ms,
            request.filters.until_ms,
        ) if request.filters else None  # fmt: skip
        if auth is not None and tenant is not None:
            try:
                where = auth.scope(tenant, where, request.entities)
            except Forbidden as exc:
                return JSONResponse(status_code=403, content={"error": str(exc)})  # type: ignore[return-value]
        try:
            result = await state["client"].get_context(
                request.entities,
                request.feature_service,
                memory_view=request.memory_view,
                query_text=request.query_text,
                query_vector=request.query_vector,
                top_k=request.top_k,
                filters=where,
                budget_ms=request.budget_ms,
                strict=request.strict,
            )
        except ContextUnavailable as exc:
            return JSONResponse(status_code=503, content={"error": f"context incomplete: {exc}"})  # type: ignore[return-value]
        return result.to_dict()

    @app.get("/v1/services", summary="The feature services and memory views the repo declares")
    async def services(_tenant: TenantSpec | None = Depends(caller)) -> dict[str, Any]:  # noqa: B008
        sync = state["client"].sync
        return {
            "feature_services": {
                name: {"views": [g.name for g in groups], "features": [f.name for g in groups for f in g.features]}
                for name, groups in sync.services.items()
            },
            "memory_views": sorted(sync.memory_sources),
        }

    app.mount("/metrics", prom.asgi_app())  # Prometheus: context latency by part, degraded answers, breakers

    @app.get("/readyz", summary="Ready once warmed up: the warm-up's time or error per part (503 before)")
    async def readyz() -> JSONResponse:
        warm = state["client"].sync.warm if "client" in state else None
        if warm is None:
            return JSONResponse(status_code=503, content={"status": "warming up"})
        failed = {name: part["error"] for name, part in warm.items() if "error" in part}
        return JSONResponse(content={"status": "degraded" if failed else "ready", "warm_up": warm})

    @app.get("/healthz", summary="Liveness and the state of each dependency's circuit breaker")
    async def healthz() -> dict[str, Any]:
        breakers = state["client"].sync.breakers
        return {"status": "ok", "breakers": {name: b.state for name, b in breakers.items()}}

    return app


class _Refused(Exception):
    """A request refused before it runs (401), answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
