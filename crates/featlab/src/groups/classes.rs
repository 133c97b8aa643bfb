//! Conjugacy classes K = {h g h⁻¹ : h ∈ G}.

use super::group::FiniteGroup;

/// Conjugacy classes of `g`, each sorted, ordered by their smallest element (the class of
/// the identity first when the identity is element 0).
pub fn conjugacy_classes(g: &FiniteGroup) -> Vec<Vec<usize>> {
    let n = g.order();
    let mut class_of = vec![usize::MAX; n];
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for a in 0..n {
        if class_of[a] != usize::MAX {
            continue;
        }
        let mut k: Vec<usize> = (0..n).map(|h| g.mul(g.mul(h, a), g.inv(h))).collect();
        k.sort_unstable();
        k.dedup();
        for &b in &k {
            class_of[b] = classes.len();
        }
        classes.push(k);
    }
    classes
}

/// Index of each element's class in [`conjugacy_classes`].
pub fn class_index(classes: &[Vec<usize>], n: usize) -> Vec<usize> {
    let mut out = vec![0; n];
    for (c, k) in classes.iter().enumerate() {
        for &a in k {
            out[a] = c;
        }
    }
    out
}
