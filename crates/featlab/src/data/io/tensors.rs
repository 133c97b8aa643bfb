//! Named tensors of a trained model: safetensors files (PyTorch's
//! `safetensors.torch.save_file(model.state_dict(), path)`) and numpy `.npz` archives
//! (`numpy.savez(path, **{k: v.numpy() for k, v in sd.items()})`), read into f64 arrays.
//!
//! safetensors is read with the `safetensors` crate (little-endian, header-declared dtypes);
//! F64, F32, F16 and BF16 tensors are widened exactly to f64. An `.npz` is a zip archive of
//! `.npy` files (stored or deflated), read with the `zip` crate and [`super::parse_npy`];
//! the `.npy` suffix is dropped from each name.

use super::{parse_npy, read_file};
use crate::{Error, NdArray, Result};
use safetensors::{Dtype, SafeTensors};
use std::io::Read;
use std::path::Path;

/// Read every tensor of a `.safetensors` or `.npz` file (chosen by content: an npz is a zip
/// archive), in file order for npz and name order for safetensors.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, NdArray)>> {
    let bytes = read_file(path)?;
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        parse_npz(&bytes, path)
    } else {
        parse_safetensors(&bytes, path)
    }
}

/// Parse safetensors bytes; errors name `path`.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<Vec<(String, NdArray)>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::data(
            path,
            format!("not a readable safetensors file ({e}); featlab reads .safetensors and .npz weight files"),
        )
    })?;
    let mut out = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    for name in names {
        let t = st
            .tensor(&name)
            .map_err(|e| Error::data(path, format!("tensor `{name}`: {e}")))?;
        let raw = t.data();
        let data: Vec<f64> = match t.dtype() {
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) as f64)
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| f16_to_f64(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            other => {
                return Err(Error::data(
                    path,
                    format!("tensor `{name}` has dtype {other:?}; featlab reads floating-point weights (F64, F32, F16, BF16)"),
                ))
            }
        };
        let shape = t.shape().to_vec();
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::data(
                path,
                format!("tensor `{name}`: shape {shape:?} does not match its data"),
            ));
        }
        out.push((name, NdArray::new(shape, data)));
    }
    Ok(out)
}

/// IEEE 754 half precision → f64 (exact).
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Parse `.npz` bytes (a zip of `.npy` files); errors name `path` and the member.
pub fn parse_npz(bytes: &[u8], path: &Path) -> Result<Vec<(String, NdArray)>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| Error::data(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| Error::data(path, format!("member {i}: {e}")))?;
        let name = f
            .name()
            .map(|n| n.to_string())
            .map_err(|e| Error::data(path, format!("member {i}: {e}")))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| Error::data(path, format!("member `{name}`: {e}")))?;
        let member = path.join(&name);
        let a = parse_npy(&buf, &member)?;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push((key, a));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;
    use std::io::Write;

    #[test]
    fn safetensors_dtypes_widen_exactly() {
        let w64: Vec<u8> = [1.5f64, -2.25, 1e-300, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let w32: Vec<u8> = [0.1f32, -7.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        // f16: 1.0 = 0x3c00, -2.5 = 0xc100, smallest subnormal 0x0001 = 2^-24
        let w16: Vec<u8> = [0x3c00u16, 0xc100, 0x0001]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        // bf16: 1.0 = 0x3f80, -0.5 = 0xbf00
        let wb16: Vec<u8> = [0x3f80u16, 0xbf00]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let views = vec![
            (
                "a.weight",
                TensorView::new(Dtype::F64, vec![2, 2], &w64).unwrap(),
            ),
            (
                "a.bias",
                TensorView::new(Dtype::F32, vec![2], &w32).unwrap(),
            ),
            ("h", TensorView::new(Dtype::F16, vec![3], &w16).unwrap()),
            ("b", TensorView::new(Dtype::BF16, vec![2], &wb16).unwrap()),
        ];
        let bytes = safetensors::serialize(views, None).unwrap();
        let t = parse_safetensors(&bytes, Path::new("m.safetensors")).unwrap();
        let get = |n: &str| t.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(get("a.weight").data, vec![1.5, -2.25, 1e-300, 3.0]);
        assert_eq!(get("a.weight").shape, vec![2, 2]);
        assert_eq!(get("a.bias").data, vec![0.1f32 as f64, -7.0]);
        assert_eq!(get("h").data, vec![1.0, -2.5, 2f64.powi(-24)]);
        assert_eq!(get("b").data, vec![1.0, -0.5]);
        let bad = parse_safetensors(b"garbage!", Path::new("m.safetensors")).unwrap_err();
        assert!(bad.to_string().contains("m.safetensors"), "{bad}");
        let ints = vec![0u8; 8];
        let bytes = safetensors::serialize(
            vec![("i", TensorView::new(Dtype::I64, vec![1], &ints).unwrap())],
            None,
        )
        .unwrap();
        let e = parse_safetensors(&bytes, Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("tensor `i`"), "{e}");
    }

    #[test]
    fn npz_stored_and_deflated_members() {
        let a = NdArray::new(vec![2, 3], vec![1., 2., 3., 4., 5., 6.5]);
        let b = NdArray::vector(vec![-1.0, 0.25]);
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let stored = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            let deflated = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            z.start_file("fc1.weight.npy", stored).unwrap();
            z.write_all(&super::super::npy_bytes(&a)).unwrap();
            z.start_file("fc1.bias.npy", deflated).unwrap();
            z.write_all(&super::super::npy_bytes(&b)).unwrap();
            z.finish().unwrap();
        }
        let t = parse_npz(buf.get_ref(), Path::new("m.npz")).unwrap();
        assert_eq!(t[0].0, "fc1.weight");
        assert_eq!(t[0].1, a);
        assert_eq!(t[1].0, "fc1.bias");
        assert_eq!(t[1].1, b);
        let e = parse_npz(b"PK\x03\x04broken", Path::new("m.npz")).unwrap_err();
        assert!(e.to_string().contains("m.npz"), "{e}");
    }
}
