//! Row-blocked forward and backward passes of the scalar-output two-layer net
//! `f(x) = m₂ Σ_j a_j σ(m₁ w_j·x + b_j)` (c = 1), fused with the ½-MSE loss.
//!
//! The batch is cut into row blocks of `R` samples (R·m ≈ 32k values, so a block's
//! pre-activations and back-propagated signals stay in L2). For block b with rows X_b
//! (R × d), 32 rows at a time (the register-tiled kernels of [`super::two_layer_tiles`]):
//!
//! ```text
//! Z = m₁ X W₁ᵀ + 1 b₁ᵀ                  register-tiled GEMM (K = d), then from registers:
//! H = σ(Z),  f = m₂ H a                 (H not stored in the fused pass)
//! r = f − y, L += Σ r², dF = r/n        (loss rows, ½-MSE)
//! ∂a += m₂ Hᵀ dF,  dZ = (dF ⊗ m₂a) ⊙ σ'(Z),  ∂b₁ += 1ᵀ dZ
//!                                       one pass over the tile's Z (8 fixed partial sums)
//! ```
//!
//! and per block ∂W₁ += m₁ dZ_bᵀ X_b, one faer GEMM (m×R · R×d) accumulated in place.
//!
//! Consecutive blocks are grouped into at most 8 *lanes*; a lane accumulates its blocks'
//! gradients in order and the lanes' partial gradients are summed in lane order. The
//! grouping depends only on (n, m), never on the thread count, so the result is bitwise the
//! same on 1 or many threads; lanes are what runs in parallel.

use super::activation::ActFn;
use super::two_layer_tiles::{lane_scratch_len, pack_w1, run_lane, LaneJob, Tier};
use crate::spin_join::SpinJoinSlot;
use faer::{MatRef, Par};

/// Target number of values R·m in one block's buffer (256 KB of f64).
const BLOCK_VALUES: usize = 1 << 15;
/// Bounds on the rows per block.
const MIN_BLOCK_ROWS: usize = 16;
const MAX_BLOCK_ROWS: usize = 256;
/// Most lanes (independent partial gradients) a batch is split into.
const MAX_LANES: usize = 8;
/// Minimum n·m before lanes run on several threads, and before a batch that fits one
/// block is cut into two lanes anyway (so that two threads can share it).
const PAR_MIN_VALUES: usize = 1 << 13;
/// Minimum n·m before lanes run on rayon's pool (below it, on a [`SpinJoin`](crate::spin_join::SpinJoin)).
const RAYON_MIN_VALUES: usize = 1 << 17;
/// Rows of the register tiles: a batch split in two is cut at a multiple of this.
const SPLIT_ALIGN: usize = super::two_layer_tiles::TILE_ROWS;

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
        let mut rows = (BLOCK_VALUES / m.max(1))
            .clamp(MIN_BLOCK_ROWS, MAX_BLOCK_ROWS)
            .min(n.max(1));
        // A batch that fits one block but is big enough to share: two blocks (two lanes)
        // cut at a tile boundary, whatever the thread count (the partial gradients are
        // summed in lane order, so 1 and 2 threads give the same bits).
        if rows >= n && n * m >= PAR_MIN_VALUES && n > SPLIT_ALIGN {
            rows = n.div_ceil(2).next_multiple_of(SPLIT_ALIGN).min(n);
        }
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

    /// Which threads run the lanes under `par`: none but the caller for one thread, one
    /// lane or n·m < [`PAR_MIN_VALUES`]; rayon's pool from n·m ≥ [`RAYON_MIN_VALUES`]; a
    /// spinning helper ([`SpinJoin`](crate::spin_join::SpinJoin)) in between, where a pass takes microseconds.
    pub fn threads(&self, par: Par) -> LaneThreads {
        let values = self.n * self.m;
        if !matches!(par, Par::Rayon(t) if t.get() > 1) || self.lanes < 2 || values < PAR_MIN_VALUES
        {
            LaneThreads::Caller
        } else if values < RAYON_MIN_VALUES {
            LaneThreads::SpinJoin
        } else {
            LaneThreads::Rayon
        }
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

/// The 8 partial sums of a column reduction folded pairwise:
/// ((s₀+s₁)+(s₂+s₃)) + ((s₄+s₅)+(s₆+s₇)).
#[inline(always)]
pub(crate) fn fold(s: [f64; 8]) -> f64 {
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
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
    /// lanes × [`lane_scratch_len`] values.
    pub scratch: &'a mut [f64],
    /// m·d values: W₁ packed for the tiled kernels.
    pub panel: &'a mut [f64],
    /// The workspace's spinning helper (started on the first pass that uses it).
    pub spin: &'a mut SpinJoinSlot,
}

/// Run `pass` over the whole batch with the kernels of `tier` (all tiers give the same
/// bits); writes the gradient into `grad` (backward passes; pass an empty slice for a
/// forward pass) and returns Σ_i r_i² (½-MSE pass) or 0. Bitwise identical for every
/// `par`. With several lanes, `bufs.partials` holds lanes × P values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_batch_on<K: ActFn>(
    tier: Tier,
    geo: &RowBlocks,
    net: Weights<'_>,
    x: MatRef<'_, f64>,
    pass: Pass<'_>,
    bufs: Batch<'_>,
    grad: &mut [f64],
    par: Par,
) -> f64 {
    let (lr, m, d) = (geo.lane_rows(), geo.m, x.ncols());
    if !matches!(pass, Pass::Backward) {
        pack_w1(net.w1t, bufs.panel);
    }
    let panel = &*bufs.panel;
    let s = lane_scratch_len(geo, d);
    let job = |lane: Lane<'_>, scratch: &mut [f64]| {
        let job = LaneJob {
            geo,
            net,
            panel,
            x,
            pass,
            lane,
            scratch: &mut scratch[..s],
        };
        run_lane::<K>(tier, job)
    };
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
        return job(lane, bufs.scratch);
    }
    let p = bufs.partials.len() / geo.lanes;
    let work = |(l, ((((z, h), dz), (out, d_out)), ((g, sq), scratch))): LaneItem<'_>| {
        let lane = Lane {
            r0: l * lr,
            z,
            h,
            dz,
            out,
            d_out,
            grad: g,
        };
        *sq = job(lane, scratch);
    };
    let lanes = LaneBufs {
        z: &mut *bufs.z,
        h: &mut *bufs.h,
        dz: &mut *bufs.dz,
        out: &mut *bufs.out,
        d_out: &mut *bufs.d_out,
        partials: &mut bufs.partials[..geo.lanes * p],
        lane_sq: &mut *bufs.lane_sq,
        scratch: &mut *bufs.scratch,
    };
    let sizes = LaneSizes { rows: lr, m, p, s };
    match geo.threads(par) {
        LaneThreads::Rayon => lanes.par_for_each(sizes, work),
        LaneThreads::SpinJoin => match bufs.spin.get() {
            Some(spin) => {
                let half = geo.lanes.div_ceil(2);
                let (first, second) = lanes.split_at_lane(half, sizes);
                spin.join(
                    || first.for_each(0, sizes, work),
                    || second.for_each(half, sizes, work),
                );
            }
            None => lanes.for_each(0, sizes, work),
        },
        LaneThreads::Caller => lanes.for_each(0, sizes, work),
    }
    let partials = &bufs.partials[..geo.lanes * p];
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

/// Which threads run the lanes of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaneThreads {
    /// All lanes on the calling thread.
    Caller,
    /// Two halves of the lanes: the caller and a spinning helper ([`SpinJoin`](crate::spin_join::SpinJoin)), for
    /// batches whose pass takes a few microseconds (a sleeping rayon worker wakes too late).
    SpinJoin,
    /// rayon's pool (passes long enough to amortise a wake-up).
    Rayon,
}

/// Lengths of one lane's pieces of the batch buffers.
#[derive(Clone, Copy)]
struct LaneSizes {
    /// Rows per lane.
    rows: usize,
    m: usize,
    /// Parameters (one partial gradient).
    p: usize,
    /// Scratch values.
    s: usize,
}

/// The per-lane buffers of a run of consecutive lanes.
struct LaneBufs<'a> {
    z: &'a mut [f64],
    h: &'a mut [f64],
    dz: &'a mut [f64],
    out: &'a mut [f64],
    d_out: &'a mut [f64],
    partials: &'a mut [f64],
    lane_sq: &'a mut [f64],
    scratch: &'a mut [f64],
}

impl<'a> LaneBufs<'a> {
    /// Lanes [0, l) and [l, …) (all lanes before the last are full).
    fn split_at_lane(self, l: usize, k: LaneSizes) -> (LaneBufs<'a>, LaneBufs<'a>) {
        let values = l * k.rows * k.m;
        let (z0, z1) = self.z.split_at_mut(values);
        let (h0, h1) = self.h.split_at_mut(values);
        let (dz0, dz1) = self.dz.split_at_mut(values);
        let (o0, o1) = self.out.split_at_mut(l * k.rows);
        let (do0, do1) = self.d_out.split_at_mut(l * k.rows);
        let (p0, p1) = self.partials.split_at_mut(l * k.p);
        let (q0, q1) = self.lane_sq.split_at_mut(l);
        let (s0, s1) = self.scratch.split_at_mut(l * k.s);
        (
            LaneBufs {
                z: z0,
                h: h0,
                dz: dz0,
                out: o0,
                d_out: do0,
                partials: p0,
                lane_sq: q0,
                scratch: s0,
            },
            LaneBufs {
                z: z1,
                h: h1,
                dz: dz1,
                out: o1,
                d_out: do1,
                partials: p1,
                lane_sq: q1,
                scratch: s1,
            },
        )
    }

    /// Run `work` on every lane on rayon's pool (the same items as [`LaneBufs::for_each`]
    /// from lane 0).
    fn par_for_each(self, k: LaneSizes, work: impl Fn(LaneItem<'_>) + Sync + Send) {
        use rayon::prelude::*;
        let values = k.rows * k.m;
        self.z
            .par_chunks_mut(values)
            .zip(self.h.par_chunks_mut(values))
            .zip(self.dz.par_chunks_mut(values))
            .zip(
                self.out
                    .par_chunks_mut(k.rows)
                    .zip(self.d_out.par_chunks_mut(k.rows)),
            )
            .zip(
                self.partials
                    .par_chunks_mut(k.p)
                    .zip(self.lane_sq.par_iter_mut())
                    .zip(self.scratch.par_chunks_mut(k.s)),
            )
            .enumerate()
            .for_each(work);
    }

    /// Run `work` on each lane in order, the first being lane `first` of the batch.
    fn for_each(self, first: usize, k: LaneSizes, work: impl Fn(LaneItem<'_>)) {
        let values = k.rows * k.m;
        self.z
            .chunks_mut(values)
            .zip(self.h.chunks_mut(values))
            .zip(self.dz.chunks_mut(values))
            .zip(
                self.out
                    .chunks_mut(k.rows)
                    .zip(self.d_out.chunks_mut(k.rows)),
            )
            .zip(
                self.partials
                    .chunks_mut(k.p)
                    .zip(self.lane_sq.iter_mut())
                    .zip(self.scratch.chunks_mut(k.s)),
            )
            .enumerate()
            .for_each(|(i, item)| work((first + i, item)));
    }
}

type LaneItem<'a> = (
    usize,
    (
        (
            ((&'a mut [f64], &'a mut [f64]), &'a mut [f64]),
            (&'a mut [f64], &'a mut [f64]),
        ),
        ((&'a mut [f64], &'a mut f64), &'a mut [f64]),
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
        let small = RowBlocks::new(256, 64);
        assert_eq!((small.rows, small.lanes), (128, 2));
        assert_eq!(RowBlocks::new(64, 64).lanes, 1);
        let med = RowBlocks::new(2048, 512);
        assert_eq!((med.rows, med.lanes), (64, 8));
    }
}
