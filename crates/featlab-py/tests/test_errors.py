"""Bad inputs raise the right Python exception, with the CLI's message."""

import subprocess

import pytest

import featlab

from conftest import cli_path, small_config


def cli_error(*args):
    """The CLI's error message (stderr without the `error: ` prefix) for `featlab run ARGS`."""
    p = subprocess.run([cli_path(), "run", *args, "--quiet", "--no-png", "--out", "/nonexistent-never-written"],
                       capture_output=True, text=True)
    assert p.returncode == 1, p
    line = p.stderr.strip()
    assert line.startswith("error: ")
    return line[len("error: "):]


def test_unknown_preset_is_value_error_with_cli_message():
    with pytest.raises(ValueError) as e:
        featlab.run("no_such_preset")
    assert "neither a config file nor a preset" in str(e.value)
    assert str(e.value) == cli_error("no_such_preset")


def test_missing_config_file_is_file_not_found(tmp_path):
    path = str(tmp_path / "missing.toml")
    with pytest.raises(FileNotFoundError) as e:
        featlab.run(path)
    assert "missing.toml" in str(e.value)
    assert str(e.value) == cli_error(path)


def test_unknown_key_names_the_key_like_the_cli():
    with pytest.raises(ValueError) as e:
        featlab.run("staircase", overrides={"model.widht": 3})
    assert "model.widht" in str(e.value)
    assert str(e.value) == cli_error("staircase", "--set", "model.widht=3")


def test_wrong_type_names_the_key():
    with pytest.raises(ValueError) as e:
        featlab.run("staircase", overrides={"model.width": "wide"})
    assert "model.width" in str(e.value)
    assert str(e.value) == cli_error("staircase", "--set", "model.width=wide").replace(
        "model.width=wide", 'model.width="wide"')


def test_missing_section_and_bad_values():
    with pytest.raises(ValueError, match="nosuch"):
        featlab.run("staircase", overrides={"nosuch.key": 1})
    with pytest.raises(ValueError, match="train.lr"):
        featlab.run(small_config(), overrides={"train.lr": -1.0})
    with pytest.raises(ValueError, match="experiment"):
        featlab.run({"experiment": "nope"})
    with pytest.raises(ValueError, match="threads"):
        featlab.run(small_config(steps=1), threads=0)


def test_python_values_that_are_not_config_values():
    with pytest.raises(TypeError, match="None"):
        featlab.run("staircase", overrides={"model.width": None})
    with pytest.raises(TypeError, match="model.width"):
        featlab.run("staircase", overrides={"model.width": object()})
    with pytest.raises(TypeError):
        featlab.run(42)
    with pytest.raises(ValueError, match="64 bits"):
        featlab.run("staircase", overrides={"model.width": 2**70})


def test_bad_toml_file_names_file_and_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[model\nwidth = 3\n")
    with pytest.raises(ValueError) as e:
        featlab.run(p)  # os.PathLike accepted
    assert "bad.toml" in str(e.value) and "line" in str(e.value)


def test_divergence_raises_divergence_error():
    with pytest.raises(featlab.DivergenceError) as e:
        featlab.run(small_config(steps=1000, lr=50.0))
    assert isinstance(e.value, RuntimeError)
    assert "diverged" in str(e.value) and "non-finite" in str(e.value)


def test_load_run_missing_directory_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directory"):
        featlab.load_run(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="run.json"):
        featlab.load_run(tmp_path)


def test_load_run_bad_npy_is_value_error(tmp_path):
    r = featlab.run(small_config(steps=5), out=tmp_path / "r", png=False)
    (tmp_path / "r" / "params" / "final" / "W1.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match="W1.npy"):
        featlab.load_run(r.out)
