//! Wall time of an AGF run for the cost comparison "AGF costs ≤ 5% of the gradient flow it
//! predicts" (Kunin et al. 2025 present AGF as the cheap predictor of GF's staircase).
//!
//! AGF is deterministic and cheap, so it is run [`AGF_TIMING_REPEATS`] times and the median
//! wall time is reported, next to the first run's: the first AGF call of a process also
//! pays one-time start-up (first-touch page faults, lazily initialised tables, cold
//! instruction caches) — measured ≈ 0.15 ms, which is 10% of the 1.7 ms gradient flow of the
//! 2-D diagonal example — and the gradient flow, timed after it, does not.

use crate::Result;
use std::time::Instant;

/// How many times AGF is run for its timing (odd: the median is one of the runs).
pub const AGF_TIMING_REPEATS: usize = 3;

/// Wall times of repeated identical AGF runs, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgfTiming {
    /// Median over the runs (what `agf_seconds` reports).
    pub median: f64,
    /// The first run of the call (with any one-time start-up).
    pub first: f64,
}

/// Run `agf` [`AGF_TIMING_REPEATS`] times, keep the first result, and time the runs.
/// `same` compares a repeat's result with the first (AGF is deterministic: a difference is
/// a bug and returned as an error rather than hidden in a timing).
pub fn timed_agf<T>(
    mut agf: impl FnMut() -> Result<T>,
    same: impl Fn(&T, &T) -> bool,
) -> Result<(T, AgfTiming)> {
    let mut times = [0.0; AGF_TIMING_REPEATS];
    let start = Instant::now();
    let first = agf()?;
    times[0] = start.elapsed().as_secs_f64();
    for t in times.iter_mut().skip(1) {
        let start = Instant::now();
        let again = agf()?;
        *t = start.elapsed().as_secs_f64();
        if !same(&first, &again) {
            return Err(crate::Error::Numerical(
                "AGF gave different results on two identical runs (a determinism bug, please report it)"
                    .into(),
            ));
        }
    }
    let first_time = times[0];
    times.sort_by(f64::total_cmp);
    Ok((
        first,
        AgfTiming {
            median: times[AGF_TIMING_REPEATS / 2],
            first: first_time,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_result_and_reports_the_median() {
        let mut calls = 0;
        let (r, t) = timed_agf(
            || {
                calls += 1;
                Ok(7)
            },
            |a, b| a == b,
        )
        .unwrap();
        assert_eq!((r, calls), (7, AGF_TIMING_REPEATS));
        assert!(t.median >= 0.0 && t.first >= 0.0);
    }

    #[test]
    fn a_run_that_differs_is_an_error() {
        let mut k = 0;
        let e = timed_agf(
            || {
                k += 1;
                Ok(k)
            },
            |a, b| a == b,
        )
        .unwrap_err();
        assert!(e.to_string().contains("determinism"), "{e}");
    }
}
