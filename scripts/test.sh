#!/usr/bin/env bash
# The test command of the README: the whole suite (unit, integration,
# persistence) on the embedded bus.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --all-targets "$@"
