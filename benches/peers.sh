#!/usr/bin/env bash
# Peer benchmark: featlab vs the reference numpy / JAX (/ PyTorch) script, measured in the
# same run on the same machine, full-batch GD on a two-layer net (../shared/peers/twolayer_gd.py).
#
#   benches/peers.sh                         # small + medium, relu quadratic linear; numpy + JAX
#   FEATLAB_PEERS_TORCH=1 benches/peers.sh   # also PyTorch (large download)
#   FEATLAB_PEERS_ACTS=relu benches/peers.sh # one activation only
#   FEATLAB_PEERS_GD_ONLY=1 benches/peers.sh # skip the featlab-only cases (see below)
#
# Prints one JSON line per measurement and a ratio table. Also checks that featlab's final
# loss equals a float64 numpy GD from the *same* data and init (dumped to .npy) to 1e-9.
# Then runs the featlab-only cases of issue 8 (no peer script for them): `featlab bench
# deep-linear` and `mlp` (ratio of a GD step to its pure-GEMM cost, on 1 and 2 threads) and
# `flow-vs-gd` (adaptive flow vs GD at lr 1e-3 on the staircase preset).
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${FEATLAB_PEER_SCRIPT:-../shared/peers/twolayer_gd.py}
VENV=${FEATLAB_PEERS_VENV:-target/peers-venv}
ACTS=${FEATLAB_PEERS_ACTS:-relu quadratic linear}
[ -f "$PEER" ] || { echo "reference script not found at $PEER (set FEATLAB_PEER_SCRIPT)"; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c "import numpy, jax" 2>/dev/null || "$VENV/bin/pip" install -q numpy jax
if [ "${FEATLAB_PEERS_TORCH:-0}" = 1 ]; then
  "$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/pip" install -q torch
fi
cargo build --release -q -p featlab-cli
FL=target/release/featlab
PY="$VENV/bin/python"
OUT=$(mktemp)
run_size() { # name n d m steps_featlab steps_jax steps_numpy
  local name=$1 n=$2 d=$3 m=$4 sf=$5 sj=$6 sn=$7
  for act in $ACTS; do
    for thr in 1 2; do
      $FL bench gd --n "$n" --d "$d" --m "$m" --act "$act" --steps "$sf" --threads "$thr" | sed "s/^{/{\"size\":\"$name\",\"who\":\"featlab\",/" | tee -a "$OUT"
    done
    for fw in jax numpy $( [ "${FEATLAB_PEERS_TORCH:-0}" = 1 ] && echo torch ); do
      local steps=$sj; [ "$fw" = numpy ] && steps=$sn
      local pa=$act; { [ "$act" = quadratic ] || [ "$act" = quad ]; } && pa=quad
      line=$("$PY" "$PEER" "$fw" "$n" "$d" "$m" "$steps" "$pa")
      sps=$(echo "$line" | sed -n 's/.*steps_per_s=\([0-9.]*\).*/\1/p')
      echo "{\"size\":\"$name\",\"who\":\"$fw\",\"act\":\"$act\",\"n\":$n,\"d\":$d,\"m\":$m,\"steps_per_sec\":$sps}" | tee -a "$OUT"
    done
  done
}
run_size small 256 16 64 20000 20000 5000
run_size medium 2048 64 512 200 200 50

# exactness: same data and init as the reference script (numpy default_rng(0)), 2000 steps
DATA=$(mktemp -d)
"$PY" - "$DATA" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]; n, dd, m, steps, lr = 256, 16, 64, 2000, 0.05
rng = np.random.default_rng(0)
X = rng.standard_normal((n, dd)); y = np.maximum(X[:, 0], 0) + 0.5 * X[:, 1] ** 2
W = 1e-3 * rng.standard_normal((m, dd)); a = 1e-3 * rng.standard_normal(m)
for nm, arr in [("X", X), ("y", y), ("W0", W), ("a0", a)]: np.save(f"{d}/{nm}.npy", arr)
for _ in range(steps):
    Z = X @ W.T; H = np.maximum(Z, 0); r = H @ a - y
    ga = H.T @ r / n; dZ = np.outer(r, a) / n * (Z > 0); gW = dZ.T @ X
    W -= lr * gW; a -= lr * ga
H = np.maximum(X @ W.T, 0); print(repr(float(0.5 * np.mean((H @ a - y) ** 2))), file=open(f"{d}/numpy_final_loss.txt", "w"))
PYEOF
FLOSS=$($FL bench gd --data "$DATA" --steps 2000 --act relu | sed -n 's/.*"final_loss":\([-0-9.e]*\).*/\1/p')
NLOSS=$(cat "$DATA/numpy_final_loss.txt")
"$PY" - "$FLOSS" "$NLOSS" <<'PYEOF'
import sys; f, n = float(sys.argv[1]), float(sys.argv[2]); rel = abs(f - n) / abs(n)
print(f'{{"check":"final_loss_vs_numpy","featlab":{f!r},"numpy":{n!r},"rel_diff":{rel:.3e},"ok":{str(rel <= 1e-9).lower()}}}')
PYEOF

"$PY" - "$OUT" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\nsize    act        featlab(1T)  featlab(2T)  jax        numpy      best/jax  best/numpy")
for size in ["small", "medium"]:
    for act in sorted({r["act"] for r in rows if r["size"] == size}):
        get = lambda who, thr=None: next((r["steps_per_sec"] for r in rows if r["size"] == size and r["act"] == act and r["who"] == who and (thr is None or r.get("threads") == thr)), float("nan"))
        f1, f2, j, n = get("featlab", 1), get("featlab", 2), get("jax"), get("numpy")
        best = max(f1, f2)
        print(f"{size:7s} {act:10s} {f1:11.1f}  {f2:11.1f}  {j:9.1f}  {n:9.1f}  {best/j:8.2f}  {best/n:9.2f}")
PYEOF

if [ "${FEATLAB_PEERS_GD_ONLY:-0}" != 1 ]; then
  echo
  for thr in 1 2; do
    $FL bench deep-linear --threads "$thr"
    $FL bench mlp --threads "$thr"
  done
  $FL bench flow-vs-gd
fi
