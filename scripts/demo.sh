#!/usr/bin/env bash
# The end-to-end demo on a fresh machine: set up, start Kafka + Redis, declare topics, apply the Feast
# repo, produce fraud-scenario traffic (with a few poison records), ingest it, and read features back.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh

step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }
step "livectx doctor";                      livectx doctor || true
step "livectx stack up";                    livectx stack up
step "livectx topics apply";                livectx topics apply
step "livectx feast apply";                 livectx feast apply
step "livectx produce --scenario fraud";    livectx produce --scenario fraud --count 20000 --seed 7 --rate 5000
step "a poison record (not JSON) in the middle of the stream"
python - <<'PY'
from livectx.kafka import producer
from livectx.settings import get_settings
p = producer(get_settings())
p.produce("livectx.transactions", key=b"u00001", value=b"{this is not json")
p.flush(10)
PY
step "livectx ingest run features --until-caught-up"
livectx ingest run features --until-caught-up
step "livectx features get (read through Feast's get_online_features)"
livectx features get u00001 u00002 u00003 u00042
step "livectx stack status";                livectx stack status
printf '\nThe stack keeps running: `livectx stack down` stops it.\n'
