//! Library half of the `featlab` CLI: figure rendering ([`plot`]) and the HTML run report
//! ([`report`]). The `featlab` binary (`src/main.rs`) uses these modules.

pub mod plot;
pub mod report;
