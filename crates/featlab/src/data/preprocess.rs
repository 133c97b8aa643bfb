//! Preprocessing of labelled inputs, named in a `[data]` table and shared by every study
//! that reads labelled data (NFA/RFM, `exact_deep_real`, AGF on real data):
//!
//! | key | what | statistics from |
//! |---|---|---|
//! | `grayscale` | RGB → luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as PIL/torchvision `Grayscale`) | – |
//! | `standardize` | `global`: (x − m)/s with one mean m and std s over all coordinates; `feature`: each coordinate to mean 0, std 1; `none` | training split |
//! | `whiten` | `pca`: x ↦ (Λ + ε)^{−1/2} Vᵀ(x − μ); `zca`: x ↦ V (Λ + ε)^{−1/2} Vᵀ(x − μ), with Σ = V Λ Vᵀ the training covariance; `none` | training split |
//! | `whiten_eps` | ε of the whitening (absolute, in the units of the standardised inputs' variance) | – |
//! | `unit_norm` | rescale so that the training mean of ‖x‖² is 1 (the AGF §3.5 convention "whitened so E‖x‖² ≈ 1") | training split |
//! | `classes`, `per_class` | keep some classes (relabelled 0..k−1), subsample a number of training samples per class | – |
//! | `label_shift`, `targets` | one-hot targets e_label − shift; `targets = "centred"` sets shift = 1/C | – |
//!
//! Every fitted statistic comes from the training split only and is applied unchanged to
//! the test split ([`Fitted::apply`]), so no test information leaks into the inputs.

use crate::linalg::sym_eig;
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};

/// How inputs are standardised (statistics of the training split).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Standardize {
    /// One mean and std over all pixels (per-channel standardisation of a grey image).
    #[default]
    Global,
    /// Each input coordinate to mean 0, std 1 (constant coordinates left at 0).
    Feature,
    /// Raw inputs.
    None,
}

/// Whitening of the (standardised) inputs with the training covariance Σ = V Λ Vᵀ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Whitening {
    /// No whitening.
    #[default]
    None,
    /// PCA whitening x ↦ (Λ + ε)^{−1/2} Vᵀ (x − μ): coordinates are principal components
    /// in decreasing-variance order, each scaled to variance λ/(λ + ε).
    Pca,
    /// ZCA whitening x ↦ V (Λ + ε)^{−1/2} Vᵀ (x − μ): the symmetric whitening, closest to
    /// the original inputs (Bell & Sejnowski 1997).
    Zca,
}

/// Target coding of class labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// e_label − `label_shift`.
    OneHot,
    /// e_label − 1/C: zero mean over classes.
    Centred,
}

/// The input transformations of a `[data]` table, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputPipeline {
    pub standardize: Standardize,
    pub whiten: Whitening,
    pub whiten_eps: f64,
    pub unit_norm: bool,
}

/// The statistics fitted on a training split: x ↦ ((x − shift) ⊙ scale) · T · norm_scale,
/// with T the whitening map (d × d', absent when not whitening).
#[derive(Debug, Clone)]
pub struct Fitted {
    shift: Vec<f64>,
    scale: Vec<f64>,
    transform: Option<Mat<f64>>,
    norm_scale: f64,
    /// Eigenvalues of the training covariance (descending) when whitening.
    pub eigenvalues: Vec<f64>,
}

impl InputPipeline {
    /// Fit on the training inputs `x` (n × d); errors name `data.whiten_eps`.
    pub fn fit(&self, x: &Mat<f64>) -> Result<Fitted> {
        let (n, d) = (x.nrows(), x.ncols());
        if n == 0 {
            return Err(Error::config("data", "the training split is empty"));
        }
        let mut shift = vec![0.0; d];
        let mut scale = vec![1.0; d];
        match self.standardize {
            Standardize::None => {}
            Standardize::Global => {
                let cnt = (n * d) as f64;
                let mean = (0..d).map(|j| col_sum(x, j)).sum::<f64>() / cnt;
                let var = (0..d)
                    .map(|j| (0..n).map(|i| (x[(i, j)] - mean).powi(2)).sum::<f64>())
                    .sum::<f64>()
                    / cnt;
                let s = if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 };
                shift.fill(mean);
                scale.fill(s);
            }
            Standardize::Feature => {
                for j in 0..d {
                    let mean = col_sum(x, j) / n as f64;
                    let var = (0..n).map(|i| (x[(i, j)] - mean).powi(2)).sum::<f64>() / n as f64;
                    shift[j] = mean;
                    scale[j] = if var > 1e-24 { 1.0 / var.sqrt() } else { 0.0 };
                }
            }
        }
        let mut fitted = Fitted {
            shift,
            scale,
            transform: None,
            norm_scale: 1.0,
            eigenvalues: Vec::new(),
        };
        if self.whiten != Whitening::None {
            if !(self.whiten_eps.is_finite() && self.whiten_eps >= 0.0) {
                return Err(Error::config(
                    "data.whiten_eps",
                    format!("must be a finite number ≥ 0, got {}", self.whiten_eps),
                ));
            }
            let z = fitted.apply(x);
            // centre (whitening always removes the training mean)
            let mu: Vec<f64> = (0..d).map(|j| col_sum(&z, j) / n as f64).collect();
            let zc = Mat::from_fn(n, d, |i, j| z[(i, j)] - mu[j]);
            let mut cov = Mat::zeros(d, d);
            crate::linalg::matmul(
                cov.as_mut(),
                faer::Accum::Replace,
                zc.transpose(),
                zc.as_ref(),
                1.0 / n as f64,
                faer::Par::Seq,
            );
            let cov = Mat::from_fn(d, d, |a, b| 0.5 * (cov[(a, b)] + cov[(b, a)]));
            let (v, ev) = sym_eig(cov.as_ref())?;
            // descending order
            let lam: Vec<f64> = ev.iter().rev().map(|l| l.max(0.0)).collect();
            let vd = Mat::from_fn(d, d, |i, k| v[(i, d - 1 - k)]);
            if let Some(k) = lam.iter().position(|l| l + self.whiten_eps <= 0.0) {
                return Err(Error::config(
                    "data.whiten_eps",
                    format!("the training covariance has {} zero eigenvalues (first at index {k}); whitening needs whiten_eps > 0", d - k),
                ));
            }
            let inv: Vec<f64> = lam
                .iter()
                .map(|l| 1.0 / (l + self.whiten_eps).sqrt())
                .collect();
            let pca = Mat::from_fn(d, d, |i, k| vd[(i, k)] * inv[k]);
            let t = match self.whiten {
                Whitening::Pca => pca,
                _ => {
                    let mut t = Mat::zeros(d, d);
                    crate::linalg::matmul(
                        t.as_mut(),
                        faer::Accum::Replace,
                        pca.as_ref(),
                        vd.transpose(),
                        1.0,
                        faer::Par::Seq,
                    );
                    t
                }
            };
            // fold the centring into the shift: ((x − s)⊙c − μ) = (x − (s + μ/c))⊙c
            for ((sh, sc), m) in fitted.shift.iter_mut().zip(&fitted.scale).zip(&mu) {
                if *sc != 0.0 {
                    *sh += m / sc;
                }
            }
            fitted.transform = Some(t);
            fitted.eigenvalues = lam;
        }
        if self.unit_norm {
            let z = fitted.apply(x);
            let ms = (0..z.ncols())
                .map(|j| (0..n).map(|i| z[(i, j)].powi(2)).sum::<f64>())
                .sum::<f64>()
                / n as f64;
            if ms > 0.0 {
                fitted.norm_scale = 1.0 / ms.sqrt();
            }
        }
        Ok(fitted)
    }
}

fn col_sum(x: &Mat<f64>, j: usize) -> f64 {
    (0..x.nrows()).map(|i| x[(i, j)]).sum()
}

impl Fitted {
    /// Apply the fitted map to inputs with the training split's dimension.
    pub fn apply(&self, x: &Mat<f64>) -> Mat<f64> {
        let (n, d) = (x.nrows(), x.ncols());
        let z = Mat::from_fn(n, d, |i, j| (x[(i, j)] - self.shift[j]) * self.scale[j]);
        let mut out = match &self.transform {
            None => z,
            Some(t) => {
                let mut o = Mat::zeros(n, t.ncols());
                crate::linalg::matmul(
                    o.as_mut(),
                    faer::Accum::Replace,
                    z.as_ref(),
                    t.as_ref(),
                    1.0,
                    faer::Par::Seq,
                );
                o
            }
        };
        if self.norm_scale != 1.0 {
            for j in 0..out.ncols() {
                for v in out.col_as_slice_mut(j) {
                    *v *= self.norm_scale;
                }
            }
        }
        out
    }
}

/// Luma of CHW-flattened RGB images (n × 3p → n × p): Y = 0.299 R + 0.587 G + 0.114 B
/// (ITU-R BT.601, the weights of PIL's `convert("L")` and torchvision's `Grayscale`).
pub fn grayscale_chw(x: &[f64], n: usize, pixels: usize) -> Vec<f64> {
    const W: [f64; 3] = [0.299, 0.587, 0.114];
    let mut out = vec![0.0; n * pixels];
    for i in 0..n {
        let rec = &x[i * 3 * pixels..(i + 1) * 3 * pixels];
        for p in 0..pixels {
            out[i * pixels + p] =
                W[0] * rec[p] + W[1] * rec[pixels + p] + W[2] * rec[2 * pixels + p];
        }
    }
    out
}

/// Which classes to keep: a count k (classes 0..k−1) or a list (relabelled 0..len−1 in
/// list order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassSelection {
    Count(usize),
    List(Vec<u8>),
}

impl ClassSelection {
    /// The kept original labels, in their new order; `available` = classes of the set.
    pub fn kept(&self, available: usize) -> Result<Vec<u8>> {
        let kept: Vec<u8> = match self {
            ClassSelection::Count(k) => {
                if *k < 2 || *k > available {
                    return Err(Error::config(
                        "data.classes",
                        format!("need 2 ≤ classes ≤ {available}, got {k}"),
                    ));
                }
                (0..*k as u8).collect()
            }
            ClassSelection::List(l) => l.clone(),
        };
        if kept.len() < 2 {
            return Err(Error::config("data.classes", "keep at least two classes"));
        }
        for (i, &c) in kept.iter().enumerate() {
            if usize::from(c) >= available {
                return Err(Error::config(
                    "data.classes",
                    format!(
                        "class {c} does not exist (the set has classes 0..={})",
                        available - 1
                    ),
                ));
            }
            if kept[..i].contains(&c) {
                return Err(Error::config(
                    "data.classes",
                    format!("class {c} is listed twice"),
                ));
            }
        }
        Ok(kept)
    }
}

/// Indices (into `labels`) of the samples whose label is kept, and their new labels.
pub fn filter_classes(labels: &[u8], kept: &[u8]) -> (Vec<usize>, Vec<u8>) {
    let mut idx = Vec::new();
    let mut new = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        if let Some(p) = kept.iter().position(|k| k == l) {
            idx.push(i);
            new.push(p as u8);
        }
    }
    (idx, new)
}

/// The first `per_class` entries of each class in `order` (an already seeded-random order
/// of sample indices), in that order: a seeded per-class subsample. Errors name
/// `data.per_class` and the first class with too few samples.
pub fn per_class_subsample(
    order: &[usize],
    labels: &[u8],
    classes: usize,
    per_class: usize,
) -> Result<Vec<usize>> {
    if per_class == 0 {
        return Err(Error::config("data.per_class", "must be ≥ 1"));
    }
    let mut count = vec![0usize; classes];
    let mut out = Vec::with_capacity(per_class * classes);
    for &i in order {
        let c = usize::from(labels[i]);
        if count[c] < per_class {
            count[c] += 1;
            out.push(i);
        }
    }
    if let Some((c, &k)) = count.iter().enumerate().find(|(_, &k)| k < per_class) {
        return Err(Error::config(
            "data.per_class",
            format!("class {c} has only {k} training samples, fewer than per_class = {per_class}"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{normal_vec, stream};

    fn correlated(n: usize, d: usize, seed: u64) -> Mat<f64> {
        let z = normal_vec(&mut stream(seed, "z"), n * d, 1.0);
        // x_j = Σ_{k ≤ j} z_k (strongly correlated), plus an offset
        Mat::from_fn(n, d, |i, j| {
            3.0 + (0..=j).map(|k| z[i * d + k]).sum::<f64>()
        })
    }

    fn cov(x: &Mat<f64>) -> Mat<f64> {
        let (n, d) = (x.nrows(), x.ncols());
        let mu: Vec<f64> = (0..d).map(|j| col_sum(x, j) / n as f64).collect();
        Mat::from_fn(d, d, |a, b| {
            (0..n)
                .map(|i| (x[(i, a)] - mu[a]) * (x[(i, b)] - mu[b]))
                .sum::<f64>()
                / n as f64
        })
    }

    #[test]
    fn whitening_gives_identity_covariance_on_the_training_split() {
        let x = correlated(400, 5, 1);
        for w in [Whitening::Pca, Whitening::Zca] {
            for st in [Standardize::None, Standardize::Global, Standardize::Feature] {
                let p = InputPipeline {
                    standardize: st,
                    whiten: w,
                    whiten_eps: 0.0,
                    unit_norm: false,
                };
                let f = p.fit(&x).unwrap();
                let z = f.apply(&x);
                let c = cov(&z);
                for a in 0..5 {
                    assert!(col_sum(&z, a).abs() / 400.0 < 1e-10, "{w:?} {st:?} mean");
                    for b in 0..5 {
                        let want = if a == b { 1.0 } else { 0.0 };
                        assert!(
                            (c[(a, b)] - want).abs() < 1e-9,
                            "{w:?} {st:?} cov[{a},{b}] = {}",
                            c[(a, b)]
                        );
                    }
                }
            }
        }
        // ε shrinks each direction's variance to λ/(λ + ε); PCA orders by decreasing λ
        let p = InputPipeline {
            standardize: Standardize::None,
            whiten: Whitening::Pca,
            whiten_eps: 0.5,
            unit_norm: false,
        };
        let f = p.fit(&x).unwrap();
        let c = cov(&f.apply(&x));
        for (k, l) in f.eigenvalues.iter().enumerate() {
            assert!((c[(k, k)] - l / (l + 0.5)).abs() < 1e-9);
            if k > 0 {
                assert!(f.eigenvalues[k - 1] >= *l);
            }
        }
    }

    #[test]
    fn zca_is_symmetric_and_test_split_uses_training_statistics() {
        let x = correlated(300, 4, 2);
        let p = InputPipeline {
            standardize: Standardize::Feature,
            whiten: Whitening::Zca,
            whiten_eps: 1e-3,
            unit_norm: true,
        };
        let f = p.fit(&x).unwrap();
        let t = f.transform.as_ref().unwrap();
        for a in 0..4 {
            for b in 0..4 {
                assert!((t[(a, b)] - t[(b, a)]).abs() < 1e-12);
            }
        }
        let z = f.apply(&x);
        let ms = (0..4)
            .map(|j| (0..300).map(|i| z[(i, j)].powi(2)).sum::<f64>())
            .sum::<f64>()
            / 300.0;
        assert!((ms - 1.0).abs() < 1e-12, "unit_norm: E‖x‖² = {ms}");
        // the map is affine and row-wise: one row alone maps as it does inside the set
        let row = Mat::from_fn(1, 4, |_, j| x[(7, j)]);
        let zr = f.apply(&row);
        for j in 0..4 {
            assert!((zr[(0, j)] - z[(7, j)]).abs() < 1e-12);
        }
    }

    #[test]
    fn rank_deficient_covariance_needs_eps() {
        // n < d: covariance has zero eigenvalues
        let x = correlated(3, 6, 3);
        let p = InputPipeline {
            standardize: Standardize::None,
            whiten: Whitening::Zca,
            whiten_eps: 0.0,
            unit_norm: false,
        };
        let e = p.fit(&x).unwrap_err().to_string();
        assert!(
            e.contains("data.whiten_eps") && e.contains("zero eigenvalues"),
            "{e}"
        );
        let p = InputPipeline {
            whiten_eps: 1e-2,
            ..p
        };
        assert!(p.fit(&x).is_ok());
    }

    #[test]
    fn grayscale_uses_bt601_weights() {
        // one 2-pixel image: R = (1, 0), G = (0, 1), B = (1, 1)
        let g = grayscale_chw(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 1, 2);
        assert!((g[0] - (0.299 + 0.114)).abs() < 1e-15 && (g[1] - (0.587 + 0.114)).abs() < 1e-15);
    }

    #[test]
    fn class_selection_and_per_class_subsampling() {
        let labels: Vec<u8> = (0..30).map(|i| (i % 5) as u8).collect();
        let kept = ClassSelection::List(vec![3, 1]).kept(5).unwrap();
        let (idx, new) = filter_classes(&labels, &kept);
        assert_eq!(idx.len(), 12);
        assert!(idx
            .iter()
            .zip(&new)
            .all(|(&i, &l)| (labels[i] == 3 && l == 0) || (labels[i] == 1 && l == 1)));
        assert_eq!(ClassSelection::Count(3).kept(5).unwrap(), vec![0, 1, 2]);
        for bad in [
            ClassSelection::Count(6),
            ClassSelection::List(vec![1, 1]),
            ClassSelection::List(vec![7, 0]),
        ] {
            assert!(bad
                .kept(5)
                .unwrap_err()
                .to_string()
                .contains("data.classes"));
        }
        let order: Vec<usize> = (0..30).rev().collect();
        let sub = per_class_subsample(&order, &labels, 5, 2).unwrap();
        assert_eq!(sub, vec![29, 28, 27, 26, 25, 24, 23, 22, 21, 20]);
        let e = per_class_subsample(&order, &labels, 5, 7)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.per_class") && e.contains("only 6"), "{e}");
    }
}
