//! IDX files, the format of MNIST, Fashion-MNIST, EMNIST and KMNIST, as described on
//! Yann LeCun's MNIST page.
//!
//! Layout: two zero bytes, a type code byte (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32,
//! 0x0D f32, 0x0E f64), the number of dimensions as one byte, each dimension as a
//! big-endian `u32`, then the elements in C order, big-endian.

use super::{is_gzip, read_file, sniff};
use crate::{Error, NdArray, Result};
use std::io::Read;
use std::path::Path;

/// Read an IDX file (gzipped or not; gzip is detected by its magic number, whatever
/// the file name) into an f64 array of the stored shape. Values are converted, not
/// scaled: MNIST pixels come back as 0..=255, labels as 0..=9.
///
/// Errors: [`Error::Io`] if the file cannot be read; [`Error::Data`] for a bad magic
/// number, an unknown type code, a corrupt gzip stream, or data shorter or longer than
/// the dimensions say.
pub fn read_idx(path: &Path) -> Result<NdArray> {
    parse_idx(&read_file(path)?, path)
}

/// Parse the bytes of an IDX file (gzipped or not); see [`read_idx`].
///
/// A gzipped input is decompressed only as far as its header says the data extends
/// (plus one byte to detect trailing data), so a forged stream cannot exhaust memory.
pub fn parse_idx(bytes: &[u8], path_for_errors: &Path) -> Result<NdArray> {
    if is_gzip(bytes) {
        let mut dec = flate2::read::MultiGzDecoder::new(bytes);
        parse_stream(&mut dec, bytes, path_for_errors)
    } else {
        let mut r = bytes;
        parse_stream(&mut r, bytes, path_for_errors)
    }
}

/// Read up to `n` bytes (fewer only at the end of the stream).
fn read_up_to(r: &mut dyn Read, n: u64, path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(n)
        .read_to_end(&mut out)
        .map_err(|e| Error::data(path, format!("corrupt gzip stream: {e}")))?;
    Ok(out)
}

fn parse_stream(r: &mut dyn Read, raw: &[u8], path: &Path) -> Result<NdArray> {
    let bad = |msg: String| Error::data(path, msg);
    let magic = read_up_to(r, 4, path)?;
    if magic.len() < 4 {
        return Err(bad(format!(
            "truncated IDX file: {} bytes, shorter than the 4-byte magic number{}",
            magic.len(),
            if raw.is_empty() {
                " (the file is empty)"
            } else {
                ""
            }
        )));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: the magic number must start with two zero bytes, found \
             {:02x} {:02x}{}",
            magic[0],
            magic[1],
            sniff(raw)
        )));
    }
    let (size, name) = match magic[2] {
        0x08 => (1, "u8"),
        0x09 => (1, "i8"),
        0x0B => (2, "i16"),
        0x0C => (4, "i32"),
        0x0D => (4, "f32"),
        0x0E => (8, "f64"),
        t => {
            return Err(bad(format!(
                "IDX type code 0x{t:02X} is not one of 0x08 (u8), 0x09 (i8), 0x0B (i16), \
                 0x0C (i32), 0x0D (f32), 0x0E (f64)"
            )))
        }
    };
    let ndims = usize::from(magic[3]);
    let dim_bytes = read_up_to(r, 4 * ndims as u64, path)?;
    if dim_bytes.len() < 4 * ndims {
        return Err(bad(format!(
            "truncated IDX header: {ndims} dimensions need {} bytes after the magic number, \
             the file has {}",
            4 * ndims,
            dim_bytes.len()
        )));
    }
    let shape: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let shape_str = format!(
        "({})",
        shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(size).map(|_| c))
        .ok_or_else(|| bad(format!("dimensions {shape_str} are too large")))?;
    let need = count * size;
    let data = read_up_to(r, need as u64 + 1, path)?;
    if data.len() != need {
        let what = if data.len() > need {
            "more: the file has trailing data".to_string()
        } else {
            let rest = data.len() % size;
            format!(
                "{} elements{}: the file is truncated",
                data.len() / size,
                if rest > 0 {
                    format!(" and {rest} stray bytes")
                } else {
                    String::new()
                }
            )
        };
        return Err(bad(format!(
            "header says shape {shape_str} = {count} elements of {name} but the file holds {what}"
        )));
    }
    let values: Vec<f64> = match magic[2] {
        0x08 => data.iter().map(|&b| f64::from(b)).collect(),
        0x09 => data.iter().map(|&b| f64::from(b as i8)).collect(),
        0x0B => data
            .chunks_exact(2)
            .map(|c| f64::from(i16::from_be_bytes([c[0], c[1]])))
            .collect(),
        0x0C => data
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        0x0D => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().expect("8-byte chunk")))
            .collect(),
    };
    Ok(NdArray {
        shape,
        data: values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn idx(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, code, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn p() -> &'static Path {
        Path::new("train-images-idx3-ubyte")
    }

    fn data_err(bytes: &[u8]) -> String {
        match parse_idx(bytes, p()) {
            Err(e @ Error::Data { .. }) => {
                let s = e.to_string();
                assert!(s.contains("train-images-idx3-ubyte"), "{s}");
                s
            }
            other => panic!("expected Error::Data, got {other:?}"),
        }
    }

    #[test]
    fn idx_images_and_labels_plain_and_gz() {
        // two 2x3 "images" and their labels, as in MNIST
        let pixels: Vec<u8> = (0..12).map(|i| i * 20).collect();
        let img = idx(0x08, &[2, 2, 3], &pixels);
        let a = parse_idx(&img, p()).unwrap();
        assert_eq!(a.shape, vec![2, 2, 3]);
        assert_eq!(
            a.data,
            pixels.iter().map(|&b| f64::from(b)).collect::<Vec<_>>()
        );
        assert_eq!(parse_idx(&gz(&img), p()).unwrap(), a);
        let lab = idx(0x08, &[2], &[7, 3]);
        assert_eq!(parse_idx(&gz(&lab), p()).unwrap().data, vec![7., 3.]);

        let dir = std::env::temp_dir().join(format!("featlab-io-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t10k-images-idx3-ubyte.gz");
        std::fs::write(&f, gz(&img)).unwrap();
        assert_eq!(read_idx(&f).unwrap(), a);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(read_idx(&f), Err(Error::Io { .. })));
    }

    #[test]
    fn idx_all_type_codes_big_endian() {
        let cases: Vec<(u8, Vec<u8>, Vec<f64>)> = vec![
            (0x09, vec![0xff, 0x05], vec![-1.0, 5.0]),
            (
                0x0B,
                [-2i16, 300].iter().flat_map(|x| x.to_be_bytes()).collect(),
                vec![-2.0, 300.0],
            ),
            (
                0x0C,
                [-70000i32, 1]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
                vec![-70000.0, 1.0],
            ),
            (
                0x0D,
                [0.5f32, -3.25]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
                vec![0.5, -3.25],
            ),
            (
                0x0E,
                [0.1f64, -1e300]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
                vec![0.1, -1e300],
            ),
        ];
        for (code, data, want) in cases {
            let a = parse_idx(&idx(code, &[2], &data), p()).unwrap();
            assert_eq!((a.shape, a.data), (vec![2], want), "type 0x{code:02x}");
        }
        // zero dims = a scalar; an empty dimension = no data
        assert_eq!(
            parse_idx(&idx(0x08, &[], &[9]), p()).unwrap().data,
            vec![9.0]
        );
        assert_eq!(
            parse_idx(&idx(0x08, &[0, 28, 28], &[]), p()).unwrap().shape,
            vec![0, 28, 28]
        );
    }

    #[test]
    fn idx_wrong_sizes_and_bad_headers() {
        let img = idx(0x08, &[2, 2, 3], &[1; 12]);
        let e = data_err(&img[..img.len() - 1]);
        assert!(
            e.contains("shape (2, 2, 3) = 12 elements of u8 but the file holds 11 elements"),
            "{e}"
        );
        let e = data_err(&gz(&img[..img.len() - 1]));
        assert!(e.contains("holds 11 elements"), "{e}");
        let mut long = img.clone();
        long.push(0);
        assert!(data_err(&long).contains("trailing data"));
        assert!(data_err(&gz(&long)).contains("trailing data"));
        let f = idx(0x0D, &[3], &[0; 10]);
        assert!(data_err(&f).contains("2 elements and 2 stray bytes"));
        assert!(data_err(&img[..9]).contains("truncated IDX header"));
        assert!(data_err(&img[..2]).contains("shorter than the 4-byte magic"));
        assert!(data_err(&[]).contains("empty"));
        assert!(data_err(&idx(0x0A, &[1], &[0])).contains("type code 0x0A"));
        assert!(data_err(b"<html><body>404</body></html>").contains("HTML"));
        let huge = idx(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(data_err(&huge).contains("too large"));
        // a claimed 4 GB image file backed by a tiny gzip stream: error, no huge allocation
        let claim = idx(0x08, &[u32::MAX], &[1; 100]);
        assert!(data_err(&gz(&claim)).contains("truncated"));
        let mut corrupt = gz(&img);
        let n = corrupt.len();
        corrupt[n / 2] ^= 0xff;
        corrupt[n - 5] ^= 0xff; // break the CRC / length trailer too
        assert!(data_err(&corrupt).contains("gzip") || parse_idx(&corrupt, p()).is_err());
    }

    proptest! {
        #[test]
        fn idx_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_idx(&bytes, p());
            let mut b = bytes.clone();
            if b.len() >= 2 { b[0] = 0; b[1] = 0; }
            let _ = parse_idx(&b, p());
            let _ = parse_idx(&gz(&b), p());
        }
    }
}
