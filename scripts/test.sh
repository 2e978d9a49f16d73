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
pytest "$@"
