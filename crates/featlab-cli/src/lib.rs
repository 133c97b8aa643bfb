//! The featlab command-line tool as a library: argument parsing, run orchestration,
//! plotting and the HTML report. The binary `featlab` is a thin `main` over [`cli::main`].

pub mod bench;
pub mod cli;
pub mod gallery;
pub mod interrupt;
pub mod nfa_cmd;
pub mod progress;
pub mod report_cmd;
pub mod run;
pub mod sweep;

/// Writing a run (files, figures, report) lives in `featlab-output`, shared with the Python
/// bindings; re-exported so the CLI's modules keep one path for it.
pub use featlab_output::{notes, plot, report, write};
