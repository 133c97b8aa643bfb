"""GIL release, Ctrl-C and progress (the calling overhead is a benchmark: examples/python/overhead.py)."""

import os
import signal
import threading
import time

import pytest

import featlab

from conftest import small_config


def long_config(steps):
    return small_config(steps=steps, lr=1e-3)


# threads=1 runs on the calling thread, threads=2 on the persistent pool: both paths
@pytest.mark.parametrize("threads", [1, 2])
def test_gil_is_released_during_a_run(threads):
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        start = time.perf_counter()
        r = featlab.run(long_config(20000), threads=threads)
        end = time.perf_counter()
    finally:
        stop.set()
        t.join()
    during = [x for x in ticks if start < x < end]
    assert end - start > 0.1, "the run is too short to tell"
    # holding the GIL for the whole run would leave the counter at (almost) zero: it would
    # only run during the brief switches before and after the native call
    assert len(during) > 10_000, f"second thread made {len(during)} steps in {end - start:.2f} s"
    # and the ticks are spread over the whole run, not bunched at its start or end
    mid = [x for x in during if start + 0.25 * (end - start) < x < start + 0.75 * (end - start)]
    assert len(mid) > 1000
    assert r.summary["steps"] == 20000


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_interrupts_between_steps(threads):
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        featlab.run(long_config(100_000_000), threads=threads)  # hours if not interrupted
    elapsed = time.perf_counter() - start
    timer.cancel()
    assert elapsed < 5.0, f"took {elapsed:.1f} s to stop"
    # the library is usable again afterwards
    assert featlab.run(small_config(steps=5)).summary["steps"] == 5


class Recorder:
    def __init__(self):
        self.calls = []

    def start(self, label, total):
        self.calls.append(("start", label, total))

    def update(self, done, msg):
        self.calls.append(("update", done, msg))

    def finish(self):
        self.calls.append(("finish",))


@pytest.mark.parametrize("threads", [1, 2])
def test_progress_sink_receives_start_updates_finish(threads):
    rec = Recorder()
    featlab.run(long_config(200_000), progress=rec, threads=threads)
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert rec.calls[0][1] == "gd" and rec.calls[0][2] == 1000
    dones = [c[1] for c in rec.calls if c[0] == "update"]
    # the bar is drawn every 0.1 s during the run (≈ 1 s here) and at its end
    assert len(dones) >= 2, rec.calls
    assert dones == sorted(dones) and dones[-1] == 1000


def test_progress_true_runs_and_silent_by_default(capfd):
    featlab.run(small_config(steps=50))
    assert capfd.readouterr().err == ""
    featlab.run(small_config(steps=50), progress=True)  # tqdm or the stderr line


@pytest.mark.parametrize("threads", [1, 2])
def test_progress_errors_cancel_the_run(threads):
    class Boom(Recorder):
        def update(self, done, msg):
            raise RuntimeError("boom from the progress sink")

    with pytest.raises(RuntimeError, match="boom"):
        featlab.run(long_config(100_000_000), progress=Boom(), threads=threads)
