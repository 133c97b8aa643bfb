//! CIFAR-10 binary batches (`cifar-10-batches-bin/data_batch_{1..5}.bin`,
//! `test_batch.bin`), as described on Alex Krizhevsky's CIFAR page: each record is one
//! label byte (0..=9) followed by 3072 pixel bytes — the 1024 red values of the 32×32
//! image in row-major order, then the 1024 green, then the 1024 blue — and each batch
//! file holds 10000 records.

use super::{read_file, sniff};
use crate::{Error, NdArray, Result};
use std::path::{Path, PathBuf};

/// Pixel bytes per CIFAR-10 image (3 channels × 32 × 32).
pub const CIFAR10_PIXELS: usize = 3072;
/// Bytes per CIFAR-10 record (1 label byte + [`CIFAR10_PIXELS`]).
pub const CIFAR10_RECORD: usize = 1 + CIFAR10_PIXELS;

/// Read and concatenate CIFAR-10 binary batch files, in the order given.
///
/// Returns x (n × 3072: pixels / 255 in [0, 1], channel-major as stored — R plane,
/// G plane, B plane, each 32×32 row-major) and the n labels. Files may hold any whole
/// number of records (the official batches hold 10000 each). No paths give n = 0.
///
/// Errors: [`Error::Io`] if a file cannot be read; [`Error::Data`] if a file's size is
/// not a whole number of 3073-byte records (with a hint when it looks like the CIFAR-100
/// binary format, the Python pickle version or the unextracted `.tar.gz`) or a label
/// byte is not 0..=9.
pub fn read_cifar10_bins(paths: &[PathBuf]) -> Result<(NdArray, Vec<u8>)> {
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let bytes = read_file(path)?;
        parse_into(&bytes, path, &mut x, &mut labels)?;
    }
    let n = labels.len();
    Ok((NdArray::new(vec![n, CIFAR10_PIXELS], x), labels))
}

fn parse_into(bytes: &[u8], path: &Path, x: &mut Vec<f64>, labels: &mut Vec<u8>) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR10_RECORD) {
        let mut hint = sniff(bytes).to_string();
        if hint.is_empty() && !bytes.is_empty() && bytes.len().is_multiple_of(CIFAR10_RECORD + 1) {
            hint = " (its size fits 3074-byte records: is this CIFAR-100, which has a \
                    coarse and a fine label byte? It is not supported here)"
                .into();
        }
        return Err(Error::data(
            path,
            format!(
                "{} bytes is not a whole number of {CIFAR10_RECORD}-byte CIFAR-10 records \
                 (1 label byte + {CIFAR10_PIXELS} pixel bytes): {} records and {} extra bytes{hint}",
                bytes.len(),
                bytes.len() / CIFAR10_RECORD,
                bytes.len() % CIFAR10_RECORD
            ),
        ));
    }
    let n = bytes.len() / CIFAR10_RECORD;
    x.reserve(n * CIFAR10_PIXELS);
    labels.reserve(n);
    for (i, rec) in bytes.chunks_exact(CIFAR10_RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(Error::data(
                path,
                format!(
                    "record {i} (byte offset {}) has label {}, but CIFAR-10 labels are 0..=9",
                    i * CIFAR10_RECORD,
                    rec[0]
                ),
            ));
        }
        labels.push(rec[0]);
        x.extend(rec[1..].iter().map(|&b| f64::from(b) / 255.0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` records: record r has label r % 10 and pixel j = (r + j) % 256.
    fn batch(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n * CIFAR10_RECORD);
        for r in 0..n {
            v.push((r % 10) as u8);
            v.extend((0..CIFAR10_PIXELS).map(|j| ((r + j) % 256) as u8));
        }
        v
    }

    #[test]
    fn cifar_reads_and_concatenates_batches() {
        let dir = std::env::temp_dir().join(format!("featlab-io-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("data_batch_1.bin"), dir.join("data_batch_2.bin"));
        std::fs::write(&a, batch(3)).unwrap();
        std::fs::write(&b, batch(12)).unwrap();
        let (x, y) = read_cifar10_bins(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(x.shape, vec![15, 3072]);
        assert_eq!(&y[..5], &[0, 1, 2, 0, 1]);
        assert_eq!(y[14], 1);
        // record 1 of the first file: pixel j = (1 + j) % 256; channel-major as stored
        assert_eq!(x.data[3072], 1.0 / 255.0);
        assert_eq!(x.data[3072 + 254], 1.0);
        assert_eq!(x.data[3072 + 255], 0.0);
        assert!(x.data.iter().all(|&v| (0.0..=1.0).contains(&v)));

        let (x0, y0) = read_cifar10_bins(&[]).unwrap();
        assert_eq!((x0.shape, y0.len()), (vec![0, 3072], 0));

        // wrong sizes, bad labels, missing files
        let err = |bytes: &[u8]| {
            std::fs::write(&a, bytes).unwrap();
            match read_cifar10_bins(std::slice::from_ref(&a)) {
                Err(e @ Error::Data { .. }) => e.to_string(),
                other => panic!("expected Error::Data, got {other:?}"),
            }
        };
        let mut short = batch(2);
        short.pop();
        let e = err(&short);
        assert!(
            e.contains("6145 bytes") && e.contains("1 records and 3072 extra bytes"),
            "{e}"
        );
        assert!(err(&[]).contains("empty"));
        assert!(err(&vec![0u8; 2 * 3074]).contains("CIFAR-100"));
        assert!(err(b"\x80\x02}q\x00(X").contains("pickle"));
        assert!(err(b"\x1f\x8b\x08\x00\x00").contains("gzip"));
        let mut bad_label = batch(3);
        bad_label[2 * CIFAR10_RECORD] = 10;
        let e = err(&bad_label);
        assert!(e.contains("record 2") && e.contains("label 10"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(read_cifar10_bins(&[b]), Err(Error::Io { .. })));
    }
}
