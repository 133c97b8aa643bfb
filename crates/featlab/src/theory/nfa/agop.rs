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
//! The backward pass is run once per output coordinate c with seed `∂f_c/∂h_L = e_c`;
//! each row of the batch is one sample, so a batch of b samples gives b per-sample
//! Jacobian rows at the cost of one backward pass.

use crate::linalg::matmul;
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

/// AGOP and PTK of every layer over the samples `x` (n × d), batched (see module docs).
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
    let c = stack.fan_out(depth - 1);
    let mut agop: Vec<Mat<f64>> = (0..depth)
        .map(|l| Mat::zeros(stack.fan_in(l), stack.fan_in(l)))
        .collect();
    let mut ptk: Vec<Mat<f64>> = (0..depth)
        .map(|l| Mat::zeros(stack.fan_out(l), stack.fan_out(l)))
        .collect();
    // sums over samples of J and P per output (for centring): [layer][output] -> vector
    let mut sum_j: Vec<Vec<Vec<f64>>> = (0..depth)
        .map(|l| vec![vec![0.0; stack.fan_in(l)]; c])
        .collect();
    let mut sum_p: Vec<Vec<Vec<f64>>> = (0..depth)
        .map(|l| vec![vec![0.0; stack.fan_out(l)]; c])
        .collect();
    let linear = stack.activation == Activation::Linear;
    let mut start = 0;
    while start < n {
        let b = opts.batch.min(n - start);
        let xb = x.subrows(start, b);
        let fc = forward_from(stack, 0, xb, opts.par);
        for o in 0..c {
            let mut p = Mat::from_fn(b, c, |_, j| if j == o { 1.0 } else { 0.0 });
            for l in (0..depth).rev() {
                let w = stack.weights[l];
                matmul(
                    ptk[l].as_mut(),
                    Accum::Add,
                    p.transpose(),
                    p.as_ref(),
                    1.0,
                    opts.par,
                );
                let mut j = Mat::zeros(b, w.ncols());
                matmul(
                    j.as_mut(),
                    Accum::Replace,
                    p.as_ref(),
                    w,
                    stack.mults[l],
                    opts.par,
                );
                matmul(
                    agop[l].as_mut(),
                    Accum::Add,
                    j.transpose(),
                    j.as_ref(),
                    1.0,
                    opts.par,
                );
                if opts.center {
                    for (col, s) in sum_j[l][o].iter_mut().enumerate() {
                        *s += j.col_as_slice(col).iter().sum::<f64>();
                    }
                    for (col, s) in sum_p[l][o].iter_mut().enumerate() {
                        *s += p.col_as_slice(col).iter().sum::<f64>();
                    }
                }
                if l > 0 {
                    if !linear {
                        let d = &fc.dact[l - 1];
                        for col in 0..j.ncols() {
                            for (v, &dv) in
                                j.col_as_slice_mut(col).iter_mut().zip(d.col_as_slice(col))
                            {
                                *v *= dv;
                            }
                        }
                    }
                    p = j;
                }
            }
        }
        start += b;
    }
    let inv_n = 1.0 / n as f64;
    for l in 0..depth {
        scale_and_center(&mut agop[l], &sum_j[l], inv_n, opts.center);
        scale_and_center(&mut ptk[l], &sum_p[l], inv_n, opts.center);
    }
    Ok(LayerGradients { agop, ptk })
}

/// `M ← M/n − Σ_o s̄_o s̄_oᵀ` with `s̄_o = s_o/n` (centring) or `M ← M/n`; symmetrised.
fn scale_and_center(m: &mut Mat<f64>, sums: &[Vec<f64>], inv_n: f64, center: bool) {
    let k = m.nrows();
    for j in 0..k {
        for i in 0..k {
            let mut v = m[(i, j)] * inv_n;
            if center {
                for s in sums {
                    v -= s[i] * inv_n * s[j] * inv_n;
                }
            }
            m[(i, j)] = v;
        }
    }
    for j in 0..k {
        for i in 0..j {
            let v = 0.5 * (m[(i, j)] + m[(j, i)]);
            m[(i, j)] = v;
            m[(j, i)] = v;
        }
    }
}
