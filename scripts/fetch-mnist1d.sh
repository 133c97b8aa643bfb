#!/usr/bin/env bash
# Generate MNIST-1D (Greydanus & Kobak; the `mnist1d` Python package, Apache-2.0) for
# featlab's `data.kind = "mnist1d"`: 4000 training and 1000 test sequences of length 40,
# 10 classes, made procedurally by the package's own generator (no dataset download).
#
# Usage: scripts/fetch-mnist1d.sh [DEST_DIR] [SEED]
#        (default: data/mnist1d under the repository root; seed 42, the package's default)
#
# Creates a private venv (deleted afterwards), pip-installs mnist1d (and its numpy/scipy
# dependencies) from PyPI, runs mnist1d.data.make_dataset with the package's default
# arguments and the given seed, and writes into DEST_DIR:
#   x.npy (4000×40 float64), y.npy (4000 int64 labels), x_test.npy (1000×40), y_test.npy,
#   metadata.json (generator name and version, seed, all generator arguments, numpy version,
#   sha256 of each .npy).
# Does nothing when all four arrays and metadata.json are already there.
# Needs python3 (>= 3.8) with the venv module, and network access to PyPI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/mnist1d}"
seed="${2:-42}"

die() { echo "fetch-mnist1d: error: $*" >&2; exit 1; }

[[ "$seed" =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$seed'"

all_there=1
for f in x.npy y.npy x_test.npy y_test.npy metadata.json; do
    [[ -s "$dest/$f" ]] || all_there=0
done
if [[ $all_there == 1 ]]; then
    echo "fetch-mnist1d: $dest already holds x.npy, y.npy, x_test.npy, y_test.npy, metadata.json; nothing to do"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-mnist1d.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv" || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
py="$tmp/venv/bin/python"

echo "fetch-mnist1d: installing mnist1d from PyPI into a private venv ..."
if ! "$py" -m pip install --disable-pip-version-check --quiet mnist1d >"$tmp/pip.log" 2>&1; then
    cat "$tmp/pip.log" >&2
    die "pip could not install mnist1d (is PyPI reachable? see pip's output above)"
fi

mkdir -p "$tmp/out"
"$py" - "$tmp/out" "$seed" <<'PY' || die "generating the data set failed"
import hashlib, json, sys
from importlib.metadata import version
import numpy as np
from mnist1d.data import get_dataset_args, make_dataset

out, seed = sys.argv[1], int(sys.argv[2])
args = get_dataset_args()
args.seed = seed
data = make_dataset(args)  # generated locally; never touches args.url
arrays = {
    "x": np.asarray(data["x"], dtype=np.float64),
    "y": np.asarray(data["y"], dtype=np.int64),
    "x_test": np.asarray(data["x_test"], dtype=np.float64),
    "y_test": np.asarray(data["y_test"], dtype=np.int64),
}
assert arrays["x"].shape == (4000, 40) and arrays["x_test"].shape == (1000, 40), {k: v.shape for k, v in arrays.items()}
assert set(np.unique(arrays["y"])) == set(range(10))
sums = {}
for k, v in arrays.items():
    np.save(f"{out}/{k}.npy", v)
    sums[f"{k}.npy"] = hashlib.sha256(open(f"{out}/{k}.npy", "rb").read()).hexdigest()
gen_args = {k: v for k, v in args.__dict__.items() if k != "url"}
meta = {
    "dataset": "MNIST-1D (Greydanus & Kobak)",
    "generator": "mnist1d.data.make_dataset",
    "generator_package": "mnist1d",
    "generator_version": version("mnist1d"),
    "numpy_version": np.__version__,
    "seed": seed,
    "generator_args": gen_args,
    "shapes": {k: list(v.shape) for k, v in arrays.items()},
    "sha256": sums,
}
json.dump(meta, open(f"{out}/metadata.json", "w"), indent=2)
print(f"fetch-mnist1d: mnist1d {meta['generator_version']}, seed {seed}")
PY

mkdir -p "$dest"
# Atomic install of each file: copy next to the destination, then rename.
for f in x.npy y.npy x_test.npy y_test.npy metadata.json; do
    cp "$tmp/out/$f" "$dest/$f.tmp.$$"
    mv -f "$dest/$f.tmp.$$" "$dest/$f"
done
echo "fetch-mnist1d: wrote $dest/{x,y,x_test,y_test}.npy and metadata.json"
