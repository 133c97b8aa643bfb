//! Labelled image data for the NFA experiments: `[data]` tables with a class-label
//! source, a train/test split, input standardisation and shifted one-hot targets
//! (`y = e_label − shift`, the centred labels of Beaglehole et al. 2024's code use
//! shift = 1/C).

use crate::data::io::{one_hot, read_cifar10_bins, read_idx, read_npy, read_sklearn_digits};
use crate::data::Dataset;
use crate::rng::{normal_vec, permutation, stream};
use crate::{Error, NdArray, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the labelled images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// scikit-learn's 8×8 digits (`path`, fetched by `scripts/fetch-digits.sh`).
    Digits,
    /// IDX images + labels (MNIST family; `path` = images, `labels` = labels file).
    Idx,
    /// CIFAR-10 binary batches (`files`).
    Cifar10,
    /// MNIST-1D (Greydanus & Kobak): `path` = the directory `scripts/fetch-mnist1d.sh`
    /// writes (x.npy, y.npy, x_test.npy, y_test.npy; default `data/mnist1d`), 4000 + 1000
    /// sequences of length 40, 10 classes. Both files are pooled and featlab's seeded
    /// `n_train`/`n_test` split applies (the generator's 4000/1000 split is not kept).
    Mnist1d,
    /// Synthetic Gaussian clusters (`n`, `d`, `classes`, `separation`): tests and demos.
    Clusters,
}

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

fn d_path() -> PathBuf {
    PathBuf::from("data/digits/digits.csv.gz")
}
fn d_shift() -> f64 {
    0.1
}

/// The `[data]` table of the NFA/RFM experiments.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelledDataConfig {
    pub kind: Source,
    /// Data file (digits: `digits.csv.gz`; idx: the images file; mnist1d: the directory,
    /// `data/mnist1d` when left at the digits default).
    #[serde(default = "d_path")]
    pub path: PathBuf,
    /// IDX labels file.
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// CIFAR-10 batch files.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Training samples (default: everything not in the test split).
    #[serde(default)]
    pub n_train: Option<usize>,
    /// Held-out samples (for probe/RFM accuracies).
    #[serde(default)]
    pub n_test: usize,
    /// One-hot shift: targets are `e_label − shift`.
    #[serde(default = "d_shift")]
    pub label_shift: f64,
    #[serde(default)]
    pub standardize: Standardize,
    /// Clusters: total samples, dimension, classes, centre separation.
    #[serde(default)]
    pub n: Option<usize>,
    #[serde(default)]
    pub d: Option<usize>,
    #[serde(default)]
    pub classes: Option<usize>,
    #[serde(default)]
    pub separation: Option<f64>,
}

/// Train and test sets plus their labels.
pub struct Labelled {
    pub train: Dataset,
    pub test: Dataset,
    pub train_labels: Vec<u8>,
    pub test_labels: Vec<u8>,
    pub classes: usize,
}

fn missing(key: &str, path: &Path, hint: &str) -> Error {
    Error::config(
        format!("data.{key}"),
        format!("file `{}` not found. {hint}", path.display()),
    )
}

impl LabelledDataConfig {
    /// Load, split (seeded), standardise and encode.
    pub fn build(&self, seed: u64) -> Result<Labelled> {
        let (x, labels, classes) = self.load(seed)?;
        let (n, d) = x.rows_cols();
        let n_test = self.n_test;
        if n_test >= n {
            return Err(Error::config(
                "data.n_test",
                format!("the data set has {n} samples; n_test = {n_test} leaves none for training"),
            ));
        }
        let n_train = self.n_train.unwrap_or(n - n_test);
        if n_train == 0 || n_train + n_test > n {
            return Err(Error::config("data.n_train", format!("need 1 ≤ n_train and n_train + n_test ≤ {n}, got n_train = {n_train}, n_test = {n_test}")));
        }
        let perm = permutation(&mut stream(seed, "nfa-split"), n);
        let pick = |idx: &[usize]| Mat::from_fn(idx.len(), d, |i, j| x.data[idx[i] * d + j]);
        let (tr, te) = (&perm[..n_train], &perm[n_train..n_train + n_test]);
        let mut xtr = pick(tr);
        let mut xte = pick(te);
        self.standardise(&mut xtr, &mut xte);
        let ltr: Vec<u8> = tr.iter().map(|&i| labels[i]).collect();
        let lte: Vec<u8> = te.iter().map(|&i| labels[i]).collect();
        let ytr = one_hot(&ltr, classes, self.label_shift)
            .map_err(|e| relabel(e, "data.label_shift"))?
            .to_mat();
        let yte = one_hot(&lte, classes, self.label_shift)?.to_mat();
        let yte = if lte.is_empty() {
            Mat::zeros(0, classes)
        } else {
            yte
        };
        Ok(Labelled {
            train: Dataset::new(xtr, ytr)?,
            test: Dataset::new(xte, yte)?,
            train_labels: ltr,
            test_labels: lte,
            classes,
        })
    }

    fn load(&self, seed: u64) -> Result<(NdArray, Vec<u8>, usize)> {
        match self.kind {
            Source::Digits => {
                if !self.path.exists() {
                    return Err(missing("path", &self.path, "Run `scripts/fetch-digits.sh` from the repository root to download scikit-learn's 8×8 digits into data/digits/, or set data.path."));
                }
                let (x, l) = read_sklearn_digits(&self.path)?;
                Ok((x, l, 10))
            }
            Source::Mnist1d => {
                let dir = if self.path == d_path() {
                    PathBuf::from("data/mnist1d")
                } else {
                    self.path.clone()
                };
                load_mnist1d(&dir)
            }
            Source::Idx => {
                let lp = self.labels.as_ref().ok_or_else(|| {
                    Error::config("data.labels", "kind = \"idx\" needs a labels file")
                })?;
                for (k, p) in [("path", &self.path), ("labels", lp)] {
                    if !p.exists() {
                        return Err(missing(k, p, "Download the IDX files (e.g. MNIST) and point data.path / data.labels at them."));
                    }
                }
                let imgs = read_idx(&self.path)?;
                let lab = read_idx(lp)?;
                let n = imgs.shape[0];
                let d: usize = imgs.shape[1..].iter().product();
                if lab.data.len() != n {
                    return Err(Error::data(
                        lp,
                        format!("{} labels for {n} images", lab.data.len()),
                    ));
                }
                let labels: Vec<u8> = lab.data.iter().map(|&v| v as u8).collect();
                let classes = labels.iter().copied().max().unwrap_or(0) as usize + 1;
                Ok((
                    NdArray::new(vec![n, d], imgs.data.iter().map(|v| v / 255.0).collect()),
                    labels,
                    classes,
                ))
            }
            Source::Cifar10 => {
                if self.files.is_empty() {
                    return Err(Error::config(
                        "data.files",
                        "kind = \"cifar10\" needs the binary batch files (data_batch_1.bin …)",
                    ));
                }
                for p in &self.files {
                    if !p.exists() {
                        return Err(missing("files", p, "Download the CIFAR-10 binary version and list its batch files in data.files."));
                    }
                }
                let (x, l) = read_cifar10_bins(&self.files)?;
                Ok((x, l, 10))
            }
            Source::Clusters => {
                let (n, d, k) = (
                    self.n.unwrap_or(300),
                    self.d.unwrap_or(10),
                    self.classes.unwrap_or(3),
                );
                let sep = self.separation.unwrap_or(3.0);
                if n == 0 || d == 0 || !(2..=255).contains(&k) {
                    return Err(Error::config(
                        "data.n",
                        "clusters need n ≥ 1, d ≥ 1 and 2 ≤ classes ≤ 255",
                    ));
                }
                let mut r = stream(seed, "nfa-clusters");
                let centres = normal_vec(&mut r, k * d, sep / (d as f64).sqrt());
                let noise = normal_vec(&mut r, n * d, 1.0);
                let labels: Vec<u8> = (0..n).map(|i| (i % k) as u8).collect();
                let x: Vec<f64> = (0..n * d)
                    .map(|t| centres[(t / d % k) * d + t % d] + noise[t])
                    .collect();
                Ok((NdArray::new(vec![n, d], x), labels, k))
            }
        }
    }

    fn standardise(&self, xtr: &mut Mat<f64>, xte: &mut Mat<f64>) {
        let (n, d) = (xtr.nrows(), xtr.ncols());
        match self.standardize {
            Standardize::None => {}
            Standardize::Global => {
                let cnt = (n * d) as f64;
                let mean = (0..d)
                    .map(|j| xtr.col_as_slice(j).iter().sum::<f64>())
                    .sum::<f64>()
                    / cnt;
                let var = (0..d)
                    .map(|j| {
                        xtr.col_as_slice(j)
                            .iter()
                            .map(|v| (v - mean).powi(2))
                            .sum::<f64>()
                    })
                    .sum::<f64>()
                    / cnt;
                let s = if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 };
                for m in [xtr, xte] {
                    for j in 0..d {
                        for v in m.col_as_slice_mut(j) {
                            *v = (*v - mean) * s;
                        }
                    }
                }
            }
            Standardize::Feature => {
                for j in 0..d {
                    let c = xtr.col_as_slice(j);
                    let mean = c.iter().sum::<f64>() / n as f64;
                    let var = c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                    let s = if var > 1e-24 { 1.0 / var.sqrt() } else { 0.0 };
                    for v in xtr.col_as_slice_mut(j) {
                        *v = (*v - mean) * s;
                    }
                    for v in xte.col_as_slice_mut(j) {
                        *v = (*v - mean) * s;
                    }
                }
            }
        }
    }
}

/// MNIST-1D as written by `scripts/fetch-mnist1d.sh`: x.npy ‖ x_test.npy (n × 40) and
/// integer labels y.npy ‖ y_test.npy in 0..=9.
fn load_mnist1d(dir: &Path) -> Result<(NdArray, Vec<u8>, usize)> {
    let hint = "Run `scripts/fetch-mnist1d.sh` from the repository root to generate MNIST-1D into data/mnist1d/ (pip installs the `mnist1d` package in a private venv), or set data.path to the directory holding x.npy, y.npy, x_test.npy, y_test.npy.";
    let mut xs = Vec::new();
    let mut labels = Vec::new();
    let mut d = None;
    for (xf, yf) in [("x.npy", "y.npy"), ("x_test.npy", "y_test.npy")] {
        let (xp, yp) = (dir.join(xf), dir.join(yf));
        for p in [&xp, &yp] {
            if !p.exists() {
                return Err(missing("path", p, hint));
            }
        }
        let x = read_npy(&xp)?;
        let y = read_npy(&yp)?;
        if x.shape.len() != 2 {
            return Err(Error::data(
                &xp,
                format!("shape {:?}; need n × length", x.shape),
            ));
        }
        if y.data.len() != x.shape[0] {
            return Err(Error::data(
                &yp,
                format!(
                    "{} labels for {} sequences in {xf}",
                    y.data.len(),
                    x.shape[0]
                ),
            ));
        }
        if *d.get_or_insert(x.shape[1]) != x.shape[1] {
            return Err(Error::data(&xp, "its sequence length differs from x.npy's"));
        }
        if let Some(v) = y
            .data
            .iter()
            .find(|v| !(v.fract() == 0.0 && (0.0..10.0).contains(*v)))
        {
            return Err(Error::data(&yp, format!("label {v} is not a class 0–9")));
        }
        xs.extend(x.data);
        labels.extend(y.data.iter().map(|&v| v as u8));
    }
    let n = labels.len();
    Ok((NdArray::new(vec![n, d.unwrap_or(0)], xs), labels, 10))
}

fn relabel(e: Error, key: &str) -> Error {
    match e {
        Error::Config { msg, .. } => Error::config(key, msg),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::io::write_npy;

    fn config(path: &Path, n_test: usize) -> LabelledDataConfig {
        toml::from_str(&format!(
            "kind = \"mnist1d\"\npath = {:?}\nn_test = {n_test}\nlabel_shift = 0.0\nstandardize = \"none\"",
            path.display().to_string()
        ))
        .unwrap()
    }

    #[test]
    fn mnist1d_pools_the_generator_files_and_splits_them() {
        let dir = std::env::temp_dir().join(format!("featlab-mnist1d-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 10 + 5 tiny "sequences" of length 3; x[i] = (i, i, i) identifies the row
        let x = |n: usize, off: usize| {
            NdArray::new(
                vec![n, 3],
                (0..n * 3).map(|k| (off + k / 3) as f64).collect(),
            )
        };
        let y = |n: usize, off: usize| {
            NdArray::vector((0..n).map(|i| ((off + i) % 10) as f64).collect())
        };
        write_npy(&dir.join("x.npy"), &x(10, 0)).unwrap();
        write_npy(&dir.join("y.npy"), &y(10, 0)).unwrap();
        write_npy(&dir.join("x_test.npy"), &x(5, 10)).unwrap();
        write_npy(&dir.join("y_test.npy"), &y(5, 10)).unwrap();
        let lab = config(&dir, 4).build(1).unwrap();
        assert_eq!(
            (lab.train.n(), lab.test.n(), lab.train.d(), lab.classes),
            (11, 4, 3, 10)
        );
        // every pooled row appears once, with its own label (row value i ↦ label i mod 10)
        let mut seen: Vec<usize> = Vec::new();
        for (set, labels) in [
            (&lab.train, &lab.train_labels),
            (&lab.test, &lab.test_labels),
        ] {
            assert_eq!(labels.len(), set.n());
            for (i, &l) in labels.iter().enumerate() {
                let r = set.x[(i, 0)] as usize;
                assert_eq!(l as usize, r % 10);
                assert_eq!(set.y[(i, r % 10)], 1.0);
                seen.push(r);
            }
        }
        seen.sort();
        assert_eq!(seen, (0..15).collect::<Vec<_>>());
        // a label outside 0..9 is named with its file
        write_npy(
            &dir.join("y_test.npy"),
            &NdArray::vector(vec![0., 1., 2., 3., 12.]),
        )
        .unwrap();
        let e = config(&dir, 4).build(1).err().unwrap().to_string();
        assert!(e.contains("y_test.npy") && e.contains("label 12"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        // a missing directory says which script makes it
        let e = config(&dir, 4).build(1).err().unwrap().to_string();
        assert!(
            e.contains("scripts/fetch-mnist1d.sh") && e.contains("x.npy"),
            "{e}"
        );
    }
}
