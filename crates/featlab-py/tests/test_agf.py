"""featlab.agf: AGF on numpy data equals the AGF of the CLI presets (same library code, same
inputs: bit for bit), bad inputs raise ValueError naming the problem, the GIL is released
and Ctrl-C stops a long call."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import featlab
from featlab import agf


@pytest.fixture(scope="module")
def diagonal_preset():
    # the preset without its α-series (AGF and GF at the preset's α only)
    return featlab.run("agf-diagonal", overrides={"alpha_series": []})


@pytest.fixture(scope="module")
def linear_preset():
    return featlab.run("agf-linear", overrides={"alpha_series": []})


def preset_rounds(run):
    rounds = run.summary["agf_rounds"]
    times = [r["t"] for r in rounds]
    levels = [run.summary["initial_loss"]] + [r["loss"] for r in rounds]
    return rounds, times, levels


def test_diagonal_equals_the_preset_bit_for_bit(diagonal_preset):
    r = diagonal_preset
    rounds, times, levels = preset_rounds(r)
    assert len(rounds) >= 3, "the preset should have several jumps"
    a = agf.run("diagonal", r.data.x, r.data.y)  # default α and init: the preset's
    assert a.alpha == r.summary["alpha"] == 1e-12
    assert a.kappa == 2 and a.cost_minimizer == r.summary["agf_cost_minimizer"]
    # run.json stores f64 in shortest round-trip form: == is bitwise equality
    assert a.jump_times.tolist() == times
    assert a.levels.tolist() == levels
    assert a.feature_kind == "coordinate"
    assert a.feature.tolist() == r.summary["feature_order"]
    assert a.activated == [q["activated"] for q in rounds]
    assert a.deactivated == [q["deactivated"] for q in rounds]
    assert a.active == [q["active"] for q in rounds]
    assert a.stop == r.summary["agf_stop"]
    assert a.utility_steps.tolist() == [q["utility_steps"] for q in rounds]
    for block in ("u", "v"):
        np.testing.assert_array_equal(a.params_init[block], r.params_init[block])
        np.testing.assert_array_equal(a.params_final[block], r.arrays[f"params/agf_final/{block}.npy"])
    # β = u ⊙ v after each round, and the learned β is the staircase of the trajectory
    np.testing.assert_array_equal(a.beta[-1], a.params_final["u"] * a.params_final["v"])
    # each jump's direction is the unit (u_i, v_i) of the coordinate that activated
    for k, dirs in enumerate(a.directions):
        assert dirs.shape == (len(a.activated[k]), 2)
        np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, rtol=1e-12)


def test_diagonal_explicit_init_and_1d_targets(diagonal_preset):
    r = diagonal_preset
    a = agf.run("diagonal", r.data.x, r.data.y)
    b = agf.run("diagonal", r.data.x, r.data.y[:, 0], init=r.params_init)
    c = agf.run("diagonal", r.data.x, r.data.y, init=np.concatenate([r.params_init["u"], r.params_init["v"]]))
    assert b.alpha is None
    for other in (b, c):
        assert other.jump_times.tolist() == a.jump_times.tolist()
        assert other.levels.tolist() == a.levels.tolist()


def test_diagonal_options_take_effect(diagonal_preset):
    """Looser utility-ODE tolerances change the bits but not the first three jump times
    (they agree to ~4e-9 relative at rtol 1e-7 vs 1e-10). Rounds 4 and 5 are not compared:
    the neuron learned there must escape an unstable direction whose offset is below f64
    resolution, so those jump times move by ~1% with the tolerance (docs/agf.md)."""
    r = diagonal_preset
    ode = {"exact_quadratic": False}  # the utility ODE (the default phase is closed-form)
    a = agf.run("diagonal", r.data.x, r.data.y, options=ode)
    b = agf.run("diagonal", r.data.x, r.data.y, rtol=1e-7, atol=1e-9, options=ode)
    assert b.options["rtol"] == 1e-7 and a.options["rtol"] == 1e-10
    assert b.options["atol"] == 1e-9 and a.options["atol"] == 1e-12
    assert b.feature.tolist() == a.feature.tolist()
    assert b.utility_steps.sum() < a.utility_steps.sum()
    assert b.jump_times.tolist() != a.jump_times.tolist()
    np.testing.assert_allclose(b.jump_times[:3], a.jump_times[:3], rtol=2e-8)


def test_linear_equals_the_preset_bit_for_bit(linear_preset):
    r = linear_preset
    rounds, times, levels = preset_rounds(r)
    assert len(rounds) >= 4
    a = agf.run("linear", r.data.x, r.data.y, width=6, seed=r.seed)
    for block in ("W1", "W2"):
        np.testing.assert_array_equal(a.params_init[block], r.params_init[block])
    assert a.jump_times.tolist() == times
    assert a.levels.tolist() == levels
    assert a.feature_kind == "mode"
    assert a.feature.tolist() == r.summary["feature_order"]
    assert a.cost_minimizer == "linear_least_squares"
    # levels: ℓ^(k) = ½Σ_{i>k} s_i² for the teacher's singular values 3, 2, 1, 0.5
    s = np.array([3.0, 2.0, 1.0, 0.5])
    want = [0.5 * np.sum(s[k:] ** 2) for k in range(5)]
    np.testing.assert_allclose(a.levels[:5], want, rtol=1e-9, atol=1e-12)


def test_linear_other_seed_draws_another_init(linear_preset):
    r = linear_preset
    a = agf.run("linear", r.data.x, r.data.y, width=6, seed=1)
    assert not np.array_equal(a.params_init["W1"], r.params_init["W1"])
    assert a.feature.tolist()[:4] == [0, 1, 2, 3]  # modes still learned in order


def test_quadratic_modular_learns_the_largest_frequency_first():
    x, y, t = agf.modular_data({"kind": "fourier", "frequencies": [1, 2], "magnitudes": [6.0, 3.0]}, p=5)
    assert x.shape == (25, 10) and y.shape == (25, 5) and t.shape == (5,)
    a = agf.run("modular", x, y, width=4, alpha=1e-2, max_rounds=2)
    assert a.kappa == 3 and a.feature_kind == "frequency"
    assert a.rounds >= 1 and a.feature[0] == 1
    assert np.all(np.diff(a.levels) < 0)


def test_modular_data_equals_the_preset():
    r = featlab.run("agf-modular", overrides={"train.t_max": 1.0, "skip_agf": True}, png=False)
    cfg = r.config
    x, y, t = agf.modular_data(cfg["data"]["template"], p=cfg["data"]["p"], seed=r.seed)
    np.testing.assert_array_equal(x, r.data.x)
    np.testing.assert_array_equal(y, r.data.y)
    np.testing.assert_array_equal(t, r.arrays["data/template.npy"])


def test_modular_equals_the_preset_bit_for_bit():
    """agf-modular (p = 20, H = 18, α = 1e-2) with the horizon cut to t = 30 (the first
    frequency's cascade, five rounds): the same AGF from Python, with the preset's defaults
    (stiff cost phases on the restricted model included)."""
    r = featlab.run("agf-modular", overrides={"train.t_max": 30.0}, png=False)
    s = r.summary
    assert s["agf_rounds"] == 5
    a = agf.run("modular", r.data.x, r.data.y, width=18, seed=r.seed, t_max=30.0)
    for block in ("W1", "W2"):
        np.testing.assert_array_equal(a.params_init[block], r.params_init[block])
    assert a.jump_times.tolist() == [d["t_agf"] for d in s["drops"]]
    assert a.levels.tolist()[1:] == [d["loss_agf"] for d in s["drops"]]
    assert a.cost_stop == [c["stop"] for c in s["agf_cost_phases"]]
    assert a.cost_grad_norm.tolist() == [c["grad_norm"] for c in s["agf_cost_phases"]]
    assert a.stop == s["agf_stop"]
    assert a.feature.tolist() == [d["feature"] for d in s["drops"]] == [1] * 5


def test_attention_data_equals_the_preset():
    r = featlab.run("agf-attention", overrides={"train.t_max": 1.0, "alpha_series": [], "agf.max_rounds": 1}, png=False)
    x, y, _sigma = agf.attention_data(r.config["eigenvalues"], r.config["context"],
                                      seed=r.seed, trace=r.config["trace"])
    np.testing.assert_array_equal(x, r.data.x)
    np.testing.assert_array_equal(y, r.data.y)


def test_attention_equals_the_preset_bit_for_bit():
    """agf-attention (population loss, D = 4, N = 32, 5 heads, α = 1e-3) with the horizon
    cut to t = 200 (three jumps): the same AGF from Python, with the preset's defaults."""
    r = featlab.run("agf-attention", overrides={"train.t_max": 200.0, "alpha_series": []}, png=False)
    s = r.summary
    assert s["agf_rounds"] >= 3
    a = agf.run("attention", r.data.x, r.data.y, width=5, context=32, seed=r.seed, t_max=200.0)
    for block in ("v", "K", "Q"):
        np.testing.assert_array_equal(a.params_init[block], r.params_init[block])
    assert a.jump_times.tolist() == [d["t_agf"] for d in s["drops"]]
    assert a.levels.tolist() == s["levels_agf"]
    assert a.activated == s["agf_activated_heads"]
    assert a.utility_steps.tolist() == [w["utility_steps"] for w in s["agf_work"]]
    assert a.stop == s["agf_stop"]
    # PCs from the empirical query covariance are Σ's (the preset uses Σ itself)
    assert a.feature.tolist() == s["feature_order_agf"] == [1, 2, 3]


def test_attention_first_jump_learns_the_first_principal_component():
    x, y, sigma = agf.attention_data([1.0, 0.5, 0.25], context=8, trace=1.75)
    a = agf.run("attention", x, y, width=3, context=8, max_rounds=1)
    assert a.kappa == 3 and a.feature_kind == "principal_component"
    assert a.feature.tolist() == [1]
    assert a.params_init["K"].shape == (3, 3) and a.params_init["v"].shape == (3,)
    # the head's key aligns with the top eigenvector of Σ
    w, v = np.linalg.eigh(sigma)
    k = a.params_final["K"][a.activated[0][0]]
    assert abs(k @ v[:, -1]) / np.linalg.norm(k) > 0.99


def test_relu_runs_on_user_data_and_reports_neuron_directions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    y = np.maximum(x @ np.array([1.0, 0.0, 0.0]), 0.0) * 2.0
    a = agf.run("relu", x, y, width=4, alpha=1e-6, max_rounds=1, t_max=200.0)
    assert a.rounds == 1 and a.feature_kind == "neuron" and a.kappa == 2
    d = a.directions[0][0]
    assert d.shape == (4,)  # (w_i ∈ R³, a_i)
    # at the utility maximiser on the sphere a² + ‖w‖² = 1 the neuron is balanced, |a| = ‖w‖
    np.testing.assert_allclose(abs(d[3]), np.sqrt(0.5), rtol=1e-6)
    # and its input weights point at the teacher direction e_0 (finite-sample maximiser:
    # cosine 0.9926 measured)
    assert d[0] / np.linalg.norm(d[:3]) > 0.98
    # the cost phase (gradient flow on the active neuron) reports why it stopped
    assert len(a.cost_stop) == 1 and a.cost_stop[0] in {"gradient", "level", "budget"}
    assert a.cost_grad_norm.shape == a.cost_time.shape == a.cost_level_change.shape == (1,)
    assert a.cost_time[0] > 0
    if a.cost_stop[0] == "gradient":
        assert a.cost_grad_norm[0] <= a.cost_options["gtol"]


def test_closed_form_cost_phases_report_closed_form(diagonal_preset):
    r = diagonal_preset
    a = agf.run("diagonal", r.data.x, r.data.y)
    assert a.cost_stop == ["closed_form"] * a.rounds
    assert np.isnan(a.cost_grad_norm).all() and np.isnan(a.cost_time).all()


def test_staircase_helper():
    jt, lv = [1.0, 3.0], [4.0, 2.0, 1.0]
    np.testing.assert_array_equal(agf.staircase(jt, lv, [0.0, 0.999, 1.0, 2.5, 3.0, 9.0]),
                                  [4.0, 4.0, 2.0, 2.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="2 jump times need 3 levels"):
        agf.staircase(jt, lv[:2], [0.0])


# ---------------------------------------------------------------- bad inputs


def small_xy(n=10, d=3):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, d)), rng.standard_normal((n, 1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model="mlp"), "unknown model `mlp`"),
        (dict(model="linear"), 'needs `width`'),
        (dict(model="linear", width=0), "invalid configuration at `width`: must be ≥ 1"),
        (dict(model="diagonal", width=3), "leave `width` out"),
        (dict(model="linear", width=2, alpha=-1.0), "invalid configuration at `alpha`"),
        (dict(model="linear", width=2, alpha=5.0), "initial neuron norm in \\(0, 1\\)"),
        (dict(model="linear", width=2, options={"rtoll": 1e-3}), "`options.rtoll`"),
        (dict(model="linear", width=2, rtol=-1.0), "`options.rtol`: must be > 0"),
        (dict(model="linear", width=2, options={"threshold": "sometimes"}), "`options.threshold`"),
        (dict(model="relu", width=2, cost_options={"gtol": 0.0}), "`cost_options.gtol`: must be > 0"),
        (dict(model="linear", width=2, cost="newton"), "`cost`: `newton`"),
        (dict(model="linear", width=2, alpha=1e-3, init=np.zeros(8)), "either `alpha`"),
        (dict(model="linear", width=2, init=np.full(5, 1e-3)), "flat vector of the model's 8 parameters"),
        (dict(model="linear", width=2, init={"W1": np.full((2, 3), 1e-3)}), "block `W2` is missing"),
        (dict(model="linear", width=2, init={"W1": np.full((3, 2), 1e-3), "W2": np.full((1, 2), 1e-3)}),
         "init block `W1` has shape \\[3, 2\\]"),
        (dict(model="attention", width=2, context=4), "attention rows are"),
        (dict(model="attention", width=2), "needs `context`"),
        (dict(model="modular", width=2), "modular-addition data has 2p input"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    x, y = small_xy()
    with pytest.raises(ValueError, match=message):
        agf.run(x=x, y=y, **kwargs)


def test_bad_arrays_raise_value_error():
    x, y = small_xy()
    with pytest.raises(ValueError, match="x has 10 rows \\(samples\\) but y has 9"):
        agf.run("linear", x, y[:9], width=2)
    xn = x.copy()
    xn[2, 1] = np.nan
    with pytest.raises(ValueError, match="x\\[2, 1\\] = NaN is not finite"):
        agf.run("linear", xn, y, width=2)
    with pytest.raises(ValueError, match="x must be 2-D"):
        agf.run("linear", x[None], y, width=2)
    with pytest.raises(ValueError, match="one output, y has 2 columns"):
        agf.run("diagonal", x, np.hstack([y, y]))
    with pytest.raises(ValueError, match="needs the modulus `p`"):
        agf.modular_data({"kind": "one_hot"})
    with pytest.raises(ValueError, match="template.kind"):
        agf.modular_data({"kind": "square"}, p=5)


# ---------------------------------------------------------------- GIL, Ctrl-C


def long_call_args(max_steps):
    """One round of a diagonal-net AGF whose utility phase takes fixed steps of 2e-5 (the
    jump is at t ≈ 3.55: ~1.8e5 steps, about a second); the utility ODE, not the default
    closed-form phase."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 5))
    y = x @ np.array([3.0, -2.0, 1.0, 0.5, 0.25])
    return ("diagonal", x, y), dict(alpha=1e-3, max_rounds=1,
                                    options={"fixed_dt": 2e-5, "max_steps": max_steps,
                                             "exact_quadratic": False})


def test_gil_is_released_during_a_long_agf_call():
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    args, kwargs = long_call_args(10_000_000)
    th = threading.Thread(target=count)
    th.start()
    try:
        time.sleep(0.05)
        start = time.perf_counter()
        a = agf.run(*args, **kwargs)
        end = time.perf_counter()
    finally:
        stop.set()
        th.join()
    assert a.rounds == 1 and a.utility_steps[0] > 100_000
    # the fixed-step utility phase finds the adaptive run's jump time
    adaptive = agf.run(*args, alpha=1e-3, max_rounds=1)
    np.testing.assert_allclose(a.jump_times, adaptive.jump_times, rtol=1e-8)
    assert end - start > 0.2, "the call is too short to tell"
    during = [x for x in ticks if start < x < end]
    assert len(during) > 10_000, f"second thread made {len(during)} steps in {end - start:.2f} s"
    mid = [x for x in during if start + 0.25 * (end - start) < x < start + 0.75 * (end - start)]
    assert len(mid) > 1000


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_interrupts_a_long_agf_call():
    args, kwargs = long_call_args(10**15)
    kwargs["options"]["fixed_dt"] = 1e-12  # ~1e13 steps: days if not interrupted
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        agf.run(*args, **kwargs)
    elapsed = time.perf_counter() - start
    timer.cancel()
    assert elapsed < 5.0, f"took {elapsed:.1f} s to stop"
    # the library is usable again afterwards
    assert agf.run(*args, alpha=1e-3, max_rounds=1).jump_times[0] > 3.5


def test_progress_sink_gets_one_update_per_round(diagonal_preset):
    calls = []

    class Sink:
        def start(self, label, total):
            calls.append(("start", label, total))

        def update(self, done, msg):
            calls.append(("update", done, msg))

        def finish(self):
            calls.append(("finish",))

    r = diagonal_preset
    a = agf.run("diagonal", r.data.x, r.data.y, progress=Sink())
    assert calls[0] == ("start", "agf", a.options["max_rounds"])
    assert calls[-1] == ("finish",)
    dones = [c[1] for c in calls if c[0] == "update"]
    assert dones == sorted(dones) and dones[-1] <= a.rounds
