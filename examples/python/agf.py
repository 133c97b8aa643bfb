"""Alternating Gradient Flows from Python: AGF's staircase against gradient flow.

Runs the `agf-diagonal` preset (a diagonal linear net β = u ⊙ v on the 5-D example of
Kunin et al. 2025, §3.1, α = 1e-12: gradient flow from the same initialisation as AGF),
then runs AGF itself from Python with `featlab.agf.run` on the preset's data, and plots the
AGF prediction — the loss staircase ℓ^(k) with jumps at t^(k), and the coefficients β after
each jump — over the gradient-flow curves. A second panel does the same for a fully
connected linear net (`agf-linear`, §3.2: modes learned one at a time).

    pip install ./crates/featlab-py matplotlib
    python examples/python/agf.py [OUT_DIR]     # default: runs/agf-py

Writes OUT_DIR/agf-matplotlib.png (Agg backend, runs headless); without matplotlib it
prints the numbers and skips the figure.
"""

import os
import sys

import numpy as np

import featlab
from featlab import agf


def main(out="runs/agf-py"):
    os.makedirs(out, exist_ok=True)
    # gradient flow (and the preset's own AGF) at the preset's α, without its α-series
    diag = featlab.run("agf-diagonal", overrides={"alpha_series": []}, progress=True)
    # AGF from Python on the same data: default α and init are the preset's
    a = agf.run("diagonal", diag.data.x, diag.data.y)
    print(f"featlab {featlab.__version__}: {a}")
    print(f"jump times  t^(k):  {np.round(a.jump_times, 4).tolist()}")
    print(f"levels      ℓ^(k):  {np.round(a.levels, 5).tolist()}")
    print(f"coordinates learned: {a.feature.tolist()}  (deactivations: {a.deactivated})")
    gf_drops = [d["t_gf"] for d in diag.summary["drops"]]
    print(f"gradient-flow drops: {np.round([np.nan if d is None else d for d in gf_drops], 4).tolist()}")
    print(f"max relative jump-time error AGF vs GF: {diag.summary['max_rel_time_error']:.2e}")

    lin = featlab.run("agf-linear", overrides={"alpha_series": []})
    b = agf.run("linear", lin.data.x, lin.data.y, width=6, seed=lin.seed)
    print(f"linear net: modes learned {b.feature.tolist()} at t = {np.round(b.jump_times, 3).tolist()}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return a

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    t = diag.trajectory["t"]
    ax = axes[0]
    ax.semilogy(t, diag.trajectory["loss"], lw=2, label="gradient flow (α = 1e-12)")
    ax.semilogy(t, a.loss_at(t), "--", lw=1.5, label="AGF staircase (featlab.agf.run)")
    for tj in a.jump_times:
        ax.axvline(tj, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("t (gradient-flow time)")
    ax.set_ylabel("loss  (1/2n) Σ (f(x) − y)²")
    ax.set_ylim(1e-5 * a.levels[0], 2 * a.levels[0])  # the last level is ~0 (exact fit)
    ax.set_title("Diagonal linear net: loss")
    ax.legend(loc="lower left")

    ax = axes[1]
    beta_agf = np.vstack([np.zeros(a.beta.shape[1]), a.beta])  # β before the first jump: 0
    idx = np.searchsorted(a.jump_times, t, side="right")
    for i in range(a.beta.shape[1]):
        (line,) = ax.plot(t, diag.trajectory[f"beta_{i}"], lw=2, label=f"β_{i} GF")
        ax.plot(t, beta_agf[idx, i], "--", color=line.get_color(), lw=1.2)
    ax.set_xlabel("t")
    ax.set_ylabel("β_i  (solid GF, dashed AGF)")
    ax.set_title("Diagonal linear net: coefficients")
    ax.legend(fontsize=7, ncol=2, loc="center right")

    ax = axes[2]
    tl = lin.trajectory["t"]
    ax.semilogy(tl, lin.trajectory["loss"], lw=2, label="gradient flow (α = 1e-12)")
    ax.semilogy(tl, b.loss_at(tl), "--", lw=1.5, label="AGF staircase")
    ax.set_ylim(1e-5 * b.levels[0], 2 * b.levels[0])
    ax.set_xlabel("t")
    ax.set_title("Two-layer linear net: modes 3, 2, 1, 0.5")
    ax.legend(loc="lower left")
    fig.tight_layout()
    png = os.path.join(out, "agf-matplotlib.png")
    fig.savefig(png, dpi=110)
    print(f"figure: {png}")
    return a


if __name__ == "__main__":
    main(*sys.argv[1:2])
