"""The dashboard's HTTP app: the page, its script, and the JSON endpoints the page polls every 2 s.

A background thread refreshes the expensive reads (every target's ``/metrics``, Kafka offsets and lag,
the watermark, the dead-letter tail, the registry) on one interval, so many open pages cost the platform
the same as one; the endpoints return the latest refresh. The entity inspector reads on demand.
Errors of one part are shown in that part (``{"error": ...}``), never as a failed page.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from livectx.errors import LivectxError
from livectx.prometheus_targets import targets_dir
from livectx.settings import Settings
from livectx.ui.platform import PlatformReader
from livectx.ui.scrape import MetricsHistory

log = logging.getLogger(__name__)

_STATIC = files("livectx.ui") / "static"


class Refresher:
    """Runs every part's read once per ``interval_s`` in one thread and keeps the latest answers."""

    def __init__(self, reader: PlatformReader, history: MetricsHistory, interval_s: float) -> None:
        self.reader, self.history, self.interval_s = reader, history, interval_s
        self.latest: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livectx-ui-refresh", daemon=True)

    def parts(self) -> dict[str, Callable[[], Any]]:
        def metrics() -> Any:
            self.history.poll()
            return self.history.snapshot()

        return {
            "metrics": metrics,
            "pipelines": self.reader.pipelines,
            "watermark": self.reader.watermark,
            "dead_letters": self.reader.dead_letters,
            "models": self.reader.models,
        }

    def refresh(self) -> None:
        for name, read in self.parts().items():
            try:
                self.latest[name] = read()
            except Exception as exc:  # one store down must not blank the rest of the page
                log.debug("dashboard part %s failed", name, exc_info=True)
                self.latest[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        self.latest["updated_ms"] = int(time.time() * 1000)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def create_app(
    settings: Settings,
    *,
    interval_s: float = 2.0,
    dead_letter_topic: str | None = None,
    models_topic: str | None = None,
) -> FastAPI:
    """The dashboard app; its refresher starts and stops with the app's lifespan."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        reader = PlatformReader(settings, dead_letter_topic, models_topic)
        state["reader"] = reader
        state["refresher"] = Refresher(reader, MetricsHistory(targets_dir(settings)), interval_s)
        state["refresher"].start()
        yield
        state["refresher"].stop()
        reader.close()

    app = FastAPI(title="livectx dashboard", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return (_STATIC / "index.html").read_text()

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        kinds = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in kinds:
            return Response(status_code=404)
        return Response((_STATIC / name).read_text(), media_type=kinds[name])

    @app.get("/api/dashboard")
    async def dashboard() -> dict[str, Any]:
        return {"interval_s": interval_s, **state["refresher"].latest}

    @app.get("/api/services")
    async def services() -> Any:
        return await _in_thread(state["reader"].services)

    @app.get("/api/entity")
    async def entity(service: str, id: str = Query(..., min_length=1), q: str | None = None) -> Any:
        return await _in_thread(state["reader"].entity, service, id, q or None)

    return app


async def _in_thread(read: Callable[..., Any], *args: Any) -> Any:
    """Store reads block: run them off the event loop; a LivectxError is the caller's 400."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, read, *args)
    except LivectxError as exc:
        return JSONResponse(status_code=400, content={"error": str(exc)})
