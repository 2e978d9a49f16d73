"""A LOCAL STAND-IN for Pinecone's data plane, for tests only: Pinecone's cloud cannot be reached here.

It speaks the subset of Pinecone's REST data-plane API that ``livectx.vectors.pinecone_store`` uses
(``/vectors/upsert``, ``/query``, ``/vectors/delete``, ``/vectors/fetch``, ``/describe_index_stats``),
so the real ``pinecone`` SDK runs unmodified against it. Search is exact (brute-force cosine) and
metadata filters support ``$eq $ne $in $nin $gt $gte $lt $lte $and $or``. It is not Pinecone: no
eventual consistency, no limits. To run the same tests against a real serverless index instead, set
``PINECONE_API_KEY`` and ``LIVECTX_TEST_PINECONE_HOST`` (see the README, "Pinecone").
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np


class _Namespace:
    def __init__(self) -> None:
        self.vectors: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}


class PineconeStandIn:
    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.namespaces: dict[str, _Namespace] = defaultdict(_Namespace)
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PineconeStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the API ----------------------------------------------------------------------------------------------

    def upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = self.namespaces[body.get("namespace", "")]
        for vector in body["vectors"]:
            values = np.asarray(vector["values"], dtype=np.float32)
            if values.shape != (self.dimension,):
                raise ValueError(f"Vector dimension {values.shape[0]} does not match the dimension of the index")
            ns.vectors[vector["id"]] = (values, dict(vector.get("metadata") or {}))
        return {"upsertedCount": len(body["vectors"])}

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = self.namespaces[body.get("namespace", "")]
        query = np.asarray(body["vector"], dtype=np.float32)
        condition = body.get("filter") or {}
        scored = []
        for vector_id, (values, metadata) in ns.vectors.items():
            if condition and not _matches(metadata, condition):
                continue
            score = float(values @ query / (np.linalg.norm(values) * np.linalg.norm(query) or 1.0))
            scored.append((score, vector_id, metadata))
        scored.sort(key=lambda row: -row[0])
        matches = [
            {"id": vid, "score": score, **({"metadata": meta} if body.get("includeMetadata") else {})}
            for score, vid, meta in scored[: body["topK"]]
        ]
        return {"matches": matches, "namespace": body.get("namespace", "")}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = self.namespaces[body.get("namespace", "")]
        if body.get("deleteAll"):
            ns.vectors.clear()
        for vector_id in body.get("ids", []):
            ns.vectors.pop(vector_id, None)
        return {}

    def fetch(self, params: dict[str, list[str]]) -> dict[str, Any]:
        namespace = params.get("namespace", [""])[0]
        ns = self.namespaces[namespace]
        found = {
            vid: {"id": vid, "values": ns.vectors[vid][0].tolist(), "metadata": ns.vectors[vid][1]}
            for vid in params.get("ids", [])
            if vid in ns.vectors
        }
        return {"vectors": found, "namespace": namespace}

    def describe_index_stats(self, _body: dict[str, Any]) -> dict[str, Any]:
        counts = {name: {"vectorCount": len(ns.vectors)} for name, ns in self.namespaces.items() if ns.vectors}
        return {
            "namespaces": counts,
            "dimension": self.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(c["vectorCount"] for c in counts.values()),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self
        routes = {
            "/vectors/upsert": standin.upsert,
            "/query": standin.query,
            "/vectors/delete": standin.delete,
            "/describe_index_stats": standin.describe_index_stats,
        }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if not self.headers.get("Api-Key"):
                    self._reply(401, {"error": {"code": "UNAUTHENTICATED", "message": "missing Api-Key"}})
                    return False
                return True

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                path = urlsplit(self.path).path
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                standin.requests.append(path)
                if path not in routes:
                    self._reply(404, {"error": {"code": "NOT_FOUND", "message": path}})
                    return
                try:
                    with standin.lock:
                        result = routes[path](body)
                except ValueError as exc:
                    self._reply(400, {"error": {"code": "INVALID_ARGUMENT", "message": str(exc)}})
                    return
                self._reply(200, result)

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                parts = urlsplit(self.path)
                standin.requests.append(parts.path)
                if parts.path != "/vectors/fetch":
                    self._reply(404, {"error": {"code": "NOT_FOUND", "message": parts.path}})
                    return
                with standin.lock:
                    self._reply(200, standin.fetch(parse_qs(parts.query)))

        return Handler


def _matches(metadata: dict[str, Any], condition: dict[str, Any]) -> bool:
    for key, clause in condition.items():
        if key == "$and":
            if not all(_matches(metadata, c) for c in clause):
                return False
            continue
        if key == "$or":
            if not any(_matches(metadata, c) for c in clause):
                return False
            continue
        value = metadata.get(key)
        ops = clause if isinstance(clause, dict) else {"$eq": clause}
        for op, operand in ops.items():
            ok = {
                "$eq": lambda v, o: v == o,
                "$ne": lambda v, o: v != o,
                "$in": lambda v, o: v in o,
                "$nin": lambda v, o: v not in o,
                "$gt": lambda v, o: v is not None and v > o,
                "$gte": lambda v, o: v is not None and v >= o,
                "$lt": lambda v, o: v is not None and v < o,
                "$lte": lambda v, o: v is not None and v <= o,
            }[op](value, operand)
            if not ok:
                return False
    return True
