//! `featlab.groups`: finite groups, their irreps and the group Fourier transform
//! (`featlab::groups`, the code behind the `group_agf` and `group_rnn` studies of
//! Marchetti et al., *Sequential group composition*, arXiv 2602.03655) on numpy arrays.
//!
//! One native object per group holds the validated multiplication table and the irreps,
//! computed once by the library (`Irreps::compute`); every transform calls the library:
//! x̂(ρ) = Σ_g x(g) ρ(g)^H, P(ρ) = (d_ρ/|G|)‖x̂(ρ)‖²_F (Σ P = ‖x‖², Plancherel), and the
//! real versions x̂(σ) = Σ_g x(g) σ(g)ᵀ, P(σ) = (r/(e_σ|G|))‖x̂(σ)‖²_F.

use crate::errors::lib_err;
use faer::{c64, Mat};
use featlab::groups::{
    complex_fourier, complex_inverse_fourier, complex_power_spectrum, real_fourier,
    real_inverse_fourier, real_power_spectrum, template_from_powers, FiniteGroup, GroupSpec,
    Irreps,
};
use numpy::{Complex64, PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A finite group with its irreps (see the module docs).
#[pyclass(frozen, module = "featlab._featlab")]
pub struct NativeGroup {
    group: FiniteGroup,
    irreps: Irreps,
}

/// Builds a group from the JSON text of a `data.group` spec (`{"kind": "cyclic", "n": 5}`,
/// `product`, `dihedral`, `octahedral`, `icosahedral`, `permutations`, `table`) and
/// computes its irreps. Errors name `group`.
#[pyfunction]
pub fn group(spec_json: &str) -> PyResult<NativeGroup> {
    let spec: GroupSpec = serde_json::from_str(spec_json)
        .map_err(|e| PyValueError::new_err(format!("invalid configuration at `group`: {e}")))?;
    let group = spec.build().map_err(lib_err)?;
    let irreps = Irreps::compute(&group).map_err(lib_err)?;
    Ok(NativeGroup { group, irreps })
}

fn check_len(x: &[f64], n: usize, what: &str) -> PyResult<()> {
    if x.len() != n {
        return Err(PyValueError::new_err(format!(
            "shape mismatch: {what} has {} entries, the group has order {n}",
            x.len()
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "{what} has non-finite entries"
        )));
    }
    Ok(())
}

fn real_mat<'py>(py: Python<'py>, m: &Mat<f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (r, c) = (m.nrows(), m.ncols());
    let v: Vec<f64> = (0..r * c).map(|k| m[(k / c, k % c)]).collect();
    PyArray1::from_vec(py, v).reshape([r, c])
}

fn complex_mat<'py>(py: Python<'py>, m: &Mat<c64>) -> PyResult<Bound<'py, PyArray2<Complex64>>> {
    let (r, c) = (m.nrows(), m.ncols());
    let v: Vec<Complex64> = (0..r * c)
        .map(|k| {
            let z = m[(k / c, k % c)];
            Complex64::new(z.re, z.im)
        })
        .collect();
    PyArray1::from_vec(py, v).reshape([r, c])
}

/// A square matrix from a numpy-like object (`what` names it in errors).
fn square<T: Copy + numpy::Element>(
    a: &Bound<'_, PyAny>,
    d: usize,
    what: &str,
) -> PyResult<Vec<T>> {
    let arr = a.extract::<numpy::PyReadonlyArray2<'_, T>>().map_err(|_| {
        PyValueError::new_err(format!("{what} must be a 2-D array of the right dtype"))
    })?;
    let v = arr.as_array();
    if v.shape() != [d, d] {
        return Err(PyValueError::new_err(format!(
            "shape mismatch: {what} has shape {:?}, the irrep has dimension {d}",
            v.shape()
        )));
    }
    Ok((0..d * d).map(|k| v[[k / d, k % d]]).collect())
}

#[pymethods]
impl NativeGroup {
    /// Name (`C5`, `D3`, `octahedral`, …).
    #[getter]
    fn name(&self) -> String {
        self.group.name.clone()
    }
    /// Order |G|.
    #[getter]
    fn order(&self) -> usize {
        self.group.order()
    }
    /// Index of the identity.
    #[getter]
    fn identity(&self) -> usize {
        self.group.identity()
    }
    /// The multiplication table, `table[a, b]` = index of a·b (|G| × |G|, int64).
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let n = self.group.order();
        let v: Vec<i64> = (0..n * n)
            .map(|k| self.group.mul(k / n, k % n) as i64)
            .collect();
        PyArray1::from_vec(py, v).reshape([n, n])
    }
    /// `inverse[a]` = index of a⁻¹.
    fn inverse<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let v: Vec<i64> = (0..self.group.order())
            .map(|a| self.group.inv(a) as i64)
            .collect();
        PyArray1::from_vec(py, v)
    }
    /// (λ(g)x)(h) = x(g⁻¹h): the encoding of g by the template x.
    fn left_translate<'py>(
        &self,
        py: Python<'py>,
        g: usize,
        x: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = x.as_slice()?;
        check_len(x, self.group.order(), "x")?;
        if g >= self.group.order() {
            return Err(PyValueError::new_err(format!(
                "element {g} is not in the group (0..{})",
                self.group.order()
            )));
        }
        Ok(PyArray1::from_vec(py, self.group.left_translate(g, x)))
    }
    /// Real irreps: list of dicts `name`, `dim`, `kind` (`real` | `complex` |
    /// `quaternionic`), `schur_index` (e_σ = 1, 2, 4), `matrices` (|G| × r × r float64,
    /// orthogonal), `character` (|G|,), `complex` (indices of its complex irreps).
    fn real_irreps<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let n = self.group.order();
        self.irreps
            .real
            .iter()
            .map(|r| {
                let d = r.dim;
                let v: Vec<f64> = r
                    .matrices
                    .iter()
                    .flat_map(|m| (0..d * d).map(move |k| m[(k / d, k % d)]))
                    .collect();
                let mats: Bound<'py, PyArray3<f64>> =
                    PyArray1::from_vec(py, v).reshape([n, d, d])?;
                let out = PyDict::new(py);
                out.set_item("name", &r.name)?;
                out.set_item("dim", d)?;
                out.set_item(
                    "kind",
                    serde_json::to_value(r.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                )?;
                out.set_item("schur_index", r.schur_index())?;
                out.set_item("matrices", mats)?;
                out.set_item("character", PyArray1::from_vec(py, r.character.clone()))?;
                out.set_item("complex", r.complex.clone())?;
                Ok(out)
            })
            .collect()
    }
    /// Complex irreps: list of dicts `name`, `dim`, `indicator` (Frobenius–Schur, 1/0/−1),
    /// `matrices` (|G| × d × d complex128, unitary), `character` (|G|, complex128).
    fn complex_irreps<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let n = self.group.order();
        self.irreps
            .complex
            .iter()
            .map(|r| {
                let d = r.dim;
                let v: Vec<Complex64> = r
                    .matrices
                    .iter()
                    .flat_map(|m| {
                        (0..d * d).map(move |k| {
                            let z = m[(k / d, k % d)];
                            Complex64::new(z.re, z.im)
                        })
                    })
                    .collect();
                let mats: Bound<'py, PyArray3<Complex64>> =
                    PyArray1::from_vec(py, v).reshape([n, d, d])?;
                let chi: Vec<Complex64> = r
                    .character
                    .iter()
                    .map(|z| Complex64::new(z.re, z.im))
                    .collect();
                let out = PyDict::new(py);
                out.set_item("name", &r.name)?;
                out.set_item("dim", d)?;
                out.set_item("indicator", r.indicator)?;
                out.set_item("matrices", mats)?;
                out.set_item("character", PyArray1::from_vec(py, chi))?;
                Ok(out)
            })
            .collect()
    }
    /// x̂(σ) = Σ_g x(g) σ(g)ᵀ per real irrep (`real=True`) or x̂(ρ) = Σ_g x(g) ρ(g)^H per
    /// complex irrep; a list of matrices in irrep order.
    fn fourier<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray1<'_, f64>,
        real: bool,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let x = x.as_slice()?;
        check_len(x, self.group.order(), "x")?;
        if real {
            real_fourier(&self.irreps.real, x)
                .iter()
                .map(|m| real_mat(py, m).map(Bound::into_any))
                .collect()
        } else {
            complex_fourier(&self.irreps.complex, x)
                .iter()
                .map(|m| complex_mat(py, m).map(Bound::into_any))
                .collect()
        }
    }
    /// The inverse transform: x(g) = Σ_σ (r/(e_σ|G|)) Tr(σ(g) x̂(σ)) (real; float64) or
    /// x(g) = (1/|G|) Σ_ρ d_ρ Tr(ρ(g) x̂(ρ)) (complex; complex128).
    fn inverse_fourier<'py>(
        &self,
        py: Python<'py>,
        xhat: Vec<Bound<'py, PyAny>>,
        real: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let count = if real {
            self.irreps.real.len()
        } else {
            self.irreps.complex.len()
        };
        if xhat.len() != count {
            return Err(PyValueError::new_err(format!(
                "shape mismatch: {} coefficient matrices for {count} {} irreps",
                xhat.len(),
                if real { "real" } else { "complex" }
            )));
        }
        if real {
            let mats = xhat
                .iter()
                .zip(&self.irreps.real)
                .enumerate()
                .map(|(i, (a, r))| {
                    let d = r.dim;
                    let v = square::<f64>(a, d, &format!("xhat[{i}] (irrep {})", r.name))?;
                    Ok(Mat::from_fn(d, d, |i, j| v[i * d + j]))
                })
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyArray1::from_vec(py, real_inverse_fourier(&self.irreps.real, &mats)).into_any())
        } else {
            let mats = xhat
                .iter()
                .zip(&self.irreps.complex)
                .enumerate()
                .map(|(i, (a, r))| {
                    let d = r.dim;
                    let v = square::<Complex64>(a, d, &format!("xhat[{i}] (irrep {})", r.name))?;
                    Ok(Mat::from_fn(d, d, |i, j| {
                        let z = v[i * d + j];
                        c64::new(z.re, z.im)
                    }))
                })
                .collect::<PyResult<Vec<_>>>()?;
            let x: Vec<Complex64> = complex_inverse_fourier(&self.irreps.complex, &mats)
                .into_iter()
                .map(|z| Complex64::new(z.re, z.im))
                .collect();
            Ok(PyArray1::from_vec(py, x).into_any())
        }
    }
    /// Power per irrep: P(σ) = (r/(e_σ|G|))‖x̂(σ)‖²_F (real) or P(ρ) = (d_ρ/|G|)‖x̂(ρ)‖²_F
    /// (complex); both sum to ‖x‖².
    fn power_spectrum<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray1<'_, f64>,
        real: bool,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = x.as_slice()?;
        check_len(x, self.group.order(), "x")?;
        let p = if real {
            real_power_spectrum(&self.irreps.real, x)
        } else {
            complex_power_spectrum(&self.irreps.complex, x)
        };
        Ok(PyArray1::from_vec(py, p))
    }
    /// The template with power `powers[σ]` per real irrep and Fourier coefficients ∝ I
    /// (as the `group_agf` presets build it).
    fn template<'py>(
        &self,
        py: Python<'py>,
        powers: Vec<f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = template_from_powers(&self.irreps.real, &powers, "powers").map_err(lib_err)?;
        Ok(PyArray1::from_vec(py, x))
    }
}
