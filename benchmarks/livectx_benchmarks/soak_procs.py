"""The processes of ``livectx bench soak`` and how the bench looks at them.

The workers and the agent run as the commands production runs (``livectx ingest run features``,
``ingest run embeddings``, ``agents run fraud``), each its own process, so their RSS is theirs alone and
what a soak finds (memory that grows, a consumer that falls behind) is the product's, not the bench's.
The payment feeders are :func:`livectx_benchmarks.quota_procs.feed` (wall-clock payments, as ``bench
features`` and ``bench quota`` measure freshness on); the texts are the repo's ``support`` generator's.

Memory is read from ``/proc`` (Linux, where the local stack runs): VmRSS per process; for Postgres, whose
server is a postmaster and a process per backend sharing its buffers, the proportional set size (Pss)
summed over all of them, so shared memory counts once.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livectx.kafka import producer
from livectx.offsets import end_offsets, group_lag
from livectx.settings import Settings, get_settings
from livectx_benchmarks.pacing import Pacer


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (nan once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def cpu_s(pid: int, tree: bool = False) -> float:
    """CPU seconds (user + system) ``pid`` has used, with its descendants' when ``tree`` (nan once gone):
    what each process takes of the machine's cores, minute by minute."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in descendants(pid) if tree else [pid]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            if member == pid:
                return math.nan
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from each process's parent in ``/proc/<pid>/stat``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_pss_mb(pid: int) -> float:
    """Proportional memory of ``pid`` and its descendants in MiB (shared pages counted once); VmRSS where
    a process's ``smaps_rollup`` cannot be read; nan when ``pid`` is gone."""
    if math.isnan(rss_mb(pid)):
        return math.nan
    total = 0.0
    for member in descendants(pid):
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
            match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
            total += int(match.group(1)) / 1024 if match else 0.0
        except OSError:
            rss = rss_mb(member)
            total += 0.0 if math.isnan(rss) else rss
    return total


def livectx_command(settings: Settings, *args: str) -> list[str]:
    """``livectx ARGS`` as a child process of this interpreter (the same installation and settings)."""
    config = ["--config", str(settings.config_file)] if settings.config_file else []
    return [sys.executable, "-m", "livectx", *config, *args]


def closing_figure(output: str, label: str) -> float:
    """A number from a command's closing table (``label │ 1,234``), nan when it is not there."""
    found = re.findall(rf"{re.escape(label)}\W+([\d,]+(?:\.\d+)?)", output)
    return float(found[-1].replace(",", "")) if found else math.nan


def lag(settings: Settings, group: str, topic: str) -> tuple[int, int]:
    """``(records behind the log end, offsets committed)`` of ``group`` on ``topic``, over every partition
    (one the group never committed counts from its beginning). Committed offsets are read first, so a
    commit landing between the two reads cannot make the lag negative."""
    try:
        committed = {(t, p): c for t, p, c, _end in group_lag(settings, group)}
    except Exception:  # the group has not committed yet
        committed = {}
    ends = end_offsets(settings, [topic])
    done = sum(committed.get(tp, 0) for tp in ends)
    return max(0, sum(ends.values()) - done), done


def gated(ready: Any, go: Any, target: Any, *args: Any) -> None:
    """A feeder process that loads what it needs first (the feature repo, Feast, the payment model: most of
    its start-up time and memory), sets ``ready``, and waits for ``go`` before ``target(*args)`` starts
    sending: the soak's minutes measure traffic, not imports."""
    from livectx_benchmarks import example, features

    example.repo()
    features.payment_groups()
    ready.set()
    go.wait()
    target(*args)


def texts(topic_map: dict[str, str], rate: float, seed: int, stop: Any, sent: Any) -> None:
    """The repo's ``support`` generator (tickets, a few retracted) at ``rate`` texts/s, event time from
    now, until ``stop`` is set; ``sent`` counts them. Encoded as ``livectx produce`` encodes them."""
    from livectx.produce import generated_events
    from livectx.repo import current_repo
    from livectx.schemas.serializers import RegistryEncoder
    from livectx_benchmarks.features import _produce

    settings = get_settings()
    repo = current_repo(settings)
    encoder = RegistryEncoder.from_settings(settings, repo.sources.values())
    p = producer(settings)
    pacer = Pacer(p, rate, poll_every=10, sent=sent)
    n = 0
    for topic, event in generated_events(repo, "support", seed, datetime.now(UTC), rate):
        if stop.is_set():
            break
        target = topic_map.get(topic, topic)
        key, value, headers = encoder.encode(event, target)
        _produce(p, target, key, value, headers)
        n += 1
        pacer.sent_one(n)
    p.flush(30)
    sent.value = n


def warm_ticket(settings: Settings, topic: str, source_topic: str, tag: str) -> None:
    """One ticket on ``topic`` (the memory view's source, renamed), so the embedding worker is assigned and
    has its model loaded before the measured traffic starts."""
    from livectx.schemas.serializers import RegistryEncoder
    from livectx_benchmarks import example
    from livectx_benchmarks.features import _produce

    repo = example.repo()
    event = example.model(source_topic).model_validate(
        dict(event_time=datetime.now(UTC), ticket_id=f"{tag}-warm", user_id="u00000", subject="Warm-up",
             text="A warm-up ticket before the soak starts.", department="billing")
    )  # fmt: skip
    p = producer(settings)
    key, value, headers = RegistryEncoder.from_settings(settings, repo.sources.values()).encode(event, topic)
    _produce(p, topic, key, value, headers)
    if p.flush(30):
        raise RuntimeError(f"the warm-up ticket to {topic} was not acknowledged")


def tail(path: Path, lines: int = 15) -> str:
    """The end of a child's log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def exited(processes: Sequence[tuple[str, Any]]) -> list[str]:
    """Names of the ``(name, process)`` pairs that have exited (Popen or multiprocessing)."""
    dead = []
    for name, process in processes:
        code = process.poll() if hasattr(process, "poll") else process.exitcode
        if code is not None:
            dead.append(name)
    return dead


def check_alive(children: dict[str, Any], logs: Path, what: str) -> None:
    """Raise when one of ``what``'s child processes (``name`` -> Popen or multiprocessing) has exited, with
    the tail of its ``<logs>/<name>.log``: a dead worker must fail the bench, not make it wait."""
    dead = exited(list(children.items()))
    if dead:
        raise RuntimeError(f"{what}'s {dead[0]} process exited:\n{tail(logs / f'{dead[0]}.log')}")


def end_child(child: Any) -> None:
    """Stop a child as production stops it (SIGTERM: the workers commit, the agent ends its transaction),
    killing it after a grace period (a subprocess or a multiprocessing process)."""
    if isinstance(child, subprocess.Popen):
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        return
    if child.is_alive():
        child.join(30)
        if child.is_alive():
            child.kill()
