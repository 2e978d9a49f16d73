"""Write feature rows to Feast's online store through a PushSource, with bounded retries."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from livectx.errors import LivectxError

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

log = logging.getLogger(__name__)


class FeastPushSink:
    """Pushes DataFrames to a PushSource (online store). Raises after ``retries`` failed attempts, so the
    caller does not commit offsets for rows that never became visible."""

    def __init__(self, store: FeatureStore, push_source: str, *, retries: int = 5, backoff_s: float = 0.2) -> None:
        self._store = store
        self._push_source = push_source
        self._retries = retries
        self._backoff_s = backoff_s
        self.rows_written = 0

    def write(self, rows: pd.DataFrame) -> None:
        from feast.data_source import PushMode

        for attempt in range(1, self._retries + 1):
            try:
                self._store.push(self._push_source, rows, to=PushMode.ONLINE)
                self.rows_written += len(rows)
                return
            except Exception as exc:  # Redis down, timeouts: retry with backoff, then give up loudly
                if attempt == self._retries:
                    raise LivectxError(
                        f"writing {len(rows)} rows to push source {self._push_source} failed {attempt} times: {exc}"
                    ) from exc
                log.warning("online write failed (attempt %d/%d): %s", attempt, self._retries, exc)
                time.sleep(self._backoff_s * 2 ** (attempt - 1))  # retry backoff, not synchronisation
