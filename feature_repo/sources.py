"""Where feature rows come from: streaming workers push them; the offline copy is Parquet under the data dir."""

from feast import FileSource, PushSource

from livectx.settings import get_settings

_offline = get_settings().data_dir / "offline"

user_txn_totals_parquet = FileSource(
    name="user_txn_totals_parquet",
    path=str(_offline / "user_txn_totals"),
    timestamp_field="event_timestamp",
    description="Offline copy of the per-user running transaction totals.",
)

user_txn_totals_push = PushSource(
    name="user_txn_totals_push",
    batch_source=user_txn_totals_parquet,
    description="The `livectx ingest run features` worker pushes per-user running totals here.",
)
