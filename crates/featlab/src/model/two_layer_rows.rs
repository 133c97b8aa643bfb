//! Row-blocked forward and backward passes of the scalar-output two-layer net
//! `f(x) = m₂ Σ_j a_j σ(m₁ w_j·x + b_j)` (c = 1), fused with the ½-MSE loss.
//!
//! The batch is cut into row blocks of `R` samples (R·m ≈ 32k values, so a block's
//! pre-activations, activations and back-propagated signals stay in L2). For block b with
//! rows X_b (R × d):
//!
//! ```text
//! Z_b = m₁ X_b W₁ᵀ + 1 b₁ᵀ            one GEMM (R×d · d×m)
//! H_b = σ(Z_b),  f_b = m₂ H_b a       one pass over Z_b (activation and output GEMV fused)
//! r_b = f_b − y_b, L += Σ r², dF = r/n  (loss rows, ½-MSE)
//! ∂a  += m₂ H_bᵀ dF,  dZ_b = (dF ⊗ m₂a) ⊙ σ'(Z_b),  ∂b₁ += 1ᵀ dZ_b
//!                                      one pass over Z_b, H_b (reductions with 8 fixed lanes)
//! ∂W₁ += m₁ dZ_bᵀ X_b                  one GEMM (m×R · R×d), accumulated in place
//! ```
//!
//! Consecutive blocks are grouped into at most 8 *lanes*; a lane accumulates its blocks'
//! gradients in order and the lanes' partial gradients are summed in lane order. The
//! grouping depends only on (n, m), never on the thread count, so the result is bitwise the
//! same on 1 or many threads; lanes are what runs in parallel.

use super::activation::ActFn;
use faer::linalg::matmul::matmul as gemm;
use faer::{Accum, MatMut, MatRef, Par};

/// Target number of values R·m in one block's buffer (256 KB of f64).
const BLOCK_VALUES: usize = 1 << 15;
/// Bounds on the rows per block.
const MIN_BLOCK_ROWS: usize = 16;
const MAX_BLOCK_ROWS: usize = 256;
/// Most lanes (independent partial gradients) a batch is split into.
const MAX_LANES: usize = 8;
/// Minimum n·m before lanes run on several threads.
const PAR_MIN_VALUES: usize = 1 << 17;

/// How a batch of n samples is cut into row blocks and lanes (a function of n and m only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowBlocks {
    /// Batch size.
    pub n: usize,
    /// Hidden width.
    pub m: usize,
    /// Rows per block R (the last block may be shorter).
    pub rows: usize,
    /// Number of blocks ⌈n / R⌉.
    pub blocks: usize,
    /// Blocks per lane.
    pub lane_blocks: usize,
    /// Number of lanes.
    pub lanes: usize,
}

impl RowBlocks {
    /// The blocking of a batch of `n` samples for hidden width `m`.
    pub fn new(n: usize, m: usize) -> Self {
        let rows = (BLOCK_VALUES / m.max(1))
            .clamp(MIN_BLOCK_ROWS, MAX_BLOCK_ROWS)
            .min(n.max(1));
        let blocks = n.div_ceil(rows).max(1);
        let lane_blocks = blocks.div_ceil(blocks.min(MAX_LANES));
        let lanes = blocks.div_ceil(lane_blocks);
        RowBlocks {
            n,
            m,
            rows,
            blocks,
            lane_blocks,
            lanes,
        }
    }

    /// Rows per lane (the last lane may be shorter).
    pub fn lane_rows(&self) -> usize {
        self.lane_blocks * self.rows
    }

    /// Whether lanes run on several threads under `par`.
    pub fn parallel(&self, par: Par) -> bool {
        matches!(par, Par::Rayon(t) if t.get() > 1)
            && self.lanes > 1
            && self.n * self.m >= PAR_MIN_VALUES
    }
}

/// The network's parameters as the kernels need them.
#[derive(Clone, Copy)]
pub(crate) struct Weights<'a> {
    /// W₁ᵀ (d × m).
    pub w1t: MatRef<'a, f64>,
    /// Output weights a (m).
    pub a: &'a [f64],
    /// Biases b₁ (m), if any.
    pub bias: Option<&'a [f64]>,
    pub mult1: f64,
    pub mult2: f64,
}

/// What one pass over the batch computes.
#[derive(Clone, Copy)]
pub(crate) enum Pass<'a> {
    /// Z, H and f (writes `out`).
    Forward,
    /// Gradients from `d_out` and the Z, H of the last forward pass.
    Backward,
    /// Forward, ½-MSE against `y` (writes `out`, `d_out`), and backward, in one sweep.
    MseValueAndGrad { y: &'a [f64] },
}

/// The buffers of one lane: rows [r0, r0 + rows) of the batch.
pub(crate) struct Lane<'a> {
    pub r0: usize,
    /// Z, H, dZ of the lane's blocks, each block an (R_b × m) column-major matrix.
    pub z: &'a mut [f64],
    pub h: &'a mut [f64],
    pub dz: &'a mut [f64],
    /// f and ∂L/∂f for the lane's rows.
    pub out: &'a mut [f64],
    pub d_out: &'a mut [f64],
    /// Where the lane's gradient goes, laid out like the parameters: ∂W₁ (m × d row-major),
    /// then ∂b₁ (m) if there are biases, then ∂a (m).
    pub grad: &'a mut [f64],
}

/// Run `pass` over one lane; returns the lane's Σ r² (½-MSE pass) or 0.
pub(crate) fn run_lane<K: ActFn>(
    geo: &RowBlocks,
    net: Weights<'_>,
    x: MatRef<'_, f64>,
    pass: Pass<'_>,
    lane: Lane<'_>,
) -> f64 {
    let m = geo.m;
    let d = x.ncols();
    let rows_in_lane = lane.out.len();
    let inv_n = 1.0 / geo.n as f64;
    let (forward, backward) = match pass {
        Pass::Forward => (true, false),
        Pass::Backward => (false, true),
        Pass::MseValueAndGrad { .. } => (true, true),
    };
    let (g1, mut gb, g2): (&mut [f64], Option<&mut [f64]>, &mut [f64]) = if backward {
        let (g1, rest) = lane.grad.split_at_mut(m * d);
        match net.bias {
            Some(_) => {
                let (gb, g2) = rest.split_at_mut(m);
                (g1, Some(gb), g2)
            }
            None => (g1, None, rest),
        }
    } else {
        (&mut [], None, &mut [])
    };
    let mut sq = 0.0;
    let mut local = 0;
    let mut first = true;
    while local < rows_in_lane {
        let rb = geo.rows.min(rows_in_lane - local);
        let r0 = lane.r0 + local;
        let span = local * m..(local + rb) * m;
        let xb = x.subrows(r0, rb);
        let out = &mut lane.out[local..local + rb];
        let d_out = &mut lane.d_out[local..local + rb];
        if forward {
            gemm(
                MatMut::from_column_major_slice_mut(&mut lane.z[span.clone()], rb, m),
                Accum::Replace,
                xb,
                net.w1t,
                net.mult1,
                Par::Seq,
            );
            dispatch::activate_output::<K>(
                &mut lane.z[span.clone()],
                &mut lane.h[span.clone()],
                rb,
                net,
                out,
            );
        }
        if let Pass::MseValueAndGrad { y } = pass {
            sq += mse_rows(out, &y[r0..r0 + rb], d_out, inv_n);
        }
        if backward {
            dispatch::backprop_reduce::<K>(
                &lane.z[span.clone()],
                &lane.h[span.clone()],
                &mut lane.dz[span.clone()],
                rb,
                net,
                d_out,
                g2,
                gb.as_deref_mut(),
                first,
            );
            gemm(
                MatMut::from_row_major_slice_mut(g1, m, d),
                if first { Accum::Replace } else { Accum::Add },
                MatRef::from_column_major_slice(&lane.dz[span], rb, m).transpose(),
                xb,
                net.mult1,
                Par::Seq,
            );
        }
        first = false;
        local += rb;
    }
    sq
}

/// `r = f − y`, `dF = r / n`; returns Σ r² (in row order).
#[inline]
fn mse_rows(out: &[f64], y: &[f64], d_out: &mut [f64], inv_n: f64) -> f64 {
    let mut total = 0.0;
    for ((&f, &t), g) in out.iter().zip(y).zip(d_out.iter_mut()) {
        let r = f - t;
        total += r * r;
        *g = r * inv_n;
    }
    total
}

/// `z ← z + b_j`, `h = σ(z)`, `f_i = m₂ Σ_j a_j h_ij` for one (rb × m) block, vectorised
/// over rows. The output sum runs over j in order; four columns are handled per pass so
/// that f is read and written once per four columns.
#[inline(always)]
fn activate_output<K: ActFn>(
    zb: &mut [f64],
    hb: &mut [f64],
    rb: usize,
    net: Weights<'_>,
    out: &mut [f64],
) {
    if let Some(b) = net.bias {
        for (zc, &bj) in zb.chunks_exact_mut(rb).zip(b) {
            for z in zc.iter_mut() {
                *z += bj;
            }
        }
    }
    out.fill(0.0);
    let out = &mut out[..rb];
    let quads = net.a.len() / 4;
    let (zq, zt) = zb.split_at(4 * quads * rb);
    let (hq, ht) = hb.split_at_mut(4 * quads * rb);
    for ((zg, hg), ag) in zq
        .chunks_exact(4 * rb)
        .zip(hq.chunks_exact_mut(4 * rb))
        .zip(net.a.chunks_exact(4))
    {
        let (z0, zr) = zg.split_at(rb);
        let (z1, zr) = zr.split_at(rb);
        let (z2, z3) = zr.split_at(rb);
        let (h0, hr) = hg.split_at_mut(rb);
        let (h1, hr) = hr.split_at_mut(rb);
        let (h2, h3) = hr.split_at_mut(rb);
        let (a0, a1, a2, a3) = (ag[0], ag[1], ag[2], ag[3]);
        for i in 0..rb {
            let (v0, v1, v2, v3) = (K::f(z0[i]), K::f(z1[i]), K::f(z2[i]), K::f(z3[i]));
            h0[i] = v0;
            h1[i] = v1;
            h2[i] = v2;
            h3[i] = v3;
            out[i] = (((out[i] + a0 * v0) + a1 * v1) + a2 * v2) + a3 * v3;
        }
    }
    for ((zc, hc), &aj) in zt
        .chunks_exact(rb)
        .zip(ht.chunks_exact_mut(rb))
        .zip(&net.a[4 * quads..])
    {
        for ((h, &z), o) in hc.iter_mut().zip(zc).zip(out.iter_mut()) {
            let v = K::f(z);
            *h = v;
            *o += aj * v;
        }
    }
    if net.mult2 != 1.0 {
        for o in out.iter_mut() {
            *o *= net.mult2;
        }
    }
}

/// Width of the fixed-order partial sums of the column reductions.
const RED: usize = 8;

/// Column reductions in one fixed order: 8 interleaved partial sums (i mod 8), folded
/// pairwise, then the tail in order. Implemented portably and with AVX-512 intrinsics (the
/// same operations lane by lane, no FMA), so both give the same bits.
pub(crate) trait Reduce {
    /// Σ_i a_i b_i.
    fn dot(a: &[f64], b: &[f64]) -> f64;
    /// Σ_i a_i.
    fn sum(a: &[f64]) -> f64;
}

/// The portable [`Reduce`].
pub(crate) struct Portable;

impl Reduce for Portable {
    #[inline(always)]
    fn dot(a: &[f64], b: &[f64]) -> f64 {
        dot(a, b)
    }
    #[inline(always)]
    fn sum(a: &[f64]) -> f64 {
        sum(a)
    }
}

/// The 8 partial sums folded pairwise: ((s₀+s₁)+(s₂+s₃)) + ((s₄+s₅)+(s₆+s₇)).
#[inline(always)]
fn fold(s: [f64; RED]) -> f64 {
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ac, at) = a.as_chunks::<RED>();
    let (bc, bt) = b[..a.len()].as_chunks::<RED>();
    let mut s = [0.0; RED];
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..RED {
            s[l] += x[l] * y[l];
        }
    }
    let mut t = fold(s);
    for (x, y) in at.iter().zip(bt) {
        t += x * y;
    }
    t
}

#[inline(always)]
fn sum(a: &[f64]) -> f64 {
    let (ac, at) = a.as_chunks::<RED>();
    let mut s = [0.0; RED];
    for x in ac {
        for l in 0..RED {
            s[l] += x[l];
        }
    }
    let mut t = fold(s);
    for x in at {
        t += x;
    }
    t
}

/// For one (rb × m) block: `∂a_j (+)= m₂ Σ_i dF_i h_ij`, `dZ_ij = m₂ a_j dF_i σ'(z_ij)`,
/// `∂b_j (+)= Σ_i dZ_ij` (column sums in the fixed order of [`Reduce`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backprop_reduce<K: ActFn, R: Reduce>(
    zb: &[f64],
    hb: &[f64],
    dzb: &mut [f64],
    rb: usize,
    net: Weights<'_>,
    d_out: &[f64],
    g2: &mut [f64],
    mut gb: Option<&mut [f64]>,
    first: bool,
) {
    for (j, ((zc, hc), dc)) in zb
        .chunks_exact(rb)
        .zip(hb.chunks_exact(rb))
        .zip(dzb.chunks_exact_mut(rb))
        .enumerate()
    {
        let wj = net.mult2 * net.a[j];
        for ((d, &z), &g) in dc.iter_mut().zip(zc).zip(d_out) {
            *d = wj * g * K::df(z);
        }
        let t_a = net.mult2 * R::dot(hc, d_out);
        if first {
            g2[j] = t_a;
        } else {
            g2[j] += t_a;
        }
        if let Some(gb) = gb.as_deref_mut() {
            let t_b = R::sum(dc);
            if first {
                gb[j] = t_b;
            } else {
                gb[j] += t_b;
            }
        }
    }
}

/// The elementwise kernels, compiled a second time for AVX-512 and chosen at run time.
/// Rust never contracts a·b + c into an FMA on its own, so both versions give the same bits.
mod dispatch {
    use super::*;

    fn has_avx512() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            static DETECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            *DETECTED.get_or_init(|| {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512dq")
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    unsafe fn activate_output_wide<K: ActFn>(
        zb: &mut [f64],
        hb: &mut [f64],
        rb: usize,
        net: Weights<'_>,
        out: &mut [f64],
    ) {
        super::activate_output::<K>(zb, hb, rb, net, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    unsafe fn backprop_reduce_wide<K: ActFn>(
        zb: &[f64],
        hb: &[f64],
        dzb: &mut [f64],
        rb: usize,
        net: Weights<'_>,
        d_out: &[f64],
        g2: &mut [f64],
        gb: Option<&mut [f64]>,
        first: bool,
    ) {
        super::backprop_reduce::<K, Avx512>(zb, hb, dzb, rb, net, d_out, g2, gb, first)
    }

    /// [`Reduce`] with AVX-512: lane l of one 8-wide register holds partial sum l.
    #[cfg(target_arch = "x86_64")]
    struct Avx512;

    #[cfg(target_arch = "x86_64")]
    impl Reduce for Avx512 {
        #[inline(always)]
        fn dot(a: &[f64], b: &[f64]) -> f64 {
            // SAFETY: only reached from `backprop_reduce_wide`, i.e. with AVX-512F present.
            unsafe { dot_avx512(a, b) }
        }
        #[inline(always)]
        fn sum(a: &[f64]) -> f64 {
            // SAFETY: as above.
            unsafe { sum_avx512(a) }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512(a: &[f64], b: &[f64]) -> f64 {
        use std::arch::x86_64::*;
        let b = &b[..a.len()];
        let whole = a.len() - a.len() % RED;
        let mut acc = _mm512_setzero_pd();
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 8 ≤ whole ≤ len of both slices.
            let (x, y) = unsafe {
                (
                    _mm512_loadu_pd(a.as_ptr().add(i)),
                    _mm512_loadu_pd(b.as_ptr().add(i)),
                )
            };
            acc = _mm512_add_pd(acc, _mm512_mul_pd(x, y));
            i += RED;
        }
        let mut s = [0.0; RED];
        // SAFETY: s has 8 f64.
        unsafe { _mm512_storeu_pd(s.as_mut_ptr(), acc) };
        let mut t = fold(s);
        for (x, y) in a[whole..].iter().zip(&b[whole..]) {
            t += x * y;
        }
        t
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sum_avx512(a: &[f64]) -> f64 {
        use std::arch::x86_64::*;
        let whole = a.len() - a.len() % RED;
        let mut acc = _mm512_setzero_pd();
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 8 ≤ whole ≤ a.len().
            acc = _mm512_add_pd(acc, unsafe { _mm512_loadu_pd(a.as_ptr().add(i)) });
            i += RED;
        }
        let mut s = [0.0; RED];
        // SAFETY: s has 8 f64.
        unsafe { _mm512_storeu_pd(s.as_mut_ptr(), acc) };
        let mut t = fold(s);
        for x in &a[whole..] {
            t += x;
        }
        t
    }

    /// See [`super::activate_output`].
    pub(super) fn activate_output<K: ActFn>(
        zb: &mut [f64],
        hb: &mut [f64],
        rb: usize,
        net: Weights<'_>,
        out: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            return unsafe { activate_output_wide::<K>(zb, hb, rb, net, out) };
        }
        super::activate_output::<K>(zb, hb, rb, net, out)
    }

    /// See [`super::backprop_reduce`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backprop_reduce<K: ActFn>(
        zb: &[f64],
        hb: &[f64],
        dzb: &mut [f64],
        rb: usize,
        net: Weights<'_>,
        d_out: &[f64],
        g2: &mut [f64],
        gb: Option<&mut [f64]>,
        first: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            return unsafe {
                backprop_reduce_wide::<K>(zb, hb, dzb, rb, net, d_out, g2, gb, first)
            };
        }
        super::backprop_reduce::<K, Portable>(zb, hb, dzb, rb, net, d_out, g2, gb, first)
    }

    #[cfg(all(test, target_arch = "x86_64"))]
    #[test]
    fn avx512_reductions_give_the_portable_bits() {
        if !has_avx512() {
            return;
        }
        let mut r = crate::rng::stream(3, "reduce");
        for len in 0..70 {
            let a = crate::rng::normal_vec(&mut r, len, 1.0);
            let b = crate::rng::normal_vec(&mut r, len + 3, 1.0);
            assert_eq!(
                Avx512::dot(&a, &b).to_bits(),
                Portable::dot(&a, &b).to_bits()
            );
            assert_eq!(Avx512::sum(&a).to_bits(), Portable::sum(&a).to_bits());
        }
    }
}

/// Buffers of a whole batch, cut into lanes.
pub(crate) struct Batch<'a> {
    pub z: &'a mut [f64],
    pub h: &'a mut [f64],
    pub dz: &'a mut [f64],
    pub out: &'a mut [f64],
    pub d_out: &'a mut [f64],
    /// lanes × P partial gradients (unused when there is one lane).
    pub partials: &'a mut [f64],
    /// Per-lane Σ r².
    pub lane_sq: &'a mut [f64],
}

/// Run `pass` over the whole batch; writes the gradient into `grad` (backward passes; pass
/// an empty slice for a forward pass) and returns Σ_i r_i² (½-MSE pass) or 0. Bitwise
/// identical for every `par`. With several lanes, `bufs.partials` holds lanes × P values.
pub(crate) fn run_batch<K: ActFn>(
    geo: &RowBlocks,
    net: Weights<'_>,
    x: MatRef<'_, f64>,
    pass: Pass<'_>,
    bufs: Batch<'_>,
    grad: &mut [f64],
    par: Par,
) -> f64 {
    if geo.lanes == 1 {
        let lane = Lane {
            r0: 0,
            z: bufs.z,
            h: bufs.h,
            dz: bufs.dz,
            out: bufs.out,
            d_out: bufs.d_out,
            grad,
        };
        return run_lane::<K>(geo, net, x, pass, lane);
    }
    let (lr, m) = (geo.lane_rows(), geo.m);
    let p = bufs.partials.len() / geo.lanes;
    let work = |(l, ((((z, h), dz), (out, d_out)), (g, sq))): LaneItem<'_>| {
        let lane = Lane {
            r0: l * lr,
            z,
            h,
            dz,
            out,
            d_out,
            grad: g,
        };
        *sq = run_lane::<K>(geo, net, x, pass, lane);
    };
    let partials = &mut bufs.partials[..geo.lanes * p];
    if geo.parallel(par) {
        use rayon::prelude::*;
        bufs.z
            .par_chunks_mut(lr * m)
            .zip(bufs.h.par_chunks_mut(lr * m))
            .zip(bufs.dz.par_chunks_mut(lr * m))
            .zip(
                bufs.out
                    .par_chunks_mut(lr)
                    .zip(bufs.d_out.par_chunks_mut(lr)),
            )
            .zip(partials.par_chunks_mut(p).zip(bufs.lane_sq.par_iter_mut()))
            .enumerate()
            .for_each(work);
    } else {
        bufs.z
            .chunks_mut(lr * m)
            .zip(bufs.h.chunks_mut(lr * m))
            .zip(bufs.dz.chunks_mut(lr * m))
            .zip(bufs.out.chunks_mut(lr).zip(bufs.d_out.chunks_mut(lr)))
            .zip(partials.chunks_mut(p).zip(bufs.lane_sq.iter_mut()))
            .enumerate()
            .for_each(work);
    }
    if !matches!(pass, Pass::Forward) {
        let (first, rest) = partials.split_at(p);
        grad.copy_from_slice(first);
        for part in rest.chunks_exact(p) {
            for (g, v) in grad.iter_mut().zip(part) {
                *g += v;
            }
        }
    }
    bufs.lane_sq.iter().sum()
}

type LaneItem<'a> = (
    usize,
    (
        (
            ((&'a mut [f64], &'a mut [f64]), &'a mut [f64]),
            (&'a mut [f64], &'a mut [f64]),
        ),
        (&'a mut [f64], &'a mut f64),
    ),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_depends_only_on_shape_and_covers_the_batch() {
        for &(n, m) in &[
            (1, 1),
            (7, 3),
            (256, 64),
            (2048, 512),
            (1000, 37),
            (5000, 2),
        ] {
            let g = RowBlocks::new(n, m);
            assert!(g.rows >= 1 && g.rows <= MAX_BLOCK_ROWS.max(n));
            assert!(g.blocks * g.rows >= n && (g.blocks - 1) * g.rows < n);
            assert!(g.lanes <= MAX_LANES && g.lanes * g.lane_blocks >= g.blocks);
            assert!((g.lanes - 1) * g.lane_rows() < n, "{g:?}: an empty lane");
        }
        assert_eq!(RowBlocks::new(256, 64).lanes, 1);
        let med = RowBlocks::new(2048, 512);
        assert_eq!((med.rows, med.lanes), (64, 8));
    }
}
