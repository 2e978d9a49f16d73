#!/usr/bin/env bash
# The test command: set up, lint, check the import contracts, run the whole test suite. The integration
# tests start the local Kafka + Redis stack themselves (and stop it again if they started it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh
# The stack the tests start lives in a state dir of the test run's own, emptied first, so every run starts
# its services from nothing as on a fresh machine (a broker holding earlier runs' thousands of test topics
# takes minutes to load them). A developer's own stack, if it answers on the configured ports, is used as
# it is; LIVECTX_STACK_STATE_DIR set by the caller is kept.
if [ -z "${LIVECTX_STACK_STATE_DIR:-}" ]; then
  export LIVECTX_STACK_STATE_DIR="${XDG_STATE_HOME:-$HOME/.local/state}/livectx-tests"
  livectx stack down >/dev/null 2>&1 || true  # what an interrupted run left running
  rm -rf "$LIVECTX_STACK_STATE_DIR"
fi
ruff check .
lint-imports
# The docs site (mkdocs.yml): a broken link or anchor in docs/ fails the run (no --quiet: it hides the warnings strict counts).
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --site-dir "$(mktemp -d)"
# A crash in native code (exit 139) leaves no Python traceback in pytest's output: the stacks of every thread
# go to this file (tests/conftest.py), printed here if the run died of a signal.
export LIVECTX_TEST_FAULT_LOG="${LIVECTX_TEST_FAULT_LOG:-$(mktemp -t livectx-faults.XXXXXX)}"
status=0
pytest "$@" || status=$?
if [ "$status" -ge 128 ] && [ -s "$LIVECTX_TEST_FAULT_LOG" ]; then
  echo "pytest died of signal $((status - 128)); the threads' stacks at that moment:" >&2
  tail -n 150 "$LIVECTX_TEST_FAULT_LOG" >&2
fi
exit "$status"
