"""Reading a sweep directory written by ``featlab sweep`` (see docs/sweeps.md).

>>> df = featlab.load_sweep("sweeps/staircase")        # pandas DataFrame, one row per point
>>> p = featlab.load_sweep_point("sweeps/staircase", df.id[0])
>>> p.summary, p.trajectory["loss"], p.arrays.get("params/final/W1.npy")

Layout read here: ``results.csv`` (the merged table, written by ``featlab sweep`` or
``featlab sweep merge``), ``shards/shard-<i>-of-<n>.jsonl`` (one JSON record per point) and
``shards/shard-<i>-of-<n>.bin`` (the artifacts those records point into: ``.npy`` bytes and
SVG figures, by ``{name, offset, len}``). Old sweep directories (``points/<id>/``) are read
through :func:`featlab.load_run`.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Dict, List, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]


def load_sweep(dir: PathLike):
    """The merged results table of a sweep as a ``pandas.DataFrame``: columns ``id``,
    ``status`` (done/failed/missing), ``seed``, the varied keys, then every scalar summary
    field (as in results.csv). Needs pandas (``pip install pandas``); raises ImportError
    naming it otherwise, FileNotFoundError when the directory has no results.csv (run
    ``featlab sweep merge DIR`` after the shards finished)."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - exercised only without pandas
        raise ImportError(
            "featlab.load_sweep returns a pandas DataFrame: install pandas "
            "(pip install pandas), or read results.csv / results.parquet yourself"
        ) from e
    d = os.fspath(dir)
    path = os.path.join(d, "results.csv")
    if not os.path.exists(path):
        hint = (
            f"run `featlab sweep merge {d}` to build it"
            if os.path.exists(os.path.join(d, "sweep.json"))
            else "this is not a sweep directory (no sweep.json)"
        )
        raise FileNotFoundError(f"no results.csv in `{d}`: {hint}")
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    df.attrs["sweep_dir"] = d
    return df


class SweepPoint:
    """One point of a sweep: ``id``, ``status``, ``seed``, ``summary`` (dict),
    ``trajectory`` (column → float64 array, empty if not kept), ``tables``
    (name → column → array), ``arrays`` (relative name → numpy array, the kept
    ``params/…`` and ``data/…``), ``plots`` (name → SVG text), ``config`` (the resolved
    config when params or data were kept, else None), ``error`` (failed points)."""

    def __init__(self, record: Dict[str, Any], artifacts: Dict[str, bytes]):
        self.record = record
        self.id: str = record["id"]
        self.status: str = record["status"]
        self.seed: int = record.get("seed")
        self.summary: Dict[str, Any] = record.get("summary") or {}
        self.error: Optional[str] = record.get("error")
        self.config: Optional[Dict[str, Any]] = record.get("config")
        self.trajectory = _columns(record.get("trajectory"))
        self.tables = {k: _columns(v) for k, v in (record.get("tables") or {}).items()}
        self.arrays: Dict[str, np.ndarray] = {}
        self.plots: Dict[str, str] = {}
        for name, data in artifacts.items():
            if name.endswith(".npy"):
                self.arrays[name] = np.load(io.BytesIO(data), allow_pickle=False)
            elif name.startswith("plots/"):
                self.plots[name[len("plots/"):]] = data.decode("utf-8")

    @property
    def params_init(self) -> Dict[str, np.ndarray]:
        """Initial parameters by block name (``params/init/<name>.npy``), if kept."""
        return _block(self.arrays, "params/init/")

    @property
    def params_final(self) -> Dict[str, np.ndarray]:
        """Final parameters by block name (``params/final/<name>.npy``), if kept."""
        return _block(self.arrays, "params/final/")

    def __repr__(self) -> str:
        return f"SweepPoint({self.id!r}, status={self.status!r}, arrays={sorted(self.arrays)})"


def _block(arrays: Dict[str, np.ndarray], prefix: str) -> Dict[str, np.ndarray]:
    return {
        rel[len(prefix) : -len(".npy")]: a
        for rel, a in arrays.items()
        if rel.startswith(prefix) and rel.endswith(".npy") and "/" not in rel[len(prefix) :]
    }


def _columns(t: Optional[Dict[str, Any]]) -> Dict[str, np.ndarray]:
    if not t:
        return {}
    return {
        c: np.array([np.nan if x is None else x for x in v], dtype=np.float64)
        for c, v in zip(t["columns"], t["values"])
    }


def _shard_files(d: str) -> List[str]:
    s = os.path.join(d, "shards")
    if not os.path.isdir(s):
        return []
    return sorted(os.path.join(s, f) for f in os.listdir(s) if f.endswith(".jsonl"))


def load_sweep_point(dir: PathLike, id: str) -> SweepPoint:
    """Everything kept of point ``id`` (a value of the ``id`` column of
    :func:`load_sweep`). A ``done`` record wins over ``failed`` ones, as in featlab.
    Raises KeyError when the point has no record (not run yet)."""
    d = os.fspath(dir)
    found = None
    needle = json.dumps(id)
    for path in _shard_files(d):
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n") or needle.encode() not in line:
                    continue  # a torn last line, or another point
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("id") != id:
                    continue
                if found is None or found[0].get("status") != "done":
                    found = (rec, path)
        if found is not None and found[0].get("status") == "done":
            break
    if found is None:
        legacy = os.path.join(d, "points", id)
        if os.path.exists(os.path.join(legacy, "run.json")):
            from . import load_run

            r = load_run(legacy)
            rec = {"id": id, "status": "done", "seed": r.seed, "summary": r.summary,
                   "config": r.config,
                   "trajectory": {"columns": list(r.trajectory),
                                  "values": [list(v) for v in r.trajectory.values()]}}
            return SweepPoint(rec, {k: _npy_bytes(v) for k, v in r.arrays.items()})
        raise KeyError(f"point `{id}` has no record in `{d}` (not run yet, or not a point of this sweep)")
    rec, path = found
    artifacts: Dict[str, bytes] = {}
    refs = rec.get("artifacts") or []
    if refs:
        with open(path[: -len(".jsonl")] + ".bin", "rb") as f:
            for a in refs:
                f.seek(a["offset"])
                artifacts[a["name"]] = f.read(a["len"])
    return SweepPoint(rec, artifacts)


def _npy_bytes(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()
