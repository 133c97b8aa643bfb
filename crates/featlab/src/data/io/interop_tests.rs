//! Cross-checks against the real numpy and pandas, when `python3` (or `$FEATLAB_PYTHON`)
//! can import them; skipped with a printed note otherwise. The format modules have
//! their own spec-derived tests, so these add coverage rather than carry it.

use super::*;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn python() -> String {
    std::env::var("FEATLAB_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn has_module(module: &str) -> bool {
    Command::new(python())
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run_python(script: &str, dir: &Path) {
    let out = Command::new(python())
        .args(["-c", script])
        .arg(dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("featlab-io-interop-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

const SPECIALS: [f64; 10] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    5e-324,
    f64::MAX,
    0.1,
    -1.5e-300,
    2.2250738585072014e-308,
    123456.789,
];

#[test]
fn io_interop_numpy_reads_and_writes_npy() {
    if !has_module("numpy") {
        eprintln!(
            "note: `{} -c 'import numpy'` failed; numpy interop test skipped",
            python()
        );
        return;
    }
    let dir = scratch("npy");
    let shapes: Vec<Vec<usize>> = vec![
        vec![],
        vec![0],
        vec![5],
        vec![3, 4],
        vec![2, 3, 4],
        vec![1234567, 0],
        // long enough that numpy's growth padding pushes the header from 128 to 192 bytes
        vec![2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let a = NdArray::new(
            shape.clone(),
            (0..n).map(|k| SPECIALS[k % SPECIALS.len()]).collect(),
        );
        write_npy(&dir.join(format!("fl_{i}.npy")), &a).unwrap();
    }
    let script = r#"
import numpy as np, sys, os
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    if name.startswith('fl_'):
        a = np.load(os.path.join(d, name))
        assert a.dtype == np.float64 and a.flags.c_contiguous, (name, a.dtype)
        np.save(os.path.join(d, 'np_' + name[3:]), a)
base = np.arange(24).reshape(2, 3, 4)
for dt in ['<f8', '>f8', '<f4', '>f4', '<f2', '>f2', '<i8', '>i8', '<i4', '>i4', '<i2', '>i2',
           '|i1', '<u8', '>u8', '<u4', '>u4', '<u2', '>u2', '|u1']:
    tag = dt.replace('<', 'le').replace('>', 'be').replace('|', 'na')
    np.save(os.path.join(d, 'c_' + tag + '.npy'), base.astype(dt))
    np.save(os.path.join(d, 'f_' + tag + '.npy'), np.asfortranarray(base.astype(dt)))
np.save(os.path.join(d, 'c_bool.npy'), base % 3 == 0)
np.save(os.path.join(d, 'c_transposed_view.npy'), base.astype('<f8').transpose(2, 0, 1))
np.save(os.path.join(d, 'scalar.npy'), np.float32(2.5))
for v in [(1, 0), (2, 0), (3, 0)]:
    with open(os.path.join(d, 'v%d.npy' % v[0]), 'wb') as f:
        np.lib.format.write_array(f, base.astype('<f8'), version=v)
np.save(os.path.join(d, 'obj.npy'), np.array([1, 'a'], dtype=object), allow_pickle=True)
np.save(os.path.join(d, 'rec.npy'), np.zeros(3, dtype=[('a', '<f4'), ('b', '<i4')]))
np.save(os.path.join(d, 'c16.npy'), np.zeros(3, dtype=complex))
np.save(os.path.join(d, 'str.npy'), np.array(['ab', 'c']))
"#;
    run_python(script, &dir);

    // numpy re-saving what featlab wrote produces the identical file: header and data
    for (i, shape) in shapes.iter().enumerate() {
        let ours = fs::read(dir.join(format!("fl_{i}.npy"))).unwrap();
        let theirs = fs::read(dir.join(format!("np_{i}.npy"))).unwrap();
        assert!(
            ours == theirs,
            "shape {shape:?}: featlab and numpy bytes differ"
        );
    }
    // featlab reads every dtype numpy writes, in both orders
    let want: Vec<f64> = (0..24).map(f64::from).collect();
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("c_") || name.starts_with("f_") || name.starts_with('v') {
            let a = read_npy(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            match name.as_str() {
                "c_bool.npy" => assert_eq!(
                    a.data,
                    want.iter()
                        .map(|&v| f64::from(u8::from(v % 3.0 == 0.0)))
                        .collect::<Vec<_>>()
                ),
                "c_transposed_view.npy" => {
                    assert_eq!(a.shape, vec![4, 2, 3]);
                    // element (k, i, j) = base[i, j, k] = 12 i + 4 j + k
                    assert_eq!(a.data[1], 4.0);
                    assert_eq!(a.data[6], 1.0);
                }
                _ => assert_eq!((&a.shape, &a.data), (&vec![2, 3, 4], &want), "{name}"),
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 2 * 20 + 2 + 3);
    let s = read_npy(&dir.join("scalar.npy")).unwrap();
    assert_eq!((s.shape, s.data), (vec![], vec![2.5]));
    for (f, what) in [
        ("obj.npy", "pickle"),
        ("rec.npy", "structured"),
        ("c16.npy", "'<c16'"),
        ("str.npy", "'<U2'"),
    ] {
        let e = read_npy(&dir.join(f)).unwrap_err();
        assert!(
            matches!(e, Error::Data { .. }) && e.to_string().contains(what),
            "{f}: {e}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn io_interop_pandas_reads_csv_bit_exact() {
    if !has_module("pandas") || !has_module("numpy") {
        eprintln!(
            "note: `{} -c 'import pandas'` failed; pandas interop test skipped",
            python()
        );
        return;
    }
    let dir = scratch("csv");
    let a: Vec<f64> = SPECIALS.to_vec();
    let b: Vec<f64> = (0..10).map(|i| f64::from(i) * 1e17 + 1.0).collect();
    let c: Vec<f64> = (0..10).map(|i| (f64::from(i) + 0.5).sqrt().ln()).collect();
    let d: Vec<f64> = (0..10).map(f64::from).collect();
    let cols: [(&str, &[f64]); 4] = [("special", &a), ("big", &b), ("7", &c), ("ints", &d)];
    write_csv_table(&dir.join("t.csv"), &cols).unwrap();
    let script = r#"
import numpy as np, pandas as pd, sys, os
d = sys.argv[1]
df = pd.read_csv(os.path.join(d, 't.csv'))
assert list(df.columns) == ['special', 'big', '7', 'ints'], list(df.columns)
assert all(str(t) == 'float64' for t in df.dtypes), df.dtypes
np.save(os.path.join(d, 'back.npy'), df.to_numpy(dtype=np.float64))
out = pd.DataFrame({'x': [1.5, np.nan, -np.inf], 'y': [0.1, 2.0, 3.0]})
out.to_csv(os.path.join(d, 'pandas.csv'))
"#;
    run_python(script, &dir);
    let back = read_npy(&dir.join("back.npy")).unwrap();
    assert_eq!(back.shape, vec![10, 4]);
    for (j, col) in [&a, &b, &c, &d].iter().enumerate() {
        let got: Vec<f64> = (0..10).map(|i| back.data[i * 4 + j]).collect();
        let ok = got
            .iter()
            .zip(col.iter())
            .all(|(g, w)| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
        assert!(
            ok,
            "column {j}: pandas read {:?}, featlab wrote {:?}",
            bits(&got),
            bits(col)
        );
    }
    // and featlab reads what pandas writes (index column with an empty name, NaN as "")
    let (h, t) = read_csv(&dir.join("pandas.csv")).unwrap();
    assert_eq!(h.unwrap(), vec!["", "x", "y"]);
    assert_eq!(t.shape, vec![3, 3]);
    assert_eq!(
        (t.data[1], t.data[7], t.data[8]),
        (1.5, f64::NEG_INFINITY, 3.0)
    );
    assert!(t.data[4].is_nan());
    fs::remove_dir_all(&dir).unwrap();
}
