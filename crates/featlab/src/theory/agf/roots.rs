//! Scalar root finding: Brent's method on a bracketing interval.

use crate::{Error, Result};

/// A root of `f` in `[a, b]` with `f(a)` and `f(b)` of opposite signs (or one of them zero),
/// by Brent's method (R. P. Brent, *Algorithms for Minimization without Derivatives*, 1973,
/// ch. 4): inverse quadratic interpolation / secant steps safeguarded by bisection, so it
/// never leaves the bracket and converges at least as fast as bisection. Stops when the
/// bracket is shorter than `2·(4ε|b| + xtol)` or `f` is exactly 0.
///
/// # Errors
/// [`Error::Numerical`] if `[a, b]` does not bracket a sign change or `f` is not finite.
pub fn brent(mut f: impl FnMut(f64) -> f64, a: f64, b: f64, xtol: f64) -> Result<f64> {
    let (mut a, mut b) = (a, b);
    let (mut fa, mut fb) = (f(a), f(b));
    if !(fa.is_finite() && fb.is_finite()) {
        return Err(Error::Numerical(format!(
            "brent: f is not finite at the bracket ends (f({a:e}) = {fa}, f({b:e}) = {fb})"
        )));
    }
    if fa == 0.0 {
        return Ok(a);
    }
    if fb == 0.0 {
        return Ok(b);
    }
    if fa.signum() == fb.signum() {
        return Err(Error::Numerical(format!(
            "brent: [{a:e}, {b:e}] does not bracket a root (f = {fa:e}, {fb:e})"
        )));
    }
    let (mut c, mut fc) = (a, fa);
    let mut d = b - a;
    let mut e = d;
    for _ in 0..200 {
        if fb.signum() == fc.signum() {
            c = a;
            fc = fa;
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol = 2.0 * f64::EPSILON * b.abs() + 0.5 * xtol;
        let m = 0.5 * (c - b);
        if m.abs() <= tol || fb == 0.0 {
            return Ok(b);
        }
        if e.abs() >= tol && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut p, mut q);
            if a == c {
                p = 2.0 * m * s;
                q = 1.0 - s;
            } else {
                let qq = fa / fc;
                let r = fb / fc;
                p = s * (2.0 * m * qq * (qq - r) - (b - a) * (r - 1.0));
                q = (qq - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if 2.0 * p < (3.0 * m * q - (tol * q).abs()).min((e * q).abs()) {
                e = d;
                d = p / q;
            } else {
                d = m;
                e = m;
            }
        } else {
            d = m;
            e = m;
        }
        a = b;
        fa = fb;
        b += if d.abs() > tol { d } else { tol.copysign(m) };
        fb = f(b);
        if !fb.is_finite() {
            return Err(Error::Numerical(format!(
                "brent: f({b:e}) = {fb} is not finite"
            )));
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn brent_finds_roots_to_tolerance() {
        let r = brent(|x| x * x - 2.0, 0.0, 2.0, 1e-15).unwrap();
        assert!((r - 2f64.sqrt()).abs() < 1e-14, "{r}");
        let r = brent(|x| (x - 1.0).powi(3), -3.0, 4.0, 1e-13).unwrap();
        assert!((r - 1.0).abs() < 1e-4, "{r}");
        let r = brent(|x| x.exp() - 1e6, 0.0, 100.0, 1e-14).unwrap();
        assert!((r - 1e6f64.ln()).abs() < 1e-12, "{r}");
        assert!(brent(|x| x * x + 1.0, -1.0, 1.0, 1e-12).is_err());
    }
}
