//! `featlab.run`: the CLI's `featlab run` from Python. The experiment runs on a thread of a
//! persistent worker pool with the GIL released; the calling thread waits in 50 ms slices, and between
//! slices (holding the GIL briefly) checks for Ctrl-C (`PyErr_CheckSignals`) and draws the
//! progress bar. Ctrl-C sets the run's cancellation flag, which the training loop checks
//! before every step; the run then stops and the `KeyboardInterrupt` is raised.

use crate::convert::{columns_dict, columns_of, ndarray_to_py, py_dict_to_table, py_to_toml};
use crate::errors::{anyhow_err, lib_err};
use featlab::config::apply_set;
use featlab::experiments::{select, RunOutput};
use featlab::train::{Progress, RunContext};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How long the calling thread sleeps (GIL released) between Ctrl-C / progress checks.
const POLL: Duration = Duration::from_millis(50);

/// Progress reported by the worker thread, read by the calling thread (which alone talks
/// to Python).
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
struct ProgressMirror<'py> {
    sink: Bound<'py, PyAny>,
    phase: u64,
    done: u64,
    open: bool,
}

impl<'py> ProgressMirror<'py> {
    fn sync(&mut self, p: &SharedProgress) -> PyResult<()> {
        let phase = p.phase.load(Ordering::SeqCst);
        if phase != self.phase {
            self.close()?;
            let label = p.label.lock().unwrap_or_else(|e| e.into_inner()).clone();
            self.sink
                .call_method1("start", (label, p.total.load(Ordering::SeqCst)))?;
            self.phase = phase;
            self.done = 0;
            self.open = true;
        }
        let done = p.done.load(Ordering::SeqCst);
        if self.open && done != self.done {
            let msg = p.msg.lock().unwrap_or_else(|e| e.into_inner()).clone();
            self.sink.call_method1("update", (done, msg))?;
            self.done = done;
        }
        if self.open && p.finished.load(Ordering::SeqCst) == phase {
            self.close()?;
        }
        Ok(())
    }
    fn close(&mut self) -> PyResult<()> {
        if self.open {
            self.open = false;
            self.sink.call_method0("finish")?;
        }
        Ok(())
    }
}

/// The config table and its label (file stem, preset name, or `dict`) for `featlab.run`'s
/// first argument.
fn load_table(config: &Bound<'_, PyAny>) -> PyResult<(toml::Table, String, String)> {
    if let Ok(s) = config.cast::<PyString>() {
        let spec = s.to_cow()?.into_owned();
        let (table, label) = featlab_cli::run::load_config(&spec).map_err(anyhow_err)?;
        Ok((table, label, spec))
    } else if let Ok(d) = config.cast::<PyDict>() {
        Ok((py_dict_to_table(d, "")?, "dict".into(), "dict".into()))
    } else {
        Err(PyTypeError::new_err(format!(
            "featlab.run: the config must be a preset name, a path to a TOML file or a dict, got a `{}`",
            config.get_type().name()?
        )))
    }
}

/// Apply `overrides` (dotted key → Python value) exactly as the CLI applies
/// `--set key=value`: the value is written as a TOML literal and parsed back.
fn apply_overrides(table: &mut toml::Table, overrides: &Bound<'_, PyDict>) -> PyResult<()> {
    for (k, v) in overrides.iter() {
        let key: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "featlab.run: override keys must be dotted key strings like \"model.width\", got {k:?}"
            ))
        })?;
        let value = py_to_toml(&v, &key)?;
        let assignment = format!("{key}={value}");
        apply_set(table, &assignment).map_err(|e| {
            anyhow_err(anyhow::Error::new(e).context(format!("in override {assignment}")))
        })?;
    }
    Ok(())
}

/// Everything a finished run hands back to Python.
struct Finished {
    out: RunOutput,
    wall: f64,
}

/// Run `job` on a thread of the persistent pool [`worker_pool`] with the GIL released,
/// polling for Ctrl-C and progress. Calls with the same thread count share the pool, so
/// concurrent calls from several Python threads run one after the other.
///
/// The calling thread waits in [`POLL`] slices; between slices it takes the GIL to call
/// `PyErr_CheckSignals` and mirror the progress onto `progress`. A Python exception there
/// (Ctrl-C, an error in the progress sink) sets the cancellation flag of the job's
/// [`RunContext`], which long library loops check between steps; the job then stops and
/// the exception is raised. Library errors become Python exceptions ([`lib_err`]), a
/// panic a `RuntimeError`. `threads` selects the rayon pool and faer's parallelism.
pub fn detached<T: Send>(
    py: Python<'_>,
    threads: usize,
    progress: Option<Bound<'_, PyAny>>,
    job: impl FnOnce(&RunContext<'_>) -> featlab::Result<T> + Send,
) -> PyResult<T> {
    if threads == 0 {
        return Err(PyValueError::new_err("threads must be ≥ 1"));
    }
    let par = if threads > 1 {
        faer::Par::rayon(threads)
    } else {
        faer::Par::Seq
    };
    let cancel = AtomicBool::new(false);
    let shared = SharedProgress::default();
    let mut mirror = progress.map(|sink| ProgressMirror {
        sink,
        phase: 0,
        done: 0,
        open: false,
    });
    let (tx, rx) = mpsc::channel::<()>();
    // `detach` needs a `Sync` capture; only this thread ever locks it
    let rx = Mutex::new(rx);
    let mut pending: Option<PyErr> = None;
    let slot: Mutex<Option<std::thread::Result<featlab::Result<T>>>> = Mutex::new(None);
    let pool = worker_pool(threads)?;
    let mut joined = None;
    pool.in_place_scope(|s| {
        s.spawn(|_| {
            // owned by the job: dropped on a panic too, which ends the wait below
            let tx = tx;
            let ctx = RunContext {
                progress: &shared,
                cancel: Some(&cancel),
                par,
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
            let done = !matches!(received, Err(mpsc::RecvTimeoutError::Timeout));
            if pending.is_none() {
                let status = py
                    .check_signals()
                    .and_then(|()| mirror.as_mut().map_or(Ok(()), |m| m.sync(&shared)));
                if let Err(e) = status {
                    cancel.store(true, Ordering::SeqCst);
                    pending = Some(e);
                }
            }
            if done {
                break;
            }
        }
    });
    if let Some(r) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
        joined = Some(r);
    }
    let joined = joined.expect("featlab: the job ended without a result");
    if let Some(m) = mirror.as_mut() {
        let closed = m.close();
        if pending.is_none() {
            closed?;
        }
    }
    if let Some(e) = pending {
        return Err(e);
    }
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

/// The process-wide rayon pool with `threads` threads that runs featlab jobs from Python.
/// Kept for the life of the process (one per thread count asked for), so a call neither
/// starts nor tears down threads and the threads' GEMM packing memory stays warm: starting
/// and joining a fresh thread per call cost 0.1–4 ms (measured), several percent of a
/// 1000-step run.
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

/// Low-level `featlab.run` (the Python wrapper builds the `Run` object): resolve the config
/// like `featlab run`, run it, optionally write the CLI's output directory, and return a
/// dict with `run_json` (the text of run.json), `trajectory` (column → 1-D array),
/// `arrays` (relative path → array), `tables` (name → column → array) and `out`.
#[pyfunction]
#[pyo3(signature = (config, overrides=None, out=None, seed=None, threads=1, png=true, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn run<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    overrides: Option<&Bound<'py, PyDict>>,
    out: Option<PathBuf>,
    seed: Option<u64>,
    threads: usize,
    png: bool,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (mut table, preset, spec) = load_table(config)?;
    if let Some(o) = overrides {
        apply_overrides(&mut table, o)?;
    }
    if let Some(seed) = seed {
        table.insert("seed".into(), toml::Value::Integer(seed as i64));
    }
    let exp = select(&table).map_err(lib_err)?;
    let resolved = exp
        .resolve(&table)
        .map_err(|e| anyhow_err(anyhow::Error::new(e).context(format!("in config `{spec}`"))))?;
    let Finished { out: output, wall } = detached(py, threads, progress, |ctx| {
        let start = Instant::now();
        let out = exp.run(&resolved, ctx)?;
        Ok(Finished {
            out,
            wall: start.elapsed().as_secs_f64(),
        })
    })?;
    if let Some(dir) = &out {
        py.detach(|| featlab_cli::write::write_all(dir, &output, &preset, exp.name(), wall, png))
            .map_err(anyhow_err)?;
    }
    let doc = featlab::output::run_json(&output, &preset, exp.name(), wall);
    result_dict(
        py,
        serde_json::to_string(&doc).map_err(|e| PyRuntimeError::new_err(e.to_string()))?,
        output,
        out,
    )
}

/// The dict handed to the Python `Run` constructor.
fn result_dict<'py>(
    py: Python<'py>,
    run_json: String,
    output: RunOutput,
    out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("run_json", run_json)?;
    let traj = output.trajectory;
    let cols = columns_of(&traj.rows, traj.columns.len());
    d.set_item("trajectory", columns_dict(py, &traj.columns, cols)?)?;
    let arrays = PyDict::new(py);
    for (rel, a) in output.arrays {
        arrays.set_item(rel, ndarray_to_py(py, a)?)?;
    }
    d.set_item("arrays", arrays)?;
    let tables = PyDict::new(py);
    for t in output.tables {
        tables.set_item(&t.name, columns_dict(py, &t.columns, t.values)?)?;
    }
    d.set_item("tables", tables)?;
    d.set_item("out", out)?;
    Ok(d)
}
