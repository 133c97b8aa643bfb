#!/usr/bin/env bash
# The README's test command: the Rust workspace tests, then the Python package's tests
# (scripts/test-python.sh builds the wheel into a fresh venv and runs pytest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --release --workspace
scripts/test-python.sh
