"""Open and apply the Feast repo with the connection values from livectx's settings.

``feature_store.yaml`` takes its connection values from environment variables (Feast expands them with
``os.path.expandvars``); these helpers set them from :class:`~livectx.settings.Settings`, so code and the
``feast`` CLI always agree on which Redis and registry they use. Feast is imported lazily: it costs seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from livectx.errors import LivectxError
from livectx.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore


def feast_env(settings: Settings) -> dict[str, str]:
    """The process environment plus the variables ``feature_store.yaml`` needs; creates their folders."""
    (settings.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    settings.offline_dir.mkdir(parents=True, exist_ok=True)
    return {**os.environ, **settings.feast_environment()}


def open_feature_store(settings: Settings) -> FeatureStore:
    """A ``FeatureStore`` for the configured repo, Redis and registry."""
    os.environ.update(feast_env(settings))
    import warnings

    from feast import FeatureStore

    # Feast warns on every load that stream feature views are "alpha": livectx runs them itself.
    warnings.filterwarnings("ignore", "Stream feature views are experimental", RuntimeWarning)

    return FeatureStore(repo_path=str(settings.feature_repo))


def feast_command(settings: Settings, *args: str) -> list[str]:
    feast_cli = Path(sys.executable).with_name("feast")
    return [str(feast_cli) if feast_cli.exists() else "feast", "-c", str(settings.feature_repo), *args]


def apply_feature_repo(settings: Settings) -> str:
    """Run ``feast apply`` on the repo (idempotent). Returns Feast's output.

    Raises:
        LivectxError: Feast failed; the message carries the end of its output.
    """
    result = subprocess.run(
        feast_command(settings, "apply"), env=feast_env(settings), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LivectxError(f"feast apply failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return result.stdout
