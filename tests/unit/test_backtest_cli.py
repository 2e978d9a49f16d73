"""Bad input to ``livectx backtest run`` is one readable error, before any service is touched."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from livectx_backtest.cli import backtest
from livectx_backtest.run import parse_time, rounded, speed_factor

from livectx.errors import LivectxError


def test_times_are_iso_8601_and_naive_means_utc() -> None:
    assert parse_time("2026-01-02", "--from") == datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05Z", "--to") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time(None, "--to") is None
    with pytest.raises(LivectxError, match=r"--from 'last tuesday' is not an ISO 8601 time"):
        parse_time("last tuesday", "--from")


def test_speed_is_max_realtime_or_a_factor() -> None:
    assert (speed_factor("max"), speed_factor("realtime"), speed_factor("60x")) == (None, 1.0, 60.0)
    with pytest.raises(LivectxError, match="use max, realtime or a factor"):
        speed_factor("warp")


def test_cli_refuses_no_model_and_a_bad_speed() -> None:
    result = CliRunner().invoke(backtest, ["run"], obj={})
    assert isinstance(result.exception, LivectxError) and "at least one --model" in str(result.exception)
    result = CliRunner().invoke(backtest, ["run", "--model", "fraud:v1", "--speed", "0x"], obj={})
    assert isinstance(result.exception, LivectxError) and "--speed '0x'" in str(result.exception)


def test_summary_floats_are_rounded_for_stable_bytes() -> None:
    assert rounded({"a": [0.1 + 0.2, 1], "b": {"c": 2 / 3}}) == {"a": [0.3, 1], "b": {"c": 0.666667}}


def test_train_refuses_an_unknown_generator_and_a_service_without_a_decision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "m.joblib")
    result = CliRunner().invoke(backtest, ["train", "--generator", "nope", "--out", out], obj={})
    assert "unknown generator 'nope'" in str(result.exception)
    result = CliRunner().invoke(
        backtest, ["train", "--generator", "fraud", "--features", "card_features", "--out", out], obj={}
    )
    assert "feature service card_features declares no decision" in str(result.exception)
