//! Splitting a sweep among independent tasks (cluster job arrays).
//!
//! Shard `i` of `n` owns the points whose expansion index `k` satisfies `k mod n = i`
//! (round-robin, so every shard gets a mix of every axis and similar total cost). Shards
//! share nothing but the output directory: each writes only its own points.

use crate::{Error, Result};

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole sweep as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parse `"i/n"` (e.g. `--shard 2/8`).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || {
            Error::config(
                "--shard",
                format!("expected `i/n` with 0 ≤ i < n (e.g. `0/4`), got `{text}`"),
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Slurm job-array task, from `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`
    /// (default 0), `SLURM_ARRAY_TASK_STEP` (default 1) and `SLURM_ARRAY_TASK_COUNT` (or
    /// `SLURM_ARRAY_TASK_MAX`): index = (ID − MIN) / STEP, count = COUNT. `None` outside a job
    /// array. `get` reads an environment variable (a parameter so tests need not touch the
    /// process environment).
    pub fn from_slurm(get: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let num = |name: &str| -> Result<Option<usize>> {
            match get(name) {
                None => Ok(None),
                Some(s) if s.trim().is_empty() => Ok(None),
                Some(s) => s.trim().parse().map(Some).map_err(|_| {
                    Error::config(name, format!("expected a non-negative integer, got `{s}`"))
                }),
            }
        };
        let Some(id) = num("SLURM_ARRAY_TASK_ID")? else {
            return Ok(None);
        };
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match (num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
            (Some(c), _) => c,
            (None, Some(max)) => (max.saturating_sub(min)) / step + 1,
            (None, None) => {
                return Err(Error::config(
                    "SLURM_ARRAY_TASK_COUNT",
                    "is not set; pass --shard i/n explicitly",
                ))
            }
        };
        let index = id.checked_sub(min).map(|d| d / step).filter(|i| *i < count && count > 0).ok_or_else(|| {
            Error::config(
                "SLURM_ARRAY_TASK_ID",
                format!("task {id} of an array with min {min}, step {step}, {count} tasks is not a contiguous index; pass --shard i/n explicitly"),
            )
        })?;
        Ok(Some(Shard { index, count }))
    }

    /// Whether this shard runs the point with expansion index `point_index`.
    pub fn owns(&self, point_index: usize) -> bool {
        point_index % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_round_robin() {
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { index: 2, count: 5 });
        for bad in ["5/5", "1/0", "x/2", "3", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for k in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(k)).count(), 1);
        }
    }

    #[test]
    fn slurm_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_slurm(env(&[])).unwrap(), None);
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "4")
            ]))
            .unwrap(),
            Some(Shard { index: 3, count: 4 })
        );
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "8")
            ]))
            .unwrap(),
            Some(Shard { index: 4, count: 8 })
        );
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_STEP", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "3")
            ]))
            .unwrap(),
            Some(Shard { index: 2, count: 3 })
        );
        assert!(Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3")
        ]))
        .is_err());
        assert!(Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "1")])).is_err());
    }
}
