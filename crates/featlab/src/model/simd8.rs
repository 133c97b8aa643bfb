//! Eight-lane f64 vectors for the register-tiled kernels ([`super::two_layer_tiles`]):
//! one trait, [`V8`], implemented with AVX-512 intrinsics ([`Avx512`]) and portably
//! ([`Lanes`], plain arrays and `f64::mul_add`).
//!
//! Every operation is defined lane by lane with one IEEE rounding (`fma` is a fused
//! multiply-add, one rounding; `pos_select(z, t)` is `t` where `z > 0` and `+0`
//! elsewhere, NaN included), so a kernel written once over `V8` gives the same bits with
//! either implementation.

/// An 8-lane f64 vector. All methods are `unsafe`: the pointer methods read or write 8
/// (or `n`) consecutive f64, and [`Avx512`] values may only be used on a CPU with AVX-512F.
pub(crate) trait V8: Copy {
    /// All lanes 0.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: f64) -> Self;
    /// Lanes p[0..8].
    unsafe fn load(p: *const f64) -> Self;
    /// Lanes p[0..n] and 0 for lanes n..8 (n ≤ 8; nothing beyond p[n − 1] is read).
    unsafe fn load_n(p: *const f64, n: usize) -> Self;
    /// p[0..8] = lanes.
    unsafe fn store(self, p: *mut f64);
    /// p[0..n] = lanes 0..n (n ≤ 8; nothing else is written).
    unsafe fn store_n(self, p: *mut f64, n: usize);
    /// a·b + c with one rounding.
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    unsafe fn mul(a: Self, b: Self) -> Self;
    unsafe fn add(a: Self, b: Self) -> Self;
    unsafe fn sub(a: Self, b: Self) -> Self;
    /// `t` where `z > 0`, `+0` elsewhere (also where z is NaN).
    unsafe fn pos_select(z: Self, t: Self) -> Self;
    /// Lanes 0..n kept, lanes n..8 set to `+0`.
    unsafe fn keep_n(self, n: usize) -> Self;
    /// The lanes as an array.
    unsafe fn to_array(self) -> [f64; 8];
    /// A vector from an array.
    unsafe fn from_array(a: [f64; 8]) -> Self;
}

/// The portable [`V8`].
#[derive(Clone, Copy)]
pub(crate) struct Lanes([f64; 8]);

impl Lanes {
    #[inline(always)]
    fn map2(a: Self, b: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        Lanes(std::array::from_fn(|l| f(a.0[l], b.0[l])))
    }
}

impl V8 for Lanes {
    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([0.0; 8])
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Lanes([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        Lanes(p.cast::<[f64; 8]>().read_unaligned())
    }
    #[inline(always)]
    unsafe fn load_n(p: *const f64, n: usize) -> Self {
        let mut a = [0.0; 8];
        for (l, v) in a.iter_mut().enumerate().take(n) {
            *v = *p.add(l);
        }
        Lanes(a)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        p.cast::<[f64; 8]>().write_unaligned(self.0)
    }
    #[inline(always)]
    unsafe fn store_n(self, p: *mut f64, n: usize) {
        for (l, &v) in self.0.iter().enumerate().take(n) {
            *p.add(l) = v;
        }
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        Lanes(std::array::from_fn(|l| a.0[l].mul_add(b.0[l], c.0[l])))
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        Self::map2(a, b, |x, y| x * y)
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        Self::map2(a, b, |x, y| x + y)
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        Self::map2(a, b, |x, y| x - y)
    }
    #[inline(always)]
    unsafe fn pos_select(z: Self, t: Self) -> Self {
        Self::map2(z, t, |z, t| if z > 0.0 { t } else { 0.0 })
    }
    #[inline(always)]
    unsafe fn keep_n(self, n: usize) -> Self {
        Lanes(std::array::from_fn(|l| if l < n { self.0[l] } else { 0.0 }))
    }
    #[inline(always)]
    unsafe fn to_array(self) -> [f64; 8] {
        self.0
    }
    #[inline(always)]
    unsafe fn from_array(a: [f64; 8]) -> Self {
        Lanes(a)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::V8;
    use std::arch::x86_64::*;

    /// [`V8`] in one AVX-512 register; only to be used where AVX-512F is present.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512d);

    #[inline(always)]
    fn mask(n: usize) -> __mmask8 {
        ((1u32 << n.min(8)) - 1) as __mmask8
    }

    impl V8 for Avx512 {
        #[inline(always)]
        unsafe fn zero() -> Self {
            Avx512(_mm512_setzero_pd())
        }
        #[inline(always)]
        unsafe fn splat(x: f64) -> Self {
            Avx512(_mm512_set1_pd(x))
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            Avx512(_mm512_loadu_pd(p))
        }
        #[inline(always)]
        unsafe fn load_n(p: *const f64, n: usize) -> Self {
            Avx512(_mm512_maskz_loadu_pd(mask(n), p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            _mm512_storeu_pd(p, self.0)
        }
        #[inline(always)]
        unsafe fn store_n(self, p: *mut f64, n: usize) {
            _mm512_mask_storeu_pd(p, mask(n), self.0)
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            Avx512(_mm512_fmadd_pd(a.0, b.0, c.0))
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            Avx512(_mm512_mul_pd(a.0, b.0))
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            Avx512(_mm512_add_pd(a.0, b.0))
        }
        #[inline(always)]
        unsafe fn sub(a: Self, b: Self) -> Self {
            Avx512(_mm512_sub_pd(a.0, b.0))
        }
        #[inline(always)]
        unsafe fn pos_select(z: Self, t: Self) -> Self {
            let k = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(z.0, _mm512_setzero_pd());
            Avx512(_mm512_maskz_mov_pd(k, t.0))
        }
        #[inline(always)]
        unsafe fn keep_n(self, n: usize) -> Self {
            Avx512(_mm512_maskz_mov_pd(mask(n), self.0))
        }
        #[inline(always)]
        unsafe fn to_array(self) -> [f64; 8] {
            let mut a = [0.0; 8];
            _mm512_storeu_pd(a.as_mut_ptr(), self.0);
            a
        }
        #[inline(always)]
        unsafe fn from_array(a: [f64; 8]) -> Self {
            Avx512(_mm512_loadu_pd(a.as_ptr()))
        }
    }
}
