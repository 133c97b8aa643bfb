//! A group named in a config (`data.group`): a family with its parameters, permutation
//! generators, or a multiplication table.

use super::group::FiniteGroup;
use super::{cyclic, dihedral, icosahedral, octahedral, product};
use crate::Result;
use serde::{Deserialize, Serialize};

/// `data.group`, e.g. `{ kind = "cyclic", n = 11 }`, `{ kind = "product", n = 5, m = 5 }`
/// (C_n × C_m), `{ kind = "dihedral", n = 5 }`, `{ kind = "octahedral" }`,
/// `{ kind = "icosahedral" }`, `{ kind = "permutations", generators = [[1, 2, 3, 0], [1, 0, 2, 3]] }`,
/// `{ kind = "table", table = [[0, 1], [1, 0]] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GroupSpec {
    Cyclic { n: usize },
    Product { n: usize, m: usize },
    Dihedral { n: usize },
    Octahedral,
    Icosahedral,
    Permutations { generators: Vec<Vec<usize>> },
    Table { table: Vec<Vec<usize>> },
}

impl GroupSpec {
    /// Builds the group (errors name `data.group`).
    pub fn build(&self) -> Result<FiniteGroup> {
        let key = "data.group";
        let err = |e: crate::Error| match e {
            crate::Error::Config { msg, .. } => crate::Error::config(key, msg),
            e => e,
        };
        match self {
            GroupSpec::Cyclic { n } => cyclic(*n),
            GroupSpec::Product { n, m } => product(&cyclic(*n)?, &cyclic(*m)?),
            GroupSpec::Dihedral { n } => dihedral(*n),
            GroupSpec::Octahedral => octahedral(),
            GroupSpec::Icosahedral => icosahedral(),
            GroupSpec::Permutations { generators } => {
                FiniteGroup::from_permutations("permutations", generators, key)
            }
            GroupSpec::Table { table } => FiniteGroup::from_table("table", table, key),
        }
        .map_err(err)
    }
}
