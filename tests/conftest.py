"""Shared fixtures. Unit tests need no services; integration tests use ``tests/integration/conftest.py``."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def unique() -> str:
    """A short id that makes topic, group and key names unique to one test."""
    return uuid.uuid4().hex[:10]
