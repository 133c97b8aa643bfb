//! Running a library job from Python: the GIL released while it runs, Ctrl-C and the
//! progress bar served between steps, library errors and panics turned into Python
//! exceptions.
//!
//! With one thread (the default) the job runs on the calling thread itself: no thread
//! hand-off, whose wake-up and cold caches cost 0.05–0.1 ms of a 7.5 ms run (measured with
//! examples/python/overhead.py). The training loop asks its [`Interrupt`] before every step;
//! [`Poller`] answers from an atomic flag and, about every [`POLL`], takes the GIL back
//! for a moment to run `PyErr_CheckSignals` and draw the progress. With more threads the job
//! runs on a persistent rayon pool of that size ([`worker_pool`]), which its parallel
//! products and loops use, while the calling thread waits and polls in [`POLL`] slices.

use crate::errors::lib_err;
use featlab::train::{Interrupt, Progress, RunContext};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How often Ctrl-C and the progress are looked at (the GIL is taken for a few
/// microseconds each time). While another Python thread holds the GIL, taking it back can
/// wait up to the interpreter's switch interval (5 ms), so a run on the calling thread loses
/// at most 5 ms per `POLL` to busy Python threads.
const POLL: Duration = Duration::from_millis(100);

/// Progress reported by the job (from any thread), read by the thread that talks to Python.
#[derive(Default)]
struct SharedProgress {
    /// Incremented by every `start` (a new phase: main run, reference run, …).
    phase: AtomicU64,
    /// The phase most recently finished.
    finished: AtomicU64,
    total: AtomicU64,
    done: AtomicU64,
    label: Mutex<String>,
    msg: Mutex<String>,
}

impl Progress for SharedProgress {
    fn start(&self, label: &str, total: u64) {
        *self.label.lock().unwrap_or_else(|e| e.into_inner()) = label.to_string();
        self.msg.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.total.store(total, Ordering::SeqCst);
        self.done.store(0, Ordering::SeqCst);
        self.phase.fetch_add(1, Ordering::SeqCst);
    }
    fn update(&self, done: u64, msg: &str) {
        *self.msg.lock().unwrap_or_else(|e| e.into_inner()) = msg.to_string();
        self.done.store(done, Ordering::SeqCst);
    }
    fn finish(&self) {
        self.finished
            .store(self.phase.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Mirrors [`SharedProgress`] onto a Python object with `start(label, total)`,
/// `update(done, msg)` and `finish()` methods (the bar of `featlab.run(progress=True)`).
struct ProgressMirror {
    sink: Py<PyAny>,
    phase: u64,
    done: u64,
    open: bool,
}

impl ProgressMirror {
    fn sync(&mut self, py: Python<'_>, p: &SharedProgress) -> PyResult<()> {
        let phase = p.phase.load(Ordering::SeqCst);
        if phase != self.phase {
            self.close(py)?;
            let label = p.label.lock().unwrap_or_else(|e| e.into_inner()).clone();
            self.sink
                .call_method1(py, "start", (label, p.total.load(Ordering::SeqCst)))?;
            self.phase = phase;
            self.done = 0;
            self.open = true;
        }
        let done = p.done.load(Ordering::SeqCst);
        if self.open && done != self.done {
            let msg = p.msg.lock().unwrap_or_else(|e| e.into_inner()).clone();
            self.sink.call_method1(py, "update", (done, msg))?;
            self.done = done;
        }
        if self.open && p.finished.load(Ordering::SeqCst) == phase {
            self.close(py)?;
        }
        Ok(())
    }
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.open {
            self.open = false;
            self.sink.call_method0(py, "finish")?;
        }
        Ok(())
    }
}

thread_local! {
    /// True on the calling thread while it runs a job with the GIL released (the only
    /// thread on which [`Poller`] may take the GIL back and look for Ctrl-C).
    static RUNS_JOB_HERE: Cell<bool> = const { Cell::new(false) };
}

/// The job's [`Interrupt`]: a cancellation flag set from Python (Ctrl-C, an exception in
/// the progress sink), plus, on the calling thread of a one-thread job, the polling itself.
///
/// The clock is read once every `stride` questions, `stride` adapting so that this happens
/// about once per millisecond whatever the step time (1 for slow steps, up to 2¹⁶ for
/// microsecond steps): the per-step cost is an atomic decrement.
struct Poller {
    cancel: AtomicBool,
    progress: SharedProgress,
    mirror: Mutex<Option<ProgressMirror>>,
    /// The first Python exception met while polling; raised when the job has stopped.
    pending: Mutex<Option<PyErr>>,
    countdown: AtomicU32,
    stride: AtomicU32,
    /// Nanoseconds after `origin` of the last clock reading and of the last poll.
    last_clock: AtomicU64,
    last_poll: AtomicU64,
    origin: Instant,
}

impl Poller {
    fn new(sink: Option<Py<PyAny>>) -> Self {
        Poller {
            cancel: AtomicBool::new(false),
            progress: SharedProgress::default(),
            mirror: Mutex::new(sink.map(|sink| ProgressMirror {
                sink,
                phase: 0,
                done: 0,
                open: false,
            })),
            pending: Mutex::new(None),
            countdown: AtomicU32::new(1),
            stride: AtomicU32::new(1),
            last_clock: AtomicU64::new(0),
            last_poll: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// Ctrl-C and the progress, with the GIL held: a Python exception (KeyboardInterrupt,
    /// an error raised by the progress sink) cancels the job and is kept to be raised.
    fn poll(&self, py: Python<'_>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_some() {
            return;
        }
        let mut mirror = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
        let status = py.check_signals().and_then(|()| {
            mirror
                .as_mut()
                .map_or(Ok(()), |m| m.sync(py, &self.progress))
        });
        if let Err(e) = status {
            self.cancel.store(true, Ordering::SeqCst);
            *pending = Some(e);
        }
    }

    /// Every `stride`-th question: read the clock, adapt `stride`, and poll when [`POLL`]
    /// has passed (only on the calling thread of a one-thread job).
    fn tick(&self) {
        let now = self.origin.elapsed().as_nanos() as u64;
        let since = now.saturating_sub(self.last_clock.swap(now, Ordering::Relaxed));
        let stride = self.stride.load(Ordering::Relaxed);
        let stride = if since < 500_000 {
            (stride * 2).min(1 << 16)
        } else if since > 2_000_000 {
            (stride / 2).max(1)
        } else {
            stride
        };
        self.stride.store(stride, Ordering::Relaxed);
        self.countdown.store(stride, Ordering::Relaxed);
        let due =
            now.saturating_sub(self.last_poll.load(Ordering::Relaxed)) >= POLL.as_nanos() as u64;
        if due && RUNS_JOB_HERE.with(Cell::get) {
            self.last_poll.store(now, Ordering::Relaxed);
            Python::attach(|py| self.poll(py));
        }
    }

    fn take_pending(&self) -> Option<PyErr> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The last poll after the job ended, then the bar closed.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        self.poll(py);
        let closed = self
            .mirror
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .map_or(Ok(()), |m| m.close(py));
        match self.take_pending() {
            Some(e) => Err(e),
            None => closed,
        }
    }
}

impl Interrupt for Poller {
    fn requested(&self) -> bool {
        if self.countdown.fetch_sub(1, Ordering::Relaxed) <= 1 {
            self.tick();
        }
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Run `job` with the GIL released, serving Ctrl-C and the progress sink `progress` while
/// it runs (see the module doc). A Python exception met while polling (Ctrl-C, an error in
/// the progress sink) cancels the job — the library's loops ask between steps — and is
/// raised; library errors become Python exceptions ([`lib_err`]), a panic a
/// `RuntimeError`. `threads` = 1 runs on the calling thread; more use the persistent rayon
/// pool of that size, so concurrent calls with the same `threads` > 1 run one after the
/// other. Results do not depend on `threads`.
pub fn detached<T: Send>(
    py: Python<'_>,
    threads: usize,
    progress: Option<Bound<'_, PyAny>>,
    job: impl FnOnce(&RunContext<'_>) -> featlab::Result<T> + Send,
) -> PyResult<T> {
    if threads == 0 {
        return Err(PyValueError::new_err("threads must be ≥ 1"));
    }
    let poller = Poller::new(progress.map(Bound::unbind));
    let joined = if threads == 1 {
        on_this_thread(py, &poller, job)
    } else {
        on_pool(py, threads, &poller, job)?
    };
    poller.finish(py)?;
    match joined {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(featlab::Error::Interrupted)) => Err(PyKeyboardInterrupt::new_err("interrupted")),
        Ok(Err(e)) => Err(lib_err(e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(PyRuntimeError::new_err(format!(
                "featlab panicked (a bug, please report it with the config): {what}"
            )))
        }
    }
}

type Joined<T> = std::thread::Result<featlab::Result<T>>;

/// The job on the calling thread (GIL released), sequential products; the poller takes
/// the GIL back every [`POLL`] from inside the training loop.
fn on_this_thread<T: Send>(
    py: Python<'_>,
    poller: &Poller,
    job: impl FnOnce(&RunContext<'_>) -> featlab::Result<T> + Send,
) -> Joined<T> {
    poller
        .last_poll
        .store(poller.origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
    py.detach(|| {
        let ctx = RunContext {
            progress: &poller.progress,
            cancel: Some(poller),
            par: faer::Par::Seq,
        };
        let was = RUNS_JOB_HERE.with(|r| r.replace(true));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&ctx)));
        RUNS_JOB_HERE.with(|r| r.set(was));
        result
    })
}

/// The job on a thread of the persistent pool of `threads` threads; this thread waits in
/// [`POLL`] slices and polls (with the GIL) between them.
fn on_pool<T: Send>(
    py: Python<'_>,
    threads: usize,
    poller: &Poller,
    job: impl FnOnce(&RunContext<'_>) -> featlab::Result<T> + Send,
) -> PyResult<Joined<T>> {
    let (tx, rx) = mpsc::channel::<()>();
    // `detach` needs a `Sync` capture; only this thread ever locks it
    let rx = Mutex::new(rx);
    let slot: Mutex<Option<Joined<T>>> = Mutex::new(None);
    let pool = worker_pool(threads)?;
    pool.in_place_scope(|s| {
        s.spawn(|_| {
            // owned by the job: dropped on a panic too, which ends the wait below
            let tx = tx;
            let ctx = RunContext {
                progress: &poller.progress,
                cancel: Some(poller),
                par: faer::Par::rayon(threads),
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&ctx)));
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            let _ = tx.send(());
        });
        loop {
            let received = py.detach(|| {
                rx.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .recv_timeout(POLL)
            });
            if !matches!(received, Err(mpsc::RecvTimeoutError::Timeout)) {
                break;
            }
            poller.poll(py);
        }
    });
    let joined = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok(joined.expect("featlab: the job ended without a result"))
}

/// The process-wide rayon pool with `threads` threads that runs featlab jobs from Python
/// when more than one thread is asked for. Kept for the life of the process (one per thread
/// count asked for), so a call neither starts nor tears down threads: starting and joining
/// a fresh thread per call cost 0.1–4 ms (measured).
fn worker_pool(threads: usize) -> PyResult<std::sync::Arc<rayon::ThreadPool>> {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock};
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("featlab-{i}"))
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the thread pool: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(threads, pool.clone());
    Ok(pool)
}
