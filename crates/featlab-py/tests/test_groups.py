"""featlab.groups: irreps and the group Fourier transform from the library, checked by
representation theory (Σd² = |G|, homomorphism, unitarity, Plancherel, inversion), against
numpy's FFT on cyclic groups, and against what the CLI's group presets write."""

import json
import subprocess

import numpy as np
import pytest

import featlab
from featlab import groups

def is_timing(key):
    """Wall and CPU clock readings (and ratios of them): they differ between any two runs."""
    return (key.endswith("_seconds") or "_seconds_" in key or "cpu" in key
            or key.startswith("agf_cost_fraction"))

# S4 from a 4-cycle and a transposition; Q8 (quaternionic 2-D irrep) as permutations of 8 points
S4_GENS = [[1, 2, 3, 0], [1, 0, 2, 3]]
Q8_GENS = [[2, 3, 1, 0, 6, 7, 5, 4], [4, 5, 7, 6, 1, 0, 2, 3]]


def all_groups():
    return {
        "C7": groups.cyclic(7),
        "C3xC4": groups.product(3, 4),
        "D5": groups.dihedral(5),
        "D4": groups.dihedral(4),
        "octahedral": groups.octahedral(),
        "A5": groups.icosahedral(),
        "S4 (generators)": groups.from_permutations(S4_GENS),
        "Q8 (generators)": groups.from_permutations(Q8_GENS),
        "C2 (table)": groups.from_table([[0, 1], [1, 0]]),
    }


@pytest.fixture(scope="module")
def gs():
    return all_groups()


def test_dimensions_sum_to_the_order(gs):
    for name, g in gs.items():
        assert sum(r.dim ** 2 for r in g.complex_irreps) == g.order, name
        assert sum(r.dim ** 2 / r.schur_index for r in g.real_irreps) == g.order, name
        assert g.real_irreps[0].dim == 1 and np.abs(g.real_irreps[0].character - 1.0).max() < 1e-12, name


def test_irreps_are_unitary_homomorphisms(gs):
    for name, g in gs.items():
        tab = g.table
        for irreps in (g.real_irreps, g.complex_irreps):
            for r in irreps:
                m = r.matrices
                assert m.shape == (g.order, r.dim, r.dim)
                eye = np.eye(r.dim)
                for a in range(g.order):
                    assert np.abs(m[a].conj().T @ m[a] - eye).max() < 1e-12, (name, r.name)
                    for b in range(g.order):
                        assert np.abs(m[a] @ m[b] - m[tab[a, b]]).max() < 1e-11, (name, r.name)
                assert np.abs(np.trace(m, axis1=1, axis2=2) - r.character).max() < 1e-12


def test_plancherel_and_inversion_on_random_signals(gs):
    rng = np.random.default_rng(0)
    for name, g in gs.items():
        x = rng.standard_normal(g.order)
        norm2 = float(x @ x)
        for real in (True, False):
            p = g.power_spectrum(x, real=real)
            assert abs(sum(p.values()) - norm2) < 1e-12 * norm2, (name, real)
            assert all(v >= 0 for v in p.values())
            back = g.inverse_fourier(g.fourier(x, real=real), real=real)
            assert np.abs(back - x).max() < 1e-12 * np.abs(x).max(), (name, real)


def test_cyclic_power_spectrum_is_numpy_fft():
    g = groups.cyclic(9)
    x = np.random.default_rng(1).standard_normal(9)
    fft_power = np.abs(np.fft.fft(x)) ** 2 / 9
    ours = np.array(list(g.power_spectrum(x, real=False).values()))
    assert np.allclose(np.sort(ours), np.sort(fft_power), rtol=0, atol=1e-12 * (x @ x))
    # real irreps k0..k4: k0 alone, k_j merges frequencies ±j
    real = g.power_spectrum(x)
    assert list(real) == ["k0", "k1", "k2", "k3", "k4"]
    for j in range(1, 5):
        assert abs(real[f"k{j}"] - fft_power[j] - fft_power[9 - j]) < 1e-12 * (x @ x)


def test_s4_from_generators_matches_the_octahedral_group(gs):
    s4, oh = gs["S4 (generators)"], gs["octahedral"]
    assert s4.order == oh.order == 24
    assert sorted(r.dim for r in s4.complex_irreps) == [1, 1, 2, 3, 3]
    assert sorted(r.dim for r in oh.complex_irreps) == [1, 1, 2, 3, 3]
    kinds = {r.kind for r in gs["Q8 (generators)"].real_irreps}
    assert "quaternionic" in kinds


def test_template_has_the_requested_power_per_real_irrep(gs):
    g = gs["A5"]
    want = {"3": 1300.0, "5": 100.0, "3'": 2000.0, "4": 600.0}
    x = g.template(want)
    p = g.power_spectrum(x)
    for name in g.real_names:
        assert abs(p[name] - want.get(name, 0.0)) < 1e-9 * 4000, name
    shifted = g.translate(7, x)
    assert np.array_equal(np.sort(shifted), np.sort(x))


def test_bad_input_is_a_value_error_naming_the_problem():
    g = groups.dihedral(3)
    with pytest.raises(ValueError, match="order 6"):
        g.power_spectrum(np.ones(5))
    with pytest.raises(ValueError, match="1-D"):
        g.fourier(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        g.power_spectrum(np.array([1, 2, np.nan, 0, 0, 0.0]))
    with pytest.raises(ValueError, match="no real irrep `k1`"):
        g.template({"k1": 1.0})
    with pytest.raises(ValueError, match="group"):
        groups.group({"kind": "dihedral", "n": 2})
    with pytest.raises(ValueError, match="inverse"):
        groups.from_table([[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="group"):
        groups.group({"kind": "nonsense"})
    with pytest.raises(ValueError, match="shape mismatch"):
        g.inverse_fourier([np.eye(1)], real=True)


def drop_timings(v):
    if isinstance(v, dict):
        return {k: drop_timings(x) for k, x in v.items() if not is_timing(k)}
    if isinstance(v, list):
        return [drop_timings(x) for x in v]
    return v


@pytest.mark.parametrize("preset", ["group-agf-d5", "group-rnn-c5"])
def test_group_presets_through_featlab_run_equal_the_cli(tmp_path, cli, preset):
    cli_dir, py_dir = tmp_path / "cli", tmp_path / "py"
    subprocess.run([cli, "run", preset, "--quick", "--out", str(cli_dir), "--quiet"], check=True)
    run = featlab.run(preset, quick=True, out=str(py_dir), png=False)
    npys = sorted(p.relative_to(cli_dir).as_posix() for p in cli_dir.rglob("*.npy"))
    assert "data/template.npy" in npys
    if preset == "group-rnn-c5":
        assert "params/final/W_out.npy" in npys
    for rel in npys + ["trajectory.csv"]:
        assert (cli_dir / rel).read_bytes() == (py_dir / rel).read_bytes(), rel
    cli_doc = json.loads((cli_dir / "run.json").read_text())
    py_doc = json.loads((py_dir / "run.json").read_text())
    assert drop_timings(py_doc) == drop_timings(cli_doc)
    assert run.summary["agreement"] and all("holds" in r for r in run.agreement)
    # the template the CLI trained on is featlab.groups' template for the preset's powers,
    # bit for bit, and its power spectrum is the preset's
    spec = run.config["data"]["group"]
    g = groups.group(spec)
    powers = run.config["data"]["powers"]
    template = np.load(cli_dir / "data/template.npy")
    assert g.template(powers).tobytes() == template.tobytes()
    p = g.power_spectrum(template)
    total = sum(powers.values())
    for name in g.real_names:
        assert abs(p[name] - powers.get(name, 0.0)) < 1e-10 * total, name
    # the learned-power columns are the real irreps' names
    assert {f"power_{n}".replace("'", "p") for n in g.real_names} <= set(run.trajectory)
