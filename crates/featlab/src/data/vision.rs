//! Image classification sets stored locally in their published layouts (`data.kind =
//! "mnist" | "fashion_mnist" | "cifar10" | "svhn"`, `data.path` = the directory;
//! `scripts/fetch-vision.sh <set>` downloads them where the internet is reachable):
//!
//! | set | files in `path` | images |
//! |---|---|---|
//! | `mnist`, `fashion_mnist` | `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each optionally `.gz`) | 28×28 grey, 60000 + 10000 |
//! | `cifar10` | `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin` (or in `path/cifar-10-batches-bin/`) | 32×32 RGB, 50000 + 10000 |
//! | `svhn` | `train_x.npy`, `train_y.npy`, `test_x.npy`, `test_y.npy` (n × 3 × 32 × 32 uint8 and labels 0–9, converted from the cropped-digits `.mat` files by the fetch script) | 32×32 RGB, 73257 + 26032 |
//!
//! Pixels are scaled to [0, 1] and flattened in C×H×W order; `grayscale` turns RGB into
//! luma ([`super::preprocess::grayscale_chw`]) file by file, so a CIFAR-10 batch is never
//! held in colour beyond its own file.

use super::io::{read_cifar10_bins, read_idx, read_npy};
use super::preprocess::grayscale_chw;
use crate::{Error, NdArray, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A published image set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisionSet {
    Mnist,
    FashionMnist,
    Cifar10,
    Svhn,
}

/// The training or the test files of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

impl VisionSet {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            VisionSet::Mnist => "mnist",
            VisionSet::FashionMnist => "fashion_mnist",
            VisionSet::Cifar10 => "cifar10",
            VisionSet::Svhn => "svhn",
        }
    }
    /// Default directory, relative to where featlab runs (`scripts/fetch-vision.sh` writes here).
    pub fn default_dir(self) -> PathBuf {
        PathBuf::from(format!("data/{}", self.name()))
    }
    /// Colour channels of the stored images.
    pub fn channels(self) -> usize {
        match self {
            VisionSet::Mnist | VisionSet::FashionMnist => 1,
            _ => 3,
        }
    }
    fn hint(self, dir: &Path) -> String {
        format!(
            "Put the {} files in `{}` (data.path; layout in docs/data.md), or, with internet access, run `scripts/fetch-vision.sh {}` from the repository root to download them there.",
            self.name(),
            dir.display(),
            self.name()
        )
    }

    /// Load one part: (n × d pixels in [0, 1], C×H×W flattened; labels 0–9). `grayscale`
    /// converts RGB sets to luma (no-op for grey sets).
    pub fn load(self, dir: &Path, part: Part, grayscale: bool) -> Result<(NdArray, Vec<u8>)> {
        let missing = |p: &Path| {
            Error::config(
                "data.path",
                format!("file `{}` not found. {}", p.display(), self.hint(dir)),
            )
        };
        let (x, labels) = match self {
            VisionSet::Mnist | VisionSet::FashionMnist => {
                let stem = if part == Part::Train { "train" } else { "t10k" };
                let find = |name: String| -> Result<PathBuf> {
                    let plain = dir.join(&name);
                    let gz = dir.join(format!("{name}.gz"));
                    if plain.exists() {
                        Ok(plain)
                    } else if gz.exists() {
                        Ok(gz)
                    } else {
                        Err(missing(&plain))
                    }
                };
                let ip = find(format!("{stem}-images-idx3-ubyte"))?;
                let lp = find(format!("{stem}-labels-idx1-ubyte"))?;
                let imgs = read_idx(&ip)?;
                let lab = read_idx(&lp)?;
                if imgs.shape.len() != 3 {
                    return Err(Error::data(
                        &ip,
                        format!("shape {:?}; need n × rows × cols images", imgs.shape),
                    ));
                }
                let n = imgs.shape[0];
                let labels = labels_0_to_9(&lab.data, n, &lp)?;
                let d = imgs.data.len() / n.max(1);
                (
                    NdArray::new(vec![n, d], imgs.data.iter().map(|v| v / 255.0).collect()),
                    labels,
                )
            }
            VisionSet::Cifar10 => {
                let base = if dir.join("cifar-10-batches-bin").is_dir() {
                    dir.join("cifar-10-batches-bin")
                } else {
                    dir.to_path_buf()
                };
                let files: Vec<PathBuf> = match part {
                    Part::Train => (1..=5)
                        .map(|k| base.join(format!("data_batch_{k}.bin")))
                        .collect(),
                    Part::Test => vec![base.join("test_batch.bin")],
                };
                let mut xs = Vec::new();
                let mut ls = Vec::new();
                for f in &files {
                    if !f.exists() {
                        return Err(missing(f));
                    }
                    let (x, l) = read_cifar10_bins(std::slice::from_ref(f))?;
                    let n = l.len();
                    xs.extend(if grayscale {
                        grayscale_chw(&x.data, n, 1024)
                    } else {
                        x.data
                    });
                    ls.extend(l);
                }
                // read_cifar10_bins already scales to [0, 1]
                let n = ls.len();
                let d = xs.len() / n.max(1);
                (NdArray::new(vec![n, d], xs), ls)
            }
            VisionSet::Svhn => {
                let stem = if part == Part::Train { "train" } else { "test" };
                let (xp, yp) = (
                    dir.join(format!("{stem}_x.npy")),
                    dir.join(format!("{stem}_y.npy")),
                );
                for p in [&xp, &yp] {
                    if !p.exists() {
                        return Err(missing(p));
                    }
                }
                let x = read_npy(&xp)?;
                let y = read_npy(&yp)?;
                if x.shape.len() != 4 || x.shape[1] != 3 {
                    return Err(Error::data(&xp, format!("shape {:?}; need n × 3 × height × width (C×H×W, as scripts/fetch-vision.sh writes)", x.shape)));
                }
                let n = x.shape[0];
                let labels = labels_0_to_9(&y.data, n, &yp)?;
                let pixels = x.shape[2] * x.shape[3];
                let data: Vec<f64> = if grayscale {
                    grayscale_chw(&x.data, n, pixels)
                } else {
                    x.data
                };
                let d = data.len() / n.max(1);
                (
                    NdArray::new(vec![n, d], data.into_iter().map(|v| v / 255.0).collect()),
                    labels,
                )
            }
        };
        if let Some(v) = x.data.iter().find(|v| !v.is_finite()) {
            return Err(Error::config(
                "data.path",
                format!("a {} pixel is {v}, not a finite number", self.name()),
            ));
        }
        Ok((x, labels))
    }
}

fn labels_0_to_9(v: &[f64], n: usize, path: &Path) -> Result<Vec<u8>> {
    if v.len() != n {
        return Err(Error::data(
            path,
            format!("{} labels for {n} images", v.len()),
        ));
    }
    if let Some((i, l)) = v
        .iter()
        .enumerate()
        .find(|(_, l)| !(l.fract() == 0.0 && (0.0..10.0).contains(*l)))
    {
        return Err(Error::data(
            path,
            format!("label {l} of sample {i} is not a class 0–9"),
        ));
    }
    Ok(v.iter().map(|&l| l as u8).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::io::write_npy;

    /// An IDX file: magic 0x0000 08 ndim, dims big-endian, u8 data.
    pub(crate) fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    /// Writes a tiny MNIST-layout directory: `n` 2×3 images, image i has every pixel = i,
    /// label i mod 10; test images start at 100.
    pub(crate) fn write_mnist(dir: &Path, n_train: usize, n_test: usize) {
        std::fs::create_dir_all(dir).unwrap();
        for (stem, n, off) in [("train", n_train, 0usize), ("t10k", n_test, 100)] {
            let px: Vec<u8> = (0..n).flat_map(|i| vec![(off + i) as u8; 6]).collect();
            let lb: Vec<u8> = (0..n).map(|i| ((off + i) % 10) as u8).collect();
            std::fs::write(
                dir.join(format!("{stem}-images-idx3-ubyte")),
                idx_bytes(&[n as u32, 2, 3], &px),
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("{stem}-labels-idx1-ubyte")),
                idx_bytes(&[n as u32], &lb),
            )
            .unwrap();
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("featlab-vision-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn mnist_layout_reads_both_parts_scaled_to_unit_interval() {
        let dir = tmp("mnist");
        write_mnist(&dir, 12, 5);
        let (x, l) = VisionSet::FashionMnist
            .load(&dir, Part::Train, false)
            .unwrap();
        assert_eq!(x.shape, vec![12, 6]);
        assert_eq!(x.data[6 * 7], 7.0 / 255.0);
        assert_eq!(l[7], 7);
        let (xt, lt) = VisionSet::Mnist.load(&dir, Part::Test, true).unwrap();
        assert_eq!((xt.shape[0], lt[0]), (5, 0));
        assert_eq!(xt.data[0], 100.0 / 255.0);
        std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
        let e = VisionSet::Mnist
            .load(&dir, Part::Test, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.path")
                && e.contains("t10k-labels-idx1-ubyte")
                && e.contains("scripts/fetch-vision.sh mnist"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cifar_batches_and_svhn_npy_with_grayscale() {
        let dir = tmp("cifar");
        let sub = dir.join("cifar-10-batches-bin");
        std::fs::create_dir_all(&sub).unwrap();
        // every record: label k, R = 255, G = 0, B = 255 → luma (0.299 + 0.114)
        let rec = |k: u8| {
            let mut r = vec![k];
            r.extend(std::iter::repeat_n(255u8, 1024));
            r.extend(std::iter::repeat_n(0u8, 1024));
            r.extend(std::iter::repeat_n(255u8, 1024));
            r
        };
        for k in 1..=5u8 {
            std::fs::write(
                sub.join(format!("data_batch_{k}.bin")),
                [rec(k), rec(k + 1)].concat(),
            )
            .unwrap();
        }
        std::fs::write(sub.join("test_batch.bin"), rec(0)).unwrap();
        let (x, l) = VisionSet::Cifar10.load(&dir, Part::Train, true).unwrap();
        assert_eq!(x.shape, vec![10, 1024]);
        assert_eq!(l, vec![1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
        assert!((x.data[5] - 0.413).abs() < 1e-12);
        let (xc, _) = VisionSet::Cifar10.load(&dir, Part::Test, false).unwrap();
        assert_eq!(xc.shape, vec![1, 3072]);
        assert_eq!((xc.data[0], xc.data[1024]), (1.0, 0.0));
        std::fs::remove_file(sub.join("data_batch_3.bin")).unwrap();
        let e = VisionSet::Cifar10
            .load(&dir, Part::Train, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_3.bin") && e.contains("fetch-vision.sh cifar10"),
            "{e}"
        );

        let sv = tmp("svhn");
        std::fs::create_dir_all(&sv).unwrap();
        let x = NdArray::new(vec![2, 3, 2, 2], (0..24).map(|v| v as f64).collect());
        write_npy(&sv.join("train_x.npy"), &x).unwrap();
        write_npy(&sv.join("train_y.npy"), &NdArray::vector(vec![3.0, 9.0])).unwrap();
        let (g, l) = VisionSet::Svhn.load(&sv, Part::Train, true).unwrap();
        assert_eq!((g.shape.clone(), l), (vec![2, 4], vec![3, 9]));
        // sample 0, pixel 0: R = 0, G = 4, B = 8
        assert!((g.data[0] - (0.587 * 4.0 + 0.114 * 8.0) / 255.0).abs() < 1e-15);
        write_npy(&sv.join("train_y.npy"), &NdArray::vector(vec![3.0, 10.0])).unwrap();
        let e = VisionSet::Svhn
            .load(&sv, Part::Train, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("train_y.npy") && e.contains("label 10"), "{e}");
        for d in [dir, sv] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
