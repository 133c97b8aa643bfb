//! Theory vs experiment, in one place: the typed `agreement` section every run.json
//! carries ([`agreement`]).
//!
//! Every study reports its headline comparisons as [`AgreementRow`]s in
//! [`crate::experiments::RunOutput::agreement`]; the output writer puts them into
//! `summary.agreement`, `featlab run` prints them as a table and `--check` fails on a row
//! that does not hold.

pub mod agreement;
pub mod drops;

pub use agreement::AgreementRow;
