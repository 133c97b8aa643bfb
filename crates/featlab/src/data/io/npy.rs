//! NPY files, as specified by NumPy's NEP 1 and the `numpy.lib.format` documentation.
//!
//! Layout: the magic string `\x93NUMPY`, one byte major and one byte minor version,
//! the header length (little-endian `u16` for version 1.0, `u32` for 2.0 and 3.0), the
//! header — an ASCII (1.0, 2.0) or UTF-8 (3.0) Python dict literal with exactly the
//! keys `descr`, `fortran_order` and `shape`, padded with spaces and a final `\n` so
//! that the data starts at a multiple of 64 bytes — and then the raw elements.

use super::{read_file, sniff, write_atomic};
use crate::{Error, NdArray, Result};
use std::path::Path;

/// `\x93NUMPY`, the first six bytes of every NPY file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the start of the data to this many bytes (`numpy.lib.format.ARRAY_ALIGN`).
const ARRAY_ALIGN: usize = 64;
/// numpy (>= 1.24) reserves room for this many digits in the growth axis so that the
/// header can be rewritten in place (`numpy.lib.format.GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
/// Nesting limit of the header parser (real headers nest at most 3 deep).
const MAX_DEPTH: usize = 16;
/// The dtypes [`parse_npy`] understands, for error messages.
const SUPPORTED: &str = "f8, f4, f2, i8, i4, i2, i1, u8, u4, u2, u1, b1 (either byte order)";

/// The bytes of an NPY file holding `a` as a C-order little-endian float64 (`'<f8'`)
/// array, exactly as `numpy.save` (numpy >= 1.24) writes it.
///
/// The header is a version 1.0 header (version 2.0 only if the shape is so long that
/// the header exceeds 65535 bytes), padded with spaces — including numpy's spare room
/// for the first axis to grow — and a final `\n` to a multiple of 64 bytes.
///
/// `a.shape` must describe `a.data` (the invariant of [`NdArray`]); the data written
/// is `a.data` regardless.
pub fn npy_bytes(a: &NdArray) -> Vec<u8> {
    let shape = python_tuple(&a.shape);
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    if let Some(first) = a.shape.first() {
        let digits = first.to_string().len();
        header.extend(std::iter::repeat_n(
            ' ',
            GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
        ));
    }
    let (version, len_bytes) = if MAGIC.len() + 2 + 2 + header.len() + 1 + ARRAY_ALIGN <= 0xFFFF {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let hlen = header.len() + 1; // + '\n'
    let padlen = ARRAY_ALIGN - (MAGIC.len() + 2 + len_bytes + hlen) % ARRAY_ALIGN;
    let total_header = hlen + padlen;

    let mut out = Vec::with_capacity(MAGIC.len() + 2 + len_bytes + total_header + 8 * a.data.len());
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.push(0);
    if len_bytes == 2 {
        out.extend_from_slice(&(total_header as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(total_header as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padlen));
    out.push(b'\n');
    for x in &a.data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Write `a` to `path` as an NPY file (see [`npy_bytes`]), atomically via
/// [`write_atomic`]. `numpy.load(path)` returns the same float64 array, bit for bit.
pub fn write_npy(path: &Path, a: &NdArray) -> Result<()> {
    write_atomic(path, &npy_bytes(a))
}

/// Read an NPY file into a C-order f64 array; see [`parse_npy`] for what is accepted.
///
/// Errors: [`Error::Io`] if the file cannot be read, [`Error::Data`] if it is not a
/// valid NPY file of a supported dtype.
pub fn read_npy(path: &Path) -> Result<NdArray> {
    parse_npy(&read_file(path)?, path)
}

/// Parse the bytes of an NPY file into a C-order f64 array.
///
/// Accepts format versions 1.0, 2.0 and 3.0; dtypes `f8 f4 f2 i8 i4 i2 i1 u8 u4 u2 u1
/// b1` in little (`<`), big (`>`), native (`=`) or not-applicable (`|`, one-byte types)
/// byte order, all converted to f64 (64-bit integers beyond 2^53 are rounded; booleans
/// become 0 and 1); C order and `fortran_order: True` (transposed into C order); 0-d
/// arrays (shape `()`) become shape `[]` with one element.
///
/// Rejected with [`Error::Data`] (the message names `path_for_errors` and the problem):
/// a wrong magic string (with a guess at what the file is: zip/`torch.save`, pickle,
/// gzip, HTML), unknown versions, a header that is not a valid dict literal or lacks or
/// adds keys, object arrays (which would need pickle), structured and other unsupported
/// dtypes, and files whose data is shorter or longer than the shape says.
pub fn parse_npy(bytes: &[u8], path_for_errors: &Path) -> Result<NdArray> {
    let path = path_for_errors;
    let bad = |msg: String| Error::data(path, msg);

    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad(format!(
            "not an NPY file: it does not start with the magic string \\x93NUMPY{}",
            sniff(bytes)
        )));
    }
    if bytes.len() < 8 {
        return Err(bad(
            "truncated NPY file: it ends inside the version bytes".into()
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(bad(format!(
            "NPY format version {major}.{minor} is not supported (featlab reads 1.0, 2.0 and 3.0)"
        )))
        }
    };
    let header_start = 8 + len_bytes;
    if bytes.len() < header_start {
        return Err(bad(
            "truncated NPY file: it ends inside the header length".into()
        ));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_start = header_start.saturating_add(header_len);
    if bytes.len() < data_start {
        return Err(bad(format!(
            "truncated NPY file: the header should be {header_len} bytes but the file ends \
             after {} of them",
            bytes.len() - header_start
        )));
    }
    let raw = &bytes[header_start..data_start];
    let text: String = if major == 3 {
        std::str::from_utf8(raw)
            .map_err(|e| bad(format!("the NPY 3.0 header is not valid UTF-8: {e}")))?
            .to_owned()
    } else {
        // versions 1.0 and 2.0 are latin-1
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let header = parse_header(&text).map_err(|e| bad(format!("bad NPY header {text:?}: {e}")))?;
    let dtype = Dtype::parse(&header.descr).map_err(&bad)?;

    let count = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            bad(format!(
                "shape {} is too large",
                python_tuple(&header.shape)
            ))
        })?;
    let data = &bytes[data_start..];
    let need = count.checked_mul(dtype.size);
    if need != Some(data.len()) {
        let have = data.len() / dtype.size;
        let rest = data.len() % dtype.size;
        let extra = if rest > 0 {
            format!(" and {rest} stray bytes")
        } else {
            String::new()
        };
        let verb = if need.is_some_and(|n| n < data.len()) {
            "more than that: the file has trailing data"
        } else {
            "fewer: the file is truncated"
        };
        return Err(bad(format!(
            "header says shape {} = {count} elements of '{}' but the file holds {have} elements{extra} ({verb})",
            python_tuple(&header.shape),
            header.descr
        )));
    }

    let values: Vec<f64> = if dtype.kind == Kind::Float && dtype.size == 8 && !dtype.big_endian {
        // fast path for the common '<f8'
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")))
            .collect()
    } else {
        data.chunks_exact(dtype.size)
            .map(|c| dtype.decode(c))
            .collect()
    };
    let data = if header.fortran_order && header.shape.len() > 1 {
        fortran_to_c(&header.shape, &values)
    } else {
        values
    };
    Ok(NdArray {
        shape: header.shape,
        data,
    })
}

/// Reorder column-major (Fortran order) elements into row-major (C order).
fn fortran_to_c(shape: &[usize], f: &[f64]) -> Vec<f64> {
    let nd = shape.len();
    // Fortran strides: axis 0 is contiguous.
    let mut strides = vec![1usize; nd];
    for k in 1..nd {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(f.len());
    if f.is_empty() {
        return out;
    }
    let mut idx = vec![0usize; nd];
    let mut off = 0usize;
    loop {
        out.push(f[off]);
        // increment the C-order multi-index (last axis fastest)
        let mut k = nd;
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            idx[k] += 1;
            off += strides[k];
            if idx[k] < shape[k] {
                break;
            }
            off -= strides[k] * shape[k];
            idx[k] = 0;
        }
    }
}

/// A Python tuple literal for a shape: `()`, `(5,)`, `(2, 3)`.
fn python_tuple(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// A supported element type.
#[derive(Debug, Clone, Copy)]
struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

impl Dtype {
    /// Parse a numpy type string such as `<f8`, `>i4`, `|u1`, `|b1`.
    fn parse(descr: &Descr) -> std::result::Result<Self, String> {
        let s = match descr {
            Descr::Simple(s) => s.as_str(),
            Descr::Structured => {
                return Err(
                    "structured dtypes (record arrays with named fields) are not \
                            supported: save each field as its own array"
                        .into(),
                )
            }
        };
        let unsupported = || format!("dtype '{s}' is not supported; featlab reads {SUPPORTED}");
        let mut chars = s.chars();
        let (order, rest) = match chars.next() {
            Some(c @ ('<' | '>' | '|' | '=')) => (c, chars.as_str()),
            _ => ('=', s),
        };
        if rest.starts_with('O') {
            return Err(format!(
                "dtype '{s}' is an object array, which numpy stores as a pickle; featlab never \
                 unpickles. Convert it to a numeric array first (e.g. arr.astype(np.float64))"
            ));
        }
        let (kind, size) = match rest {
            "f8" | "d" => (Kind::Float, 8),
            "f4" | "f" => (Kind::Float, 4),
            "f2" | "e" => (Kind::Float, 2),
            "i8" | "q" => (Kind::Int, 8),
            "i4" | "i" => (Kind::Int, 4),
            "i2" | "h" => (Kind::Int, 2),
            "i1" | "b" => (Kind::Int, 1),
            "u8" | "Q" => (Kind::Uint, 8),
            "u4" | "I" => (Kind::Uint, 4),
            "u2" | "H" => (Kind::Uint, 2),
            "u1" | "B" => (Kind::Uint, 1),
            "b1" | "?" => (Kind::Bool, 1),
            _ => return Err(unsupported()),
        };
        if order == '|' && size > 1 {
            return Err(format!(
                "dtype '{s}': byte order '|' (not applicable) is only valid for one-byte types"
            ));
        }
        let big_endian = match order {
            '>' => true,
            '=' => cfg!(target_endian = "big"),
            _ => false,
        };
        Ok(Dtype {
            kind,
            size,
            big_endian,
        })
    }

    /// Decode one element (`c.len() == self.size`).
    fn decode(&self, c: &[u8]) -> f64 {
        let mut b = [0u8; 8];
        if self.big_endian {
            for (dst, src) in b.iter_mut().zip(c.iter().rev()) {
                *dst = *src;
            }
        } else {
            b[..c.len()].copy_from_slice(c);
        }
        // `b` now holds the value little-endian in its first `size` bytes.
        match (self.kind, self.size) {
            (Kind::Float, 8) => f64::from_le_bytes(b),
            (Kind::Float, 4) => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            (Kind::Float, _) => f16_to_f64(u16::from_le_bytes([b[0], b[1]])),
            (Kind::Int, 8) => i64::from_le_bytes(b) as f64,
            (Kind::Int, 4) => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            (Kind::Int, 2) => f64::from(i16::from_le_bytes([b[0], b[1]])),
            (Kind::Int, _) => f64::from(b[0] as i8),
            (Kind::Uint, 8) => u64::from_le_bytes(b) as f64,
            (Kind::Uint, 4) => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            (Kind::Uint, 2) => f64::from(u16::from_le_bytes([b[0], b[1]])),
            (Kind::Uint, _) => f64::from(b[0]),
            (Kind::Bool, _) => f64::from(u8::from(b[0] != 0)),
        }
    }
}

/// IEEE 754 binary16 to f64 (exact).
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// The `descr` value of a header.
#[derive(Debug)]
enum Descr {
    Simple(String),
    Structured,
}

impl std::fmt::Display for Descr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Descr::Simple(s) => f.write_str(s),
            Descr::Structured => f.write_str("<structured>"),
        }
    }
}

/// The decoded header dict.
#[derive(Debug)]
struct Header {
    descr: Descr,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A Python literal, as far as NPY headers use them.
#[derive(Debug)]
enum Lit {
    Str(String),
    Int(u128, bool),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    /// A list (only used by structured dtypes, whose fields we do not inspect).
    List,
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    fn describe(&self) -> &'static str {
        match self {
            Lit::Str(_) => "a string",
            Lit::Int(..) => "an integer",
            Lit::Bool(_) => "a boolean",
            Lit::None => "None",
            Lit::Tuple(_) => "a tuple",
            Lit::List => "a list",
            Lit::Dict(_) => "a dict",
        }
    }
}

/// Interpret the header text as the NPY dict.
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let mut p = LitParser {
        s: text.as_bytes(),
        i: 0,
    };
    let lit = p.value(0)?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text after the dict at byte {}", p.i));
    }
    let Lit::Dict(items) = lit else {
        return Err(format!("expected a dict, found {}", lit.describe()));
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in items {
        let Lit::Str(k) = k else {
            return Err(format!("dict keys must be strings, found {}", k.describe()));
        };
        match k.as_str() {
            "descr" => {
                descr = Some(match v {
                    Lit::Str(s) => Descr::Simple(s),
                    Lit::List => Descr::Structured,
                    other => return Err(format!("'descr' is {}, not a string", other.describe())),
                })
            }
            "fortran_order" => match v {
                Lit::Bool(b) => fortran = Some(b),
                other => {
                    return Err(format!(
                        "'fortran_order' is {}, not True or False",
                        other.describe()
                    ))
                }
            },
            "shape" => {
                let Lit::Tuple(items) = v else {
                    return Err(format!("'shape' is {}, not a tuple", v.describe()));
                };
                let mut dims = Vec::with_capacity(items.len());
                for d in items {
                    match d {
                        Lit::Int(n, false) => dims.push(
                            usize::try_from(n)
                                .map_err(|_| format!("shape entry {n} is too large"))?,
                        ),
                        Lit::Int(n, true) => return Err(format!("shape entry -{n} is negative")),
                        other => {
                            return Err(format!(
                                "shape entries must be integers, found {}",
                                other.describe()
                            ))
                        }
                    }
                }
                shape = Some(dims);
            }
            other => return Err(format!("unexpected key '{other}'")),
        }
    }
    Ok(Header {
        descr: descr.ok_or("the key 'descr' is missing")?,
        fortran_order: fortran.ok_or("the key 'fortran_order' is missing")?,
        shape: shape.ok_or("the key 'shape' is missing")?,
    })
}

/// Recursive-descent parser for the Python literal subset in NPY headers.
struct LitParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl LitParser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> std::result::Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let at = self.i;
        match self.peek() {
            None => Err("unexpected end of header".into()),
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Lit::Dict(items));
                    }
                    let k = self.value(depth + 1)?;
                    if self.peek() != Some(b':') {
                        return Err(format!("expected ':' at byte {}", self.i));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                self.i += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                let mut trailing_comma = false;
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        // `(x)` is x in Python, `(x,)` a 1-tuple
                        if open == b'(' && items.len() == 1 && !trailing_comma {
                            return Ok(items.pop().expect("one item"));
                        }
                        return Ok(if open == b'(' {
                            Lit::Tuple(items)
                        } else {
                            Lit::List
                        });
                    }
                    items.push(self.value(depth + 1)?);
                    trailing_comma = false;
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            trailing_comma = true;
                        }
                        Some(c) if c == close => {}
                        _ => {
                            return Err(format!(
                                "expected ',' or '{}' at byte {}",
                                char::from(close),
                                self.i
                            ))
                        }
                    }
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i) {
                        None => return Err(format!("unterminated string starting at byte {at}")),
                        Some(&c) if c == q => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let Some(&e) = self.s.get(self.i + 1) else {
                                return Err(format!("unterminated string starting at byte {at}"));
                            };
                            out.push(match e {
                                b'n' => b'\n',
                                b't' => b'\t',
                                other => other,
                            });
                            self.i += 2;
                        }
                        Some(&c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Lit::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let neg = c == b'-';
                if c == b'-' || c == b'+' {
                    self.i += 1;
                }
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(format!("expected digits at byte {start}"));
                }
                let digits = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII digits");
                let n: u128 = digits
                    .parse()
                    .map_err(|_| format!("integer {digits} is too large"))?;
                // Python 2 era headers wrote long integers as `3L`
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
                Ok(Lit::Int(n, neg && n != 0))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    b"None" => Ok(Lit::None),
                    w => Err(format!(
                        "unexpected word '{}' at byte {start}",
                        String::from_utf8_lossy(w)
                    )),
                }
            }
            Some(c) => Err(format!(
                "unexpected character {:?} at byte {}",
                char::from(c),
                self.i
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p() -> &'static Path {
        Path::new("test.npy")
    }

    /// Build an NPY file from a header dict literal and raw data, per the spec.
    fn npy_file(major: u8, header_dict: &str, data: &[u8]) -> Vec<u8> {
        let len_bytes = if major == 1 { 2 } else { 4 };
        let mut h = header_dict.as_bytes().to_vec();
        while !(6 + 2 + len_bytes + h.len() + 1).is_multiple_of(64) {
            h.push(b' ');
        }
        h.push(b'\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(h.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out
    }

    fn data_err(bytes: &[u8]) -> String {
        match parse_npy(bytes, p()) {
            Err(e @ Error::Data { .. }) => {
                let s = e.to_string();
                assert!(s.contains("test.npy"), "error does not name the file: {s}");
                s
            }
            other => panic!("expected Error::Data, got {other:?}"),
        }
    }

    #[test]
    fn npy_header_matches_numpy_byte_for_byte() {
        // np.save(f, np.arange(6.).reshape(2, 3)) with numpy >= 1.24
        let a = NdArray::new(vec![2, 3], (0..6).map(f64::from).collect());
        let bytes = npy_bytes(&a);
        let mut expected = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
        expected.extend_from_slice(dict.as_bytes());
        expected.resize(127, b' ');
        expected.push(b'\n');
        assert_eq!(
            &bytes[..128],
            &expected[..],
            "{:?}",
            String::from_utf8_lossy(&bytes[..128])
        );
        assert_eq!(bytes.len(), 128 + 48);
        assert_eq!(&bytes[128 + 8..128 + 16], &1.0f64.to_le_bytes());
    }

    #[test]
    fn npy_headers_are_aligned_and_have_growth_room() {
        for shape in [
            vec![],
            vec![0],
            vec![7],
            vec![123456789012, 0],
            vec![1; 40],
            {
                let mut s = vec![1; 18];
                s[0] = 2;
                s
            },
        ] {
            let a = NdArray {
                data: vec![0.0; shape.iter().product()],
                shape: shape.clone(),
            };
            let b = npy_bytes(&a);
            let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
            assert_eq!((10 + hl) % 64, 0, "{shape:?}");
            assert_eq!(b[10 + hl - 1], b'\n');
            let text = std::str::from_utf8(&b[10..10 + hl]).unwrap();
            assert!(
                text.contains(&format!("'shape': {}, }}", python_tuple(&shape))),
                "{text}"
            );
            if shape.len() == 18 {
                // 108-byte dict + 20 growth spaces + '\n' + 10 > 128: numpy needs 192
                assert_eq!(10 + hl, 192);
            }
            if !shape.is_empty() {
                // numpy leaves 21 - digits(shape[0]) spaces of growth room at least
                let spaces = text.len() - text.trim_end().len();
                assert!(spaces > 21 - shape[0].to_string().len(), "{text:?}");
            }
        }
    }

    #[test]
    fn npy_huge_header_falls_back_to_version_2() {
        let a = NdArray::new(vec![1; 30000], vec![4.5]);
        let b = npy_bytes(&a);
        assert_eq!((b[6], b[7]), (2, 0));
        let hl = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        assert!(hl > 0xFFFF);
        assert_eq!((12 + hl) % 64, 0);
        assert_eq!(parse_npy(&b, p()).unwrap(), a);
    }

    #[test]
    fn npy_round_trip_is_bit_exact() {
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            -1.5,
            0.1,
            1e300,
        ];
        let nan_payload = f64::from_bits(0x7ff8_0000_dead_beef);
        for shape in [
            vec![],
            vec![0],
            vec![5],
            vec![3, 4],
            vec![2, 3, 4],
            vec![2, 0, 3],
        ] {
            let n: usize = shape.iter().product();
            let data: Vec<f64> = (0..n)
                .map(|i| {
                    if i == 1 {
                        nan_payload
                    } else {
                        specials[i % specials.len()]
                    }
                })
                .collect();
            let a = NdArray::new(shape.clone(), data);
            let back = parse_npy(&npy_bytes(&a), p()).unwrap();
            assert_eq!(back.shape, shape);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back.data), bits(&a.data), "{shape:?}");
        }
    }

    #[test]
    fn npy_write_then_read_file() {
        let dir = std::env::temp_dir().join(format!("featlab-io-npy-{}", std::process::id()));
        let path = dir.join("sub/a.npy");
        let a = NdArray::new(vec![2, 2], vec![1.0, -2.0, 3.5, f64::NAN]);
        write_npy(&path, &a).unwrap();
        let b = read_npy(&path).unwrap();
        assert_eq!(b.shape, a.shape);
        assert_eq!(b.data[..3], a.data[..3]);
        assert!(b.data[3].is_nan());
        std::fs::remove_dir_all(&dir).unwrap();
        match read_npy(&path) {
            Err(Error::Io { path: ep, .. }) => assert_eq!(ep, path),
            other => panic!("expected Error::Io for a missing file, got {other:?}"),
        }
    }

    #[test]
    fn npy_reads_all_versions() {
        let data: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
        for major in [1, 2, 3] {
            let a = parse_npy(&npy_file(major, dict, &data), p()).unwrap();
            assert_eq!((a.shape, a.data), (vec![2], vec![1.5, -2.0]), "v{major}");
        }
        // a v3 header must be UTF-8
        let mut bad = npy_file(3, dict, &data);
        bad[12] = 0xff;
        assert!(data_err(&bad).contains("UTF-8"));
        // other versions are rejected
        let mut v4 = npy_file(2, dict, &data);
        v4[6] = 4;
        assert!(data_err(&v4).contains("version 4.0"));
    }

    #[test]
    fn npy_reads_every_supported_dtype() {
        let cases: Vec<(&str, Vec<u8>, Vec<f64>)> = vec![
            (
                "<f4",
                [1.5f32, -0.25]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                vec![1.5, -0.25],
            ),
            (
                ">f4",
                [1.5f32, -0.25]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
                vec![1.5, -0.25],
            ),
            (
                ">f8",
                [1e-300f64, 7.0]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
                vec![1e-300, 7.0],
            ),
            // 1.0, -2.0 and 65504 (max) in binary16
            ("<f2", vec![0x00, 0x3c, 0x00, 0xc0], vec![1.0, -2.0]),
            (
                ">f2",
                vec![0x7b, 0xff, 0x00, 0x01],
                vec![65504.0, 2f64.powi(-24)],
            ),
            (
                "<i4",
                [-7i32, 123456]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                vec![-7.0, 123456.0],
            ),
            (
                ">i4",
                [-7i32, 123456]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
                vec![-7.0, 123456.0],
            ),
            (
                "<i8",
                [-(1i64 << 40), 3]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                vec![-(2f64.powi(40)), 3.0],
            ),
            (
                ">i2",
                [-300i16, 300]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
                vec![-300.0, 300.0],
            ),
            ("|i1", vec![0xff, 0x7f], vec![-1.0, 127.0]),
            ("|u1", vec![0, 255], vec![0.0, 255.0]),
            (
                "<u2",
                [65535u16, 1].iter().flat_map(|x| x.to_le_bytes()).collect(),
                vec![65535.0, 1.0],
            ),
            (
                ">u4",
                [u32::MAX, 1].iter().flat_map(|x| x.to_be_bytes()).collect(),
                vec![4294967295.0, 1.0],
            ),
            (
                "<u8",
                [1u64 << 63, 1]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                vec![2f64.powi(63), 1.0],
            ),
            ("|b1", vec![1, 0], vec![1.0, 0.0]),
        ];
        for (descr, bytes, want) in cases {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
            let a = parse_npy(&npy_file(1, &dict, &bytes), p())
                .unwrap_or_else(|e| panic!("{descr}: {e}"));
            assert_eq!(a.data, want, "{descr}");
        }
    }

    #[test]
    fn npy_fortran_order_is_transposed_to_c_order() {
        // the 2x3 matrix [[0,1,2],[3,4,5]] stored column-major: 0 3 1 4 2 5
        let f: Vec<u8> = [0i32, 3, 1, 4, 2, 5]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let dict = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
        let a = parse_npy(&npy_file(1, dict, &f), p()).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0., 1., 2., 3., 4., 5.]);
        // 3-d: element (i,j,k) of a 2x3x4 array has value 100i+10j+k; Fortran order
        // stores i fastest
        let mut f3 = Vec::new();
        for k in 0..4 {
            for j in 0..3 {
                for i in 0..2 {
                    f3.extend_from_slice(&f64::from(100 * i + 10 * j + k).to_be_bytes());
                }
            }
        }
        let dict = "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3, 4), }";
        let a = parse_npy(&npy_file(1, dict, &f3), p()).unwrap();
        let want: Vec<f64> = (0..2)
            .flat_map(|i| {
                (0..3).flat_map(move |j| (0..4).map(move |k| f64::from(100 * i + 10 * j + k)))
            })
            .collect();
        assert_eq!(a.data, want);
        // 1-d and empty Fortran arrays
        let dict = "{'descr': '|u1', 'fortran_order': True, 'shape': (3,), }";
        assert_eq!(
            parse_npy(&npy_file(1, dict, &[1, 2, 3]), p()).unwrap().data,
            vec![1., 2., 3.]
        );
        let dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (0, 3), }";
        assert_eq!(
            parse_npy(&npy_file(1, dict, &[]), p()).unwrap().shape,
            vec![0, 3]
        );
    }

    #[test]
    fn npy_zero_d_and_header_variants() {
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (), }";
        let a = parse_npy(&npy_file(1, dict, &2.5f64.to_le_bytes()), p()).unwrap();
        assert_eq!((a.shape, a.data), (vec![], vec![2.5]));
        // key order, double quotes, no trailing comma, Python 2 long ints
        let dict = r#"{"shape": (1L, 2L), "fortran_order": False, "descr": "<f4"}"#;
        let data: Vec<u8> = [1f32, 2.].iter().flat_map(|x| x.to_le_bytes()).collect();
        let a = parse_npy(&npy_file(1, dict, &data), p()).unwrap();
        assert_eq!((a.shape, a.data), (vec![1, 2], vec![1., 2.]));
    }

    #[test]
    fn npy_corrupt_inputs_give_clear_errors() {
        let good = npy_bytes(&NdArray::new(vec![100, 3], vec![0.0; 300]));
        let e = data_err(&good[..good.len() - 8]);
        assert!(
            e.contains("shape (100, 3) = 300 elements") && e.contains("holds 299"),
            "{e}"
        );
        let e = data_err(&good[..good.len() - 3]);
        assert!(e.contains("299 elements and 5 stray bytes"), "{e}");
        let mut long = good.clone();
        long.extend_from_slice(&[0; 8]);
        assert!(data_err(&long).contains("trailing data"));
        assert!(data_err(&good[..50]).contains("truncated NPY file"));
        assert!(data_err(&good[..9]).contains("header length"));
        assert!(data_err(&good[..7]).contains("version"));
        assert!(data_err(b"hello world").contains("magic"));
        assert!(data_err(b"").contains("empty"));
        assert!(data_err(b"PK\x03\x04....").contains("torch.save"));

        let one = 1f64.to_le_bytes();
        let case = |dict: &str| data_err(&npy_file(1, dict, &one));
        assert!(
            case("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }")
                .contains("dtype '<c16' is not supported; featlab reads f8, f4, f2, i8")
        );
        assert!(
            case("{'descr': '<U1', 'fortran_order': False, 'shape': (1,), }").contains("'<U1'")
        );
        assert!(
            case("{'descr': '|f8', 'fortran_order': False, 'shape': (1,), }").contains("one-byte")
        );
        assert!(
            case("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }").contains("pickle")
        );
        assert!(case(
            "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }"
        )
        .contains("structured"));
        assert!(case("{'descr': '<f8', 'shape': (1,), }").contains("'fortran_order' is missing"));
        assert!(
            case("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}")
                .contains("unexpected key 'x'")
        );
        assert!(
            case("{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }").contains("fortran_order")
        );
        assert!(
            case("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }").contains("negative")
        );
        assert!(
            case("{'descr': '<f8', 'fortran_order': False, 'shape': 1, }").contains("not a tuple")
        );
        assert!(
            case("{'descr': '<f8', 'fortran_order': False, 'shape': (1,) ")
                .contains("bad NPY header")
        );
        assert!(
            case("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), } extra")
                .contains("after the dict")
        );
        assert!(case("['descr']").contains("expected a dict"));
        assert!(
            case("{'descr': '<f8', 'fortran_order': Flase, 'shape': (1,), }").contains("Flase")
        );
        let huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }";
        assert!(case(huge).contains("too large"));
        let deep = format!("{}{}", "(".repeat(1000), ")".repeat(1000));
        assert!(case(&deep).contains("nested too deeply"));
        // a pickled object array as np.save(allow_pickle=True) writes it
        let pickle = npy_file(
            1,
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
            b"\x80\x04\x95...",
        );
        assert!(data_err(&pickle).contains("never unpickles"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn npy_parse_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_npy(&bytes, p());
        }

        #[test]
        fn npy_parse_never_panics_on_mutated_files(
            shape in proptest::collection::vec(0usize..4, 0..4),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let n = shape.iter().product();
            let mut b = npy_bytes(&NdArray::new(shape, vec![1.0; n]));
            for (i, v) in flips {
                let k = i.index(b.len());
                b[k] = v;
            }
            let k = cut.index(b.len() + 1);
            if let Ok(a) = parse_npy(&b[..k], p()) {
                prop_assert_eq!(a.shape.iter().product::<usize>(), a.data.len());
            }
        }
    }
}
