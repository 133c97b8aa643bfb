"""examples/python/staircase.py runs headless and writes its figure."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python" / "staircase.py"


def test_staircase_example_runs_headless(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("DISPLAY", None)
    p = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path / "st")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "drop times, gradient flow" in p.stdout
    assert (tmp_path / "st" / "run.json").exists()
    if importlib.util.find_spec("matplotlib") is not None:
        png = tmp_path / "st" / "staircase-matplotlib.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in p.stdout


AGF_EXAMPLE = EXAMPLE.parent / "agf.py"


def test_agf_example_runs_headless(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("DISPLAY", None)
    p = subprocess.run([sys.executable, str(AGF_EXAMPLE), str(tmp_path / "agf")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "coordinates learned:" in p.stdout and "modes learned [0, 1, 2, 3" in p.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        png = tmp_path / "agf" / "agf-matplotlib.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in p.stdout
