//! Exact per-layer AGOPs and pre-activation tangent kernels of a layered model, from
//! per-sample Jacobians, batched so memory stays O(batch · width + Σ_l width_l²).
//!
//! For `f(x) = h_L`, `h_l = m_l W_l x_l + b_l`, `x_{l+1} = σ(h_l)` (see
//! [`crate::model::layered`]) and samples x_1 … x_n:
//!
//! * pre-activation tangent features `P_l(x) = ∂f/∂h_l` (c × k_l) and kernel (PTK)
//!   `K_l = (1/n) Σ_i P_l(x_i)ᵀ P_l(x_i)` (Beaglehole, Mitliagkas & Agarwala 2024, §2);
//! * layer-input Jacobian `J_l(x) = ∂f/∂x_l = m_l P_l(x) W_l` (c × d_l) and AGOP
//!   `G_l = (1/n) Σ_i J_l(x_i)ᵀ J_l(x_i)` (Radhakrishnan et al. 2024), outputs summed;
//! * hence the chain-rule identity `G_l = m_l² W_lᵀ K_l W_l` (checked in tests).
//!
//! Gradient-centred option (the original NFA code's "centered AGOP"): `J_l(x_i)` and
//! `P_l(x_i)` are replaced by their deviations from the mean over samples (per output),
//! i.e. `G_l = (1/n) Σ_i J_iᵀJ_i − J̄ᵀJ̄`; the identity still holds with the centred K_l.
//!
//! Algorithm (one pass gives every layer). The samples are cut into blocks of b rows (a
//! grain that depends only on n and the `batch` option). For a block, the c output rows
//! are back-propagated together: `P_L` is the (b·c) × c matrix of seeds `e_o` (row
//! `o·b + i` = sample i, output o), and for l = L−1 … 1
//! `P_l = (m_{l+1} P_{l+1} W_{l+1}) ⊙ σ'(h_l)` (one GEMM of (b·c) × k_{l+1} × k_l, the
//! σ' row of sample i broadcast over the c outputs). The block adds `P_lᵀP_l` (the lower
//! triangle only, [`crate::linalg::gram_lower`]) to its K_l and the per-output column sums
//! of P_l to its centring sums. Blocks run in parallel and are reduced in a fixed binary
//! tree over block indices, so the result is bitwise identical for any thread count.
//! Finally `K_l ← K_l/n (− Σ_o p̄_o p̄_oᵀ)` and `G_l = m_l² W_lᵀ K_l W_l` (two small GEMMs
//! per layer): the d_l × d_l Gram `Σ_i J_iᵀJ_i` itself is never formed, which saves one
//! of the three large products per layer. Flops per sample: `2c Σ_{l<L} k_l k_{l+1}`
//! (back-propagation, minus the one-hot last layer) `+ c Σ_{l<L} k_l (k_l + 1)` (the
//! lower-triangular Grams). Memory: O(b·c·max k_l) per thread plus the K_l.

use crate::linalg::{gram_lower, matmul};
use crate::model::{Activation, LayerStack};
use crate::{Error, Result};
use faer::{Accum, Mat, MatRef, Par};

/// How to compute AGOPs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgopOptions {
    /// Samples per batch (memory bound: O(batch · max width) per layer).
    pub batch: usize,
    /// Subtract the mean Jacobian over samples (gradient covariance instead of second moment).
    pub center: bool,
    /// Parallelism of the GEMMs (results do not depend on it).
    pub par: Par,
}

impl Default for AgopOptions {
    fn default() -> Self {
        AgopOptions {
            batch: 512,
            center: false,
            par: Par::Seq,
        }
    }
}

/// AGOP G_l (d_l × d_l) and PTK K_l (k_l × k_l) of every layer, in layer order.
#[derive(Debug, Clone)]
pub struct LayerGradients {
    pub agop: Vec<Mat<f64>>,
    pub ptk: Vec<Mat<f64>>,
}

/// Forward pass keeping what the Jacobians need: layer inputs x_l (b × d_l, l = 1..L,
/// x_1 = x) and σ'(h_l) (b × k_l, l = 1..L−1).
pub struct ForwardCache {
    /// Layer inputs x_1 … x_L.
    pub inputs: Vec<Mat<f64>>,
    /// σ'(h_1) … σ'(h_{L−1}).
    pub dact: Vec<Mat<f64>>,
    /// Output f(x) (b × c).
    pub out: Mat<f64>,
}

/// Forward pass through layers `from..L` starting from the layer input `x` of layer
/// `from` (0-based), caching inputs and activation derivatives.
pub fn forward_from(
    stack: &LayerStack<'_>,
    from: usize,
    x: MatRef<'_, f64>,
    par: Par,
) -> ForwardCache {
    let depth = stack.depth();
    let b = x.nrows();
    let mut inputs = vec![x.to_owned()];
    let mut dact = Vec::new();
    let mut out = Mat::zeros(b, 0);
    for l in from..depth {
        let w = stack.weights[l];
        let mut h = Mat::zeros(b, w.nrows());
        matmul(
            h.as_mut(),
            Accum::Replace,
            inputs.last().unwrap().as_ref(),
            w.transpose(),
            stack.mults[l],
            par,
        );
        if let Some(bias) = stack.biases[l] {
            for (j, bj) in bias.iter().enumerate() {
                for v in h.col_as_slice_mut(j) {
                    *v += bj;
                }
            }
        }
        if l + 1 == depth {
            out = h;
        } else {
            let act = stack.activation;
            dact.push(Mat::from_fn(b, h.ncols(), |i, j| act.derivative(h[(i, j)])));
            inputs.push(Mat::from_fn(b, h.ncols(), |i, j| act.apply(h[(i, j)])));
        }
    }
    ForwardCache { inputs, dact, out }
}

/// Output of the network when the pre-activation of layer `l` (0-based) is `h` (b × k_l):
/// `f = h` for the last layer, else the forward pass from `x_{l+1} = σ(h)`.
pub fn forward_from_preactivation(
    stack: &LayerStack<'_>,
    l: usize,
    h: MatRef<'_, f64>,
    par: Par,
) -> Mat<f64> {
    if l + 1 == stack.depth() {
        return h.to_owned();
    }
    let act = stack.activation;
    let x = Mat::from_fn(h.nrows(), h.ncols(), |i, j| act.apply(h[(i, j)]));
    forward_from(stack, l + 1, x.as_ref(), par).out
}

/// Per-sample Jacobians of the output w.r.t. the input of layer `l` (0-based) at the
/// layer inputs `x_l` (b × d_l): returns `J[i]` (c × d_l) for each row i. Allocates
/// b·c·d_l numbers: meant for tests and small batches; [`layer_gradients`] accumulates
/// AGOPs without materialising them.
pub fn input_jacobians(stack: &LayerStack<'_>, l: usize, x: MatRef<'_, f64>) -> Vec<Mat<f64>> {
    let fc = forward_from(stack, l, x, Par::Seq);
    let c = fc.out.ncols();
    let b = x.nrows();
    let mut jac: Vec<Mat<f64>> = (0..b).map(|_| Mat::zeros(c, x.ncols())).collect();
    for o in 0..c {
        let mut p = Mat::from_fn(b, c, |_, j| if j == o { 1.0 } else { 0.0 });
        for k in (l..stack.depth()).rev() {
            let w = stack.weights[k];
            let mut jk = Mat::zeros(b, w.ncols());
            matmul(
                jk.as_mut(),
                Accum::Replace,
                p.as_ref(),
                w,
                stack.mults[k],
                Par::Seq,
            );
            if k == l {
                for (i, m) in jac.iter_mut().enumerate() {
                    for j in 0..x.ncols() {
                        m[(o, j)] = jk[(i, j)];
                    }
                }
            } else {
                let d = &fc.dact[k - l - 1];
                p = Mat::from_fn(b, w.ncols(), |i, j| jk[(i, j)] * d[(i, j)]);
            }
        }
    }
    jac
}

/// Samples per block when `n` is large: at most `batch` (the memory bound of the options),
/// and at most ⌈n / [`TARGET_BLOCKS`]⌉ so that two threads get balanced work, but at
/// least [`MIN_BLOCK_SAMPLES`] so that each block's GEMMs stay efficient. Depends only on
/// n and `batch`, never on the thread count.
pub fn sample_block(n: usize, batch: usize) -> usize {
    batch
        .min(n.div_ceil(TARGET_BLOCKS).max(MIN_BLOCK_SAMPLES))
        .max(1)
}

/// Blocks the samples are cut into when that keeps them at least [`MIN_BLOCK_SAMPLES`] long.
pub const TARGET_BLOCKS: usize = 8;
/// Fewest samples per block (unless `batch` or n is smaller).
pub const MIN_BLOCK_SAMPLES: usize = 64;

/// Flops of [`layer_gradients`] as counted in its module docs:
/// `n·c·(2 Σ_{l<L−1} k_l k_{l+1} + Σ_{l<L} k_l(k_l + 1)) + 2 Σ_l d_l k_l (k_l + d_l)`
/// (back-propagation GEMMs, lower-triangular Grams, and the final `W_lᵀK_lW_l`; layers
/// 1-based here, k_l the output width of layer l, d_l its input width).
pub fn layer_gradients_flops(stack: &LayerStack<'_>, n: usize) -> f64 {
    let depth = stack.depth();
    let c = stack.fan_out(depth - 1) as f64;
    let n = n as f64;
    let mut f = 0.0;
    for l in 0..depth {
        let (k, d) = (stack.fan_out(l) as f64, stack.fan_in(l) as f64);
        if l + 1 < depth {
            // K_l Gram (lower triangle) and P_l = (P_{l+1} W_{l+1}) ⊙ σ'
            f += n * c * k * (k + 1.0);
            if l + 2 < depth {
                f += 2.0 * n * c * k * stack.fan_out(l + 1) as f64;
            }
        }
        // K_l W_l (k × k × d) and W_lᵀ (K_l W_l) (d × k × d)
        f += 2.0 * k * k * d + 2.0 * d * k * d;
    }
    f
}

/// What one block of samples contributes: the lower triangles of `Σ P_lᵀP_l` and, per
/// output o, `Σ_i P_l[o·b + i, :]` (c × k_l), for every layer.
struct Partial {
    ptk: Vec<Mat<f64>>,
    psum: Vec<Mat<f64>>,
}

impl Partial {
    /// `self += other` (same shapes), lower triangles and sums.
    fn add(&mut self, other: &Partial) {
        for (a, b) in self.ptk.iter_mut().zip(&other.ptk) {
            for j in 0..a.ncols() {
                for (x, y) in a.col_as_slice_mut(j)[j..]
                    .iter_mut()
                    .zip(&b.col_as_slice(j)[j..])
                {
                    *x += y;
                }
            }
        }
        for (a, b) in self.psum.iter_mut().zip(&other.psum) {
            for j in 0..a.ncols() {
                for (x, y) in a.col_as_slice_mut(j).iter_mut().zip(b.col_as_slice(j)) {
                    *x += y;
                }
            }
        }
    }
}

/// The contribution of the samples `xb` (b × d) (see module docs).
fn block_partial(stack: &LayerStack<'_>, xb: MatRef<'_, f64>, center: bool) -> Partial {
    let depth = stack.depth();
    let b = xb.nrows();
    let c = stack.fan_out(depth - 1);
    let bc = b * c;
    let fc = forward_from(stack, 0, xb, Par::Seq);
    let mut ptk: Vec<Mat<f64>> = Vec::with_capacity(depth);
    let mut psum: Vec<Mat<f64>> = Vec::with_capacity(depth);
    // last layer: P_L = stacked one-hot seeds, Σ P_LᵀP_L = b·I, per-output sums b·e_o
    ptk.push(Mat::from_fn(
        c,
        c,
        |i, j| if i == j { b as f64 } else { 0.0 },
    ));
    psum.push(Mat::from_fn(
        c,
        c,
        |i, j| if i == j { b as f64 } else { 0.0 },
    ));
    let linear = stack.activation == Activation::Linear;
    let mut p = Mat::<f64>::zeros(0, 0);
    for l in (0..depth - 1).rev() {
        let k = stack.fan_out(l);
        let w = stack.weights[l + 1];
        let m = stack.mults[l + 1];
        // Q = m_{l+1} P_{l+1} W_{l+1} (bc × k)
        let mut q = Mat::<f64>::zeros(bc, k);
        if l + 2 == depth {
            // P_L one-hot: row o·b + i of Q is m_L W_L[o, :] (what the GEMM gives, exactly)
            for j in 0..k {
                let col = q.col_as_slice_mut(j);
                for o in 0..c {
                    let v = m * w[(o, j)];
                    col[o * b..(o + 1) * b].fill(v);
                }
            }
        } else {
            matmul(q.as_mut(), Accum::Replace, p.as_ref(), w, m, Par::Seq);
        }
        if !linear {
            let d = &fc.dact[l];
            for j in 0..k {
                let dc = d.col_as_slice(j);
                for seg in q.col_as_slice_mut(j).chunks_exact_mut(b) {
                    for (v, dv) in seg.iter_mut().zip(dc) {
                        *v *= dv;
                    }
                }
            }
        }
        let mut kl = Mat::<f64>::zeros(k, k);
        gram_lower(kl.as_mut(), q.as_ref(), 1.0);
        let mut s = Mat::<f64>::zeros(c, k);
        if center {
            for j in 0..k {
                for (o, seg) in q.col_as_slice(j).chunks_exact(b).enumerate() {
                    s[(o, j)] = seg.iter().sum::<f64>();
                }
            }
        }
        ptk.push(kl);
        psum.push(s);
        p = q;
    }
    ptk.reverse();
    psum.reverse();
    Partial { ptk, psum }
}

/// Sum of the blocks `lo..hi` (of `block` samples each, the last one shorter) in a fixed
/// binary tree: halves computed with `rayon::join` when `threads`, else in turn.
fn tree_sum(
    stack: &LayerStack<'_>,
    x: MatRef<'_, f64>,
    block: usize,
    (lo, hi): (usize, usize),
    center: bool,
    threads: bool,
) -> Partial {
    if hi - lo == 1 {
        let start = lo * block;
        let b = block.min(x.nrows() - start);
        return block_partial(stack, x.subrows(start, b), center);
    }
    let mid = lo + (hi - lo) / 2;
    let (mut left, right) = if threads {
        rayon::join(
            || tree_sum(stack, x, block, (lo, mid), center, threads),
            || tree_sum(stack, x, block, (mid, hi), center, threads),
        )
    } else {
        (
            tree_sum(stack, x, block, (lo, mid), center, threads),
            tree_sum(stack, x, block, (mid, hi), center, threads),
        )
    };
    left.add(&right);
    left
}

/// AGOP and PTK of every layer over the samples `x` (n × d), blocked over samples and
/// parallel over blocks (see module docs; bitwise identical for any `opts.par`).
pub fn layer_gradients(
    stack: &LayerStack<'_>,
    x: MatRef<'_, f64>,
    opts: &AgopOptions,
) -> Result<LayerGradients> {
    let depth = stack.depth();
    let n = x.nrows();
    if n == 0 {
        return Err(Error::Shape("AGOP of an empty dataset".into()));
    }
    if opts.batch == 0 {
        return Err(Error::config("nfa.batch", "must be ≥ 1"));
    }
    if x.ncols() != stack.fan_in(0) {
        return Err(Error::Shape(format!(
            "AGOP: inputs have {} columns, the model expects {}",
            x.ncols(),
            stack.fan_in(0)
        )));
    }
    let block = sample_block(n, opts.batch);
    let nblocks = n.div_ceil(block);
    let threads = matches!(opts.par, Par::Rayon(t) if t.get() > 1) && nblocks > 1;
    let total = tree_sum(stack, x, block, (0, nblocks), opts.center, threads);
    let inv_n = 1.0 / n as f64;
    let mut ptk = total.ptk;
    let mut agop = Vec::with_capacity(depth);
    for (l, (k, s)) in ptk.iter_mut().zip(&total.psum).enumerate() {
        let kk = k.nrows();
        for j in 0..kk {
            for i in j..kk {
                let mut v = k[(i, j)] * inv_n;
                if opts.center {
                    for o in 0..s.nrows() {
                        v -= s[(o, i)] * inv_n * s[(o, j)] * inv_n;
                    }
                }
                k[(i, j)] = v;
                k[(j, i)] = v;
            }
        }
        // G_l = m_l² W_lᵀ K_l W_l
        let w = stack.weights[l];
        let m2 = stack.mults[l] * stack.mults[l];
        let mut kw = Mat::<f64>::zeros(kk, w.ncols());
        matmul(kw.as_mut(), Accum::Replace, k.as_ref(), w, 1.0, Par::Seq);
        let mut g = Mat::<f64>::zeros(w.ncols(), w.ncols());
        matmul(
            g.as_mut(),
            Accum::Replace,
            w.transpose(),
            kw.as_ref(),
            m2,
            Par::Seq,
        );
        let d = g.nrows();
        for j in 0..d {
            for i in 0..j {
                let v = 0.5 * (g[(i, j)] + g[(j, i)]);
                g[(i, j)] = v;
                g[(j, i)] = v;
            }
        }
        agop.push(g);
    }
    Ok(LayerGradients { agop, ptk })
}
