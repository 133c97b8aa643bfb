"""featlab from Python: the same runs as the ``featlab`` CLI, numpy in and out.

>>> import featlab
>>> r = featlab.run("staircase", seed=0)          # exact gradient flow, f64, seeded
>>> r.summary["drop_times"]                         # when each singular mode is learned
>>> r.trajectory["t"], r.trajectory["loss"]         # 1-D float64 arrays
>>> r.params_final["W1"].shape                      # (width, d)

Conventions (as in the CLI and run.json):

* time ``t`` is gradient-flow time, ``t = lr × steps`` for discrete methods;
* the MSE loss is ``L = (1/2n) Σ_i ‖f(x_i) − y_i‖²``;
* for a linear student on a whitened linear teacher with singular values
  ``s_1 > s_2 > …`` the plateau levels are ``ℓ_k = ½ Σ_{i>k} s_i²`` (Saxe et al. 2014;
  AGF, Kunin et al. 2025) and the drop times are the first crossings of
  ``(ℓ_{k−1} + ℓ_k)/2``.

The science also runs on numpy arrays: :mod:`featlab.agf` (Alternating Gradient Flows on
your data: jump times, plateau levels, learned features), :mod:`featlab.nfa`,
:mod:`featlab.exact_linear_1d`, :mod:`featlab.groups` (finite groups, irreps, group
Fourier transform and power spectra).

Errors are Python exceptions carrying the CLI's message: ``ValueError`` for a bad config
(the message names the key), ``FileNotFoundError`` for a missing file or run directory,
``featlab.DivergenceError`` (a ``RuntimeError``) when training produces a non-finite loss
or parameter, ``KeyboardInterrupt`` when Ctrl-C stops a run between two steps.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

from . import _featlab, agf, exact_linear_1d, groups, nfa
from ._featlab import DivergenceError, __version__
from .sweep import SweepPoint, load_sweep, load_sweep_point

__all__ = [
    "run",
    "load_run",
    "load_sweep",
    "load_sweep_point",
    "SweepPoint",
    "presets",
    "show",
    "preset_config",
    "Run",
    "Data",
    "DivergenceError",
    "exact_linear_1d",
    "nfa",
    "agf",
    "groups",
    "__version__",
]

PathLike = Union[str, "os.PathLike[str]"]


class Data(NamedTuple):
    """The training set actually used: ``x`` (n × d) and ``y`` (n × c), float64."""

    x: np.ndarray
    y: np.ndarray


class Run:
    """One run's results, from :func:`run` or :func:`load_run`.

    Attributes
    ----------
    summary : dict
        run.json ``summary`` (drop times, theory levels, gradient evaluations, ...);
        non-finite numbers are ``None`` as in run.json.
    config : dict
        The fully resolved config (every default filled in): pass it back to
        :func:`run` to repeat the run.
    trajectory : dict[str, numpy.ndarray]
        trajectory.csv as columns, in file order: ``t`` first, then ``loss``, per-block
        norms ``norm_<block>`` (Frobenius), reference-method and ``*_theory`` columns.
    params_init, params_final : dict[str, numpy.ndarray]
        Parameters by block name (``W1`` [m, d], ``b1`` [m], ``W2`` [c, m], ...).
    data : Data
        ``x`` and ``y`` of the training set.
    arrays : dict[str, numpy.ndarray]
        Every array of the run by its relative path (``data/x.npy``,
        ``params/final/W1.npy``, ...).
    tables : dict[str, dict[str, numpy.ndarray]]
        Extra CSV tables of the experiment (``<name>.csv``), as columns.
    seed : int
    preset, experiment : str
    notes : list[str]
    wall_seconds : float
        Time of the run itself (as in run.json; excludes writing files).
    out : str or None
        The output directory, when the run was written to disk.
    """

    def __init__(self, raw: Mapping[str, Any]):
        doc = json.loads(raw["run_json"])
        self.run_json: Dict[str, Any] = doc
        self.summary: Dict[str, Any] = doc.get("summary", {})
        #: Theory vs experiment, one dict per compared quantity: ``quantity``, ``theory``,
        #: ``experiment``, ``rel_error``, ``tolerance``, ``holds`` (run.json
        #: ``summary.agreement``).
        self.agreement: List[Dict[str, Any]] = list(self.summary.get("agreement", []))
        self.config: Dict[str, Any] = doc.get("config", {})
        self.seed: int = doc.get("seed")
        self.preset: str = doc.get("preset", "")
        self.experiment: str = doc.get("experiment", "")
        self.notes: List[str] = doc.get("notes", [])
        self.wall_seconds: float = doc.get("wall_seconds")
        self.featlab_version: str = doc.get("featlab_version", "")
        self.trajectory: Dict[str, np.ndarray] = dict(raw["trajectory"])
        self.arrays: Dict[str, np.ndarray] = dict(raw["arrays"])
        self.tables: Dict[str, Dict[str, np.ndarray]] = {
            k: dict(v) for k, v in raw["tables"].items()
        }
        out = raw.get("out")
        self.out: Optional[str] = None if out is None else os.fspath(out)
        self.params_init = self._params("params/init/")
        self.params_final = self._params("params/final/")
        x, y = self.arrays.get("data/x.npy"), self.arrays.get("data/y.npy")
        self.data: Optional[Data] = None if x is None or y is None else Data(x, y)

    def _params(self, prefix: str) -> Dict[str, np.ndarray]:
        return {
            rel[len(prefix) : -len(".npy")]: a
            for rel, a in self.arrays.items()
            if rel.startswith(prefix) and rel.endswith(".npy") and "/" not in rel[len(prefix) :]
        }

    def to_pandas(self):
        """The trajectory as a ``pandas.DataFrame`` (one row per recorded time).

        Raises ImportError when pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Run.to_pandas() needs pandas: pip install pandas "
                "(Run.trajectory has the same columns as numpy arrays)"
            ) from e
        return pd.DataFrame(self.trajectory)

    def __repr__(self) -> str:
        rows = len(self.trajectory.get("t", ()))
        where = f", out={self.out!r}" if self.out else ""
        return (
            f"<featlab.Run {self.preset!r} experiment={self.experiment!r} seed={self.seed} "
            f"rows={rows} wall={self.wall_seconds:.3g}s{where}>"
        )


class _TqdmProgress:
    """Progress sink drawing a tqdm bar (``tqdm.auto``: a widget in Jupyter)."""

    def __init__(self, tqdm):
        self._tqdm = tqdm
        self._bar = None

    def start(self, label: str, total: int) -> None:
        self._bar = self._tqdm(
            total=total,
            desc=label,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}",
        )

    def update(self, done: int, msg: str) -> None:
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(msg, refresh=False)
            self._bar.refresh()

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _LineProgress:
    """Progress sink writing one rewritten line to stderr (when tqdm is missing)."""

    def __init__(self, stream=None):
        self._stream = stream or sys.stderr
        self._label = ""
        self._total = 1

    def start(self, label: str, total: int) -> None:
        self._label, self._total = label, max(total, 1)
        self.update(0, "")

    def update(self, done: int, msg: str) -> None:
        pct = 100.0 * done / self._total
        self._stream.write(f"\r{self._label}: {pct:5.1f}% {msg}\x1b[K")
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def _progress_sink(progress: Any):
    if progress is False or progress is None:
        return None
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _LineProgress()
        return _TqdmProgress(tqdm)
    return progress  # any object with start/update/finish


def run(
    config: Union[str, "os.PathLike[str]", Mapping[str, Any]],
    overrides: Optional[Mapping[str, Any]] = None,
    out: Optional[PathLike] = None,
    seed: Optional[int] = None,
    progress: Any = False,
    *,
    threads: int = 1,
    png: bool = True,
    quick: bool = False,
) -> Run:
    """Run a preset, a TOML config file or a config dict: the same run as
    ``featlab run CONFIG [--set k=v]... [--seed N] [--out DIR]``, bitwise.

    Parameters
    ----------
    config
        A preset name (see :func:`presets`), a path to a TOML file, or a dict with the
        TOML's structure (e.g. ``featlab.preset_config("staircase")`` edited).
    overrides
        Dotted keys as for ``--set``: ``{"model.width": 32, "train.lr": 1e-3,
        "data.teacher.singular_values": [3, 1]}``. Values are Python bool/int/float/str/
        list/dict (numpy scalars and arrays too); sections must exist, unknown keys are
        rejected naming the key.
    out
        Write the CLI's output directory there (run.json, trajectory.csv, data/*.npy,
        params/*/*.npy, plots/*.svg|png, report.html).
    seed
        Override the config's seed (every random stream derives from it).
    progress
        ``True`` shows a progress bar (tqdm if installed, else a line on stderr); an
        object with ``start(label, total)``, ``update(done, msg)``, ``finish()`` receives
        the progress instead.
    threads
        Threads for the run's matrix products; results do not depend on it.
    png
        With ``out``: also render PNG plots (SVG always).
    quick
        Use the preset's quick settings (its ``[quick]`` table, merged before
        ``overrides``), as ``featlab run --quick``.

    The run happens with the GIL released (other Python threads keep running); Ctrl-C
    stops it between two training steps and raises ``KeyboardInterrupt``.
    """
    if isinstance(config, os.PathLike):
        config = os.fspath(config)
    if out is not None:
        out = os.fspath(out)
    if overrides is not None and not isinstance(overrides, dict):
        overrides = dict(overrides)
    if config is not None and not isinstance(config, (str, dict)) and isinstance(config, Mapping):
        config = dict(config)
    raw = _featlab.run(
        config,
        overrides,
        out,
        seed,
        threads,
        png,
        _progress_sink(progress),
        quick,
    )
    return Run(raw)


def load_run(dir: PathLike) -> Run:
    """Load a run directory written by ``featlab run --out DIR``, an old-layout sweep
    point (``points/<id>/``; for current sweeps use :func:`load_sweep_point`), or
    ``featlab.run(..., out=DIR)``: run.json, trajectory.csv, every ``*.npy`` (by relative
    path) and the extra ``*.csv`` tables. Raises FileNotFoundError when ``dir`` or its
    run.json is missing, ValueError for a malformed file."""
    return Run(_featlab.load_run(os.fspath(dir)))


def presets() -> List[Tuple[str, str]]:
    """``(name, description)`` of every built-in preset, sorted by name."""
    return _featlab.presets()


def show(name: str) -> str:
    """The TOML text of a preset (what ``featlab show NAME`` prints)."""
    return _featlab.show(name)


def preset_config(name: str) -> Dict[str, Any]:
    """A preset's config as a dict, to edit and pass to :func:`run`."""
    return json.loads(_featlab.toml_to_json(_featlab.show(name), f"preset `{name}`"))
