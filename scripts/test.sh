#!/usr/bin/env bash
# The README's test command: the whole suite on the embedded bus, then the
# integration and conformance suites again on a real Kafka-protocol broker
# (Tansu), plus province analytics read by Python. Installs what is missing
# (Tansu via cargo install; Debian's chromium and a CJK font for the
# dashboard's browser test; kafka-python, fastavro, openapi-spec-validator,
# playwright and confluent-kafka in a venv), starts the broker on a free
# port, and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# the dashboard runs in Debian's Chromium (Playwright's own browser
# download is not used); a CJK font so its Chinese renders in screenshots
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi 'wqy\|cjk'; then
  echo "installing chromium and fonts-wqy-microhei (the dashboard's browser test)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
export AKM_TEST_CHROMIUM="$(command -v chromium)"

venv=target/pyenv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kafka, fastavro, openapi_spec_validator, playwright, confluent_kafka.schema_registry.avro' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kafka-python fastavro openapi-spec-validator playwright 'confluent-kafka[avro,schemaregistry]'
fi
export AKM_TEST_PYTHON="$PWD/$venv/bin/python"

echo "== embedded bus: unit, integration, conformance, persistence"
cargo test --locked --all-targets

echo "== OTLP export (cargo feature otlp)"
cargo test --locked --features otlp --test it otlp::

echo "== Kafka bus"
TANSU_VERSION=0.6.0
if ! command -v tansu >/dev/null || ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "installing tansu $TANSU_VERSION (a Kafka-compatible broker; several minutes on first run)"
  cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,libsql
fi
export PATH="$HOME/.cargo/bin:$PATH"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
log="$PWD/target/tansu.log"
# Tansu's sqlite engine: its memory engine skips the rest of a record batch
# when a fetch starts inside it (a resumed or restarted consumer would miss
# records), which a Kafka broker does not.
store=$(mktemp -d)
(cd "$store" && exec tansu broker --listener-url "tcp://127.0.0.1:$port" \
             --advertised-listener-url "tcp://127.0.0.1:$port" \
             --storage-engine sqlite://tansu.db >"$log" 2>&1) &
broker=$!
trap 'kill $broker 2>/dev/null || true; wait $broker 2>/dev/null || true; rm -rf "$store"' EXIT
for _ in $(seq 1 100); do
  if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then break; fi
  if ! kill -0 $broker 2>/dev/null; then echo "tansu did not start:"; cat "$log"; exit 1; fi
  sleep 0.1
done

# three tests at a time: one Tansu (sqlite) on the same two cores serves
# them all, and with four at once its hops took seconds (deadline flakes)
AKM_TEST_BUS=kafka \
AKM_TEST_KAFKA_BROKERS="127.0.0.1:$port" \
  cargo test --locked --test it -- --include-ignored --test-threads="${AKM_KAFKA_TEST_THREADS:-3}"

echo "== benchmark smoke run with its Kafka rows"
AKM_BENCH_KAFKA_BROKERS="127.0.0.1:$port" cargo test --locked --bench pipeline
