//! CSV tables of numbers (RFC 4180 quoting, one record per line), and scikit-learn's
//! `digits.csv.gz`.

use super::{gunzip, is_gzip, read_file, write_atomic};
use crate::{Error, NdArray, Result};
use std::path::Path;

/// Upper bound on the decompressed size of a gzipped CSV (a guard against gzip bombs).
const CSV_GZ_LIMIT: u64 = 8 << 30;
/// Upper bound on the decompressed size of `digits.csv.gz` (the real one is ~0.5 MB).
const DIGITS_GZ_LIMIT: u64 = 64 << 20;
/// Cells read as a missing value (NaN), as pandas does by default, besides those that
/// Rust's float parser already reads as NaN (`nan`, `NaN`, `-nan`, ...).
const NA_TOKENS: &[&str] = &[
    "", "NA", "N/A", "n/a", "NULL", "null", "None", "<NA>", "#N/A", "#NA", "1.#IND", "1.#QNAN",
    "-1.#IND", "-1.#QNAN",
];

/// Whether the first row of a CSV file is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvHeader {
    /// The first non-blank row is a header if any of its cells is quoted or is not a
    /// number (so an all-numeric first row, e.g. pandas' default column names `0,1,2`,
    /// is read as data; use [`CsvHeader::Present`] for those).
    #[default]
    Auto,
    /// The first non-blank row is always a header.
    Present,
    /// There is no header; every row is data.
    Absent,
}

/// How [`read_csv_with`] and [`parse_csv`] read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// The field separator (ASCII), `b','` by default; `b'\t'` for TSV, `b';'` for
    /// "European" CSV.
    pub delimiter: u8,
    /// Header handling, [`CsvHeader::Auto`] by default.
    pub header: CsvHeader,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            header: CsvHeader::Auto,
        }
    }
}

/// Read a comma-separated file of numbers with an auto-detected header row; see
/// [`parse_csv`]. Gzipped files (detected by their magic number) are decompressed.
///
/// Returns the header (if any) and an n × k array, one row per record.
///
/// Errors: [`Error::Io`] if the file cannot be read; [`Error::Data`] naming the line
/// and column of the first bad cell or ragged row.
pub fn read_csv(path: &Path) -> Result<(Option<Vec<String>>, NdArray)> {
    read_csv_with(path, &CsvOptions::default())
}

/// [`read_csv`] with an explicit delimiter and header mode.
pub fn read_csv_with(path: &Path, opts: &CsvOptions) -> Result<(Option<Vec<String>>, NdArray)> {
    let text = read_text(path, CSV_GZ_LIMIT)?;
    parse_csv(&text, opts, path)
}

/// Parse CSV text of numbers into (header, n × k array); `path_for_errors` only names
/// the source in error messages.
///
/// * Lines end in `\n` or `\r\n`; blank lines are skipped; a leading UTF-8 BOM is
///   ignored. Fields may be quoted with `"` (a doubled `""` is a literal quote) but may
///   not span lines.
/// * Cells are f64 in any form Rust's `f64::from_str` accepts after trimming spaces
///   (`1`, `-2.5e-3`, `.5`, `inf`, `-Infinity`, `nan`, case-insensitive); empty cells
///   and pandas' default missing-value markers (`NA`, `N/A`, `NULL`, `None`, `<NA>`,
///   `#N/A`, ...) read as NaN, so `DataFrame.to_csv` output (NaN written as an empty
///   cell) loads as written.
/// * Every row must have as many fields as the header (or the first row).
///
/// An empty input gives `(None, shape [0, 0])`; a header without rows gives shape
/// `[0, k]`.
pub fn parse_csv(
    text: &str,
    opts: &CsvOptions,
    path_for_errors: &Path,
) -> Result<(Option<Vec<String>>, NdArray)> {
    let path = path_for_errors;
    let delim = char::from(opts.delimiter);
    if !opts.delimiter.is_ascii() || delim == '"' || delim == '\n' || delim == '\r' {
        return Err(Error::config(
            "delimiter",
            format!("{delim:?} cannot separate CSV fields; use an ASCII character other than a quote or line break"),
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());

    let Some((first_no, first)) = lines.next() else {
        return Ok((None, NdArray::new(vec![0, 0], vec![])));
    };
    let first_fields = split_fields(first, delim)
        .map_err(|e| Error::data(path, format!("line {first_no}: {e}")))?;
    let is_header = match opts.header {
        CsvHeader::Present => true,
        CsvHeader::Absent => false,
        CsvHeader::Auto => first_fields
            .iter()
            .any(|(s, quoted)| *quoted || parse_number(s).is_none()),
    };
    let k = first_fields.len();
    let header: Option<Vec<String>> = is_header.then(|| {
        first_fields
            .iter()
            .map(|(s, _)| s.trim().to_string())
            .collect()
    });

    let mut data = Vec::new();
    let mut rows = 0usize;
    let mut parse_row = |line_no: usize, fields: Vec<(String, bool)>| -> Result<()> {
        if fields.len() != k {
            return Err(Error::data(
                path,
                format!(
                    "line {line_no} has {} fields but line {first_no} has {k}",
                    fields.len()
                ),
            ));
        }
        for (j, (cell, _)) in fields.iter().enumerate() {
            let v = parse_number(cell).ok_or_else(|| {
                let name = header
                    .as_ref()
                    .map(|h| format!(" ('{}')", h[j]))
                    .unwrap_or_default();
                Error::data(
                    path,
                    format!(
                        "line {line_no}, column {}{name}: cannot read {:?} as a number",
                        j + 1,
                        cell.trim()
                    ),
                )
            })?;
            data.push(v);
        }
        rows += 1;
        Ok(())
    };
    if !is_header {
        parse_row(first_no, first_fields)?;
    }
    for (line_no, line) in lines {
        let fields = split_fields(line, delim)
            .map_err(|e| Error::data(path, format!("line {line_no}: {e}")))?;
        parse_row(line_no, fields)?;
    }
    Ok((header, NdArray::new(vec![rows, k], data)))
}

/// Split one line into fields, unquoting quoted ones; the flag tells whether the field
/// was quoted.
fn split_fields(line: &str, delim: char) -> std::result::Result<Vec<(String, bool)>, String> {
    let mut fields = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        // skip leading spaces before a possible opening quote
        let mut field = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == ' ' || (c == '\t' && delim != '\t') {
                field.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if let Some(&(start, '"')) = chars.peek() {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "the quoted field starting at character {} is not closed \
                             (fields may not span lines)",
                            start + 1
                        ))
                    }
                    Some((_, '"')) => {
                        if chars.peek().map(|&(_, c)| c) == Some('"') {
                            chars.next();
                            value.push('"');
                        } else {
                            break;
                        }
                    }
                    Some((_, c)) => value.push(c),
                }
            }
            // only spaces may follow the closing quote
            loop {
                match chars.next() {
                    None => {
                        fields.push((value, true));
                        return Ok(fields);
                    }
                    Some((_, c)) if c == delim => {
                        fields.push((value, true));
                        break;
                    }
                    Some((_, ' ' | '\t')) => {}
                    Some((i, c)) => {
                        return Err(format!(
                            "unexpected {c:?} after the closing quote at character {}",
                            i + 1
                        ))
                    }
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push((field, false));
                        return Ok(fields);
                    }
                    Some((_, c)) if c == delim => {
                        fields.push((field, false));
                        break;
                    }
                    Some((_, c)) => field.push(c),
                }
            }
        }
    }
}

/// A cell as f64: a float literal, or NaN for a missing-value marker.
fn parse_number(cell: &str) -> Option<f64> {
    let s = cell.trim();
    if NA_TOKENS.contains(&s) {
        return Some(f64::NAN);
    }
    s.parse::<f64>().ok()
}

/// Format an f64 so that parsing it back (Rust, Python `float`, numpy, pandas) gives
/// the same bits: shortest round-trip digits, always with a `.` or an exponent so that
/// pandas infers a float column (and keeps `-0.0`).
fn format_f64(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        // Debug is the shortest round-trip representation, switching to scientific
        // notation below 1e-5 and from 1e16 on: `1.0`, `0.1`, `-0.0`, `1e-7`, `1e300`.
        format!("{x:?}")
    }
}

/// Quote a header name when needed for it to read back as the same text (and as a
/// header under [`CsvHeader::Auto`]).
fn format_name(name: &str) -> String {
    let needs = name.is_empty()
        || name.contains([',', '"', '\n', '\r'])
        || name.trim() != name
        || parse_number(name).is_some();
    if needs {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// The bytes of a CSV table: a header row of the column names, then one row per index,
/// comma-separated, `\n`-terminated.
///
/// Numbers use Rust's shortest round-trip formatting (the `{:?}` form of `{}`: always
/// with a decimal point or exponent, e.g. `1.0`, `0.1`, `-0.0`, `1e-7`, `1e300`), so
/// `pandas.read_csv`, `numpy.loadtxt` and [`read_csv`] get back exactly the same f64;
/// NaN is written `nan` and ±∞ `inf`/`-inf`, which pandas (default `na_values` and its
/// float parser) and numpy read as NaN and ±∞. Names that contain a comma, quote or
/// line break, have surrounding spaces, are empty or look like numbers are quoted.
/// A table with no columns is empty (zero bytes).
///
/// Errors: [`Error::Shape`] if the columns differ in length.
pub fn csv_table_bytes(columns: &[(&str, &[f64])]) -> Result<Vec<u8>> {
    let Some((first_name, first)) = columns.first() else {
        return Ok(Vec::new());
    };
    let n = first.len();
    if let Some((name, col)) = columns.iter().find(|(_, c)| c.len() != n) {
        return Err(Error::Shape(format!(
            "CSV table: column '{name}' has {} values but column '{first_name}' has {n}",
            col.len()
        )));
    }
    let mut out = String::with_capacity(24 * columns.len() * (n + 1));
    let names: Vec<String> = columns.iter().map(|(name, _)| format_name(name)).collect();
    out.push_str(&names.join(","));
    out.push('\n');
    for i in 0..n {
        for (j, (_, col)) in columns.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format_f64(col[i]));
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Write a CSV table (see [`csv_table_bytes`]) to `path` atomically.
pub fn write_csv_table(path: &Path, columns: &[(&str, &[f64])]) -> Result<()> {
    write_atomic(path, &csv_table_bytes(columns)?)
}

/// Read scikit-learn's 8×8 handwritten digits, `sklearn/datasets/data/digits.csv.gz`
/// as shipped inside the scikit-learn wheel (fetch it with `scripts/fetch-digits.sh`):
/// 1797 rows of 64 pixel intensities in 0..=16 (row-major 8×8 image) followed by the
/// class label 0..=9, no header. The file may also be given decompressed.
///
/// Returns x (n × 64, pixels / 16, so in [0, 1]) and the labels.
///
/// Errors: [`Error::Io`] if the file cannot be read; [`Error::Data`] if a row does not
/// have 65 numbers, a pixel is outside 0..=16 or a label is not an integer 0..=9.
pub fn read_sklearn_digits(path: &Path) -> Result<(NdArray, Vec<u8>)> {
    let text = read_text(path, DIGITS_GZ_LIMIT)?;
    let opts = CsvOptions {
        delimiter: b',',
        header: CsvHeader::Absent,
    };
    let (_, table) = parse_csv(&text, &opts, path)?;
    let (n, k) = (table.shape[0], table.shape[1]);
    if n == 0 {
        return Err(Error::data(path, "the digits file holds no rows"));
    }
    if k != 65 {
        return Err(Error::data(
            path,
            format!("expected 65 columns per row (64 pixels, then the label), found {k}"),
        ));
    }
    let mut x = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for (i, row) in table.data.chunks_exact(65).enumerate() {
        for (j, &p) in row[..64].iter().enumerate() {
            if !(0.0..=16.0).contains(&p) {
                return Err(Error::data(
                    path,
                    format!(
                        "row {}, pixel {}: value {p} is outside 0..=16",
                        i + 1,
                        j + 1
                    ),
                ));
            }
            x.push(p / 16.0);
        }
        let l = row[64];
        if !(0.0..=9.0).contains(&l) || l.fract() != 0.0 {
            return Err(Error::data(
                path,
                format!("row {}: label {l} is not an integer 0..=9", i + 1),
            ));
        }
        labels.push(l as u8);
    }
    Ok((NdArray::new(vec![n, 64], x), labels))
}

/// Read a text file, decompressing it first if it is gzipped.
fn read_text(path: &Path, gz_limit: u64) -> Result<String> {
    let mut bytes = read_file(path)?;
    if is_gzip(&bytes) {
        bytes = gunzip(&bytes, gz_limit, path)?;
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::data(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {}); is this really a CSV file?",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn p() -> &'static Path {
        Path::new("t.csv")
    }

    fn parse(text: &str) -> Result<(Option<Vec<String>>, NdArray)> {
        parse_csv(text, &CsvOptions::default(), p())
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Err(e @ Error::Data { .. }) => {
                let s = e.to_string();
                assert!(s.contains("t.csv"), "{s}");
                s
            }
            other => panic!("expected Error::Data, got {other:?}"),
        }
    }

    #[test]
    fn csv_header_detection() {
        let (h, a) = parse("step,loss\n0,1.5\n1,0.25\n").unwrap();
        assert_eq!(h.unwrap(), vec!["step", "loss"]);
        assert_eq!((a.shape, a.data), (vec![2, 2], vec![0., 1.5, 1., 0.25]));
        // all-numeric first row is data
        let (h, a) = parse("1,2\r\n3,4").unwrap();
        assert!(h.is_none());
        assert_eq!(a.data, vec![1., 2., 3., 4.]);
        // one non-numeric cell is enough; a quoted numeric name is a name
        assert_eq!(parse("x,1\n2,3\n").unwrap().0.unwrap(), vec!["x", "1"]);
        assert_eq!(
            parse("\"0\",\"1\"\n2,3\n").unwrap().0.unwrap(),
            vec!["0", "1"]
        );
        // forced modes
        let o = CsvOptions {
            header: CsvHeader::Present,
            ..Default::default()
        };
        let (h, a) = parse_csv("0,1\n2,3\n", &o, p()).unwrap();
        assert_eq!(
            (h.unwrap(), a.shape),
            (vec!["0".to_string(), "1".to_string()], vec![1, 2])
        );
        let o = CsvOptions {
            header: CsvHeader::Absent,
            ..Default::default()
        };
        assert!(parse_csv("a,b\n", &o, p())
            .unwrap_err()
            .to_string()
            .contains("line 1, column 1"));
    }

    #[test]
    fn csv_pandas_style_input() {
        // BOM, index column with empty name, NaN as empty cell, blank lines, spaces,
        // quoted names with commas and quotes, inf and nan spellings
        let text = "\u{feff},\"a, \"\"b\"\"\",c\n\n0, 1.5 ,\n1,-Infinity,NaN\n2,.5,NA\n";
        let (h, a) = parse(text).unwrap();
        assert_eq!(h.unwrap(), vec!["", "a, \"b\"", "c"]);
        assert_eq!(a.shape, vec![3, 3]);
        assert_eq!(a.data[1], 1.5);
        assert!(a.data[2].is_nan() && a.data[5].is_nan() && a.data[8].is_nan());
        assert_eq!(a.data[4], f64::NEG_INFINITY);
        // other delimiters
        let o = CsvOptions {
            delimiter: b'\t',
            ..Default::default()
        };
        let (h, a) = parse_csv("a\tb\n1\t2\n", &o, p()).unwrap();
        assert_eq!((h.unwrap().len(), a.data), (2, vec![1., 2.]));
        assert!(matches!(
            parse_csv(
                "",
                &CsvOptions {
                    delimiter: b'"',
                    ..Default::default()
                },
                p()
            ),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn csv_empty_inputs() {
        let (h, a) = parse("").unwrap();
        assert!(h.is_none());
        assert_eq!(a.shape, vec![0, 0]);
        let (h, a) = parse("a,b\n").unwrap();
        assert_eq!((h.unwrap().len(), a.shape), (2, vec![0, 2]));
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let e = err("step,loss\n0,1.5\n1,abc\n");
        assert!(
            e.contains("line 3, column 2 ('loss')") && e.contains("\"abc\""),
            "{e}"
        );
        let e = err("1,2\n3,4\n\n5,x\n");
        assert!(e.contains("line 4, column 2:"), "{e}");
        let e = err("a,b\n1,2\n3\n");
        assert!(e.contains("line 3 has 1 fields but line 1 has 2"), "{e}");
        let e = err("a,b\n\"1,2\n");
        assert!(e.contains("line 2") && e.contains("not closed"), "{e}");
        let e = err("a,b\n\"1\"x,2\n");
        assert!(e.contains("after the closing quote"), "{e}");
    }

    #[test]
    fn csv_round_trip_is_bit_exact() {
        let a = [
            0.1,
            -0.0,
            1.0,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e16,
            123456.789,
            f64::NAN,
        ];
        let b = [
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -1e-300,
            2.0f64.sqrt(),
            1e15,
            3.0,
            -7.25,
            1e-5,
        ];
        let cols: [(&str, &[f64]); 3] = [("alpha", &a), ("1", &b), ("with,comma", &a)];
        let bytes = csv_table_bytes(&cols).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("alpha,\"1\",\"with,comma\"\n0.1,inf,0.1\n-0.0,-inf,-0.0\n"),
            "{text}"
        );
        assert!(text.contains("nan,1e-5,nan\n"), "{text}");
        let (h, t) = parse(&text).unwrap();
        assert_eq!(h.unwrap(), vec!["alpha", "1", "with,comma"]);
        assert_eq!(t.shape, vec![9, 3]);
        for i in 0..9 {
            for (j, col) in [&a, &b, &a].iter().enumerate() {
                let (got, want) = (t.data[i * 3 + j], col[i]);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "row {i} col {j}: {got:?} != {want:?}"
                );
            }
        }
        // via files
        let dir = std::env::temp_dir().join(format!("featlab-io-csv-{}", std::process::id()));
        let path = dir.join("t.csv");
        write_csv_table(&path, &cols).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(read_csv(&path).unwrap().1.shape, vec![9, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(read_csv(&path), Err(Error::Io { .. })));
    }

    #[test]
    fn csv_table_rejects_ragged_columns() {
        let e = csv_table_bytes(&[("a", &[1.0, 2.0][..]), ("b", &[1.0][..])]).unwrap_err();
        assert!(matches!(e, Error::Shape(_)));
        assert!(e
            .to_string()
            .contains("column 'b' has 1 values but column 'a' has 2"));
        assert!(csv_table_bytes(&[]).unwrap().is_empty());
        assert_eq!(csv_table_bytes(&[("x", &[][..])]).unwrap(), b"x\n");
    }

    fn digits_text(rows: usize) -> String {
        let mut s = String::new();
        for r in 0..rows {
            let row: Vec<String> = (0..64)
                .map(|j| format!("{:.18e}", ((r + j) % 17) as f64))
                .chain(std::iter::once(format!("{}", r % 10)))
                .collect();
            s.push_str(&row.join(","));
            s.push('\n');
        }
        s
    }

    #[test]
    fn digits_reader_plain_and_gzipped() {
        let dir = std::env::temp_dir().join(format!("featlab-io-digits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = digits_text(12);
        let gz = dir.join("digits.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let (x, y) = read_sklearn_digits(&gz).unwrap();
        assert_eq!(x.shape, vec![12, 64]);
        assert_eq!(y, (0..12).map(|r| (r % 10) as u8).collect::<Vec<_>>());
        assert_eq!(
            (x.data[16], x.data[1], x.data[64]),
            (1.0, 1.0 / 16.0, 1.0 / 16.0)
        );
        let plain = dir.join("digits.csv");
        std::fs::write(&plain, &text).unwrap();
        assert_eq!(read_sklearn_digits(&plain).unwrap().0, x);

        let bad = |t: &str| {
            std::fs::write(&plain, t).unwrap();
            read_sklearn_digits(&plain).unwrap_err().to_string()
        };
        assert!(bad("1,2,3\n").contains("expected 65 columns"));
        assert!(bad(&text.replacen("1.000000000000000000e0", "17", 1)).contains("outside 0..=16"));
        let label10 = digits_text(1)
            .trim_end()
            .strip_suffix(",0")
            .unwrap()
            .to_string()
            + ",10\n";
        assert!(bad(&label10).contains("label 10"));
        assert!(bad("").contains("no rows"));
        std::fs::write(&gz, b"\x1f\x8b\x08\x00garbage").unwrap();
        assert!(read_sklearn_digits(&gz)
            .unwrap_err()
            .to_string()
            .contains("gzip"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Runs only where scikit-learn's file was fetched (`scripts/fetch-digits.sh`).
    #[test]
    fn digits_real_file_if_present() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/digits.csv.gz");
        if !path.exists() {
            eprintln!(
                "note: {} not present (run scripts/fetch-digits.sh); skipped",
                path.display()
            );
            return;
        }
        let (x, y) = read_sklearn_digits(&path).unwrap();
        assert_eq!(x.shape, vec![1797, 64]);
        assert_eq!(y.len(), 1797);
        for c in 0..10u8 {
            let k = y.iter().filter(|&&l| l == c).count();
            assert!((170..=190).contains(&k), "class {c}: {k}");
        }
        assert!(x.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(x.data.contains(&1.0));
    }
}
