//! A branch-free `exp` that compilers vectorise, and slice maps that run it at the CPU's
//! widest f64 SIMD width (AVX-512, AVX2 + FMA, or plain code), for the kernel matrices of
//! RFM ([`crate::theory::nfa::rfm`]), where glibc's scalar `exp` was 73 % of the time.
//!
//! Algorithm (Cody & Waite range reduction, Taylor polynomial):
//!   `k = round(x·log₂e)`, `r = x − k·ln2_hi − k·ln2_lo` (two fused multiply-adds, so
//!   `|r| ≤ ln2/2 + 2⁻⁵³`), `e^r = 1 + r + r²/2! + … + r¹³/13!` by Horner's rule with fused
//!   multiply-adds (truncation `< 0.35¹⁴/14! < 5·10⁻¹⁸`, well below half an ulp), then
//!   `eˣ = 2^k₁ · 2^k₂ · e^r` with `k₁ + k₂ = k` (two exact power-of-two scalings, so
//!   subnormal results are rounded once, not flushed). Arguments are clamped to
//!   `[−746, 710]` first (`exp` is `0` / `+∞` there in f64); NaN gives NaN.
//!
//! Error: at most 1 ulp against the correctly rounded `eˣ` (test
//! `exp_is_within_one_ulp_of_std` measures the largest difference from `f64::exp` over
//! 10⁶ points of `[−745, 709]`). Every operation is an IEEE operation with one rounding
//! (`f64::mul_add` is a fused multiply-add on every path), so the vector and the plain
//! paths give the same bits on every CPU.

/// log₂ e.
const LOG2E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split: `LN2_HI` has its low 21 mantissa bits zero (fdlibm's split), so `k·LN2_HI` is
/// exact for `|k| < 2²¹`; `LN2_LO = ln 2 − LN2_HI`.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// `1.5·2⁵²`: adding it rounds a |value| < 2⁵¹ to the nearest integer (ties to even) and
/// leaves that integer in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// `1/j!` for j = 0..=13 (each a correctly rounded division of exact integers).
const INV_FACT: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
];

/// `eˣ` within 1 ulp, branch-free (see the module docs); inlined into the slice maps so
/// that they vectorise.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let xc = x.clamp(-746.0, 710.0);
    let t = xc.mul_add(LOG2E, SHIFTER);
    let k = t - SHIFTER;
    let r = (-k).mul_add(LN2_HI, xc);
    let r = (-k).mul_add(LN2_LO, r);
    let mut p = INV_FACT[13];
    p = p.mul_add(r, INV_FACT[12]);
    p = p.mul_add(r, INV_FACT[11]);
    p = p.mul_add(r, INV_FACT[10]);
    p = p.mul_add(r, INV_FACT[9]);
    p = p.mul_add(r, INV_FACT[8]);
    p = p.mul_add(r, INV_FACT[7]);
    p = p.mul_add(r, INV_FACT[6]);
    p = p.mul_add(r, INV_FACT[5]);
    p = p.mul_add(r, INV_FACT[4]);
    p = p.mul_add(r, INV_FACT[3]);
    p = p.mul_add(r, INV_FACT[2]);
    p = p.mul_add(r, INV_FACT[1]);
    p = p.mul_add(r, INV_FACT[0]);
    // k ∈ [−1077, 1025] as the low bits of t; split it so each factor is a normal 2^kᵢ
    let ki = (t.to_bits() as i64).wrapping_sub(SHIFTER.to_bits() as i64);
    let k1 = ki >> 1;
    let k2 = ki - k1;
    let s1 = f64::from_bits(((k1 + 1023) as u64) << 52);
    let s2 = f64::from_bits(((k2 + 1023) as u64) << 52);
    // NaN stays NaN through the clamp and every step above
    p * s1 * s2
}

/// `dst[i] ← f(dst[i])` for every element, compiled for the widest SIMD the CPU has (the
/// loop is vectorised when `f` is branch-free, e.g. built on [`exp`]).
#[inline]
pub fn map(dst: &mut [f64], f: impl Fn(f64) -> f64) {
    map_zip(dst, &[], |v, _| f(v));
}

/// `dst[i] ← f(dst[i], a[i])` for every element (`a` as long as `dst`, or empty, in which
/// case `f` gets 0 for it), compiled for the widest SIMD the CPU has.
#[inline]
pub fn map_zip(dst: &mut [f64], a: &[f64], f: impl Fn(f64, f64) -> f64) {
    assert!(
        a.is_empty() || a.len() == dst.len(),
        "vexp::map_zip: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX-512F and FMA (checked just above).
            unsafe { map_zip_avx512(dst, a, f) };
            return;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            unsafe { map_zip_avx2(dst, a, f) };
            return;
        }
    }
    map_zip_plain(dst, a, f);
}

#[inline(always)]
fn map_zip_plain(dst: &mut [f64], a: &[f64], f: impl Fn(f64, f64) -> f64) {
    if a.is_empty() {
        for v in dst.iter_mut() {
            *v = f(*v, 0.0);
        }
    } else {
        for (v, &ai) in dst.iter_mut().zip(a) {
            *v = f(*v, ai);
        }
    }
}

/// # Safety
/// The CPU must support AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn map_zip_avx512(dst: &mut [f64], a: &[f64], f: impl Fn(f64, f64) -> f64) {
    map_zip_plain(dst, a, f)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map_zip_avx2(dst: &mut [f64], a: &[f64], f: impl Fn(f64, f64) -> f64) {
    map_zip_plain(dst, a, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f64 of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        assert!(a.is_finite() && b.is_finite() && a >= 0.0 && b >= 0.0);
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_is_within_one_ulp_of_std() {
        // 10⁶ points spread over the whole finite range (subnormal results included) and
        // 10⁶ over the kernel range [−50, 0]
        let mut worst = (0u64, 0.0);
        let mut differ = 0usize;
        let ranges = [(-745.0, 709.0), (-50.0, 0.0)];
        for (lo, hi) in ranges {
            let n = 1_000_000;
            let mut xs: Vec<f64> = (0..n)
                .map(|i| lo + (hi - lo) * (i as f64 + 0.37) / n as f64)
                .collect();
            let want: Vec<f64> = xs.iter().map(|x| x.exp()).collect();
            map(&mut xs, exp);
            for (i, (&g, &w)) in xs.iter().zip(&want).enumerate() {
                let u = ulps(g, w);
                if u > 0 {
                    differ += 1;
                }
                if u > worst.0 {
                    worst = (u, lo + (hi - lo) * (i as f64 + 0.37) / n as f64);
                }
            }
        }
        assert!(
            worst.0 <= 1,
            "largest difference {} ulp at x = {}",
            worst.0,
            worst.1
        );
        // 1-ulp differences are the polynomial's last rounding landing on the other
        // neighbour: measured 6.0 % of these points (glibc is correctly rounded almost
        // everywhere); a systematic error would move most of them
        assert!(differ < 160_000, "{differ} of 2·10⁶ values differ from std");
    }

    #[test]
    fn exp_special_values() {
        // fdlibm's split of ln 2
        assert_eq!(LN2_HI.to_bits(), 0x3fe6_2e42_fee0_0000);
        assert_eq!(LN2_LO.to_bits(), 0x3dea_39ef_3579_3c76);
        assert_eq!(LN2_HI + LN2_LO, std::f64::consts::LN_2);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(1.0), std::f64::consts::E);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        // subnormal results
        for x in [-744.0, -740.5, -720.25, -708.5] {
            assert!(ulps(exp(x), x.exp()) <= 1, "x = {x}");
        }
        // exactly representable results
        for k in -20..20 {
            let x = k as f64 * std::f64::consts::LN_2;
            assert!(ulps(exp(x), x.exp()) <= 1, "x = {x}");
        }
    }

    #[test]
    fn vector_and_plain_paths_give_the_same_bits() {
        let xs: Vec<f64> = (0..4099).map(|i| -30.0 + 0.0137 * i as f64).collect();
        let mut v = xs.clone();
        map(&mut v, exp);
        let scalar: Vec<f64> = xs.iter().map(|&x| exp(x)).collect();
        let mut plain = xs.clone();
        map_zip_plain(&mut plain, &[], |x, _| exp(x));
        assert_eq!(v, scalar);
        assert_eq!(v, plain);
        let mut z = xs.clone();
        map_zip(&mut z, &xs, |x, y| exp(x - 2.0 * y));
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(z[i], exp(-x));
        }
    }
}
