"""Reproduce the saddle-to-saddle staircase from Python and plot it.

A two-layer linear network from small initialisation learns a linear teacher with
singular values s = (4, 2, 1, 0.5) one mode at a time (Saxe et al. 2014; AGF, Kunin et
al. 2025, §3.2). The loss sits on plateaus ℓ_k = ½ Σ_{i>k} s_i² and drops between them;
featlab integrates gradient flow exactly (adaptive Dormand–Prince) and checks it against
GD at lr 1e-3 from the same initialisation.

    pip install ./crates/featlab-py matplotlib
    python examples/python/staircase.py [OUT_DIR]     # default: runs/staircase-py

Writes OUT_DIR (the CLI's run directory: run.json, trajectory.csv, npy files, plots,
report.html) and OUT_DIR/staircase-matplotlib.png. Runs headless (Agg backend); without
matplotlib it prints the numbers and skips the figure.
"""

import sys

import numpy as np

import featlab


def main(out="runs/staircase-py"):
    run = featlab.run("staircase", seed=0, out=out, progress=True)
    s = run.summary
    levels = s["levels_theory"]
    print(f"featlab {featlab.__version__}: {run}")
    print(f"plateau levels (theory)  ½Σ_(i>k) s_i²: {levels}")
    print(f"drop times, gradient flow: {np.round(s['drop_times'], 4).tolist()}")
    print(f"drop times, GD lr 1e-3:    {np.round(s['drop_times_reference'], 4).tolist()}")
    print(f"max relative difference:   {s['max_drop_time_rel_diff']:.2e}")
    print(f"gradient evaluations: flow {s['grad_evals']}, GD {s['reference']['grad_evals']}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return run

    t, tr = run.trajectory["t"], run.trajectory
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.semilogy(t, tr["loss"], lw=2, label="gradient flow (featlab, DOPRI5)")
    if "loss_gd" in tr:
        ax.semilogy(t, tr["loss_gd"], "--", lw=1.2, label="GD, lr = 1e-3")
    for k, level in enumerate(levels[1:], start=1):
        if level > 0:
            ax.axhline(level, color="grey", lw=0.8, ls=":")
            ax.annotate(f"ℓ{k}", (t[-1], level), textcoords="offset points", xytext=(-14, 3),
                        color="grey")
    for d in s["drop_times"]:
        if d is not None:
            ax.axvline(d, color="tab:red", lw=0.6, alpha=0.5)
    ax.set_xlabel("t (gradient-flow time)")
    ax.set_ylabel("loss  (1/2n) Σ‖f(x) − y‖²")
    ax.set_title("Saddle-to-saddle staircase, teacher singular values 4, 2, 1, 0.5")
    ax.legend(loc="lower left")
    fig.tight_layout()
    png = f"{run.out}/staircase-matplotlib.png"
    fig.savefig(png, dpi=120)
    print(f"figure: {png}")
    return run


if __name__ == "__main__":
    main(*sys.argv[1:2])
