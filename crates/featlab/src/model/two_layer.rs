//! Two-layer network `f(x) = κ · Σ_i a_i σ(w_i·x + b_i)` (vector output a_i ∈ R^c).
//!
//! Written with layer multipliers: `f(x) = m₂ · W₂ σ(m₁ · W₁ x + b₁)`, where W₁ (m × d) has
//! rows w_i, W₂ (c × m) has columns a_i, and m₂ includes the output scale κ. This is the
//! model of Alternating Gradient Flows (Kunin et al. 2025, §2), of the finite-width exact
//! solution with σ = identity and d = 1 (Xu & Ziyin 2024) and of the mean-field analysis
//! (Mei et al. 2018) with m₂ = 1/m.
//!
//! Forward (shapes in comments):   Z = m₁ X W₁ᵀ + 1 b₁ᵀ (n×m),  H = σ(Z),  F = m₂ H W₂ᵀ (n×c)
//! Backward, given dF = ∂L/∂F:     ∂W₂ = m₂ dFᵀ H,  dZ = (m₂ dF W₂) ⊙ σ'(Z),
//!                                 ∂W₁ = m₁ dZᵀ X,  ∂b₁ = 1ᵀ dZ

use super::activation::{with_act_kernel, ActFn};
use super::{layout, Activation, LayerStack, Layered, Model, NeuronSum, ParamBlock, Workspace};
use crate::linalg::{matmul, view, view_mut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// The two-layer network (see module docs).
#[derive(Debug, Clone)]
pub struct TwoLayer {
    pub d: usize,
    pub width: usize,
    pub c: usize,
    pub activation: Activation,
    pub bias: bool,
    /// First-layer multiplier m₁.
    pub mult1: f64,
    /// Output multiplier m₂ (parametrisation multiplier × output scale κ).
    pub mult2: f64,
    blocks: Vec<ParamBlock>,
}

impl TwoLayer {
    /// A network with input dim `d`, `width` hidden units and `c` outputs; multipliers and
    /// learning-rate multipliers start at 1 (see [`TwoLayer::multipliers`], [`TwoLayer::lr_mults`]).
    pub fn new(d: usize, width: usize, c: usize, activation: Activation, bias: bool) -> Self {
        let mut spec = vec![("W1".to_string(), vec![width, d], 1.0)];
        if bias {
            spec.push(("b1".to_string(), vec![width], 1.0));
        }
        spec.push(("W2".to_string(), vec![c, width], 1.0));
        TwoLayer {
            d,
            width,
            c,
            activation,
            bias,
            mult1: 1.0,
            mult2: 1.0,
            blocks: layout(spec),
        }
    }

    /// Set the forward multipliers m₁ (first layer) and m₂ (output, including κ).
    pub fn multipliers(mut self, mult1: f64, mult2: f64) -> Self {
        self.mult1 = mult1;
        self.mult2 = mult2;
        self
    }

    /// Set the learning-rate multipliers of the first layer (W₁ and b₁) and of W₂.
    pub fn lr_mults(mut self, first: f64, second: f64) -> Self {
        let n = self.blocks.len();
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.lr_mult = if i + 1 == n { second } else { first };
        }
        self
    }

    fn w1<'a>(&self, p: &'a [f64]) -> MatRef<'a, f64> {
        view(&p[self.blocks[0].range()], self.width, self.d)
    }
    fn w2<'a>(&self, p: &'a [f64]) -> MatRef<'a, f64> {
        view(
            &p[self.blocks[self.blocks.len() - 1].range()],
            self.c,
            self.width,
        )
    }
}

/// Columns per block of the fused elementwise passes: fixed, so that the reduction order
/// (and hence every bit of the result) does not depend on the thread count.
const COL_BLOCK: usize = 64;
/// Minimum n·m before the fused passes run on several threads.
const PAR_MIN_ELEMS: usize = 1 << 17;

fn parallel(par: Par, n: usize, m: usize) -> bool {
    matches!(par, Par::Rayon(t) if t.get() > 1) && n * m >= PAR_MIN_ELEMS
}

/// `H = σ(Z + 1bᵀ)` for one block of columns (column-major, n rows), adding the bias into
/// Z in place (backward reads Z). No reductions: the loop vectorises.
#[inline(always)]
fn activate_block<K: ActFn>(zb: &mut [f64], hb: &mut [f64], n: usize, bias: Option<&[f64]>) {
    for (k, (zc, hc)) in zb.chunks_mut(n).zip(hb.chunks_mut(n)).enumerate() {
        let bj = bias.map(|b| b[k]).unwrap_or(0.0);
        if bj != 0.0 {
            for z in zc.iter_mut() {
                *z += bj;
            }
        }
        for (h, &z) in hc.iter_mut().zip(zc.iter()) {
            *h = K::f(z);
        }
    }
}

/// `dZ_ij = w_j · dF_i · σ'(z_ij)` for one block of columns (`w_j = m₂ a_j`).
#[inline(always)]
fn backprop_block<K: ActFn>(zb: &[f64], dzb: &mut [f64], n: usize, df: &[f64], w: &[f64]) {
    for (k, (zc, dc)) in zb.chunks(n).zip(dzb.chunks_mut(n)).enumerate() {
        let wk = w[k];
        for ((d, &z), &g) in dc.iter_mut().zip(zc).zip(df) {
            *d = wk * g * K::df(z);
        }
    }
}

/// `out[i] = α Σ_j H_ij a_j` for a block of rows, as axpys over j in order (vectorised over
/// i; the summation order per element is j = 0, 1, … whatever the row split).
#[inline(always)]
fn gemv_rows(h: &[f64], n: usize, r0: usize, out: &mut [f64], a: &[f64], alpha: f64) {
    out.fill(0.0);
    let rows = out.len();
    for (j, &aj) in a.iter().enumerate() {
        let col = &h[j * n + r0..j * n + r0 + rows];
        for (o, &v) in out.iter_mut().zip(col) {
            *o += aj * v;
        }
    }
    if alpha != 1.0 {
        for o in out.iter_mut() {
            *o *= alpha;
        }
    }
}

/// The same kernels compiled for AVX-512, selected at run time when the CPU has it. Rust
/// never contracts a·b + c into an FMA on its own, so every version gives identical bits.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::*;
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub(super) unsafe fn activate_block<K: ActFn>(
        zb: &mut [f64],
        hb: &mut [f64],
        n: usize,
        bias: Option<&[f64]>,
    ) {
        super::activate_block::<K>(zb, hb, n, bias)
    }
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub(super) unsafe fn backprop_block<K: ActFn>(
        zb: &[f64],
        dzb: &mut [f64],
        n: usize,
        df: &[f64],
        w: &[f64],
    ) {
        super::backprop_block::<K>(zb, dzb, n, df, w)
    }
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub(super) unsafe fn gemv_rows(
        h: &[f64],
        n: usize,
        r0: usize,
        out: &mut [f64],
        a: &[f64],
        alpha: f64,
    ) {
        super::gemv_rows(h, n, r0, out, a, alpha)
    }
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static DETECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rows per block of the parallel GEMV (fixed, independent of the thread count).
const ROW_BLOCK: usize = 256;

/// `H = σ(Z + b)` over all column blocks (in parallel when `par`).
fn activate<K: ActFn>(z: &mut [f64], h: &mut [f64], n: usize, bias: Option<&[f64]>, par: bool) {
    let wide = has_avx512();
    let work = |(bi, (zb, hb)): (usize, (&mut [f64], &mut [f64]))| {
        let j0 = bi * COL_BLOCK;
        let b = bias.map(|b| &b[j0..j0 + zb.len() / n]);
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            return unsafe { wide::activate_block::<K>(zb, hb, n, b) };
        }
        let _ = wide;
        activate_block::<K>(zb, hb, n, b)
    };
    if par {
        use rayon::prelude::*;
        z.par_chunks_mut(n * COL_BLOCK)
            .zip(h.par_chunks_mut(n * COL_BLOCK))
            .enumerate()
            .for_each(work);
    } else {
        z.chunks_mut(n * COL_BLOCK)
            .zip(h.chunks_mut(n * COL_BLOCK))
            .enumerate()
            .for_each(work);
    }
}

/// `dZ = (dF ⊗ w) ⊙ σ'(Z)` over all column blocks.
fn backprop<K: ActFn>(z: &[f64], dz: &mut [f64], n: usize, df: &[f64], w: &[f64], par: bool) {
    let wide = has_avx512();
    let work = |(bi, (zb, dzb)): (usize, (&[f64], &mut [f64]))| {
        let j0 = bi * COL_BLOCK;
        let wb = &w[j0..j0 + zb.len() / n];
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            return unsafe { wide::backprop_block::<K>(zb, dzb, n, df, wb) };
        }
        let _ = wide;
        backprop_block::<K>(zb, dzb, n, df, wb)
    };
    if par {
        use rayon::prelude::*;
        z.par_chunks(n * COL_BLOCK)
            .zip(dz.par_chunks_mut(n * COL_BLOCK))
            .enumerate()
            .for_each(work);
    } else {
        z.chunks(n * COL_BLOCK)
            .zip(dz.chunks_mut(n * COL_BLOCK))
            .enumerate()
            .for_each(work);
    }
}

/// `out = α H a` (H n×m column-major), parallel over fixed row blocks.
fn gemv(h: &[f64], n: usize, out: &mut [f64], a: &[f64], alpha: f64, par: bool) {
    let wide = has_avx512();
    let work = |(bi, ob): (usize, &mut [f64])| {
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            return unsafe { wide::gemv_rows(h, n, bi * ROW_BLOCK, ob, a, alpha) };
        }
        let _ = wide;
        gemv_rows(h, n, bi * ROW_BLOCK, ob, a, alpha)
    };
    if par {
        use rayon::prelude::*;
        out.par_chunks_mut(ROW_BLOCK).enumerate().for_each(work);
    } else {
        out.chunks_mut(ROW_BLOCK).enumerate().for_each(work);
    }
}

impl Model for TwoLayer {
    fn name(&self) -> &'static str {
        "two_layer"
    }
    fn input_dim(&self) -> usize {
        self.d
    }
    fn output_dim(&self) -> usize {
        self.c
    }
    fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }
    fn workspace(&self, n: usize) -> Workspace {
        let m = self.width;
        if self.c == 1 {
            // vecs: Z (n×m), H (n×m), dZ (n×m) column-major; a column of ones (n)
            let mut ws = Workspace::new(n, 1, Vec::new());
            ws.vecs = vec![
                vec![0.0; n * m],
                vec![0.0; n * m],
                vec![0.0; n * m],
                vec![1.0; n],
            ];
            ws
        } else {
            // Z, H, dZ
            Workspace::new(
                n,
                self.c,
                vec![Mat::zeros(n, m), Mat::zeros(n, m), Mat::zeros(n, m)],
            )
        }
    }

    fn forward(&self, params: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) {
        assert_eq!(
            x.ncols(),
            self.d,
            "two_layer: input has {} columns, model expects d = {}",
            x.ncols(),
            self.d
        );
        assert_eq!(
            x.nrows(),
            ws.n,
            "two_layer: workspace sized for a different batch"
        );
        let par = ws.par;
        let (n, m) = (x.nrows(), self.width);
        let bias = if self.bias {
            Some(&params[self.blocks[1].range()])
        } else {
            None
        };
        if self.c == 1 {
            let (z, rest) = ws.vecs.split_at_mut(1);
            let (z, h) = (&mut z[0], &mut rest[0]);
            // Z = m1 X W1ᵀ  (n×m)
            matmul(
                MatMut::from_column_major_slice_mut(z, n, m),
                Accum::Replace,
                x,
                self.w1(params).transpose(),
                self.mult1,
                par,
            );
            let p = parallel(par, n, m);
            with_act_kernel!(self.activation, K => activate::<K>(z, h, n, bias, p));
            // f = m2 H a
            let a = &params[self.blocks[self.blocks.len() - 1].range()];
            gemv(h, n, ws.out.col_as_slice_mut(0), a, self.mult2, p);
            return;
        }
        let (z, rest) = ws.bufs.split_at_mut(1);
        let (z, h) = (&mut z[0], &mut rest[0]);
        // Z = m1 X W1ᵀ  (n×m)
        matmul(
            z.as_mut(),
            Accum::Replace,
            x,
            self.w1(params).transpose(),
            self.mult1,
            par,
        );
        let act = self.activation;
        for j in 0..m {
            let bj = bias.map(|b| b[j]).unwrap_or(0.0);
            let zc = z.col_as_slice_mut(j);
            let hc = h.col_as_slice_mut(j);
            for (zi, hi) in zc.iter_mut().zip(hc.iter_mut()) {
                *zi += bj;
                *hi = act.apply(*zi);
            }
        }
        // F = m2 H W2ᵀ  (n×c)
        matmul(
            ws.out.as_mut(),
            Accum::Replace,
            h.as_ref(),
            self.w2(params).transpose(),
            self.mult2,
            par,
        );
    }

    fn backward(&self, params: &[f64], x: MatRef<'_, f64>, grad: &mut [f64], ws: &mut Workspace) {
        let par = ws.par;
        let (m, c, d) = (self.width, self.c, self.d);
        let nb = self.blocks.len();
        let n = x.nrows();
        if c == 1 {
            let a = &params[self.blocks[nb - 1].range()];
            let df = ws.d_out.col_as_slice(0);
            let p = parallel(par, n, m);
            // ∂W2 = m2 dFᵀ H  (1×m)
            {
                let g2 = view_mut(&mut grad[self.blocks[nb - 1].range()], 1, m);
                matmul(
                    g2,
                    Accum::Replace,
                    ws.d_out.transpose(),
                    MatRef::from_column_major_slice(&ws.vecs[1], n, m),
                    self.mult2,
                    par,
                );
            }
            // dZ = (dF ⊗ m2 a) ⊙ σ'(Z)
            let w: &mut Vec<f64> = &mut ws.bufs_scratch;
            w.clear();
            w.extend(a.iter().map(|v| self.mult2 * v));
            let (zv, rest) = ws.vecs.split_at_mut(2);
            with_act_kernel!(self.activation, K => backprop::<K>(&zv[0], &mut rest[0], n, df, w, p));
            let dz = MatRef::from_column_major_slice(&rest[0], n, m);
            if self.bias {
                let gb = view_mut(&mut grad[self.blocks[1].range()], m, 1);
                matmul(
                    gb,
                    Accum::Replace,
                    dz.transpose(),
                    MatRef::from_column_major_slice(&rest[1], n, 1),
                    1.0,
                    par,
                );
            }
            // ∂W1 = m1 dZᵀ X  (m×d)
            let g1 = view_mut(&mut grad[self.blocks[0].range()], m, d);
            matmul(g1, Accum::Replace, dz.transpose(), x, self.mult1, par);
            return;
        }
        let (z, h, dz) = {
            let (a, rest) = ws.bufs.split_at_mut(1);
            let (b, rest) = rest.split_at_mut(1);
            (&a[0], &b[0], &mut rest[0])
        };
        // ∂W2 = m2 dFᵀ H  (c×m)
        {
            let g2 = view_mut(&mut grad[self.blocks[nb - 1].range()], c, m);
            matmul(
                g2,
                Accum::Replace,
                ws.d_out.transpose(),
                h.as_ref(),
                self.mult2,
                par,
            );
        }
        // dH = m2 dF W2 (n×m), then dZ = dH ⊙ σ'(Z)
        matmul(
            dz.as_mut(),
            Accum::Replace,
            ws.d_out.as_ref(),
            self.w2(params),
            self.mult2,
            par,
        );
        let act = self.activation;
        if act != Activation::Linear {
            for j in 0..m {
                let zc = z.col_as_slice(j);
                let dc = dz.col_as_slice_mut(j);
                for (di, &zi) in dc.iter_mut().zip(zc) {
                    *di *= act.derivative(zi);
                }
            }
        }
        // ∂b1 = column sums of dZ
        if self.bias {
            let gb = &mut grad[self.blocks[1].range()];
            for (j, g) in gb.iter_mut().enumerate() {
                *g = dz.col_as_slice(j).iter().sum();
            }
        }
        // ∂W1 = m1 dZᵀ X  (m×d)
        let g1 = view_mut(&mut grad[self.blocks[0].range()], m, d);
        matmul(g1, Accum::Replace, dz.transpose(), x, self.mult1, par);
    }

    fn layer_weights<'a>(&self, params: &'a [f64]) -> Vec<MatRef<'a, f64>> {
        vec![self.w1(params), self.w2(params)]
    }

    fn as_neuron_sum(&self) -> Option<&dyn NeuronSum> {
        if self.bias || self.activation.homogeneity().is_none() {
            None
        } else {
            Some(self)
        }
    }

    fn as_layered(&self) -> Option<&dyn Layered> {
        Some(self)
    }
}

/// h_1 = m₁ W₁ x + b₁, x_2 = σ(h_1), f = m₂ W₂ x_2.
impl Layered for TwoLayer {
    fn stack<'a>(&self, params: &'a [f64]) -> LayerStack<'a> {
        LayerStack {
            weights: self.layer_weights(params),
            biases: vec![
                if self.bias {
                    Some(&params[self.blocks[1].range()])
                } else {
                    None
                },
                None,
            ],
            mults: vec![self.mult1, self.mult2],
            activation: self.activation,
        }
    }
    fn weight_blocks(&self) -> Vec<usize> {
        vec![0, self.blocks.len() - 1]
    }
}

/// Neuron i = (w_i, a_i): row i of W₁ and column i of W₂. Homogeneous of degree 2 for
/// linear/ReLU and 3 for quadratic activations (biases break homogeneity: not allowed).
impl NeuronSum for TwoLayer {
    fn num_neurons(&self) -> usize {
        self.width
    }
    fn homogeneity(&self) -> u32 {
        1 + self
            .activation
            .homogeneity()
            .expect("NeuronSum needs a positively homogeneous activation (linear, relu, quadratic)")
    }
    fn neuron_params(&self, i: usize) -> Vec<usize> {
        assert!(
            !self.bias,
            "two-layer nets with biases are not neuron sums of homogeneous neurons"
        );
        let w1 = &self.blocks[0];
        let w2 = &self.blocks[self.blocks.len() - 1];
        let mut idx: Vec<usize> = (0..self.d).map(|j| w1.offset + i * self.d + j).collect();
        idx.extend((0..self.c).map(|k| w2.offset + k * self.width + i));
        idx
    }
}
