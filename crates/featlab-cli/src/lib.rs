//! The featlab command-line tool as a library: argument parsing, run orchestration,
//! plotting and the HTML report. The binary `featlab` is a thin `main` over [`cli::main`].

pub mod bench;
pub mod cli;
pub mod gallery;
pub mod interrupt;
pub mod nfa_cmd;
pub mod notes;
pub mod plot;
pub mod progress;
pub mod report;
pub mod report_cmd;
pub mod run;
pub mod sweep;
pub mod write;
