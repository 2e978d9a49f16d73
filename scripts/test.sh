#!/usr/bin/env bash
# The test command: set up, lint, check the import contracts, run the whole test suite. The integration
# tests start the local Kafka + Redis stack themselves (and stop it again if they started it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh
ruff check .
lint-imports
pytest "$@"
