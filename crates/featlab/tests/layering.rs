//! The layering rule of the experiment layer (issue #21): `theory/` holds predictions only.
//! It may use the model, linear algebra, data types and the ODE solvers, but it never
//! imports `experiments`, `figure`, the output writer, sweeps, presets, or the training
//! runner (`train::run`, steppers, observers). Simulators, steppers, observers and data
//! loading live in `experiments/`, `train/` and `data/`.
//!
//! Test-only files inside `theory/` (`tests.rs`, `*_tests.rs`) are exempt: they are where a
//! prediction is checked against a simulation.

use std::path::{Path, PathBuf};

/// Substrings a non-comment line of `theory/` must not contain.
const FORBIDDEN: &[&str] = &[
    "crate::experiments",
    "featlab::experiments",
    "crate::figure",
    "crate::output",
    "crate::sweep",
    "crate::presets",
    "train::run",
    "train::stepper",
    "train::observer",
    "Stepper",
    "Observer",
];

/// Whether `line` contains `bad` as a whole path segment or word start: `RkStepper` (an ODE
/// stepper, allowed) does not contain `Stepper` in this sense, `train::Stepper` does.
fn contains_word(line: &str, bad: &str) -> bool {
    line.match_indices(bad).any(|(i, _)| {
        line[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_')
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "tests.rs" || name.ends_with("_tests.rs")
}

#[test]
fn theory_never_imports_experiments_figures_or_the_runner() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/theory");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "expected the theory modules under {}",
        root.display()
    );
    let mut violations = Vec::new();
    for path in files.iter().filter(|p| !is_test_file(p)) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut in_tests = false;
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            // An inline `#[cfg(test)] mod tests` at the end of a file is test-only too.
            if code.starts_with("#[cfg(test)]") {
                in_tests = true;
            }
            if in_tests || code.starts_with("//") {
                continue;
            }
            for bad in FORBIDDEN {
                if contains_word(code, bad) {
                    violations.push(format!(
                        "{}:{}: `{bad}` in `{}`",
                        path.display(),
                        i + 1,
                        code
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "theory/ imports outside its layer:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_sees_a_violation() {
    // The scanner itself: a line importing the runner is caught, a comment is not.
    let code = "use crate::train::runner::run;";
    assert!(FORBIDDEN.iter().any(|b| contains_word(code, b)));
    assert!(!contains_word(
        "use crate::train::ode::RkStepper;",
        "Stepper"
    ));
    assert!(contains_word(
        "use crate::train::{Observer, Problem};",
        "Observer"
    ));
    let comment = "/// see [`crate::figure::Series::step`]";
    assert!(comment.trim_start().starts_with("//"));
}
