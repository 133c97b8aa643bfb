//! File formats: `.npy` read/write, CSV, IDX (MNIST family), CIFAR-10 binary,
//! scikit-learn's 8×8 digits; atomic writes.
//!
//! Everything here reads whole files into memory and reports problems as
//! [`Error::Data`] naming the file and what is wrong, or
//! [`Error::Io`] for operating-system failures (missing file,
//! permission denied, disk full). No input bytes make these functions panic.
//!
//! Every writer goes through [`write_atomic`], so a reader (or a crash) never sees a
//! half-written output file.
//!
//! | format | read | write |
//! | --- | --- | --- |
//! | NPY 1.0/2.0/3.0 (`numpy.lib.format`) | [`read_npy`], [`parse_npy`] | [`write_npy`], [`npy_bytes`] |
//! | CSV of numbers | [`read_csv`], [`read_csv_with`], [`parse_csv`] | [`write_csv_table`], [`csv_table_bytes`] |
//! | IDX (MNIST family, optionally gzipped) | [`read_idx`], [`parse_idx`] | – |
//! | CIFAR-10 binary batches | [`read_cifar10_bins`] | – |
//! | scikit-learn `digits.csv.gz` | [`read_sklearn_digits`] | – |
//! | named tensors: safetensors, `.npz` | [`read_tensors`], [`parse_safetensors`], [`parse_npz`] | – |

mod atomic;
mod cifar;
mod csv;
mod idx;
#[cfg(test)]
mod interop_tests;
mod npy;
mod tensors;

pub use atomic::write_atomic;
pub use cifar::{read_cifar10_bins, CIFAR10_PIXELS, CIFAR10_RECORD};
pub use csv::{
    csv_table_bytes, parse_csv, read_csv, read_csv_with, read_sklearn_digits, write_csv_table,
    CsvHeader, CsvOptions,
};
pub use idx::{parse_idx, read_idx};
pub use npy::{npy_bytes, parse_npy, read_npy, write_npy};
pub use tensors::{parse_npz, parse_safetensors, read_tensors};

use crate::{Error, NdArray, Result};
use std::io::Read;
use std::path::Path;

/// One-hot encode class labels into an n × `num_classes` array, minus `shift`.
///
/// Row `i` holds `1 - shift` in column `labels[i]` and `-shift` elsewhere; `shift = 0`
/// gives the plain one-hot encoding, `shift = 1 / num_classes` the zero-mean "shifted
/// one-hot" targets used in the Neural Feature Ansatz papers.
///
/// Errors: [`Error::Shape`] if a label is `>= num_classes` (naming the first such
/// sample) and [`Error::Config`] (key `shift`) if `shift` is not finite.
pub fn one_hot(labels: &[u8], num_classes: usize, shift: f64) -> Result<NdArray> {
    if !shift.is_finite() {
        return Err(Error::config(
            "shift",
            format!("the one-hot shift must be finite, got {shift}"),
        ));
    }
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= num_classes)
    {
        let allowed = match num_classes {
            0 => "there are no classes".to_string(),
            c => format!("labels must be 0..={}", c - 1),
        };
        return Err(Error::Shape(format!(
            "one-hot encoding: label {l} of sample {i} does not fit {num_classes} classes \
             ({allowed})"
        )));
    }
    let n = labels.len();
    let mut data = vec![-shift; n * num_classes];
    for (i, &l) in labels.iter().enumerate() {
        data[i * num_classes + usize::from(l)] = 1.0 - shift;
    }
    Ok(NdArray {
        shape: vec![n, num_classes],
        data,
    })
}

/// Read a whole file, mapping OS errors to [`Error::Io`].
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

/// True when `bytes` start with the gzip magic number (RFC 1952).
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompress a gzip stream (possibly multi-member) of at most `limit` output bytes.
fn gunzip(bytes: &[u8], limit: u64, path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(bytes).take(limit.saturating_add(1));
    dec.read_to_end(&mut out)
        .map_err(|e| Error::data(path, format!("corrupt gzip stream: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::data(
            path,
            format!("gzip stream decompresses to more than {limit} bytes, more than this format can need"),
        ));
    }
    Ok(out)
}

/// A short guess at what a file that failed a magic-number check actually is, to
/// append to error messages ("" when nothing is recognised).
fn sniff(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(64)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let trimmed: &[u8] = {
        let start = lower
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(lower.len());
        &lower[start..]
    };
    if bytes.is_empty() {
        " (the file is empty)"
    } else if is_gzip(bytes) {
        " (it looks like a gzip file: decompress it first)"
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        " (it looks like a zip archive, e.g. an .npz or a torch.save file: save each tensor \
         with numpy.save(path, t.detach().cpu().numpy()) instead)"
    } else if bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|&p| p <= 5) {
        " (it looks like a Python pickle, which featlab never loads: save arrays with numpy.save)"
    } else if trimmed.starts_with(b"<!doctype") || trimmed.starts_with(b"<html") {
        " (it looks like an HTML page: probably a failed download)"
    } else if bytes.starts_with(b"\x93NUMPY") {
        " (it looks like an .npy file: use the .npy reader)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_plain_and_shifted() {
        let a = one_hot(&[2, 0, 1], 3, 0.0).unwrap();
        assert_eq!(a.shape, vec![3, 3]);
        assert_eq!(a.data, vec![0., 0., 1., 1., 0., 0., 0., 1., 0.]);
        let s = one_hot(&[1], 4, 0.25).unwrap();
        assert_eq!(s.data, vec![-0.25, 0.75, -0.25, -0.25]);
        // rows of the shifted one-hot sum to zero when shift = 1/c
        assert!(s.data.iter().sum::<f64>().abs() < 1e-15);
        let e = one_hot(&[], 5, 0.0).unwrap();
        assert_eq!(e.shape, vec![0, 5]);
    }

    #[test]
    fn one_hot_rejects_out_of_range_and_bad_shift() {
        let err = one_hot(&[0, 1, 10], 10, 0.0).unwrap_err();
        assert!(matches!(err, Error::Shape(_)));
        let msg = err.to_string();
        assert!(
            msg.contains("label 10") && msg.contains("sample 2"),
            "{msg}"
        );
        assert!(one_hot(&[0], 0, 0.0).is_err());
        assert!(matches!(
            one_hot(&[0], 2, f64::NAN).unwrap_err(),
            Error::Config { .. }
        ));
    }

    #[test]
    fn sniff_recognises_common_mistakes() {
        assert!(sniff(b"\x1f\x8b\x08").contains("gzip"));
        assert!(sniff(b"PK\x03\x04rest").contains("zip"));
        assert!(sniff(b"\x80\x02}q").contains("pickle"));
        assert!(sniff(b"  <!DOCTYPE html>").contains("HTML"));
        assert!(sniff(b"").contains("empty"));
        assert_eq!(sniff(b"hello"), "");
    }
}
