#!/usr/bin/env python3
"""Match numerical-AGF rounds (JSON written by the `agf_modular_cost_phase_probe` ignored
test, FEATLAB_PROBE_OUT) against gradient-flow runs (trajectory.csv of `featlab run
agf-modular-alpha-1e-3 --set skip_agf=true --set alpha=…`) at several α, with the same rule
as the `agf_modular` experiment (featlab::compare::drops::match_drops): t_gf = first
crossing of the midpoint between consecutive AGF levels (log-interpolated), ℓ_gf = GF loss at
the geometric mean of consecutive crossings (or at the end of the run).

The AGF rounds are rescaled to each GF run's α as t_agf(α) = t_agf(α_agf)·α_agf/α. AGF is
*not* exactly α-invariant in τ (the entering neuron's extra turning ∝ ln(1/α) before it
enters, docs/agf.md, "Correction: AGF at each α"), so pass the AGF run made at the GF run's α
(the factor is then 1); one AGF for several α only approximates.

Each GF run's recorded loss is first checked against the gradient-flow invariant (the exact
loss never rises): `max_loss_rise` is the largest relative rise of a recorded value above the
running minimum before it. ROS34PW2's former cubic Hermite dense output raised the recorded
loss between the step ends on long stiff plateaus (docs/agf.md, α-series; fixed on
2026-12-02: rises are now at rounding level, ~1e-11); with `--running-min` the loss is
replaced by its running minimum before matching, for runs recorded before the fix.

usage: agf_modular_match.py [--running-min] AGF.json GF_DIR [GF_DIR …]
       (GF_DIR/run.json gives α)
"""
import csv, json, math, sys


def crossings(t, loss, levels):
    out, start = [], 0
    for k in range(1, len(levels)):
        target = 0.5 * (levels[k - 1] + levels[k])
        found = None
        for i in range(max(start, 1), len(t)):
            if loss[i] <= target < loss[i - 1]:
                l0, l1 = loss[i - 1], loss[i]
                if l0 > 0 and l1 > 0 and target > 0:
                    frac = (math.log(l0) - math.log(target)) / (math.log(l0) - math.log(l1))
                else:
                    frac = (l0 - target) / (l0 - l1)
                found = t[i - 1] + frac * (t[i] - t[i - 1])
                start = i
                break
        out.append(found)
    return out


def value_at(t, y, at):
    if at <= t[0]:
        return y[0]
    for i in range(1, len(t)):
        if t[i] >= at:
            a, b = t[i - 1], t[i]
            frac = (math.log(at) - math.log(a)) / (math.log(b) - math.log(a)) if a > 0 else (at - a) / (b - a)
            return y[i - 1] + frac * (y[i] - y[i - 1])
    return y[-1]


def max_rise(loss):
    lo, worst = loss[0], 0.0
    for v in loss:
        lo = min(lo, v)
        worst = max(worst, (v - lo) / lo if lo > 0 else 0.0)
    return worst


def running_min(loss):
    out, lo = [], loss[0]
    for v in loss:
        lo = min(lo, v)
        out.append(lo)
    return out


def main():
    args = sys.argv[1:]
    use_min = "--running-min" in args
    args = [a for a in args if a != "--running-min"]
    agf = json.load(open(args[0]))
    a0 = agf["alpha"]
    rounds = agf["rounds"]
    levels = [agf["initial_loss"]] + [r["loss"] for r in rounds]
    rows = []
    for gdir in args[1:]:
        run = json.load(open(f"{gdir}/run.json"))
        cfg = run.get("config", {})
        alpha = cfg["alpha"]
        stats = run["summary"].get("gf_solver_stats", {})
        with open(f"{gdir}/trajectory.csv") as f:
            rd = csv.DictReader(f)
            t, loss = [], []
            for row in rd:
                t.append(float(row["t"]))
                loss.append(float(row["loss"]))
        rise = max_rise(loss)
        if use_min:
            loss = running_min(loss)
        cross = crossings(t, loss, levels)
        res = []
        for k, r in enumerate(rounds):
            ta = r["t"] * a0 / alpha
            tg = cross[k]
            lg = None
            if tg is not None:
                nxt = cross[k + 1] if k + 1 < len(cross) else None
                lg = value_at(t, loss, math.sqrt(tg * nxt) if nxt else t[-1])
            res.append({"round": k + 1, "k": r["feature"], "t_agf": ta, "t_gf": tg,
                        "time_err": (ta - tg) / tg if tg else None,
                        "l_agf": r["loss"], "l_gf": lg,
                        "level_err": (r["loss"] - lg) / lg if lg else None})
        rows.append({"alpha": alpha, "gf_steps": stats.get("num_steps"),
                     "gf_jacobians": stats.get("num_jacobians"),
                     "max_loss_rise": rise,
                     "gf_seconds": run["summary"].get("gf_seconds"),
                     "level_drop_times_gf": run["summary"].get("level_drop_times_gf"),
                     "frequency_order_gf": run["summary"].get("frequency_order_gf"),
                     "rounds": res})
    print(json.dumps(rows, indent=1))
    # compact table: relative time errors (%) per round, one column per α
    hdr = "| round | k | " + " | ".join(f"α = {r['alpha']:g}" for r in rows) + " |"
    print(hdr)
    print("|" + "---|" * (2 + len(rows)))
    for k, r in enumerate(rounds):
        cells = []
        for row in rows:
            e = row["rounds"][k]["time_err"]
            l = row["rounds"][k]["level_err"]
            cells.append("–" if e is None else f"{100*e:+.1f}% / {100*l:+.2f}%")
        print(f"| {k+1} | {r['feature']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
