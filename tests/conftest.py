"""Shared fixtures. Unit tests need no services; integration tests use ``tests/integration/conftest.py``."""

from __future__ import annotations

import faulthandler
import gc
import os
import uuid

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """With ``LIVECTX_TEST_FAULT_LOG`` set (``scripts/test.sh`` sets it), a crash of the test process in
    native code (librdkafka, ONNX Runtime) writes every thread's Python stack to that file, which the
    script prints: the run's output then says where it died. Runs after pytest's own faulthandler set-up."""
    path = os.environ.get("LIVECTX_TEST_FAULT_LOG")
    if path:
        config._livectx_fault_log = open(path, "w")  # type: ignore[attr-defined]  # noqa: SIM115  # the session long
        faulthandler.enable(file=config._livectx_fault_log, all_threads=True)  # type: ignore[attr-defined]


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
    # Kafka clients left in reference cycles by the module (a worker and its callbacks) are freed here, on
    # the main thread, between modules: left to the automatic collector, they could be freed on whatever
    # thread allocates next, a librdkafka callback thread included, where destroying a client is unsafe.
    gc.collect()
