"""``online-read``: Feast ``get_online_features`` against a raw redis-py read of the same keys.

The raw read is the baseline: an HMGET of exactly the hash fields Feast reads (one per feature plus the
``_ts:<view>`` timestamp), pipelined for many entities. The ratio is the Feast SDK's overhead, which the
agent context client's fast read path exists to remove.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from livectx_ingest.streaming.online_writer import FeastRedisWriter

from livectx.redis_client import redis_client
from livectx.repo import current_repo
from livectx.settings import Settings
from livectx_benchmarks.feast_rows import bench_users, write_rows
from livectx_benchmarks.result import BenchResult, percentile
from livectx_benchmarks.scratch_keys import unlink_keys

ENTITIES = 2000
GROUP = current_repo().group("user_txn_5m")  # the example repo's
FEATURE_VIEW = GROUP.name
FEATURES = tuple(f.name for f in GROUP.features)


def run(settings: Settings, scale: float = 1.0) -> BenchResult:
    store, users, now = bench_users(settings, ENTITIES)
    columns = {name: list(range(len(users))) for name in (*FEATURES, *GROUP.metadata_fields)}
    write_rows(store, FEATURE_VIEW, users, now, columns)
    client = redis_client(settings)
    # The engine's writer owns Feast's key and field encoding; the baseline reads exactly those.
    writer = FeastRedisWriter(client, store.config.project, GROUP, store.config.entity_key_serialization_version)
    fields = writer.hash_fields
    keys = {u: writer.redis_key(u) for u in users}
    refs = [f"{FEATURE_VIEW}:{f}" for f in FEATURES]

    def feast_read(batch: list[str]) -> Callable[[], object]:
        rows = [{"user_id": u} for u in batch]
        return lambda: store.get_online_features(features=refs, entity_rows=rows).to_dict()

    def raw_read(batch: list[str]) -> Callable[[], object]:
        batch_keys = [keys[u] for u in batch]

        def read() -> object:
            pipe = client.pipeline(transaction=False)
            for key in batch_keys:
                pipe.hmget(key, fields)
            return pipe.execute()

        return read

    # Correctness first: the raw read must see exactly what Feast wrote, or the comparison is meaningless.
    assert all(v is not None for v in raw_read(users[:100])()[0]), "raw read found no Feast data"
    iterations_1 = max(50, int(1000 * scale))
    iterations_100 = max(20, int(200 * scale))
    result = BenchResult("online-read")
    f1 = _timed(feast_read, users, 1, iterations_1)
    r1 = _timed(raw_read, users, 1, iterations_1)
    f100 = _timed(feast_read, users, 100, iterations_100)
    r100 = _timed(raw_read, users, 100, iterations_100)
    result.figures = {
        "feast_p50_ms_1": percentile(f1, 50),
        "feast_p99_ms_1": percentile(f1, 99),
        "raw_p50_ms_1": percentile(r1, 50),
        "raw_p99_ms_1": percentile(r1, 99),
        "feast_p50_ms_100": percentile(f100, 50),
        "feast_p99_ms_100": percentile(f100, 99),
        "raw_p50_ms_100": percentile(r100, 50),
        "raw_p99_ms_100": percentile(r100, 99),
    }
    result.figures["feast_over_raw_p50_1"] = result.figures["feast_p50_ms_1"] / result.figures["raw_p50_ms_1"]
    result.figures["feast_over_raw_p50_100"] = result.figures["feast_p50_ms_100"] / result.figures["raw_p50_ms_100"]
    result.notes.append(
        f"{ENTITIES} entities pushed; {iterations_1} reads of 1 entity, {iterations_100} of 100; "
        f"{len(FEATURES)} features of one view"
    )
    unlink_keys(client, keys.values())
    return result


def _timed(
    make: Callable[[list[str]], Callable[[], object]], users: list[str], size: int, iterations: int
) -> list[float]:
    calls = [make(users[(i * size) % (len(users) - size) :][:size]) for i in range(iterations)]
    for call in calls[:10]:  # warm up connections and caches
        call()
    samples = []
    for call in calls:
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples
