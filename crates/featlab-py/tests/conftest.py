"""Shared fixtures: the CLI binary (FEATLAB_CLI, set by scripts/test-python.sh) and one
staircase run written by both the CLI and featlab.run for the round-trip tests."""

import os
import subprocess

import pytest

import featlab


def cli_path():
    path = os.environ.get("FEATLAB_CLI")
    if not path or not os.path.exists(path):
        pytest.skip("FEATLAB_CLI is not set to the featlab binary (scripts/test-python.sh sets it)")
    return path


@pytest.fixture(scope="session")
def cli():
    return cli_path()


@pytest.fixture(scope="session")
def staircase_dirs(tmp_path_factory, cli):
    """(cli_dir, python_dir, run): `featlab run staircase --seed 0` and
    `featlab.run("staircase", seed=0, out=...)`."""
    base = tmp_path_factory.mktemp("staircase")
    cli_dir, py_dir = base / "cli", base / "py"
    subprocess.run(
        [cli, "run", "staircase", "--seed", "0", "--out", str(cli_dir), "--quiet"],
        check=True,
    )
    run = featlab.run("staircase", seed=0, out=str(py_dir))
    return cli_dir, py_dir, run


def small_config(steps=1000, method="gd", lr=0.01):
    """A small two-layer ReLU net trained by `steps` steps of `method` (t_max = lr × steps)."""
    return {
        "experiment": "train",
        "seed": 3,
        "model": {"kind": "two_layer", "width": 16, "activation": "relu", "init_scale": 0.5},
        "data": {
            "kind": "gaussian",
            "n": 128,
            "d": 8,
            "teacher": {"kind": "linear", "singular_values": [2.0, 1.0], "outputs": 2},
        },
        "train": {
            "method": method,
            "lr": lr,
            "t_max": lr * steps,
            "record": {"kind": "linear", "points": 101},
        },
    }
