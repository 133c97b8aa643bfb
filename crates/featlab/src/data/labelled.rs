//! Labelled data for every study that reads class-labelled inputs (NFA/RFM, AGF on real
//! data, `exact_deep_real`): `[data]` tables with a class-label source, class selection,
//! a seeded train/test split, per-class subsampling, the shared input preprocessing of
//! [`crate::data::preprocess`] (standardise, PCA/ZCA whitening with ε, unit mean norm) and
//! shifted one-hot targets (`y = e_label − shift`; the centred labels of Beaglehole et
//! al. 2024's code use shift = 1/C, `targets = "centred"`).

use crate::data::io::{one_hot, read_cifar10_bins, read_idx, read_npy, read_sklearn_digits};
use crate::data::preprocess::{filter_classes, per_class_subsample, InputPipeline};
pub use crate::data::preprocess::{ClassSelection, Standardize, Targets, Whitening};
use crate::data::vision::{Part, VisionSet};
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
    /// MNIST in its IDX files (`path` = directory, default `data/mnist`; [`crate::data::vision`]).
    Mnist,
    /// Fashion-MNIST in its IDX files (`path` default `data/fashion_mnist`).
    FashionMnist,
    /// SVHN cropped digits as `.npy` (`path` default `data/svhn`).
    Svhn,
}

impl Source {
    fn vision(self) -> Option<VisionSet> {
        match self {
            Source::Mnist => Some(VisionSet::Mnist),
            Source::FashionMnist => Some(VisionSet::FashionMnist),
            Source::Cifar10 => Some(VisionSet::Cifar10),
            Source::Svhn => Some(VisionSet::Svhn),
            _ => None,
        }
    }
}

/// How the train and test samples are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Pool every sample, then a seeded permutation: the first `n_train` train, the next
    /// `n_test` test (default for digits, MNIST-1D, IDX files, clusters).
    Pooled,
    /// The set's own training and test files; `n_train` / `n_test` seeded subsamples of
    /// each (default for mnist, fashion_mnist, cifar10, svhn).
    Standard,
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
    /// Clusters: number of classes. Other sources: the classes kept, a count k (0..k−1)
    /// or a list (relabelled 0..len−1 in list order).
    #[serde(default)]
    pub classes: Option<ClassSelection>,
    #[serde(default)]
    pub separation: Option<f64>,
    /// Training samples per class (seeded subsample of the training split).
    #[serde(default)]
    pub per_class: Option<usize>,
    /// RGB sets (cifar10, svhn): convert to luma first.
    #[serde(default)]
    pub grayscale: bool,
    /// Images are always flattened (C×H×W) for featlab's MLPs; `false` is refused.
    #[serde(default = "yes")]
    pub flatten: bool,
    /// Whitening after standardisation (training covariance).
    #[serde(default)]
    pub whiten: Whitening,
    /// ε of the whitening.
    #[serde(default = "d_eps")]
    pub whiten_eps: f64,
    /// Rescale inputs so the training mean of ‖x‖² is 1.
    #[serde(default)]
    pub unit_norm: bool,
    /// `centred` sets the one-hot shift to 1/C (overrides `label_shift`).
    #[serde(default)]
    pub targets: Option<Targets>,
    /// Train/test split (default by source, see [`Split`]).
    #[serde(default)]
    pub split: Option<Split>,
}

fn yes() -> bool {
    true
}
fn d_eps() -> f64 {
    1e-5
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
    /// Load, select classes, split (seeded), subsample per class, preprocess
    /// ([`crate::data::preprocess`], statistics of the training split) and encode.
    pub fn build(&self, seed: u64) -> Result<Labelled> {
        if !self.flatten {
            return Err(Error::config("data.flatten", "featlab's networks are MLPs on flat vectors: images are flattened in C×H×W order; `flatten = false` is not supported"));
        }
        if self.grayscale
            && !matches!(
                self.kind,
                Source::Cifar10 | Source::Svhn | Source::Mnist | Source::FashionMnist
            )
        {
            return Err(Error::config(
                "data.grayscale",
                format!(
                    "applies to image sets (mnist, fashion_mnist, cifar10, svhn), not kind = {:?}",
                    self.kind
                ),
            ));
        }
        if self.per_class.is_some() && self.n_train.is_some() {
            return Err(Error::config(
                "data.per_class",
                "give per_class or n_train, not both",
            ));
        }
        let split = self.split.unwrap_or(match self.kind.vision() {
            Some(_) if self.files.is_empty() => Split::Standard,
            _ => Split::Pooled,
        });
        let (xtr, ltr, xte, lte, classes) = match split {
            Split::Pooled => self.pooled(seed)?,
            Split::Standard => self.standard(seed)?,
        };
        let pipeline = InputPipeline {
            standardize: self.standardize,
            whiten: self.whiten,
            whiten_eps: self.whiten_eps,
            unit_norm: self.unit_norm,
        };
        let fitted = pipeline.fit(&xtr)?;
        let (xtr, xte) = (fitted.apply(&xtr), fitted.apply(&xte));
        let shift = match self.targets {
            Some(Targets::Centred) => 1.0 / classes as f64,
            _ => self.label_shift,
        };
        let ytr = one_hot(&ltr, classes, shift)
            .map_err(|e| relabel(e, "data.label_shift"))?
            .to_mat();
        let yte = if lte.is_empty() {
            Mat::zeros(0, classes)
        } else {
            one_hot(&lte, classes, shift)?.to_mat()
        };
        Ok(Labelled {
            train: Dataset::new(xtr, ytr)?,
            test: Dataset::new(xte, yte)?,
            train_labels: ltr,
            test_labels: lte,
            classes,
        })
    }

    /// The classes kept (original labels, new order) of a set with `available` classes.
    fn kept(&self, available: usize) -> Result<Option<Vec<u8>>> {
        match (&self.classes, self.kind) {
            (_, Source::Clusters) | (None, _) => Ok(None),
            (Some(sel), _) => sel.kept(available).map(Some),
        }
    }

    #[allow(clippy::type_complexity)]
    fn pooled(&self, seed: u64) -> Result<(Mat<f64>, Vec<u8>, Mat<f64>, Vec<u8>, usize)> {
        let (x, labels, classes) = self.load(seed)?;
        let (_, d) = x.rows_cols();
        let (rows, labels, classes) = match self.kept(classes)? {
            None => ((0..labels.len()).collect::<Vec<_>>(), labels, classes),
            Some(k) => {
                let (idx, new) = filter_classes(&labels, &k);
                (idx, new, k.len())
            }
        };
        let n = rows.len();
        let n_test = self.n_test;
        if n_test >= n {
            return Err(Error::config(
                "data.n_test",
                format!("the data set has {n} samples; n_test = {n_test} leaves none for training"),
            ));
        }
        let perm = permutation(&mut stream(seed, "nfa-split"), n);
        let (tr, te): (Vec<usize>, Vec<usize>) = if let Some(k) = self.per_class {
            let te = perm[n - n_test..].to_vec();
            (
                per_class_subsample(&perm[..n - n_test], &labels, classes, k)?,
                te,
            )
        } else {
            let n_train = self.n_train.unwrap_or(n - n_test);
            if n_train == 0 || n_train + n_test > n {
                return Err(Error::config("data.n_train", format!("need 1 ≤ n_train and n_train + n_test ≤ {n}, got n_train = {n_train}, n_test = {n_test}")));
            }
            (
                perm[..n_train].to_vec(),
                perm[n_train..n_train + n_test].to_vec(),
            )
        };
        let pick = |idx: &[usize]| Mat::from_fn(idx.len(), d, |i, j| x.data[rows[idx[i]] * d + j]);
        let lab = |idx: &[usize]| idx.iter().map(|&i| labels[i]).collect::<Vec<u8>>();
        Ok((pick(&tr), lab(&tr), pick(&te), lab(&te), classes))
    }

    /// The set's own train and test files, seeded subsamples of each.
    #[allow(clippy::type_complexity)]
    fn standard(&self, seed: u64) -> Result<(Mat<f64>, Vec<u8>, Mat<f64>, Vec<u8>, usize)> {
        let set = self.kind.vision().filter(|_| self.files.is_empty()).ok_or_else(|| {
            Error::config("data.split", format!("split = \"standard\" needs a set with its own test files (mnist, fashion_mnist, cifar10 by directory, svhn), not kind = {:?}", self.kind))
        })?;
        let dir = self.dir();
        let mut parts = Vec::new();
        for (part, tag) in [(Part::Train, "nfa-split"), (Part::Test, "nfa-split-test")] {
            let (x, labels) = set.load(&dir, part, self.grayscale)?;
            let d = x.shape[1];
            let (rows, labels, classes) = match self.kept(10)? {
                None => ((0..labels.len()).collect::<Vec<_>>(), labels, 10),
                Some(k) => {
                    let (idx, new) = filter_classes(&labels, &k);
                    (idx, new, k.len())
                }
            };
            let perm = permutation(&mut stream(seed, tag), rows.len());
            let take: Vec<usize> = match part {
                Part::Train => match self.per_class {
                    Some(k) => per_class_subsample(&perm, &labels, classes, k)?,
                    None => {
                        let m = self.n_train.unwrap_or(rows.len());
                        if m == 0 || m > rows.len() {
                            return Err(Error::config("data.n_train", format!("need 1 ≤ n_train ≤ {} (training samples of the kept classes), got {m}", rows.len())));
                        }
                        perm[..m].to_vec()
                    }
                },
                Part::Test => {
                    if self.n_test > rows.len() {
                        return Err(Error::config(
                            "data.n_test",
                            format!(
                                "the test files hold {} samples of the kept classes, n_test = {}",
                                rows.len(),
                                self.n_test
                            ),
                        ));
                    }
                    perm[..self.n_test].to_vec()
                }
            };
            let xs = Mat::from_fn(take.len(), d, |i, j| x.data[rows[take[i]] * d + j]);
            let ls: Vec<u8> = take.iter().map(|&i| labels[i]).collect();
            parts.push((xs, ls, classes));
        }
        let (xte, lte, _) = parts.pop().expect("test part");
        let (xtr, ltr, classes) = parts.pop().expect("train part");
        Ok((xtr, ltr, xte, lte, classes))
    }

    /// `path`, or the source's default directory when `path` is left at the digits default.
    fn dir(&self) -> PathBuf {
        match self.kind.vision() {
            Some(set) if self.path == d_path() => set.default_dir(),
            _ => self.path.clone(),
        }
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
            Source::Cifar10 if !self.files.is_empty() => {
                for p in &self.files {
                    if !p.exists() {
                        return Err(missing("files", p, "Download the CIFAR-10 binary version and list its batch files in data.files, or set data.path to its directory (scripts/fetch-vision.sh cifar10 fetches it)."));
                    }
                }
                let (x, l) = read_cifar10_bins(&self.files)?;
                let x = if self.grayscale {
                    let n = l.len();
                    NdArray::new(
                        vec![n, 1024],
                        crate::data::preprocess::grayscale_chw(&x.data, n, 1024),
                    )
                } else {
                    x
                };
                Ok((x, l, 10))
            }
            Source::Cifar10 | Source::Mnist | Source::FashionMnist | Source::Svhn => {
                let set = self.kind.vision().expect("image set");
                let dir = self.dir();
                let (a, mut la) = set.load(&dir, Part::Train, self.grayscale)?;
                let (b, lb) = set.load(&dir, Part::Test, self.grayscale)?;
                let d = a.shape[1];
                la.extend(lb);
                let mut data = a.data;
                data.extend(b.data);
                Ok((NdArray::new(vec![la.len(), d], data), la, 10))
            }
            Source::Clusters => {
                let (n, d, k) = (
                    self.n.unwrap_or(300),
                    self.d.unwrap_or(10),
                    match &self.classes {
                        None => 3,
                        Some(ClassSelection::Count(k)) => *k,
                        Some(ClassSelection::List(_)) => {
                            return Err(Error::config(
                                "data.classes",
                                "clusters take a number of classes, not a list",
                            ))
                        }
                    },
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

    #[test]
    fn mnist_directory_with_classes_per_class_whitening_and_centred_targets() {
        let dir =
            std::env::temp_dir().join(format!("featlab-labelled-mnist-{}", std::process::id()));
        // 60 training images (6 per class), 20 test images; pixel value = index
        crate::data::vision::tests::write_mnist(&dir, 60, 20);
        let cfg: LabelledDataConfig = toml::from_str(&format!(
            "kind = \"mnist\"\npath = {:?}\nclasses = [3, 1]\nper_class = 4\nn_test = 4\nstandardize = \"none\"\nwhiten = \"zca\"\nwhiten_eps = 1e-3\ntargets = \"centred\"",
            dir.display().to_string()
        ))
        .unwrap();
        let lab = cfg.build(5).unwrap();
        assert_eq!(
            (lab.train.n(), lab.test.n(), lab.train.d(), lab.classes),
            (8, 4, 6, 2)
        );
        // per class 4, relabelled 3 → 0, 1 → 1; centred one-hot rows e − 1/2
        assert_eq!(lab.train_labels.iter().filter(|&&l| l == 0).count(), 4);
        for (i, &l) in lab.train_labels.iter().enumerate() {
            assert_eq!(lab.train.y[(i, l as usize)], 0.5);
            assert_eq!(lab.train.y[(i, 1 - l as usize)], -0.5);
        }
        // test rows come from the t10k file (pixel values ≥ 100, labels 1 or 3 there)
        assert!(lab.test_labels.iter().all(|&l| l < 2));
        // whitened training inputs have zero mean
        for j in 0..6 {
            let m: f64 = (0..8).map(|i| lab.train.x[(i, j)]).sum::<f64>() / 8.0;
            assert!(m.abs() < 1e-12);
        }
        // pooled split of the same files: 80 images, the seeded pool
        let pooled: LabelledDataConfig = toml::from_str(&format!(
            "kind = \"fashion_mnist\"\npath = {:?}\nsplit = \"pooled\"\nn_test = 10\nlabel_shift = 0.0",
            dir.display().to_string()
        ))
        .unwrap();
        let p = pooled.build(1).unwrap();
        assert_eq!((p.train.n(), p.test.n(), p.classes), (70, 10, 10));
        // errors name the key
        let mut bad = cfg.clone();
        bad.flatten = false;
        assert!(bad
            .build(0)
            .err()
            .unwrap()
            .to_string()
            .contains("data.flatten"));
        let mut bad = cfg.clone();
        bad.per_class = Some(7);
        assert!(bad
            .build(0)
            .err()
            .unwrap()
            .to_string()
            .contains("data.per_class"));
        let mut bad = cfg.clone();
        bad.kind = Source::Digits;
        bad.grayscale = true;
        assert!(bad
            .build(0)
            .err()
            .unwrap()
            .to_string()
            .contains("data.grayscale"));
        std::fs::remove_dir_all(&dir).unwrap();
        let e = cfg.build(5).err().unwrap().to_string();
        assert!(
            e.contains("scripts/fetch-vision.sh mnist") && e.contains("train-images-idx3-ubyte"),
            "{e}"
        );
    }
}
