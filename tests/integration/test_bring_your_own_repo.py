"""A domain livectx has never seen, through the public path only: `livectx init`, a user's own edits, then
`feast apply`, `topics apply`, `produce`, the feature engine and the embedding worker, all with
``--repo`` pointing at a repo in a temporary folder. No product module knows this domain.

Checked: Feast's ``get_online_features`` equals the batch recomputation for every entity of both views
(a tumbling and a hopping window over an Avro source); memory search finds the new texts; a point-in-time
training set (DuckDB recomputation and Feast's history agree) and ``get_context`` work; and after the
user edits a window, ``livectx plan`` reports the rebuild and the values equal the recomputation under
the new window.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from livectx.cli import cli
from livectx.features.recompute import recompute_online
from livectx.produce import generated_events
from livectx.repo.loader import Repo, load_repo
from livectx.settings import Settings, get_settings

# Recent event times: readers treat rows older than a view's TTL (2 days) as missing.
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
MESSAGES = 3_000
TICKETS = 60

EXTRA_FEATURES = """

customer_amount_2h = stream_view(
    name="customer_amount_2h",
    source=messages,
    entity=customer,
    window=hopping(timedelta(hours=2), timedelta(minutes=30), grace=timedelta(minutes=1)),
    features=[
        agg("amount_mean_2h", "mean", "amount"),
        agg("amount_max_2h", "max", "amount"),
        count_distinct("channels_2h", "channel"),
    ],
)
customer_features = FeatureService(name="customer_features", features=[customer_activity_1h, customer_amount_2h])
"""
NEW_VIEW = """

customer_max_3h = stream_view(
    name="customer_max_3h",
    source=messages,
    entity=customer,
    window=tumbling(timedelta(hours=3)),
    features=[agg("amount_max_3h", "max", "amount")],
)
"""
EXTRA_SOURCES = """

from feast.data_format import JsonFormat

tickets = stream_source(
    name="tickets",
    topic="{project}.tickets",
    schema=JsonFormat("ticket_id STRING, customer_id STRING, text STRING, created_ms BIGINT"),
    timestamp_field="created_ms",
    key="ticket_id",
)
"""
EXTRA_MEMORY = """

from feast import Entity, ValueType

ticket = Entity(name="ticket", join_keys=["ticket_id"], value_type=ValueType.STRING)
ticket_memory = memory_view(name="ticket_memory", source=sources.tickets, entity=ticket, text=["text"])
"""
EXTRA_GENERATORS = """


@generator("tickets")
def tickets(seed, start, rate=5.0):
    yield from synthetic_records(sources.tickets, seed, start, rate, keys=10_000, text_columns=["text"])
"""


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}"
    path.write_text(text.replace(old, new))


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def byo(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repo, Settings, str]]:  # type: ignore[no-untyped-def]
    import uuid

    unique = uuid.uuid4().hex[:8]
    project = f"byo_{unique}"
    folder = tmp_path_factory.mktemp("byo") / "support_desk"
    saved = {k: os.environ.get(k) for k in ("LIVECTX_FEATURE_REPO", "LIVECTX_VECTOR_INDEX")}
    os.environ["LIVECTX_VECTOR_INDEX"] = f"byo_{unique}"
    try:
        _run("init", str(folder), "--project", project)
        # The user's own edits: a hopping view on the same Avro source, a JSON text source and its memory view.
        _edit(
            folder / "features.py",
            "agg, count, stream_view, tumbling",
            "agg, count, count_distinct, hopping, stream_view, tumbling",
        )
        (folder / "features.py").write_text((folder / "features.py").read_text() + EXTRA_FEATURES)
        (folder / "sources.py").write_text((folder / "sources.py").read_text() + EXTRA_SOURCES.format(project=project))
        (folder / "memory.py").write_text("import sources\n" + (folder / "memory.py").read_text() + EXTRA_MEMORY)
        (folder / "generators.py").write_text((folder / "generators.py").read_text() + EXTRA_GENERATORS)
        os.environ["LIVECTX_FEATURE_REPO"] = str(folder)
        settings = get_settings(reload=True)
        repo = f"--repo={folder}"
        _run(repo, "feast", "apply")
        _run(repo, "topics", "apply")
        _run(repo, "produce", "--generator", "messages", "--count", str(MESSAGES), "--start", START.isoformat())
        _run(repo, "produce", "--generator", "tickets", "--count", str(TICKETS), "--start", START.isoformat())
        _run(repo, "ingest", "run", "features", "--until-caught-up", "--group", f"byo-{unique}")
        _run(repo, "ingest", "run", "embeddings", "--until-caught-up", "--group", f"byo-emb-{unique}")
        yield load_repo(folder), settings, unique
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings(reload=True)


def _messages(repo: Repo) -> list:  # type: ignore[type-arg]
    return [e for _topic, e in itertools.islice(generated_events(repo, "messages", 42, START), MESSAGES)]


def _assert_online_equals_recomputation(repo: Repo, settings: Settings, views: list[str]) -> int:
    from livectx.feast_store import open_feature_store

    store = open_feature_store(settings)
    events = _messages(repo)
    checked = 0
    for name in views:
        group = repo.group(name)
        expected = recompute_online(group, events)
        customers = sorted(expected)
        online = store.get_online_features(
            features=[f"{name}:{f.name}" for f in group.features], entity_rows=[{"customer_id": c} for c in customers]
        ).to_dict()
        for i, customer in enumerate(customers):
            for feature in group.features:
                assert online[feature.name][i] == pytest.approx(expected[customer].values[feature.name], rel=1e-12), (
                    name,
                    customer,
                    feature.name,
                )
                checked += 1
    return checked


def test_online_features_equal_the_recomputation_for_every_entity_and_window(byo) -> None:  # type: ignore[no-untyped-def]
    repo, settings, _unique = byo
    assert {g.name: g.window.kind for g in repo.groups} == {
        "customer_activity_1h": "tumbling",
        "customer_amount_2h": "hopping",
    }
    assert repo.source("messages").wire_format == "avro"
    assert _assert_online_equals_recomputation(repo, settings, [g.name for g in repo.groups]) > 100


def test_memory_search_finds_the_new_texts(byo, embedder) -> None:  # type: ignore[no-untyped-def]
    from livectx.vectors import VectorFilter
    from livectx.vectors.pgvector_store import PgVectorStore

    repo, settings, _unique = byo
    tickets = [e for _topic, e in itertools.islice(generated_events(repo, "tickets", 42, START), TICKETS)]
    store = PgVectorStore.from_settings(settings)
    try:
        assert store.count() >= TICKETS
        probe = tickets[7]
        hits = store.search(embedder.embed([probe.text])[0], top_k=5, where=VectorFilter(sources=("tickets",)))
        assert hits and hits[0].text == probe.text and hits[0].id.startswith("tickets:")
    finally:
        store.close()


def test_a_point_in_time_training_set_and_get_context_work(byo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq
    from livectx_agents.context import ContextClient
    from livectx_backtest.dataset import build_training_set, replay_events_file

    repo, settings, _unique = byo
    events = _messages(repo)
    labels = tmp_path / "labels.parquet"
    sample = events[100::150]
    pq.write_table(
        pa.table(
            {
                "customer_id": [e.customer_id for e in sample],
                "event_timestamp": pa.array([e.event_time for e in sample], pa.timestamp("ms", tz="UTC")),
            }
        ),
        labels,
    )
    source = replay_events_file(settings, [repo.source("messages").topic], tmp_path / "events.parquet")
    result = build_training_set(
        settings, labels, "customer_features", tmp_path / "train.parquet", source=str(source), via="both"
    )
    assert result.rows == len(sample) and result.compared > 0  # Feast's history and DuckDB agree
    context = ContextClient.from_settings(settings, vectors=False).get_context([events[-1].customer_id])
    assert not context.degraded
    assert context.features[events[-1].customer_id]["messages_1h"] >= 1


def test_plan_reports_a_changed_window_and_the_rebuild_matches_the_new_window(byo) -> None:  # type: ignore[no-untyped-def]
    repo, settings, unique = byo
    folder = repo.path
    group = f"byo-{unique}"
    assert "unchanged" in _run(f"--repo={folder}", "plan", "--group", group)
    _edit(folder / "features.py", "window=tumbling(timedelta(hours=1))", "window=tumbling(timedelta(minutes=20))")
    # ... and a view added to the same topic: its state must start where the topic does, so it is rebuilt too
    (folder / "features.py").write_text((folder / "features.py").read_text() + NEW_VIEW)
    edited = load_repo(folder, reload=True)  # this process has the repo cached; a new `livectx` reads it anew
    plan = _run(f"--repo={folder}", "plan", "--group", group)
    assert plan.count("rebuild") >= 2 and "customer_activity_1h" in plan and "customer_max_3h" in plan
    _run(f"--repo={folder}", "feast", "apply")
    _run(f"--repo={folder}", "ingest", "run", "features", "--until-caught-up", "--group", group)
    assert edited.group("customer_activity_1h").window.size_ms == 20 * 60_000
    views = ["customer_activity_1h", "customer_amount_2h", "customer_max_3h"]
    assert _assert_online_equals_recomputation(edited, settings, views) > 100
    assert "rebuild" not in _run(f"--repo={folder}", "plan", "--group", group)
