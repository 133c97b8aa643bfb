//! Writing a featlab run: the files of the run contract (`run.json`, `trajectory.csv`,
//! extra tables, NPY arrays), the figures (SVG, optional PNG) and the verdict-first HTML
//! report. One implementation for both edges: the `featlab` CLI and the Python bindings
//! (`featlab.run(..., out=DIR)` writes the very files `featlab run` writes).

pub mod notes;
pub mod plot;
pub mod report;
pub mod write;
