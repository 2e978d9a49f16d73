"""Shared fixtures. Unit tests need no services; integration tests use ``tests/integration/conftest.py``."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def unique() -> str:
    """A short id that makes topic, group and key names unique to one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(autouse=True, scope="module")
def _process_settings_restored():  # type: ignore[no-untyped-def]
    """After each test module, the process-wide settings are read again from the (restored) environment.

    An in-process CLI run (``CliRunner``) loads the settings of its own environment into the process-wide
    cache, as the CLI does; a module that ran the CLI against a stack of its own (the secured stack, a
    private registry) must not leave the next module's ``get_settings()`` pointing at it."""
    yield
    from livectx.settings import get_settings

    get_settings(reload=True)
