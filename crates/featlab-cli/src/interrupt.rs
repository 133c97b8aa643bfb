//! Ctrl-C handling: the first SIGINT sets a flag that the runner checks between steps
//! (the run stops cleanly with exit code 130); a second one kills the process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static FLAG: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// The process-wide interruption flag, installing the handler on first use.
pub fn flag() -> &'static AtomicBool {
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            if FLAG.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    });
    &FLAG
}
