//! What the dense outputs of the one-step methods share: locating `t` in the last accepted
//! step `[t0, t1]` (exact endpoint values, a clear panic outside) and the cubic Hermite
//! interpolant of `(y0, f0, y1, f1)`.

/// Check `t` and `out` against the last accepted step `[t0, t1]` (states `y0`, `y1`) of
/// the stepper named `who`; copy `y0` or `y1` into `out` when `t` is at or beyond an end
/// (so the dense output is bitwise exact there) and return `None`; otherwise return
/// `Some((h, θ))`, `h = t1 − t0`, `θ = (t − t0)/h`.
///
/// # Panics
/// If `valid` is false (no accepted step), if `out.len() != y1.len()`, or if `t` lies
/// outside `[t0, t1]` by more than 64 ulp of `max(|t0|, |t1|)` (NaN included).
#[allow(clippy::too_many_arguments)]
pub(super) fn locate(
    who: &str,
    valid: bool,
    t0: f64,
    t1: f64,
    y0: &[f64],
    y1: &[f64],
    t: f64,
    out: &mut [f64],
) -> Option<(f64, f64)> {
    assert!(
        valid,
        "{who}::interpolate: no accepted step to interpolate in (call step first)"
    );
    assert_eq!(out.len(), y1.len(), "{who}::interpolate: out.len() != dim");
    let slack = 64.0 * f64::EPSILON * t0.abs().max(t1.abs());
    assert!(
        t >= t0 - slack && t <= t1 + slack,
        "{who}::interpolate: t = {t:e} outside the last accepted step [{t0:e}, {t1:e}]"
    );
    if t >= t1 {
        out.copy_from_slice(y1);
        return None;
    }
    if t <= t0 {
        out.copy_from_slice(y0);
        return None;
    }
    let h = t1 - t0;
    Some((h, (t - t0) / h))
}

/// Cubic Hermite interpolant of `(y0, f0, y1, f1)` over a step `h` at `θ ∈ (0, 1)`:
/// `y0 + θ(δ + (1 − θ)(hf0 − δ + θ(2δ − hf0 − hf1 + c_i)))`, `δ = y1 − y0`, with the
/// optional per-component correction `c_i = extra(i)` of a quartic Hermite variant
/// (3rd order without it).
#[allow(clippy::too_many_arguments)]
pub(super) fn hermite(
    y0: &[f64],
    y1: &[f64],
    f0: &[f64],
    f1: &[f64],
    h: f64,
    th: f64,
    extra: Option<impl Fn(usize) -> f64>,
    out: &mut [f64],
) {
    for (i, o) in out.iter_mut().enumerate() {
        let delta = y1[i] - y0[i];
        let hf0 = h * f0[i];
        let hf1 = h * f1[i];
        let mut inner = 2.0 * delta - hf0 - hf1;
        if let Some(c) = &extra {
            inner += c(i);
        }
        *o = y0[i] + th * (delta + (1.0 - th) * (hf0 - delta + th * inner));
    }
}
