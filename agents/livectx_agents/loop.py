"""The agents' consume -> decide -> produce loop: :mod:`livectx.transactional`, with signals and a close.

Each batch of records is handled inside one Kafka transaction (see :class:`~livectx.transactional.
TransactionalLoop`); side effects outside Kafka are made idempotent by the handler (see
:mod:`livectx_agents.idempotency`).
"""

from __future__ import annotations

from collections.abc import Callable

from livectx.settings import Settings
from livectx.signals import stop_on_signals
from livectx.transactional import DeadLetter, Handler, LoopStats, Prepare, TransactionalLoop

__all__ = ["DeadLetter", "Handler", "LoopStats", "TransactionalLoop", "run_agent"]


def run_agent(
    settings: Settings,
    *,
    name: str,
    source_topic: str,
    consumer_group: str,
    worker_id: str,
    handle: Handler,
    close: Callable[[], None],
    batch_size: int,
    until_caught_up: bool,
    prepare: Prepare | None = None,
    fill_wait_s: float = 0.1,
) -> LoopStats:
    """Run an agent's handler in the transactional loop until SIGTERM/SIGINT (or caught up), then ``close``."""
    loop = TransactionalLoop(
        settings,
        name=name,
        topics=[source_topic],
        consumer_group=consumer_group,
        worker_id=worker_id,
        handle=handle,
        batch_size=batch_size,
        prepare=prepare,
        fill_wait_s=fill_wait_s,
    )
    try:
        with stop_on_signals(loop.stop):
            return loop.run(until_caught_up=until_caught_up)
    finally:
        close()
