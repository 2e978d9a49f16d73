#!/usr/bin/env bash
# The end-to-end demo on a fresh machine: set up, start Kafka + Redis + Postgres/pgvector, declare topics,
# apply the Feast repo, produce fraud-scenario traffic (with a poison record), ingest it into streaming
# features and read them back; run the article's card-testing story (fresh features beside a 15-minute batch
# snapshot); then stream support tickets into the semantic memory, search it, route the
# tickets with the router agent; archive the log to the cold tier, check training/serving skew, train two
# fraud model versions, register them, and backtest one against the other on the replayed history; finally
# scaffold a new domain's repo with `livectx init` and serve its features and memory through the same path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh

step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }
step "livectx doctor";                      livectx doctor || true
step "livectx stack up";                    livectx stack up
step "livectx topics apply";                livectx topics apply
step "livectx schemas plan / apply (each source's schema under <topic>-value, BACKWARD_TRANSITIVE)"
livectx schemas plan
livectx schemas apply
step "livectx feast apply";                 livectx feast apply
step "livectx produce --generator fraud";    livectx produce --generator fraud --count 20000 --seed 7 --rate 5000
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
livectx features get u00001 u00002 u00003 u00042 --service fraud_features
step "livectx ingest run archive --until-caught-up (the log into the Parquet cold tier)"
livectx ingest run archive --topic livectx.transactions --topic livectx.logins --until-caught-up
step "livectx tier status (hot range on the broker, cold range in the archive, no gap)"
livectx tier status --topic livectx.transactions
step "livectx skew (online values against the recomputation from the archived raw events)"
livectx skew --service fraud_features --sample 50
step "the article's story: card-testing bursts, the fraud agent on fresh features beside a 15-minute batch snapshot"
livectx demo attack --scale 0.3    # 18 s at 1,000 payments/s on the live path: the table, bench-results/attack.png
step "livectx produce --generator support (tickets with text; a few are retracted)"
livectx produce --generator support --count 1000 --seed 7
step "livectx ingest run embeddings --until-caught-up (MiniLM on this machine -> pgvector)"
livectx ingest run embeddings --until-caught-up
step "livectx memory status (vectors, and the searchable watermark per partition)"
livectx memory status
step "livectx memory search (semantic search over the tickets)"
livectx memory search "my parcel arrived broken" --top-k 3
livectx memory search "I was billed two times" --top-k 3 --category billing
step "change data capture: a review typed into the application database, searchable moments later"
livectx stack up --with cdc            # adds Kafka Connect with Debezium's Postgres connector
livectx cdc sql feature_repo/app_tables.sql
livectx cdc apply                      # publication, replication slot, connector (snapshot of existing rows)
review="rv-demo-$(date -u +%s)"
livectx cdc sql -c "INSERT INTO reviews VALUES ('$review', 'p-kettle', 2, 'The kettle started leaking after two days')"
python - "$review" <<'PY'  # the change is on the topic (Debezium polls every 10 ms): then embed what is there
import sys, time, uuid
from livectx.kafka import consumer
from livectx.settings import get_settings
c = consumer(get_settings(), f"demo-cdc-{uuid.uuid4().hex[:8]}", **{"auto.offset.reset": "earliest"})
c.subscribe(["livectx.app.reviews"])
began, deadline = time.monotonic(), time.monotonic() + 120
while time.monotonic() < deadline:
    if any(m.error() is None and m.key() == sys.argv[1].encode() for m in c.consume(500, 0.5)):
        print(f"review {sys.argv[1]} reached livectx.app.reviews {time.monotonic() - began:.2f} s after the wait began")
        break
else:
    sys.exit(f"review {sys.argv[1]} did not reach livectx.app.reviews in 120 s: see `livectx cdc status`")
c.close()
PY
livectx ingest run embeddings --view app_reviews_memory --until-caught-up
livectx memory search "my kettle leaks water" --view app_reviews_memory --top-k 3
livectx ingest run features --views app_review_stats --until-caught-up  # the same change, as features
livectx features get p-kettle --view app_review_stats   # review count and mean rating over the table's rows
livectx cdc status
step "livectx agents run router (routes each ticket by similar past ones; notifies once per ticket)"
livectx agents run router --until-caught-up
models="${LIVECTX_DATA_DIR:-$HOME/.local/state/livectx/data}/models"
run="demo-$(date -u +%Y%m%d%H%M%S)"
step "livectx backtest train --generator fraud x2, registered as fraud:$run-a (small) and fraud:$run-b"
livectx backtest train --generator fraud --events 4000 --seed 3 --out "$models/fraud-a.joblib" --register "fraud:$run-a"
livectx backtest train --generator fraud --events 20000 --out "$models/fraud-b.joblib" --register "fraud:$run-b"
livectx models list
step "livectx backtest run (the archive + Kafka tail replayed; both versions on identical features)"
livectx backtest run --model "fraud:$run-a" --model "fraud:$run-b" \
  --from "$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)" --to "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" \
  --out "backtest-results/$run"
step "bring your own stream: livectx init a new domain's repo (Avro through the schema registry), then the same commands serve it"
desk="$(mktemp -d)/desk"
livectx init "$desk" --project "desk_$(date -u +%Y%m%d%H%M%S)" --wire confluent
livectx --repo "$desk" feast apply
livectx --repo "$desk" topics apply
livectx --repo "$desk" schemas apply   # registered once; producers never auto-register
livectx --repo "$desk" schemas list
livectx --repo "$desk" produce --generator messages --count 2000 --rate 2000
livectx --repo "$desk" ingest run features --until-caught-up
livectx --repo "$desk" features get c00001 c00002 --service customer_features
livectx --repo "$desk" ingest run embeddings --until-caught-up
livectx --repo "$desk" memory search "my refund was charged twice" --view customer_messages --top-k 3
step "livectx stack status";                livectx stack status
printf '\nThe stack keeps running: `livectx stack down` stops it.\n'
