"""The figures of ``livectx bench soak`` from its per-minute samples.

Pure (no services), so a unit test pins the names and the arithmetic. A soak is judged on trends, not on
one moment: memory that keeps growing after the warm-up, a consumer that falls further behind every
minute, a minute whose freshness p99 breaks the target. So every figure is read from the row of samples
the bench took at the end of each minute (the feature worker's own report interval):

- ``rss_growth_pct``: per process, its RSS at the end against its RSS after the warm-up; the worst one
  (start-up allocations, caches filling and the first full garbage collections are the warm-up's, not
  growth);
- ``lag_end``: records behind the log end, all the soak's consumer groups together, at the last minute;
  per group also its lag after the warm-up, its maximum and its trend (least-squares slope per minute);
- ``freshness_p99_ms_worst_minute``: the worst minute's p99 of event time to visible in Redis, beside the
  same figure of the quiet baseline minute measured first in the same run (a ratio, not an absolute:
  the bench convention on shared machines).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: Issue 19's targets: RSS grows under this much after the warm-up, freshness p99 under this in every minute.
RSS_GROWTH_TARGET_PCT = 10.0
FRESHNESS_TARGET_MS = 100.0
#: The soak's consumer groups, as named in the figures.
GROUPS = ("features", "memory", "agent")
#: The product's own processes among those measured (the rest: the bench's feeders and the servers).
PRODUCT = ("features", "embeddings", "agent")


@dataclass
class Sample:
    """What the bench saw when the feature worker's report for one minute landed.

    ``minute`` 0 is the quiet baseline (the feature worker and its producer, nothing else working), then
    1..N the soak; -1, if taken, the moment the baseline's traffic started (only its CPU counters are
    used). ``seconds`` is the length of the interval the freshness figures cover."""

    minute: int
    at: float
    seconds: float
    freshness_p50_ms: float = math.nan
    freshness_p99_ms: float = math.nan
    freshness_rows: int = 0
    #: per group of :data:`GROUPS`: records behind the log end, and offsets committed in all
    lag: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    #: per group: records its feeder had sent (what the soak delivered, beside what was consumed)
    sent: dict[str, float] = field(default_factory=dict)
    #: per process (workers, producers, agent, servers): resident memory in MiB
    rss_mb: dict[str, float] = field(default_factory=dict)
    #: per process: CPU seconds used since it started (the table shows each minute's share of one core)
    cpu_s: dict[str, float] = field(default_factory=dict)
    redis_mb: float = math.nan


def soak_minutes(samples: Sequence[Sample]) -> list[Sample]:
    """The soak's samples (the baseline left out), in order."""
    return sorted((s for s in samples if s.minute > 0), key=lambda s: s.minute)


def warm_sample(samples: Sequence[Sample], warmup: int) -> Sample:
    """The sample after ``warmup`` minutes of the soak (the last one when the soak is that short).

    Raises:
        ValueError: the soak has no minute."""
    soak = soak_minutes(samples)
    if not soak:
        raise ValueError("the soak has no minute: nothing to judge")
    return soak[min(max(warmup, 1), len(soak)) - 1]


def growth_pct(start: float, end: float) -> float:
    """``end`` against ``start`` in percent (nan when either is unknown or ``start`` is not positive)."""
    if not start > 0 or math.isnan(end):
        return math.nan
    return (end - start) / start * 100.0


def rss_growth(samples: Sequence[Sample], warmup: int) -> dict[str, float]:
    """Per process: RSS at the last minute against RSS after the warm-up, in percent."""
    warm, end = warm_sample(samples, warmup), soak_minutes(samples)[-1]
    return {name: growth_pct(mb, end.rss_mb.get(name, math.nan)) for name, mb in warm.rss_mb.items()}


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(minute, value)`` points (0 with fewer than two distinct minutes)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return cov / var


def keeps_up(lag_after_warmup: float, lag_end: float, per_second: float) -> bool:
    """A group whose lag did not grow: at the end no further behind than after the warm-up, or less than
    one second of its input behind (a moment's lag at a steady rate is the records in flight)."""
    return lag_end <= max(lag_after_warmup, per_second)


def _max(values: Sequence[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return max(known) if known else math.nan


def figures(samples: Sequence[Sample], warmup: int, rates: Mapping[str, float]) -> dict[str, float]:
    """Flat figures: the issue's four (``minutes``, ``rss_growth_pct``, ``lag_end``,
    ``freshness_p99_ms_worst_minute``), then per process, per group, Redis and the targets.

    ``rates`` are each group's input per second (what :func:`keeps_up` allows in flight).

    Raises:
        ValueError: no soak minute, or no baseline sample (minute 0).
    """
    soak = soak_minutes(samples)
    baselines = [s for s in samples if s.minute == 0]
    if not baselines:
        raise ValueError("no baseline minute: the soak's freshness has nothing to be compared with")
    baseline, warm, end = baselines[0], warm_sample(samples, warmup), soak[-1]
    growth = rss_growth(samples, warmup)
    fed = {m: r for m, r in rate_per_s(samples, "features", "sent").items() if m > 0}
    p99s = [s.freshness_p99_ms for s in soak]
    worst = _max(p99s)
    out: dict[str, float] = {
        "minutes": sum(s.seconds for s in soak) / 60.0,
        "rss_growth_pct": _max(list(growth.values())),
        "rss_growth_pct_product": _max([v for k, v in growth.items() if k in PRODUCT]),
        "lag_end": float(sum(end.lag.get(g, 0) for g in GROUPS)),
        "freshness_p99_ms_worst_minute": worst,
        "freshness_p99_ms_best_minute": min((p for p in p99s if not math.isnan(p)), default=math.nan),
        "freshness_p50_ms_worst_minute": _max([s.freshness_p50_ms for s in soak]),
        "freshness_p99_ms_baseline": baseline.freshness_p99_ms,
        "freshness_p50_ms_baseline": baseline.freshness_p50_ms,
        "freshness_p99_ratio_worst_to_baseline": worst / baseline.freshness_p99_ms
        if baseline.freshness_p99_ms > 0
        else math.nan,
        "minutes_over_freshness_target": float(sum(1 for p in p99s if not p < FRESHNESS_TARGET_MS)),
        "freshness_rows": float(sum(s.freshness_rows for s in soak)),
        "fed_per_s_min_minute": min(fed.values(), default=math.nan),
        "warmup_minutes": float(warm.minute),
    }
    for name in sorted(growth):
        out[f"rss_mb_start_{name}"] = _first_rss(samples, name)
        out[f"rss_mb_after_warmup_{name}"] = warm.rss_mb[name]
        out[f"rss_mb_end_{name}"] = end.rss_mb.get(name, math.nan)
        out[f"rss_growth_pct_{name}"] = growth[name]
    groups_keep_up = True
    for group in GROUPS:
        after = [s for s in soak if s.minute >= warm.minute]
        out[f"lag_end_{group}"] = float(end.lag.get(group, 0))
        out[f"lag_after_warmup_{group}"] = float(warm.lag.get(group, 0))
        out[f"lag_max_{group}"] = float(max((s.lag.get(group, 0) for s in soak), default=0))
        out[f"lag_slope_per_min_{group}"] = slope_per_minute([(s.minute, s.lag.get(group, 0)) for s in after])
        groups_keep_up &= keeps_up(warm.lag.get(group, 0), end.lag.get(group, 0), rates.get(group, 0.0))
    out["redis_memory_mb_start"] = soak[0].redis_mb
    out["redis_memory_mb_after_warmup"] = warm.redis_mb
    out["redis_memory_mb_end"] = end.redis_mb
    out["redis_memory_growth_pct"] = growth_pct(warm.redis_mb, end.redis_mb)
    out["target_rss"] = float(out["rss_growth_pct"] < RSS_GROWTH_TARGET_PCT)
    out["target_lag"] = float(groups_keep_up)
    out["target_freshness"] = float(not math.isnan(worst) and worst < FRESHNESS_TARGET_MS)
    out["target_met"] = float(out["target_rss"] and out["target_lag"] and out["target_freshness"])
    return out


def _first_rss(samples: Sequence[Sample], name: str) -> float:
    """A process's first RSS sample (processes started after the baseline have none there)."""
    for sample in sorted(samples, key=lambda s: s.minute):
        if name in sample.rss_mb:
            return sample.rss_mb[name]
    return math.nan


def worst_process(samples: Sequence[Sample], warmup: int) -> str:
    """The process whose RSS grew most after the warm-up (what ``rss_growth_pct`` is of)."""
    growth = {k: v for k, v in rss_growth(samples, warmup).items() if not math.isnan(v)}
    return max(growth, key=lambda k: growth[k]) if growth else "-"


def rate_per_s(samples: Sequence[Sample], group: str, counter: str = "committed") -> dict[int, float]:
    """Per minute: offsets the group committed during it (``counter="sent"``: records its feeder sent), per
    second: its throughput, or the load it was given."""
    ordered = sorted(samples, key=lambda s: s.minute)
    rates: dict[int, float] = {}
    for before, sample in itertools.pairwise(ordered):
        was, now = getattr(before, counter), getattr(sample, counter)
        if group in was and group in now and sample.at > before.at:
            rates[sample.minute] = (now[group] - was[group]) / (sample.at - before.at)
    return rates


def tables(samples: Sequence[Sample]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The per-minute tables ``(title, columns, rows)``: the flow (freshness, throughput, lag, Redis) and
    the memory of every process; minute 0 is shown as ``base``."""
    ordered = sorted(samples, key=lambda s: s.minute)
    processes = list(dict.fromkeys(name for s in ordered if s.minute >= 0 for name in s.rss_mb))
    throughput = {g: rate_per_s(samples, g) for g in GROUPS}
    fed = rate_per_s(samples, "features", "sent")
    flow = ["minute", "fresh p50 ms", "fresh p99 ms", "rows", "payments fed/s", "events/s", "texts/s", "decisions/s"]
    flow += [f"lag {g}" for g in GROUPS] + ["redis MB"]
    flow_rows, memory_rows, cpu_rows = [], [], []
    for before, s in itertools.pairwise([None, *ordered]):
        if s.minute < 0:
            continue  # the moment the baseline's traffic started: only what the baseline's CPU is counted from
        minute = "base" if s.minute == 0 else str(s.minute)
        row = [minute, _fmt(s.freshness_p50_ms), _fmt(s.freshness_p99_ms), f"{s.freshness_rows:,}"]
        row.append(_fmt(fed.get(s.minute, math.nan), ",.0f"))
        row += [_fmt(throughput[g].get(s.minute, math.nan), ",.0f") for g in GROUPS]
        row += [f"{s.lag[g]:,}" if g in s.lag else "-" for g in GROUPS] + [_fmt(s.redis_mb)]
        flow_rows.append(row)
        memory_rows.append([minute] + [_fmt(s.rss_mb.get(p, math.nan), ",.0f") for p in processes])
        if before is not None:
            cpu_rows.append([minute] + [_fmt(cpu_pct(before, s, p), ",.0f") for p in processes])
    return [
        ("soak per minute (base: the quiet baseline)", flow, flow_rows),
        ("RSS MB per process per minute (postgres: Pss of all its processes)", ["minute", *processes], memory_rows),
        ("CPU % of one core per process per minute (this machine's cores shared by all)", ["minute", *processes],
         cpu_rows),
    ]  # fmt: skip


def cpu_pct(before: Sample, after: Sample, process: str) -> float:
    """The share of one core ``process`` used between two samples, in percent (nan when unknown)."""
    seconds = after.at - before.at
    if seconds <= 0 or process not in before.cpu_s or process not in after.cpu_s:
        return math.nan
    return (after.cpu_s[process] - before.cpu_s[process]) / seconds * 100


def progress_line(sample: Sample, minutes: int) -> str:
    """One line on stderr per minute while the soak runs."""
    what = "baseline (the feature worker alone)" if sample.minute == 0 else f"minute {sample.minute}/{minutes}"
    lag = ", ".join(f"{g} {sample.lag.get(g, 0):,}" for g in GROUPS)
    rss = ", ".join(f"{name} {_fmt(mb, ',.0f')}" for name, mb in sample.rss_mb.items() if name in PRODUCT)
    return (
        f"soak {what}: freshness p99 {_fmt(sample.freshness_p99_ms)} ms over {sample.freshness_rows:,} rows; "
        f"lag {lag}; redis {_fmt(sample.redis_mb)} MB; RSS MB {rss}"
    )


def _fmt(value: float, spec: str = ",.1f") -> str:
    return "-" if math.isnan(value) else format(value, spec)
