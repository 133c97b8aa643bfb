#!/usr/bin/env bash
# Fetch scikit-learn's 8x8 handwritten digits (digits.csv.gz, 1797 samples) for
# featlab's `read_sklearn_digits`, from the scikit-learn wheel on PyPI.
#
# Usage: scripts/fetch-digits.sh [DEST_DIR]
#        (default: data/digits under the repository root, wherever it is run from)
#
# Downloads the scikit-learn wheel for this platform with pip (no dependencies,
# binary only), extracts sklearn/datasets/data/digits.csv.gz into DEST_DIR and
# prints its sha256 and the wheel's version. Does nothing when the file is
# already there. Needs python3 with pip, and network access to PyPI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/digits}"
out="$dest/digits.csv.gz"
member="sklearn/datasets/data/digits.csv.gz"

die() { echo "fetch-digits: error: $*" >&2; exit 1; }

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
    else python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

if [[ -s "$out" ]]; then
    echo "fetch-digits: $out already present (sha256 $(sha256 "$out")); nothing to do"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
python3 -m pip --version >/dev/null 2>&1 || die "pip is not available (python3 -m pip); install it, e.g. apt-get install python3-pip"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-digits.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-digits: downloading the scikit-learn wheel with pip ..."
if ! python3 -m pip download scikit-learn --no-deps --only-binary=:all: \
        --disable-pip-version-check --quiet -d "$tmp" >"$tmp/pip.log" 2>&1; then
    cat "$tmp/pip.log" >&2
    die "pip could not download the scikit-learn wheel (is PyPI reachable? see pip's output above)"
fi

shopt -s nullglob
wheels=("$tmp"/scikit_learn-*.whl "$tmp"/scikit-learn-*.whl)
shopt -u nullglob
[[ ${#wheels[@]} -ge 1 ]] || die "pip finished but left no scikit-learn wheel in $tmp"
wheel="${wheels[0]}"
version="$(basename "$wheel" | cut -d- -f2)"

# Extract the single member; python's zipfile is always there, unzip may not be.
python3 - "$wheel" "$member" "$tmp/digits.csv.gz" <<'PY' || die "$member not found in $(basename "$wheel")"
import shutil, sys, zipfile
wheel, member, target = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(target, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

# Sanity check before installing: gzip of 1797 lines of 65 comma-separated values.
python3 - "$tmp/digits.csv.gz" <<'PY' || die "the extracted file does not look like the digits data"
import gzip, sys
rows = gzip.open(sys.argv[1], "rt").read().split("\n")
rows = [r for r in rows if r.strip()]
assert len(rows) == 1797, len(rows)
assert all(len(r.split(",")) == 65 for r in rows)
PY

mkdir -p "$dest"
# Atomic install: copy next to the destination, then rename.
cp "$tmp/digits.csv.gz" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"

echo "fetch-digits: wrote $out"
echo "fetch-digits: scikit-learn wheel $(basename "$wheel") (version $version)"
echo "fetch-digits: sha256 $(sha256 "$out")"
