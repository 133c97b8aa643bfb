//! Progress bars (indicatif) on a terminal; silent under `--quiet` or when stderr is not a TTY.

use featlab::train::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// An indicatif bar implementing the library's [`Progress`] sink.
pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl BarProgress {
    /// A bar that draws only when `!quiet` and stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        BarProgress {
            bar: Mutex::new(None),
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for BarProgress {
    fn start(&self, label: &str, total: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{elapsed_precise}] {wide_bar} {percent:>3}% eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(label.to_string());
        *self.bar.lock().unwrap() = Some(bar);
    }
    fn update(&self, done: u64, msg: &str) {
        if let Some(b) = self.bar.lock().unwrap().as_ref() {
            b.set_position(done);
            b.set_message(msg.to_string());
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
}

/// A bar counting finished items of a batch (the gallery's presets): on a terminal an
/// indicatif bar; otherwise, unless quiet, one `[k/n] message` line per item on stderr.
pub struct CountBar {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: u64,
    done: std::sync::atomic::AtomicU64,
}

/// A [`CountBar`] over `total` items.
pub fn count_bar(total: u64, label: &str, quiet: bool) -> CountBar {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_prefix(label.to_string());
        b
    });
    CountBar {
        bar,
        quiet,
        total,
        done: std::sync::atomic::AtomicU64::new(0),
    }
}

impl CountBar {
    /// One more item finished; `msg` says which and how.
    pub fn done(&self, msg: &str) {
        let k = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        match &self.bar {
            Some(b) => {
                b.set_position(k);
                b.set_message(msg.to_string());
            }
            None if !self.quiet => eprintln!("[{k}/{}] {msg}", self.total),
            None => {}
        }
    }
    /// Clear the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
