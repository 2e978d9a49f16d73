"""The vector store contract, on the real Postgres + pgvector and on the Pinecone SDK against a stand-in.

The same test body runs on both backends: idempotent upserts, deletes, every filter field, best-first
hits, and the model/dimension guard. Pinecone's cloud cannot be reached here, so its case talks to
``PineconeStandIn`` (a local fake of Pinecone's data-plane REST API, named as such), through the real SDK.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from livectx.errors import IndexMismatchError
from livectx.settings import Settings
from livectx.vectors import VectorFilter, VectorRecord, VectorStore

from .pinecone_standin import PineconeStandIn

TEXTS = [
    ("r1", "acme", "billing", 1_000, "I was charged twice for the same order."),
    ("r2", "acme", "shipping", 2_000, "My parcel arrived crushed and the item is broken."),
    ("r3", "globex", "shipping", 3_000, "The package is three days late and tracking is stuck."),
    ("r4", "globex", "technical", 4_000, "The app crashes when I open the settings screen."),
    ("r5", "acme", "technical", 5_000, "I cannot log in after resetting my password."),
    ("r6", "acme", None, 6_000, "How do I change the email address on my account?"),
]


def _records(embedder, texts=TEXTS, source: str = "review") -> list[VectorRecord]:  # type: ignore[no-untyped-def]
    vectors = embedder.embed([t[4] for t in texts])
    return [
        VectorRecord(
            id=f"{source}:{vid}", vector=vec, text=text, source=source, tenant=tenant, category=category,
            event_ms=ms, topic="livectx.reviews", partition=0, offset=i, metadata={"user_id": f"u{i}"},
        )
        for i, ((vid, tenant, category, ms, text), vec) in enumerate(zip(texts, vectors, strict=True))
    ]  # fmt: skip


@pytest.fixture(params=["pgvector", "pinecone-standin"])
def store(
    request: pytest.FixtureRequest,
    settings: Settings,
    stack,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[VectorStore]:
    index = f"test_{uuid.uuid4().hex[:10]}"
    if request.param == "pgvector":
        from livectx.vectors.pgvector_store import PgVectorStore

        pg = PgVectorStore.from_settings(settings, index=index)
        yield pg
        pg.drop()
        pg.close()
        return
    from livectx.vectors.pinecone_store import PineconeStore

    with PineconeStandIn(dimension=384) as standin:
        monkeypatch.setenv("LIVECTX_VECTOR_BACKEND", "pinecone")
        monkeypatch.setenv("LIVECTX_VECTOR_PINECONE_API_KEY", os.environ.get("PINECONE_API_KEY", "standin-key"))
        monkeypatch.setenv("LIVECTX_VECTOR_PINECONE_HOST", os.environ.get("LIVECTX_TEST_PINECONE_HOST", standin.host))
        pc = PineconeStore.from_settings(Settings(), namespace=index)
        yield pc
        pc.close()


def test_store_contract(store: VectorStore, embedder) -> None:  # type: ignore[no-untyped-def]
    store.ensure_index(embedder.name, embedder.dim)
    store.ensure_index(embedder.name, embedder.dim)  # idempotent
    records = _records(embedder)
    store.upsert(records)
    store.upsert(records)  # a replay: same ids, no new vectors
    assert store.count() == 6

    hits = store.search(records[2].vector, top_k=3)
    assert hits[0].id == "review:r3" and hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert hits[0].text == TEXTS[2][4] and hits[0].tenant == "globex" and hits[0].event_ms == 3_000
    assert hits[0].metadata == {"user_id": "u2"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    query = embedder.embed(["delivery problems with my order"])[0]
    only = lambda **kw: {h.id for h in store.search(query, top_k=10, where=VectorFilter(**kw))}  # noqa: E731
    assert only(tenant="globex") == {"review:r3", "review:r4"}
    assert only(categories=("shipping", "billing")) == {"review:r1", "review:r2", "review:r3"}
    assert only(since_ms=2_000, until_ms=5_000) == {"review:r2", "review:r3", "review:r4"}
    assert only(tenant="acme", categories=("technical",)) == {"review:r5"}
    assert only(sources=("document",)) == set()

    # An update replaces the vector and text under the same id; a delete removes it.
    changed = _records(embedder, [("r1", "acme", "billing", 7_000, "The checkout page shows a server error.")])
    store.upsert(changed)
    store.delete(["review:r2", "review:missing"])
    assert store.count() == 5
    hit = store.search(changed[0].vector, top_k=1)[0]
    assert (hit.id, hit.text, hit.event_ms) == ("review:r1", "The checkout page shows a server error.", 7_000)
    assert "review:r2" not in {h.id for h in store.search(records[1].vector, top_k=10)}

    with pytest.raises(IndexMismatchError, match="LIVECTX_VECTOR_INDEX"):
        store.ensure_index("another-model", embedder.dim)


def test_pgvector_filtered_search_returns_k_rows_for_a_rare_filter(settings: Settings, stack) -> None:  # type: ignore[no-untyped-def]
    """Without hnsw.iterative_scan a selective filter starves the HNSW candidate list (2 of 10 rows)."""
    from livectx.vectors.pgvector_store import PgVectorStore

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(3000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = PgVectorStore.from_settings(settings, index=f"test_{uuid.uuid4().hex[:10]}")
    try:
        store.ensure_index("synthetic", 384)
        store.upsert([
            VectorRecord(
                id=f"v{i}", vector=v, text=str(i), source="document", tenant="rare" if i % 100 == 0 else "common",
                category=None, event_ms=i, topic="t", partition=0, offset=i,
            )
            for i, v in enumerate(vectors)
        ])  # fmt: skip
        hits = store.search(vectors[1], top_k=10, where=VectorFilter(tenant="rare"))
        assert len(hits) == 10 and all(h.tenant == "rare" for h in hits)
        exact = sorted(range(0, 3000, 100), key=lambda i: -float(vectors[i] @ vectors[1]))[:10]
        assert len({h.id for h in hits} & {f"v{i}" for i in exact}) >= 8
    finally:
        store.drop()
        store.close()
