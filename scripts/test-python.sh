#!/usr/bin/env bash
# Python tests of featlab: install the `featlab` package exactly as the README says
# (`pip install ./crates/featlab-py`, a maturin build of the abi3 wheel) into a fresh venv
# with numpy + pytest (+ pandas, tqdm, matplotlib when they install), build the CLI binary for the
# round-trip tests, and run the pytest suite in crates/featlab-py/tests.
#
# Usage: scripts/test-python.sh [pytest args...]
# Needs python3 (>= 3.9) with the venv module, cargo, and access to PyPI. The venv lives
# under $CARGO_TARGET_DIR (default: target/) and is made anew on every run.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target}"
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR="$(cd "$CARGO_TARGET_DIR" && pwd)"
venv="$CARGO_TARGET_DIR/featlab-py-venv"
pip_q=(--disable-pip-version-check --quiet)

die() { echo "test-python: error: $*" >&2; exit 1; }
stamp() { date +%s; }

command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "python3 >= 3.9 is needed, found $(python3 --version)"

t0=$(stamp)
rm -rf "$venv"
python3 -m venv "$venv" || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
py="$venv/bin/python"
"$py" -m pip install "${pip_q[@]}" --upgrade pip
"$py" -m pip install "${pip_q[@]}" numpy pytest
"$py" -m pip install "${pip_q[@]}" pandas tqdm matplotlib || echo "test-python: warning: pandas/tqdm/matplotlib did not install; their tests are skipped"
t1=$(stamp)

echo "test-python: building the featlab CLI (round-trip reference) ..."
cargo build --release --quiet --workspace --bins  # workspace feature set, as `cargo test --workspace`: reuses its build
t2=$(stamp)

echo "test-python: pip install ./crates/featlab-py (maturin, release) ..."
"$py" -m pip install "${pip_q[@]}" ./crates/featlab-py
t3=$(stamp)

# run from outside the source tree so `import featlab` is the installed wheel
cd "$CARGO_TARGET_DIR"
FEATLAB_CLI="$CARGO_TARGET_DIR/release/featlab" "$py" -m pytest "$repo_root/crates/featlab-py/tests" \
    -p no:cacheprovider -rs "$@"
t4=$(stamp)
echo "test-python: venv+deps $((t1 - t0)) s, CLI build $((t2 - t1)) s, wheel build+install $((t3 - t2)) s, pytest $((t4 - t3)) s"
