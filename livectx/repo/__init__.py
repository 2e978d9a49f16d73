"""The feature repo as the single place a domain is declared (see :mod:`livectx.repo.loader`).

``current_repo(settings)`` is what every worker, reader and command uses: the Feast repo at
``--repo DIR`` / ``LIVECTX_FEATURE_REPO`` (default ``./feature_repo``), compiled once per process. Feast is
imported only when a repo is first loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livectx.repo.compiled import Repo
    from livectx.settings import Settings


def current_repo(settings: Settings | None = None) -> Repo:
    """The configured feature repo, compiled (cached per path)."""
    from livectx.repo.loader import load_repo
    from livectx.settings import get_settings

    return load_repo((settings or get_settings()).feature_repo)
