#!/usr/bin/env bash
# Profile one row of the benchmark with perf and draw its flamegraph:
#   scripts/flamegraph.sh "transcode, config at the city" target/flame-transcode.svg
# Runs `cargo bench --bench pipeline`, waits until it starts measuring the
# row, samples the benchmark process (which holds the platform; the load
# generator is a process of its own) for 8 s, and stops the benchmark.
# Installs perf (Debian linux-perf) and inferno when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
row=${1:-"transcode, config at the city"}
out=${2:-target/flamegraph.svg}
secs=${AKM_PROFILE_SECONDS:-8}

if ! command -v perf >/dev/null; then
  apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v inferno-flamegraph >/dev/null; then
  cargo install --locked inferno
fi

cargo bench --locked --bench pipeline --no-run 2>/dev/null
log=$(mktemp)
cargo bench --locked --bench pipeline >"$log" 2>&1 &
bench=$!
trap 'kill $bench 2>/dev/null || true; pkill -P $bench 2>/dev/null || true; rm -f "$log"' EXIT
until grep -qF "measuring $row" "$log"; do
  if ! kill -0 $bench 2>/dev/null; then cat "$log"; echo "the benchmark ended before '$row'" >&2; exit 1; fi
  sleep 0.5
done
sleep 3 # past the warm-up
pid=$(pgrep -f 'release/deps/pipeline-' | head -1) # any CARGO_TARGET_DIR
data=$(mktemp)
perf record -F "${AKM_PROFILE_HZ:-499}" --call-graph "${AKM_PROFILE_CALLGRAPH:-fp}" -p "$pid" -o "$data" -- sleep "$secs" 2>/dev/null
perf script -i "$data" 2>/dev/null | inferno-collapse-perf >"${out%.svg}.folded"
inferno-flamegraph --title "$row" <"${out%.svg}.folded" >"$out"
report() {
  perf report -i "$data" --no-children --sort "$1" --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | cut -c1-110 | sed 's/ *$//' | head -"$2" || true
}
echo "== by thread"
report comm 12
echo "== by function"
report symbol 40
rm -f "$data"
echo "flamegraph: $out (folded stacks: ${out%.svg}.folded)"
