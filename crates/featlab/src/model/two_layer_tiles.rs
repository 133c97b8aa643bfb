//! Register-tiled kernels of the scalar-output two-layer net (one lane of
//! [`super::two_layer_rows`]): the first-layer GEMM with the elementwise work in its
//! epilogue.
//!
//! Rows are processed in tiles of [`TILE_ROWS`] = 32 samples (four 8-lane vectors, one
//! sample per lane). For a tile, Z = m₁ X W₁ᵀ + b₁ is computed [`NR`] = 6 columns at a
//! time in 24 registers (K = d, W₁ packed once per call into column groups of 6,
//! `panel[j₀·d + k·nr + jj] = W₁[j₀ + jj, k]`), and from the registers:
//!
//! ```text
//! h = σ(z),  f += a_j h                 (f: 4 registers, summed over j in order)
//! z stored (in the dZ buffer in the fused pass: it is overwritten there by dZ)
//! ```
//!
//! then, once the tile's f is complete, `f ← m₂ f`, `r = f − y`, `dF = r/n`, Σ r² (8 lane
//! partial sums), and one pass over the tile's z (in L1 at the small size):
//!
//! ```text
//! ∂a_j += dF ⊙ σ(z)        dZ = (dF · m₂a_j) ⊙ σ'(z)        ∂b_j += dZ
//! ```
//!
//! with ∂a and ∂b kept as 8 partial sums per column (lane l sums the rows i ≡ l mod 8 of
//! the lane, in order), folded pairwise at the end of the lane and ∂a multiplied by m₂.
//! ∂W₁ += m₁ dZ_bᵀ X_b is then one faer GEMM per row block. H is never written in the
//! fused pass and the elementwise work reads Z once, from L1.
//!
//! Everything is written once over [`V8`] and compiled for AVX-512, for AVX2 + FMA and
//! portably; all three give the same bits (one IEEE rounding per operation, the same
//! operations in the same order; tested).

// The register tiles are indexed [vector][column] with explicit ranges on purpose: LLVM
// unrolls them into named registers.
#![allow(clippy::needless_range_loop)]

use super::activation::ActFn;
#[cfg(target_arch = "x86_64")]
use super::simd8::Avx512;
use super::simd8::{Lanes, V8};
use super::two_layer_rows::{fold, Lane, Pass, RowBlocks, Weights};
use faer::linalg::matmul::matmul as gemm;
use faer::{Accum, MatMut, MatRef, Par};

/// Row vectors per tile.
const MV: usize = 4;
/// Rows per tile (one per vector lane).
pub(crate) const TILE_ROWS: usize = 8 * MV;
/// Columns per register tile.
pub(crate) const NR: usize = 6;

/// Length of one lane's scratch: ∂a and ∂b partial sums (8 per column) and room for a
/// block of X packed column-major (used when X's rows are not contiguous).
pub(crate) fn lane_scratch_len(geo: &RowBlocks, d: usize) -> usize {
    16 * geo.m + geo.rows * d
}

/// Pack W₁ (given as W₁ᵀ, d × m) into column groups of [`NR`]:
/// `panel[j₀·d + k·nr + jj] = W₁[j₀ + jj, k]`, nr = min(NR, m − j₀).
pub(crate) fn pack_w1(w1t: MatRef<'_, f64>, panel: &mut [f64]) {
    let (d, m) = (w1t.nrows(), w1t.ncols());
    assert!(panel.len() >= m * d, "pack_w1: panel too short");
    let (rs, cs) = (w1t.row_stride(), w1t.col_stride());
    let mut j0 = 0;
    while j0 < m {
        let nr = NR.min(m - j0);
        let group = &mut panel[j0 * d..(j0 + nr) * d];
        for jj in 0..nr {
            for k in 0..d {
                // SAFETY: k < d and j0 + jj < m are inside w1t.
                group[k * nr + jj] = unsafe {
                    *w1t.as_ptr()
                        .offset(k as isize * rs + (j0 + jj) as isize * cs)
                };
            }
        }
        j0 += nr;
    }
}

/// Which compiled version of the kernels runs. All give the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// AVX-512F/DQ intrinsics.
    Avx512,
    /// The portable code compiled with AVX2 and FMA.
    Fma,
    /// The portable code (`f64::mul_add` may be a library call).
    Plain,
}

impl Tier {
    /// The best tier this CPU supports (detected once).
    pub fn detect() -> Tier {
        #[cfg(target_arch = "x86_64")]
        {
            static DETECTED: std::sync::OnceLock<Tier> = std::sync::OnceLock::new();
            *DETECTED.get_or_init(|| {
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512dq")
                {
                    Tier::Avx512
                } else if std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                {
                    Tier::Fma
                } else {
                    Tier::Plain
                }
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Tier::Plain
        }
    }

    /// Whether this CPU can run the tier.
    pub fn available(self) -> bool {
        match (self, Tier::detect()) {
            (Tier::Plain, _) => true,
            (Tier::Fma, t) => t != Tier::Plain,
            (Tier::Avx512, t) => t == Tier::Avx512,
        }
    }
}

/// Everything one lane needs.
pub(crate) struct LaneJob<'a> {
    pub geo: &'a RowBlocks,
    pub net: Weights<'a>,
    /// W₁ packed by [`pack_w1`].
    pub panel: &'a [f64],
    pub x: MatRef<'a, f64>,
    pub pass: Pass<'a>,
    pub lane: Lane<'a>,
    /// [`lane_scratch_len`] values.
    pub scratch: &'a mut [f64],
}

/// Run one lane with the kernels of `tier` (which must be [`Tier::available`]); returns
/// the lane's Σ r² (½-MSE pass) or 0.
pub(crate) fn run_lane<K: ActFn>(tier: Tier, job: LaneJob<'_>) -> f64 {
    assert!(tier.available(), "two_layer_tiles: {tier:?} not supported");
    match tier {
        // SAFETY: the CPU supports the tier's features (asserted above).
        #[cfg(target_arch = "x86_64")]
        Tier::Avx512 => unsafe { lane_avx512::<K>(job) },
        #[cfg(target_arch = "x86_64")]
        Tier::Fma => unsafe { lane_fma::<K>(job) },
        // SAFETY: `Lanes` needs no CPU feature.
        _ => unsafe { lane_body::<Lanes, K>(job) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn lane_avx512<K: ActFn>(job: LaneJob<'_>) -> f64 {
    lane_body::<Avx512, K>(job)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lane_fma<K: ActFn>(job: LaneJob<'_>) -> f64 {
    lane_body::<Lanes, K>(job)
}

/// Pointers of one row block shared by its tiles.
#[derive(Clone, Copy)]
struct BlockPtrs {
    /// X_b column-major: element (i, k) at `x + i + k·xcs`.
    x: *const f64,
    xcs: isize,
    /// Where z is written (forward) / read (backward); (i, j) at `z + i + j·ld`.
    z: *mut f64,
    /// H (forward pass only).
    h: Option<*mut f64>,
    /// dZ (backward).
    dz: *mut f64,
    ld: usize,
    /// f, dF and y of the block's rows.
    out: *mut f64,
    d_out: *mut f64,
    y: Option<*const f64>,
    /// ∂a, ∂b partial sums (8 per column).
    acc_a: *mut f64,
    acc_b: Option<*mut f64>,
}

#[inline(always)]
unsafe fn lane_body<V: V8, K: ActFn>(job: LaneJob<'_>) -> f64 {
    let LaneJob {
        geo,
        net,
        panel,
        x,
        pass,
        lane,
        scratch,
    } = job;
    let (m, d) = (geo.m, x.ncols());
    let rows_in_lane = lane.out.len();
    let (forward, backward) = match pass {
        Pass::Forward => (true, false),
        Pass::Backward => (false, true),
        Pass::MseValueAndGrad { .. } => (true, true),
    };
    let (acc_a, rest) = scratch.split_at_mut(8 * m);
    let (acc_b, xpack) = rest.split_at_mut(8 * m);
    if backward {
        acc_a.fill(0.0);
        acc_b.fill(0.0);
    }
    let (g1, g_rest) = if backward {
        lane.grad.split_at_mut(m * d)
    } else {
        (&mut [][..], &mut [][..])
    };
    let inv_n = 1.0 / geo.n as f64;
    let mut sq = V::zero();
    let mut local = 0;
    let mut first = true;
    while local < rows_in_lane {
        let rb = geo.rows.min(rows_in_lane - local);
        let r0 = lane.r0 + local;
        let span = local * m..(local + rb) * m;
        let xb = x.subrows(r0, rb);
        let (xp, xcs) = if forward && xb.row_stride() != 1 {
            for k in 0..d {
                for i in 0..rb {
                    xpack[k * rb + i] = xb[(i, k)];
                }
            }
            (xpack.as_ptr(), rb as isize)
        } else {
            (xb.as_ptr(), xb.col_stride())
        };
        let dz = lane.dz[span.clone()].as_mut_ptr();
        let ptrs = BlockPtrs {
            x: xp,
            xcs,
            z: match pass {
                Pass::MseValueAndGrad { .. } => dz,
                _ => lane.z[span.clone()].as_mut_ptr(),
            },
            h: match pass {
                Pass::Forward => Some(lane.h[span.clone()].as_mut_ptr()),
                _ => None,
            },
            dz,
            ld: rb,
            out: lane.out[local..].as_mut_ptr(),
            d_out: lane.d_out[local..].as_mut_ptr(),
            y: match pass {
                Pass::MseValueAndGrad { y } => Some(y[r0..r0 + rb].as_ptr()),
                _ => None,
            },
            acc_a: acc_a.as_mut_ptr(),
            acc_b: net.bias.map(|_| acc_b.as_mut_ptr()),
        };
        let mut i0 = 0;
        while i0 < rb {
            let rows = TILE_ROWS.min(rb - i0);
            let cnt: [usize; MV] = std::array::from_fn(|v| rows.saturating_sub(8 * v).min(8));
            if rows == TILE_ROWS {
                row_tile::<V, K, true>(&ptrs, i0, cnt, d, m, panel, net, pass, inv_n, &mut sq);
            } else {
                row_tile::<V, K, false>(&ptrs, i0, cnt, d, m, panel, net, pass, inv_n, &mut sq);
            }
            i0 += rows;
        }
        if backward {
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
    if backward {
        let (gb, g2) = match net.bias {
            Some(_) => {
                let (gb, g2) = g_rest.split_at_mut(m);
                (Some(gb), g2)
            }
            None => (None, g_rest),
        };
        for (g, s) in g2.iter_mut().zip(acc_a.as_chunks::<8>().0) {
            *g = net.mult2 * fold(*s);
        }
        if let Some(gb) = gb {
            for (g, s) in gb.iter_mut().zip(acc_b.as_chunks::<8>().0) {
                *g = fold(*s);
            }
        }
    }
    match pass {
        Pass::MseValueAndGrad { .. } => fold(sq.to_array()),
        _ => 0.0,
    }
}

/// One tile of rows [i0, i0 + Σcnt) of the block: forward (Z, f), loss rows, backward
/// (∂a, ∂b partial sums and dZ) as `pass` asks. `FULL`: all 32 rows present.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn row_tile<V: V8, K: ActFn, const FULL: bool>(
    p: &BlockPtrs,
    i0: usize,
    cnt: [usize; MV],
    d: usize,
    m: usize,
    panel: &[f64],
    net: Weights<'_>,
    pass: Pass<'_>,
    inv_n: f64,
    sq: &mut V,
) {
    let mut df = [V::zero(); MV];
    let forward = !matches!(pass, Pass::Backward);
    let backward = !matches!(pass, Pass::Forward);
    if forward {
        let mut f = [V::zero(); MV];
        let x = p.x.add(i0);
        let z = p.z.add(i0);
        let h = p.h.map(|h| h.add(i0));
        let groups = m / NR;
        for g in 0..groups {
            let j0 = g * NR;
            forward_tile::<V, K, NR, FULL>(x, p.xcs, cnt, d, panel, j0, net, &mut f, z, p.ld, h);
        }
        let j0 = groups * NR;
        match m - j0 {
            1 => {
                forward_tile::<V, K, 1, FULL>(x, p.xcs, cnt, d, panel, j0, net, &mut f, z, p.ld, h)
            }
            2 => {
                forward_tile::<V, K, 2, FULL>(x, p.xcs, cnt, d, panel, j0, net, &mut f, z, p.ld, h)
            }
            3 => {
                forward_tile::<V, K, 3, FULL>(x, p.xcs, cnt, d, panel, j0, net, &mut f, z, p.ld, h)
            }
            4 => {
                forward_tile::<V, K, 4, FULL>(x, p.xcs, cnt, d, panel, j0, net, &mut f, z, p.ld, h)
            }
            5 => {
                forward_tile::<V, K, 5, FULL>(x, p.xcs, cnt, d, panel, j0, net, &mut f, z, p.ld, h)
            }
            _ => {}
        }
        let m2 = V::splat(net.mult2);
        let inv_n = V::splat(inv_n);
        for v in 0..MV {
            let o = V::mul(f[v], m2);
            let at = i0 + 8 * v;
            store::<V, FULL>(o, p.out.add(at), cnt[v]);
            if let Some(y) = p.y {
                let mut r = V::sub(o, load::<V, FULL>(y.add(at), cnt[v]));
                if !FULL {
                    r = r.keep_n(cnt[v]);
                }
                df[v] = V::mul(r, inv_n);
                store::<V, FULL>(df[v], p.d_out.add(at), cnt[v]);
                *sq = V::fma(r, r, *sq);
            }
        }
    }
    if backward {
        if p.y.is_none() {
            for v in 0..MV {
                df[v] = load::<V, FULL>(p.d_out.add(i0 + 8 * v), cnt[v]);
            }
        }
        backward_tile::<V, K, FULL>(p, i0, cnt, m, net, df);
    }
}

#[inline(always)]
unsafe fn load<V: V8, const FULL: bool>(p: *const f64, n: usize) -> V {
    if FULL {
        V::load(p)
    } else {
        V::load_n(p, n)
    }
}

#[inline(always)]
unsafe fn store<V: V8, const FULL: bool>(v: V, p: *mut f64, n: usize) {
    if FULL {
        v.store(p)
    } else {
        v.store_n(p, n)
    }
}

/// Columns [j0, j0 + NRC) of a row tile: the register-blocked GEMM (K = d, FMA in k
/// order from 0), then `z = m₁·acc (+ b_j)` (one FMA with a bias), `h = σ(z)`,
/// `f += h·a_j` (FMA, j in order); z (and h) stored.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn forward_tile<V: V8, K: ActFn, const NRC: usize, const FULL: bool>(
    x: *const f64,
    xcs: isize,
    cnt: [usize; MV],
    d: usize,
    panel: &[f64],
    j0: usize,
    net: Weights<'_>,
    f: &mut [V; MV],
    z: *mut f64,
    ld: usize,
    h: Option<*mut f64>,
) {
    let mut acc = [[V::zero(); NRC]; MV];
    let w = panel.as_ptr().add(j0 * d);
    for k in 0..d {
        let xk = x.offset(k as isize * xcs);
        let xv: [V; MV] = std::array::from_fn(|v| load::<V, FULL>(xk.add(8 * v), cnt[v]));
        let wk = w.add(k * NRC);
        for jj in 0..NRC {
            let wj = V::splat(*wk.add(jj));
            for v in 0..MV {
                acc[v][jj] = V::fma(xv[v], wj, acc[v][jj]);
            }
        }
    }
    // The epilogue's loops may stay rolled (indexing the tile at run time); if they read
    // `acc` itself, LLVM keeps `acc` in memory and stores every accumulator after each
    // FMA of the k loop (seen with σ = z², 2× slower). Volatile copies keep the k loop's
    // accumulators in registers whatever the unrolling decisions.
    let mut tile = [[V::zero(); NRC]; MV];
    for v in 0..MV {
        for jj in 0..NRC {
            std::ptr::write_volatile(&mut tile[v][jj], acc[v][jj]);
        }
    }
    let m1 = V::splat(net.mult1);
    for jj in 0..NRC {
        let j = j0 + jj;
        let aj = V::splat(*net.a.get_unchecked(j));
        let bj = net.bias.map(|b| V::splat(*b.get_unchecked(j)));
        for v in 0..MV {
            let zv = match bj {
                Some(b) => V::fma(tile[v][jj], m1, b),
                None => V::mul(tile[v][jj], m1),
            };
            let hv = K::vf(zv);
            f[v] = V::fma(hv, aj, f[v]);
            let at = j * ld + 8 * v;
            store::<V, FULL>(zv, z.add(at), cnt[v]);
            if let Some(h) = h {
                store::<V, FULL>(hv, h.add(at), cnt[v]);
            }
        }
    }
}

/// The backward pass over one row tile's z (all m columns): ∂a_j partial sums
/// `+= dF·σ(z)` (FMA), `dZ = (dF·(m₂a_j)) ⊙ σ'(z)`, ∂b_j partial sums `+= dZ`.
#[inline(always)]
unsafe fn backward_tile<V: V8, K: ActFn, const FULL: bool>(
    p: &BlockPtrs,
    i0: usize,
    cnt: [usize; MV],
    m: usize,
    net: Weights<'_>,
    df: [V; MV],
) {
    let z = p.z.add(i0);
    let dz = p.dz.add(i0);
    for j in 0..m {
        let wj = V::splat(net.mult2 * *net.a.get_unchecked(j));
        let pa = p.acc_a.add(8 * j);
        let mut sa = V::load(pa);
        let mut sb = p.acc_b.map(|b| V::load(b.add(8 * j)));
        for v in 0..MV {
            let at = j * p.ld + 8 * v;
            let zv = load::<V, FULL>(z.add(at), cnt[v]);
            sa = V::fma(df[v], K::vf(zv), sa);
            let dzv = K::vdz(V::mul(df[v], wj), zv);
            store::<V, FULL>(dzv, dz.add(at), cnt[v]);
            if let Some(s) = sb.as_mut() {
                *s = V::add(*s, dzv);
            }
        }
        sa.store(pa);
        if let (Some(s), Some(b)) = (sb, p.acc_b) {
            s.store(b.add(8 * j));
        }
    }
}
