#!/usr/bin/env python3
"""Per-neuron analysis of agf-modular AGF vs gradient flow (docs/agf.md, α-series: "the first
k = 5 neuron"). Needs numpy (e.g. the featlab-py venv). Input: JSON dumps written by the
ignored test `agf_modular_neuron_dump_probe` (FEATLAB_PROBE_WHAT=agf | gf).

Model (as `TwoLayer`, quadratic, no bias): f = Σ_i w_i (u_iᵀ a·x + v_iᵀ b·x)², W1 row i = (u_i, v_i),
W2 column i = w_i; L = (1/2n) Σ ‖f − y‖². A dormant neuron (f_i negligible) with the residual r
fixed follows dθ_i/dt = ∇U_i(θ_i), U_i = (1/n) Σ_n ⟨f_i(x_n), r_n⟩; with θ = ρ θ̄ and κ = 3:
dθ̄/dt = ρ (∇U(θ̄) − 3 Ū θ̄), dS/dt = 3 Ū, 1/ρ = 1/ρ0 − S (blow-up at S = 1/ρ0). This script
integrates that law (RK4, its own utility gradient, not featlab's) for given residuals:

  agf-check AGF.json [OUT.json]   replay AGF's utility phases (residual after each round's cost
                                  phase) for every dormant neuron; prints S/c of the activated
                                  neuron at each AGF jump time (1 = AGF's ODE reproduced) and
                                  writes per-neuron norm/spectrum records for `compare`
  gf-neurons GF.json              per neuron: first τ with ‖θ_i‖ ≥ 0.5 and its spectrum then
  replay GF.json AGF.json N1,N2 TAU_END [--agf-before TAU] [--from-gf-state TAU]
                                  the law above for neurons N1, N2, … under GF's residual
                                  (piecewise linear between snapshots); --agf-before: AGF's
                                  residual before TAU; --from-gf-state: start from GF's state
                                  of the neurons at TAU and use AGF's residual afterwards
  compare GF.json AGF_REPLAY.json N1,N2 TAU1,TAU2,…
                                  GF vs AGF norm/α and k = 1, 3, 5 energy fractions per neuron
  plateaus GF.json AGF.json       per plateau between GF's jumps (midpoint crossings of AGF's
                                  levels): GF's residual drift within it, ‖R_GF(τ) − R_GF(end)‖
                                  /‖R_GF(end)‖, and its distance to AGF's residual there
  swap GF.json AGF.json N1,N2 K1,K2,… [--agf-times]
                                  the law for neurons N1, N2, … from their initial state under
                                  a piecewise-constant residual: GF's at the end of each of its
                                  plateaus, except plateaus K1, K2, … (1 = after round 1), which
                                  take AGF's; switched at GF's jump times (--agf-times: AGF's).
                                  Which plateau's residual decides a later activation?
  symmetry GF.json AGF.json K     plateau K (after round K): AGF's residual against GF's (end of
                                  its plateau K) and against every image of GF's under the
                                  problem's symmetries (a → a + s₁, b → b − s₁ + s₂, c → c + s₂,
                                  optionally a ↔ b): the best image and its distance

Times are τ = t·α/1e-3 and parameters θ·1e-3/α (each dump's own α), so dumps at different α
share one clock. AGF is not exactly α-invariant in τ (docs/agf.md, "Correction: AGF at each
α"): compare a GF dump with an AGF dump at the same α.
"""
import json
import sys

import numpy as np

H, P = 18, 20
D_IN = 2 * P


def dataset(template):
    x = np.array(template)
    sh = np.array([np.roll(x, a) for a in range(P)])  # (a·x)[n] = x[n − a]
    X = np.zeros((P * P, 2 * P))
    Y = np.zeros((P * P, P))
    for a in range(P):
        for b in range(P):
            X[a * P + b, :P] = sh[a]
            X[a * P + b, P:] = sh[b]
            Y[a * P + b] = sh[(a + b) % P]
    return X, Y


def neurons(theta):
    """H × 60 rows (u_i, v_i, w_i) from the flat parameters (W1 row-major, then W2 row-major)."""
    theta = np.asarray(theta)
    W1 = theta[: H * D_IN].reshape(H, D_IN)
    W2 = theta[H * D_IN:].reshape(P, H)
    return np.concatenate([W1, W2.T], axis=1)


def predict(N, X):
    return ((X @ N[:, :D_IN].T) ** 2) @ N[:, D_IN:]


def pair_energies(v):
    f = np.fft.fft(v)
    e = np.zeros(P // 2 + 1)
    for xi in range(P):
        e[min(xi, P - xi)] += abs(f[xi]) ** 2 / (2 * P)
    return e


def fractions(nv):
    """Energy fractions per frequency pair of (u, v, w) together."""
    s = pair_energies(nv[:P]) + pair_energies(nv[P:2 * P]) + pair_energies(nv[2 * P:])
    return s / s.sum()


def util_grad(N, X, R):
    """∇U_i and U_i for every row of N, U_i = (1/n) Σ_n ⟨w_i h_i(x_n)², r_n⟩, h_i = (u_i, v_i)·x."""
    n = X.shape[0]
    h = X @ N[:, :D_IN].T
    wr = R @ N[:, D_IN:].T
    gw = (h ** 2).T @ R / n
    gu = (2 * h * wr).T @ X / n
    return np.concatenate([gu, gw], axis=1), (h ** 2 * wr).sum(0) / n


class Law:
    """The κ = 3 dormant law for a set of neurons with thresholds thr = 1/ρ0."""

    def __init__(self, X, thr, cap=1.0):
        self.X, self.thr, self.cap = X, thr, cap

    def field(self, D, S, R):
        G, U = util_grad(D, self.X, R)
        rho = np.minimum(1 / np.maximum(self.thr - S, 1e-300), self.cap)
        return rho[:, None] * (G - 3 * U[:, None] * D), 3 * U, U

    def step(self, D, S, t, resid, live, dt_max):
        dD, dS, U = self.field(D, S, resid(t))
        gap = self.thr - S
        dt = min(dt_max,
                 2e-3 / max(np.max(np.abs(dS[live]) / gap[live]), 1e-30),
                 2e-3 / max(np.max(np.linalg.norm(dD[live], axis=1)), 1e-30))
        m = live.astype(float)
        k1 = (dD * m[:, None], dS * m)
        Rm, R1 = resid(t + dt / 2), resid(t + dt)
        k2 = self.field(D + dt / 2 * k1[0], S + dt / 2 * k1[1], Rm)[:2]
        k2 = (k2[0] * m[:, None], k2[1] * m)
        k3 = self.field(D + dt / 2 * k2[0], S + dt / 2 * k2[1], Rm)[:2]
        k3 = (k3[0] * m[:, None], k3[1] * m)
        k4 = self.field(D + dt * k3[0], S + dt * k3[1], R1)[:2]
        k4 = (k4[0] * m[:, None], k4[1] * m)
        D = D + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        D /= np.linalg.norm(D, axis=1)[:, None]
        S = S + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        return D, S, t + dt, U


def tau_scale(d):
    """τ per unit t of a dump at α = d["alpha"] (τ = t·α/1e-3); θ in τ units is θ·1e-3/α."""
    return d["alpha"] / 1e-3


def law_for(d, X, who=slice(None)):
    """The dormant law in τ units for a dump's initial neurons `who`: thresholds 1/ρ0 of the
    rescaled init θ·1e-3/α, and AGF's direction-speed cap ‖θ‖ ≤ 1 (= 1e-3/α in these units)."""
    N0 = neurons(d["init"])[who] / tau_scale(d)
    rho0 = np.linalg.norm(N0, axis=1)
    return N0, rho0, Law(X, 1 / rho0, cap=1 / tau_scale(d))


def agf_residuals(agf, X, Y):
    times = np.array([0.0] + [r["t"] * tau_scale(agf) for r in agf["rounds"]])
    res = [Y] + [Y - predict(neurons(r["params"]), X) for r in agf["rounds"]]
    return times, res


def agf_check(path, out=None):
    d = json.load(open(path))
    X, Y = dataset(d["template"])
    N0, rho0, law = law_for(d, X)
    D, S = N0 / rho0[:, None], np.zeros(H)
    times, res = agf_residuals(d, X, Y)
    active = np.zeros(H, bool)
    rec = []
    t = 0.0
    for k, rnd in enumerate(d["rounds"]):
        R = res[k]
        nxt = t
        while t < times[k + 1] - 1e-12:
            if t >= nxt:
                U = law.field(D, S, R)[2]
                rec.append(dict(t=t, norm=(1 / (law.thr - S)).tolist(), S=S.tolist(), U=U.tolist(),
                                frac=[fractions(D[i]).tolist() for i in range(H)],
                                active=active.tolist()))
                nxt = t + 5.0
            D, S, t, _ = law.step(D, S, t, lambda _t: R, ~active, min(2.0, times[k + 1] - t))
            if np.any((S >= law.thr * (1 - 1e-9)) & ~active):
                break
        i = rnd["activated"][0]
        others = [(S[j] / law.thr[j], j) for j in range(H) if not active[j] and j != i]
        print(f"round {k + 1:2d}: AGF t = {times[k + 1]:10.3f} neuron {i:2d}; replay S/c = "
              f"{S[i] / law.thr[i]:.6f} at t = {t:10.3f}; next dormant S/c = {max(others)[0]:.3f} "
              f"(neuron {max(others)[1]})")
        active[i] = True
    if out:
        json.dump(dict(alpha=d["alpha"], records=rec), open(out, "w"))


def gf_load(path):
    d = json.load(open(path))
    a = d["alpha"]
    T = np.array(d["t"]) * a / 1e-3
    Ns = np.array([neurons(th) for th in d["params"]])
    return a, T, Ns, d["template"]


def gf_neurons(path):
    a, T, Ns, _ = gf_load(path)
    norms = np.linalg.norm(Ns, axis=2)
    for i in range(H):
        idx = np.where(norms[:, i] >= 0.5)[0]
        if len(idx):
            j = idx[0]
            f = fractions(Ns[j, i])
            print(f"neuron {i:2d}: ‖θ‖ ≥ 0.5 at τ ∈ ({T[j - 1]:8.1f}, {T[j]:8.1f}]; "
                  f"then k1 {f[1]:.3f} k3 {f[3]:.3f} k5 {f[5]:.3f}")
        else:
            print(f"neuron {i:2d}: dormant, ‖θ‖/α = {norms[-1, i] / a:.3f} at τ = {T[-1]:.0f}")


def replay(gf_path, agf_path, who, tau_end, agf_before=None, from_gf=None):
    a, T, Ns, template = gf_load(gf_path)
    agf = json.load(open(agf_path))
    X, Y = dataset(template)
    Rs = np.array([Y - predict(N, X) for N in Ns])
    at, ares = agf_residuals(agf, X, Y)

    def resid(tau):
        if (agf_before is not None and tau < agf_before) or from_gf is not None:
            return ares[np.searchsorted(at, tau, side="right") - 1]
        j = np.searchsorted(T, tau)
        if j == 0:
            return Rs[0]
        if j >= len(T):
            return Rs[-1]
        w = (tau - T[j - 1]) / (T[j] - T[j - 1])
        return (1 - w) * Rs[j - 1] + w * Rs[j]

    N0, rho0, law = law_for(agf, X, who)
    D, S, t = N0 / rho0[:, None], np.zeros(len(who)), 0.0
    if from_gf is not None:
        j = np.searchsorted(T, from_gf)
        Ng = Ns[j][who] * (1e-3 / a)
        rg = np.linalg.norm(Ng, axis=1)
        D, S, t = Ng / rg[:, None], law.thr - 1 / rg, T[j]
    done = np.zeros(len(who), bool)
    nxt = t
    print("τ | per neuron: ‖θ‖/α, k1 k3 k5 fractions")
    while t < tau_end and not done.all():
        if t >= nxt:
            cols = []
            for m, i in enumerate(who):
                f = fractions(D[m])
                cols.append(f"n{i}: {1 / (law.thr[m] - S[m]) / 1e-3:9.3f} {f[1]:.3f} {f[3]:.3f} {f[5]:.3f}")
            print(f"{t:8.1f} | " + " | ".join(cols))
            nxt += 250.0 if t > 400 else 50.0
        D, S, t, _ = law.step(D, S, t, resid, ~done, 1.0)
        for m, i in enumerate(who):
            if not done[m] and S[m] >= law.thr[m] * 0.999:
                f = fractions(D[m])
                print(f"   neuron {i} reaches S/c = 0.999 (‖θ‖ = 1000 ρ0) at τ = {t:.2f}: "
                      f"k1 {f[1]:.3f} k3 {f[3]:.3f} k5 {f[5]:.3f}")
                done[m] = True


def compare(gf_path, rep_path, who, taus):
    a, T, Ns, _ = gf_load(gf_path)
    rec = json.load(open(rep_path))["records"]
    RT = np.array([r["t"] for r in rec])
    for i in who:
        print(f"neuron {i}: τ | GF ‖θ‖/α k1 k3 k5 | AGF ‖θ‖/α k1 k3 k5 S")
        for tau in taus:
            j = np.searchsorted(T, tau)
            f = fractions(Ns[j, i])
            r = rec[min(np.searchsorted(RT, tau), len(RT) - 1)]
            fa = r["frac"][i]
            an = r["norm"][i] / 1e-3 if not r["active"][i] else float("nan")
            print(f"  {T[j]:8.1f} | {np.linalg.norm(Ns[j, i]) / a:10.3f} {f[1]:.3f} {f[3]:.3f} {f[5]:.3f}"
                  f" | {an:10.3f} {fa[1]:.3f} {fa[3]:.3f} {fa[5]:.3f} {r['S'][i]:7.1f}")


def gf_jumps(g, agf):
    """GF's jump times (τ) for AGF's rounds: first crossing of each midpoint between
    consecutive AGF levels in GF's recorded loss (linear interpolation between records)."""
    lt = np.array(g["loss_t"]) * tau_scale(g)
    loss = np.array(g["loss"])
    levels = [loss[0]] + [r["loss"] for r in agf["rounds"]]
    out = []
    for k in range(len(agf["rounds"])):
        mid = 0.5 * (levels[k] + levels[k + 1])
        j = np.argmax(loss <= mid)
        if loss[j] > mid:
            out.append(np.nan)
            continue
        w = (loss[j - 1] - mid) / (loss[j - 1] - loss[j])
        out.append(lt[j - 1] + w * (lt[j] - lt[j - 1]))
    return np.array(out)


def gf_residual_at(g, X, Y, T):
    """GF's residual at its last snapshot at or before τ (and that snapshot's τ)."""
    def at(tau):
        j = max(np.searchsorted(T, tau, side="right") - 1, 0)
        return T[j], Y - predict(neurons(g["params"][j]), X)
    return at


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


class Pair:
    """A GF dump and an AGF dump of the same problem: data, GF's snapshot times T (τ) and
    residual lookup R(τ), AGF's jump times `at` and residuals `ares` (index k = after round
    k), GF's jumps for AGF's rounds and the end of each of GF's plateaus."""

    def __init__(self, gf_path, agf_path):
        self.g, self.agf = json.load(open(gf_path)), json.load(open(agf_path))
        self.X, self.Y = dataset(self.g["template"])
        self.T = np.array(self.g["t"]) * tau_scale(self.g)
        self.R = gf_residual_at(self.g, self.X, self.Y, self.T)
        self.at, self.ares = agf_residuals(self.agf, self.X, self.Y)
        self.jumps = gf_jumps(self.g, self.agf)
        self.ends = list(self.jumps[1:]) + [self.T[-1]]

    def plateau_end(self, k):
        """GF's residual near the end of its plateau k (after round k, k ≥ 1)."""
        a, b = self.jumps[k - 1], self.ends[k - 1]
        return self.R(b - 0.02 * (b - a))


def plateaus(gf_path, agf_path):
    pr = Pair(gf_path, agf_path)
    R, X, ares = pr.R, pr.X, pr.ares
    for k, (a, b) in enumerate(zip(pr.jumps, pr.ends)):
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        _, Rb = pr.plateau_end(k + 1)
        print(f"plateau {k + 1} (GF τ {a:.1f} … {b:.1f}): drift to its end / distance to AGF's")
        for tau in np.linspace(a + 0.05 * (b - a), b - 0.02 * (b - a), 6):
            ta, Ra = R(tau)
            print(f"  τ {ta:8.1f}: loss {(Ra ** 2).sum() / (2 * len(X)):.6f}  drift "
                  f"{rel(Ra, Rb):.2e}  vs AGF {rel(Ra, ares[k + 1]):.2e}")


def swap(gf_path, agf_path, who, from_agf, agf_times=False):
    pr = Pair(gf_path, agf_path)
    agf, X, T = pr.agf, pr.X, pr.T
    segs = [pr.Y] + [pr.ares[k] if k in from_agf else pr.plateau_end(k)[1]
                     for k in range(1, len(pr.jumps) + 1)]
    switch = pr.at[1:] if agf_times else pr.jumps
    _, rho0, law = law_for(agf, X, who)
    D = neurons(agf["init"])[who] / tau_scale(agf) / rho0[:, None]
    S, t = np.zeros(len(who)), 0.0
    done = np.zeros(len(who), bool)
    resid = lambda tau: segs[np.searchsorted(switch, tau, side="right")]  # noqa: E731
    while t < T[-1] and not done.all():
        D, S, t, _ = law.step(D, S, t, resid, ~done, 1.0)
        for m, i in enumerate(who):
            if not done[m] and S[m] >= law.thr[m] * 0.999:
                print(f"neuron {i}: S/c = 0.999 at τ = {t:.2f} (plateaus from AGF: "
                      f"{sorted(from_agf) or 'none'}, switches at "
                      f"{'AGF' if agf_times else 'GF'}'s jumps)")
                done[m] = True
    for m, i in enumerate(who):
        if not done[m]:
            print(f"neuron {i}: no blow-up before τ = {T[-1]:.1f}")


def symmetry(gf_path, agf_path, k):
    pr = Pair(gf_path, agf_path)
    X = pr.X
    tg, RG = pr.plateau_end(k)
    RA = pr.ares[k]
    G, A = RG.reshape(P, P, P), RA.reshape(P, P, P)  # [a, b, c]
    print(f"plateau {k}: GF at τ = {tg:.1f} loss {(RG ** 2).sum() / (2 * len(X)):.6f}, AGF loss "
          f"{(RA ** 2).sum() / (2 * len(X)):.6f}; ‖R_AGF − R_GF‖/‖R_AGF‖ = {rel(G, A):.3e}")
    best = (np.inf, None)
    for s1 in range(P):
        for s2 in range(P):
            img = np.roll(np.roll(np.roll(G, s1, axis=0), s2 - s1, axis=1), s2, axis=2)
            for swap_ab in (False, True):
                im = img.transpose(1, 0, 2) if swap_ab else img
                d = rel(im, A)
                if d < best[0]:
                    best = (d, (s1, s2, swap_ab))
    s1, s2, sw = best[1]
    print(f"  best symmetry image of GF's: a → a + {s1}, b → b − {s1} + {s2}, c → c + {s2}"
          f"{', a ↔ b' if sw else ''}: distance {best[0]:.3e}")


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "agf-check":
        agf_check(args[0], args[1] if len(args) > 1 else None)
    elif cmd == "gf-neurons":
        gf_neurons(args[0])
    elif cmd == "replay":
        opt = {"--agf-before": None, "--from-gf-state": None}
        pos = []
        k = 0
        while k < len(args):
            if args[k] in opt:
                opt[args[k]] = float(args[k + 1])
                k += 2
            else:
                pos.append(args[k])
                k += 1
        replay(pos[0], pos[1], [int(x) for x in pos[2].split(",")], float(pos[3]),
               opt["--agf-before"], opt["--from-gf-state"])
    elif cmd == "plateaus":
        plateaus(args[0], args[1])
    elif cmd == "swap":
        swap(args[0], args[1], [int(x) for x in args[2].split(",")],
             {int(x) for x in args[3].split(",") if x and x != "none"}, "--agf-times" in args)
    elif cmd == "symmetry":
        symmetry(args[0], args[1], int(args[2]))
    elif cmd == "compare":
        compare(args[0], args[1], [int(x) for x in args[2].split(",")],
                [float(x) for x in args[3].split(",")])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
