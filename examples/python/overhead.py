"""Calling overhead of featlab.run for a 1000-step run (the numbers in docs/python.md).

    python examples/python/overhead.py [PATH_TO_FEATLAB_CLI]

Times `featlab.run` (Python perf_counter around the call) against the run's own
`wall_seconds` (the library's time for data, init and training), the fixed cost of a 1-step
run, and — when the CLI binary is given — `featlab run` on the same config (run.json
`wall_seconds` and the process wall time).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import featlab

TOML = """experiment = "train"
seed = 3

[model]
kind = "two_layer"
width = 16
activation = "relu"
init_scale = 0.5

[data]
kind = "gaussian"
n = 128
d = 8

[data.teacher]
kind = "linear"
singular_values = [2.0, 1.0]
outputs = 2

[train]
method = "gd"
lr = 0.01
t_max = {t_max}
record = {{ kind = "linear", points = 101 }}
"""


def config(steps):
    text = TOML.format(t_max=0.01 * steps)
    return json.loads(featlab._featlab.toml_to_json(text, "overhead")), text


def main(cli=None, calls=60):
    med = statistics.median
    cfg, text = config(1000)
    featlab.run(cfg)  # warm up
    rows = []
    for _ in range(calls):
        t0 = time.perf_counter()
        r = featlab.run(cfg)
        rows.append((time.perf_counter() - t0, r.wall_seconds))
        assert r.summary["steps"] == 1000
    total, wall = [a for a, _ in rows], [b for _, b in rows]
    ovh = [a - b for a, b in rows]
    rel = [(a - b) / b for a, b in rows]
    print(f"featlab.run, {calls} calls: total median {med(total) * 1e3:.2f} ms; "
          f"wall_seconds median {med(wall) * 1e3:.2f} ms, best {min(wall) * 1e3:.2f} ms")
    print(f"overhead total - wall: median {med(ovh) * 1e3:.3f} ms ({100 * med(rel):.2f}%), "
          f"best {min(ovh) * 1e3:.3f} ms ({100 * min(rel):.2f}%), "
          f"90th percentile {sorted(ovh)[int(0.9 * calls)] * 1e3:.3f} ms")
    one, _ = config(1)
    fixed = []
    for _ in range(100):
        t0 = time.perf_counter()
        r = featlab.run(one)
        fixed.append(time.perf_counter() - t0 - r.wall_seconds)
    print(f"fixed overhead (1-step run): median {med(fixed) * 1e3:.3f} ms, best {min(fixed) * 1e3:.3f} ms")
    if cli:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "small.toml")
            with open(path, "w") as f:
                f.write(text)
            proc, walls = [], []
            for i in range(15):
                out = os.path.join(tmp, f"out{i}")
                t0 = time.perf_counter()
                subprocess.run([cli, "run", path, "--out", out, "--quiet", "--no-png"], check=True)
                proc.append(time.perf_counter() - t0)
                with open(os.path.join(out, "run.json")) as f:
                    walls.append(json.load(f)["wall_seconds"])
        print(f"CLI, 15 runs: run.json wall_seconds median {med(walls) * 1e3:.2f} ms, "
              f"best {min(walls) * 1e3:.2f} ms; process wall median {med(proc) * 1e3:.1f} ms")


if __name__ == "__main__":
    main(*sys.argv[1:2])
