#!/usr/bin/env bash
# Download an image classification set in the layout featlab's `data.kind = "mnist" |
# "fashion_mnist" | "cifar10" | "svhn"` reads (crates/featlab/src/data/vision.rs), from the
# dataset authors' (or torchvision's) hosts, each file checked against its published MD5.
#
# Usage: scripts/fetch-vision.sh SET [DEST_DIR]
#   SET       mnist | fashion_mnist | cifar10 | svhn
#   DEST_DIR  default: data/SET under the repository root (featlab's default data.path)
#
# What lands in DEST_DIR:
#   mnist, fashion_mnist  train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
#                         t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (read gzipped)
#   cifar10               data_batch_1.bin … data_batch_5.bin, test_batch.bin (extracted from
#                         cifar-10-binary.tar.gz)
#   svhn                  train_x.npy, train_y.npy, test_x.npy, test_y.npy: the cropped-digit
#                         .mat files converted (private venv with numpy + scipy from PyPI) to
#                         n × 3 × 32 × 32 uint8 images (C×H×W) and labels 0–9 (the .mat label 10
#                         is digit 0)
#   plus SOURCE.txt       URLs, MD5s and the date.
# Does nothing when every file is already there. Needs python3 and internet access to the hosts
# below (not only PyPI): on machines limited to package registries this script cannot run; put
# the files in DEST_DIR by other means instead.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "fetch-vision: error: $*" >&2; exit 1; }

set_name="${1:-}"
case "$set_name" in
    mnist)
        base="https://ossci-datasets.s3.amazonaws.com/mnist"
        files=(train-images-idx3-ubyte.gz:f68b3c2dcbeaaa9fbdd348bbdeb94873
               train-labels-idx1-ubyte.gz:d53e105ee54ea40749a09fcbcd1e9432
               t10k-images-idx3-ubyte.gz:9fb629c4189551a2d022fa330f9573f3
               t10k-labels-idx1-ubyte.gz:ec29112dd5afa0611ce80d1b7f02629c)
        want=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz);;
    fashion_mnist)
        base="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
        files=(train-images-idx3-ubyte.gz:8d4fb7e6c68d591d4c3dfef9ec88bf0d
               train-labels-idx1-ubyte.gz:25c81989df183df01b3e8a0aad5dffbe
               t10k-images-idx3-ubyte.gz:bef4ecab320f06d8554ea6380940ec79
               t10k-labels-idx1-ubyte.gz:bb300cfdad3c16e7a12a480ee83cd310)
        want=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz);;
    cifar10)
        base="https://www.cs.toronto.edu/~kriz"
        files=(cifar-10-binary.tar.gz:c32a1d4ab5d03f1284b67883e8d87530)
        want=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin);;
    svhn)
        base="http://ufldl.stanford.edu/housenumbers"
        files=(train_32x32.mat:e26dedcc434d2e4c54c9b2d4a06d8373
               test_32x32.mat:eb5a983be6a315427106f1b164d9cef3)
        want=(train_x.npy train_y.npy test_x.npy test_y.npy);;
    *) die "usage: scripts/fetch-vision.sh mnist|fashion_mnist|cifar10|svhn [DEST_DIR]";;
esac
dest="${2:-$repo_root/data/$set_name}"

all_there=1
for f in "${want[@]}"; do [[ -s "$dest/$f" ]] || all_there=0; done
if [[ $all_there == 1 ]]; then
    echo "fetch-vision: $dest already holds the $set_name files; nothing to do"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-vision.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Download and check each file (python's urllib and hashlib: no curl/wget needed).
for entry in "${files[@]}"; do
    name="${entry%%:*}"; md5="${entry##*:}"
    echo "fetch-vision: downloading $base/$name ..."
    python3 - "$base/$name" "$tmp/$name" "$md5" <<'PY' || die "download of $name failed or its MD5 does not match (is $base reachable from here?)"
import hashlib, shutil, sys, urllib.request
url, out, md5 = sys.argv[1:4]
with urllib.request.urlopen(url, timeout=60) as r, open(out, "wb") as f:
    shutil.copyfileobj(r, f, 1 << 20)
h = hashlib.md5()
with open(out, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
if h.hexdigest() != md5:
    sys.exit(f"MD5 of {out} is {h.hexdigest()}, expected {md5}")
PY
done

mkdir -p "$tmp/out"
case "$set_name" in
    mnist|fashion_mnist)
        for f in "${want[@]}"; do cp "$tmp/$f" "$tmp/out/$f"; done;;
    cifar10)
        python3 - "$tmp/cifar-10-binary.tar.gz" "$tmp/out" <<'PY' || die "extracting the CIFAR-10 archive failed"
import sys, tarfile, os
archive, out = sys.argv[1:3]
wanted = {f"data_batch_{k}.bin" for k in range(1, 6)} | {"test_batch.bin"}
with tarfile.open(archive, "r:gz") as t:
    for m in t.getmembers():
        name = os.path.basename(m.name)
        if m.isfile() and name in wanted:
            with t.extractfile(m) as src, open(os.path.join(out, name), "wb") as dst:
                dst.write(src.read())
            wanted.discard(name)
if wanted:
    sys.exit(f"missing in the archive: {sorted(wanted)}")
PY
        ;;
    svhn)
        python3 -m venv "$tmp/venv" || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
        "$tmp/venv/bin/python" -m pip install --disable-pip-version-check --quiet numpy scipy \
            >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log" >&2; die "pip could not install numpy and scipy"; }
        "$tmp/venv/bin/python" - "$tmp" "$tmp/out" <<'PY' || die "converting the SVHN .mat files failed"
import sys
import numpy as np
from scipy.io import loadmat
src, out = sys.argv[1:3]
for part in ("train", "test"):
    m = loadmat(f"{src}/{part}_32x32.mat")
    x = np.ascontiguousarray(np.transpose(m["X"], (3, 2, 0, 1)).astype(np.uint8))  # H W C N -> N C H W
    y = (m["y"].reshape(-1).astype(np.int64) % 10)  # label 10 is the digit 0
    assert x.shape[1:] == (3, 32, 32) and len(x) == len(y), (x.shape, y.shape)
    np.save(f"{out}/{part}_x.npy", x)
    np.save(f"{out}/{part}_y.npy", y)
    print(f"fetch-vision: svhn {part}: {len(y)} images")
PY
        ;;
esac

{
    echo "set: $set_name"
    echo "fetched: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for entry in "${files[@]}"; do echo "source: $base/${entry%%:*} md5 ${entry##*:}"; done
} >"$tmp/out/SOURCE.txt"

mkdir -p "$dest"
# Atomic install of each file: copy next to the destination, then rename.
for f in "${want[@]}" SOURCE.txt; do
    cp "$tmp/out/$f" "$dest/$f.tmp.$$"
    mv -f "$dest/$f.tmp.$$" "$dest/$f"
done
echo "fetch-vision: wrote $set_name into $dest"
