//! Writing a featlab run: the files of the run contract (`run.json`, `trajectory.csv`,
//! extra tables, NPY arrays), the figures (SVG, optional PNG) and the verdict-first HTML
//! report. One implementation for both edges: the `featlab` CLI and the Python bindings
//! (`featlab.run(..., out=DIR)` writes the very files `featlab run` writes), and the one
//! way both edges turn an error chain into a message.

pub mod notes;
pub mod plot;
pub mod report;
pub mod write;

/// The error and its causes joined by ": " (as anyhow's `{:#}`), leaving out a cause whose
/// text the message already ends with: a featlab I/O error prints its `std::io::Error`
/// source itself, so the chain would repeat it.
pub fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.is_empty() {
            msg = text;
        } else if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}
