"""featlab.run reproduces the CLI bit for bit, and load_run reads what both write."""

import json

import numpy as np
import pytest

import featlab

from conftest import small_config

TIMING_KEYS = {"wall_seconds", "train_seconds"}


def files(d, pattern):
    return sorted(p.relative_to(d).as_posix() for p in d.rglob(pattern))


def drop_timings(v):
    """run.json without the timing fields (the only values that differ between runs)."""
    if isinstance(v, dict):
        return {k: drop_timings(x) for k, x in v.items() if k not in TIMING_KEYS}
    if isinstance(v, list):
        return [drop_timings(x) for x in v]
    return v


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_output_files_identical_to_cli(staircase_dirs):
    cli_dir, py_dir, _ = staircase_dirs
    npys = files(cli_dir, "*.npy")
    assert "data/x.npy" in npys and "params/final/W1.npy" in npys
    assert files(py_dir, "*.npy") == npys
    for rel in npys + ["trajectory.csv"]:
        assert (cli_dir / rel).read_bytes() == (py_dir / rel).read_bytes(), rel
    assert files(py_dir, "*.svg") == files(cli_dir, "*.svg") != []
    assert files(py_dir, "*.png") == files(cli_dir, "*.png")
    assert (py_dir / "report.html").exists()
    cli_doc = json.loads((cli_dir / "run.json").read_text())
    py_doc = json.loads((py_dir / "run.json").read_text())
    assert drop_timings(py_doc) == drop_timings(cli_doc)


def test_in_memory_arrays_equal_cli_npy(staircase_dirs):
    cli_dir, _, run = staircase_dirs
    for rel, a in run.arrays.items():
        assert same_bits(a, np.load(cli_dir / rel)), rel
    assert same_bits(run.params_final["W1"], np.load(cli_dir / "params/final/W1.npy"))
    assert same_bits(run.data.x, np.load(cli_dir / "data/x.npy"))
    csv = np.genfromtxt(cli_dir / "trajectory.csv", delimiter=",", names=True)
    assert list(run.trajectory) == list(csv.dtype.names)
    for col, values in run.trajectory.items():
        assert same_bits(values, csv[col]), col


def test_run_object_shapes_and_metadata(staircase_dirs):
    _, py_dir, run = staircase_dirs
    # staircase: two-layer linear net, width 16, d = 8, 4 outputs, n = 256
    assert run.params_init["W1"].shape == (16, 8)
    assert run.params_final["W2"].shape == (4, 16)
    assert set(run.params_final) == {"W1", "W2"}
    x, y = run.data
    assert x.shape == (256, 8) and y.shape == (256, 4) and x.dtype == np.float64
    assert run.seed == 0 and run.preset == "staircase" and run.experiment == "train"
    assert run.out == str(py_dir)
    assert run.config["model"]["width"] == 16 and run.config["train"]["method"] == "flow"
    t, loss = run.trajectory["t"], run.trajectory["loss"]
    assert t.ndim == 1 and len(t) == len(loss) == 3001 and t[0] == 0.0 and t[-1] == 25.0
    assert run.summary["drops_observed"] == 4
    assert run.summary["levels_theory"] == [10.625, 2.625, 0.625, 0.125, 0.0]
    assert "featlab.Run" in repr(run)


def test_load_run_reads_cli_output_exactly(staircase_dirs):
    cli_dir, _, run = staircase_dirs
    loaded = featlab.load_run(cli_dir)
    assert sorted(loaded.arrays) == sorted(run.arrays)
    for rel in run.arrays:
        assert same_bits(loaded.arrays[rel], run.arrays[rel]), rel
    assert list(loaded.trajectory) == list(run.trajectory)
    for col in run.trajectory:
        assert same_bits(loaded.trajectory[col], run.trajectory[col]), col
    assert drop_timings(loaded.summary) == drop_timings(run.summary)
    assert loaded.config == run.config and loaded.seed == 0
    assert loaded.out == str(cli_dir)
    assert same_bits(loaded.params_final["W1"], run.params_final["W1"])


def test_to_pandas(staircase_dirs):
    pd = pytest.importorskip("pandas")
    _, _, run = staircase_dirs
    df = run.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(run.trajectory)
    assert same_bits(df["loss"].to_numpy(), run.trajectory["loss"])


def test_overrides_dict_config_and_preset_config_agree():
    over = {"model.width": 4, "train.t_max": 2.0, "reference.lr": 0.01, "data.n": 64}
    a = featlab.run("staircase", overrides=over)
    cfg = featlab.preset_config("staircase")
    cfg["model"]["width"] = 4
    cfg["train"]["t_max"] = 2.0
    cfg["reference"]["lr"] = 0.01
    cfg["data"]["n"] = 64
    b = featlab.run(cfg)
    assert a.params_final["W1"].shape == (4, 8)
    assert a.config == b.config
    for rel in a.arrays:
        assert same_bits(a.arrays[rel], b.arrays[rel]), rel
    assert b.preset == "dict"
    # the resolved config reproduces the run
    c = featlab.run(a.config)
    assert same_bits(c.params_final["W1"], a.params_final["W1"])


def test_numpy_values_in_overrides():
    a = featlab.run(small_config(steps=10), overrides={"model.width": np.int64(5), "train.lr": np.float64(0.02),
                                                      "data.teacher.singular_values": np.array([3.0, 1.0])})
    assert a.params_final["W1"].shape == (5, 8)
    assert a.config["train"]["lr"] == 0.02
    assert a.config["data"]["teacher"]["singular_values"] == [3.0, 1.0]


def test_seed_changes_the_run_and_is_reproducible():
    a = featlab.run(small_config(steps=10), seed=1)
    b = featlab.run(small_config(steps=10), seed=1)
    c = featlab.run(small_config(steps=10), seed=2)
    assert a.seed == 1 and c.seed == 2
    assert same_bits(a.data.x, b.data.x) and same_bits(a.params_final["W1"], b.params_final["W1"])
    assert not np.array_equal(a.data.x, c.data.x)


def test_thread_count_does_not_change_results():
    a = featlab.run(small_config(steps=50), threads=1)
    b = featlab.run(small_config(steps=50), threads=2)
    for rel in a.arrays:
        assert same_bits(a.arrays[rel], b.arrays[rel]), rel


def test_presets_and_show():
    names = dict(featlab.presets())
    assert "staircase" in names and "staircase" in names["staircase"].lower() or names["staircase"]
    assert 'experiment = "train"' in featlab.show("staircase")
    with pytest.raises(ValueError, match="no preset named"):
        featlab.show("nope")


def _small_sweep(tmp_path, cli, save=""):
    import subprocess

    spec = tmp_path / "sweep.toml"
    spec.write_text(
        'base = "staircase"\nseed = 7\nunset = ["reference"]\n'
        '[set]\n"train.t_max" = 1.0\n"data.n" = 32\n'
        '[grid]\n"model.width" = [2, 3]\n' + save
    )
    out = tmp_path / "sw"
    subprocess.run([cli, "sweep", str(spec), "--out", str(out), "--jobs", "1", "--quiet", "--no-png"],
                   check=True)
    return out


def test_sweep_points_are_read_from_the_shard_files_and_their_config_reproduces_them(tmp_path, cli):
    out = _small_sweep(tmp_path, cli)
    assert not (out / "points").exists()
    ids = sorted(json.loads(l)["id"] for l in (out / "shards" / "shard-0-of-1.jsonl").read_text().splitlines())
    assert len(ids) == 2
    widths = []
    for id in ids:
        p = featlab.load_sweep_point(out, id)
        assert p.status == "done" and p.error is None
        widths.append(p.params_final["W1"].shape[0])
        again = featlab.run(p.config)  # the point's resolved config, seed included
        assert sorted(again.arrays) == sorted(p.arrays)
        for rel in p.arrays:
            assert same_bits(again.arrays[rel], p.arrays[rel]), (id, rel)
        assert sorted(again.trajectory) == sorted(p.trajectory)
        for col in p.trajectory:
            assert same_bits(again.trajectory[col], p.trajectory[col]), (id, col)
        assert p.summary["final_loss"] == again.summary["final_loss"]
    assert sorted(widths) == [2, 3]
    with pytest.raises(KeyError, match="no record"):
        featlab.load_sweep_point(out, "nope")


def test_load_sweep_returns_the_merged_table(tmp_path, cli):
    pd = pytest.importorskip("pandas")
    out = _small_sweep(tmp_path, cli, save='[save]\nparams = { "model.width" = [3] }\ndata = false\n')
    df = featlab.load_sweep(out)
    assert isinstance(df, pd.DataFrame)
    assert list(df["model.width"]) == [2, 3]
    assert list(df["status"]) == ["done", "done"]
    assert df["model.width"].dtype.kind == "i" and df["final_loss"].dtype.kind == "f"
    for _, row in df.iterrows():
        p = featlab.load_sweep_point(out, row["id"])
        assert p.summary["final_loss"] == row["final_loss"]
        # [save]: params only for width 3, no data, trajectory always.
        assert bool(p.params_final) == (row["model.width"] == 3)
        assert not any(k.startswith("data/") for k in p.arrays)
        assert len(p.trajectory["t"]) > 1
    with pytest.raises(FileNotFoundError, match="sweep merge"):
        (out / "results.csv").unlink()
        featlab.load_sweep(out)
