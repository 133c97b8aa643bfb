//! Deep multilayer perceptron `f(x) = m_L W_L σ(⋯ σ(m_1 W_1 x + b_1) ⋯) + b_L`.
//!
//! The architecture of the NFA measurements (Radhakrishnan et al. 2024; Beaglehole et al.
//! 2024: 5 hidden ReLU layers, no biases) and of the deep nonlinear experiments of Xu &
//! Ziyin. Widths `[d, k_1, …, k_{L−1}, c]`; W_l is k_l × k_{l−1}; the last layer is linear.
//!
//! Forward: H_0 = X; Z_l = m_l H_{l−1} W_lᵀ + 1 b_lᵀ; H_l = σ(Z_l) (l < L); F = Z_L.
//! Backward: G_L = dF; ∂W_l = m_l G_lᵀ H_{l−1}; ∂b_l = 1ᵀ G_l;
//!           G_{l−1} = (m_l G_l W_l) ⊙ σ'(Z_{l−1}).

use super::activation::{with_act_kernel, ActFn};
use super::{layout, Activation, LayerStack, Layered, Model, ParamBlock, Workspace};
use crate::linalg::{col, col_mut, for_column_blocks, matmul, view, view_mut};
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatRef};

/// Deep MLP (see module docs).
#[derive(Debug, Clone)]
pub struct Mlp {
    pub widths: Vec<usize>,
    pub activation: Activation,
    pub bias: bool,
    pub mults: Vec<f64>,
    blocks: Vec<ParamBlock>,
    /// index into `blocks` of W_l and (if any) b_l
    w_idx: Vec<usize>,
    b_idx: Vec<Option<usize>>,
}

impl Mlp {
    /// MLP with the given widths (≥ 2 entries), activation, biases, multipliers and lr multipliers (per layer).
    pub fn new(
        widths: Vec<usize>,
        activation: Activation,
        bias: bool,
        mults: Vec<f64>,
        lr_mults: Vec<f64>,
    ) -> Self {
        let l = widths.len() - 1;
        assert_eq!(mults.len(), l);
        assert_eq!(lr_mults.len(), l);
        let mut spec = Vec::new();
        let mut w_idx = Vec::new();
        let mut b_idx = Vec::new();
        for i in 0..l {
            w_idx.push(spec.len());
            spec.push((
                format!("W{}", i + 1),
                vec![widths[i + 1], widths[i]],
                lr_mults[i],
            ));
            if bias {
                b_idx.push(Some(spec.len()));
                spec.push((format!("b{}", i + 1), vec![widths[i + 1]], lr_mults[i]));
            } else {
                b_idx.push(None);
            }
        }
        Mlp {
            widths,
            activation,
            bias,
            mults,
            blocks: layout(spec),
            w_idx,
            b_idx,
        }
    }
    /// Number of weight layers L.
    pub fn depth(&self) -> usize {
        self.widths.len() - 1
    }
    fn w<'a>(&self, p: &'a [f64], l: usize) -> MatRef<'a, f64> {
        view(
            &p[self.blocks[self.w_idx[l]].range()],
            self.widths[l + 1],
            self.widths[l],
        )
    }
    /// Buffers: bufs[0..L-1] = Z_1..Z_{L-1}, bufs[L-1..2L-2] = H_1..H_{L-1}, bufs[2L-2..] = G_1..G_{L-1}.
    fn idx_z(&self, l: usize) -> usize {
        l - 1
    }
    fn idx_h(&self, l: usize) -> usize {
        self.depth() - 1 + l - 1
    }
    fn idx_g(&self, l: usize) -> usize {
        2 * (self.depth() - 1) + l - 1
    }
}

impl Model for Mlp {
    fn name(&self) -> &'static str {
        "mlp"
    }
    fn input_dim(&self) -> usize {
        self.widths[0]
    }
    fn output_dim(&self) -> usize {
        *self.widths.last().unwrap()
    }
    fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }
    fn workspace(&self, n: usize) -> Workspace {
        let l = self.depth();
        let mut bufs = Vec::new();
        for _ in 0..3 {
            for i in 1..l {
                bufs.push(Mat::zeros(n, self.widths[i]));
            }
        }
        Workspace::new(n, self.output_dim(), bufs)
    }

    fn forward(&self, params: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) {
        assert_eq!(
            x.ncols(),
            self.widths[0],
            "mlp: input has {} columns, model expects d = {}",
            x.ncols(),
            self.widths[0]
        );
        let l = self.depth();
        let par = ws.par;
        let act = self.activation;
        for i in 1..=l {
            let w = self.w(params, i - 1);
            let mult = self.mults[i - 1];
            // destination: Z_i (or out for i = L); source: H_{i-1} (or x)
            let mut dst = if i == l {
                std::mem::replace(&mut ws.out, Mat::zeros(0, 0))
            } else {
                std::mem::replace(&mut ws.bufs[self.idx_z(i)], Mat::zeros(0, 0))
            };
            {
                let src: MatRef<'_, f64> = if i == 1 {
                    x
                } else {
                    ws.bufs[self.idx_h(i - 1)].as_ref()
                };
                matmul(dst.as_mut(), Accum::Replace, src, w.transpose(), mult, par);
            }
            // Z += b and H = σ(Z), one pass per column, columns split over the threads
            let elements = dst.nrows() * dst.ncols();
            let bias = self.b_idx[i - 1]
                .map(|bi| view(&params[self.blocks[bi].range()], 1, self.widths[i]));
            if i == l {
                if let Some(b) = bias {
                    for_column_blocks(par, elements, (dst.as_mut(), b), &|(mut z, b)| {
                        for j in 0..z.ncols() {
                            add_bias(col_mut(z.rb_mut(), j), b[(0, j)]);
                        }
                    });
                }
                ws.out = dst;
            } else {
                let h = &mut ws.bufs[self.idx_h(i)];
                match bias {
                    Some(b) => for_column_blocks(
                        par,
                        elements,
                        (dst.as_mut(), h.as_mut(), b),
                        &|(mut z, mut h, b)| {
                            for j in 0..z.ncols() {
                                let zc = col_mut(z.rb_mut(), j);
                                add_bias(zc, b[(0, j)]);
                                activate(act, zc, col_mut(h.rb_mut(), j));
                            }
                        },
                    ),
                    None => for_column_blocks(
                        par,
                        elements,
                        (dst.as_mut(), h.as_mut()),
                        &|(z, mut h)| {
                            for j in 0..z.ncols() {
                                activate(act, col(z.as_ref(), j), col_mut(h.rb_mut(), j));
                            }
                        },
                    ),
                }
                ws.bufs[self.idx_z(i)] = dst;
            }
        }
    }

    fn backward(&self, params: &[f64], x: MatRef<'_, f64>, grad: &mut [f64], ws: &mut Workspace) {
        let l = self.depth();
        let par = ws.par;
        let act = self.activation;
        for i in (1..=l).rev() {
            let g_out = if i == l {
                std::mem::replace(&mut ws.d_out, Mat::zeros(0, 0))
            } else {
                std::mem::replace(&mut ws.bufs[self.idx_g(i)], Mat::zeros(0, 0))
            };
            let (fo, fi) = (self.widths[i], self.widths[i - 1]);
            {
                let input: MatRef<'_, f64> = if i == 1 {
                    x
                } else {
                    ws.bufs[self.idx_h(i - 1)].as_ref()
                };
                let gw = view_mut(&mut grad[self.blocks[self.w_idx[i - 1]].range()], fo, fi);
                matmul(
                    gw,
                    Accum::Replace,
                    g_out.transpose(),
                    input,
                    self.mults[i - 1],
                    par,
                );
            }
            if let Some(bi) = self.b_idx[i - 1] {
                let gb = view_mut(&mut grad[self.blocks[bi].range()], 1, fo);
                let elements = g_out.nrows() * fo;
                for_column_blocks(par, elements, (gb, g_out.as_ref()), &|(mut gb, g)| {
                    for j in 0..g.ncols() {
                        gb[(0, j)] = col(g, j).iter().sum();
                    }
                });
            }
            if i > 1 {
                let gi = self.idx_g(i - 1);
                let mut dst = std::mem::replace(&mut ws.bufs[gi], Mat::zeros(0, 0));
                matmul(
                    dst.as_mut(),
                    Accum::Replace,
                    g_out.as_ref(),
                    self.w(params, i - 1),
                    self.mults[i - 1],
                    par,
                );
                let z = &ws.bufs[self.idx_z(i - 1)];
                let elements = z.nrows() * fi;
                for_column_blocks(par, elements, (dst.as_mut(), z.as_ref()), &|(mut g, z)| {
                    for j in 0..g.ncols() {
                        scale_by_derivative(act, col_mut(g.rb_mut(), j), col(z, j));
                    }
                });
                ws.bufs[gi] = dst;
            }
            if i == l {
                ws.d_out = g_out;
            } else {
                ws.bufs[self.idx_g(i)] = g_out;
            }
        }
    }

    fn layer_weights<'a>(&self, params: &'a [f64]) -> Vec<MatRef<'a, f64>> {
        (0..self.depth()).map(|i| self.w(params, i)).collect()
    }

    fn as_layered(&self) -> Option<&dyn Layered> {
        Some(self)
    }
}

/// h_l = m_l W_l x_l + b_l, x_{l+1} = σ(h_l).
impl Layered for Mlp {
    fn stack<'a>(&self, params: &'a [f64]) -> LayerStack<'a> {
        LayerStack {
            weights: self.layer_weights(params),
            biases: self
                .b_idx
                .iter()
                .map(|b| b.map(|i| &params[self.blocks[i].range()]))
                .collect(),
            mults: self.mults.clone(),
            activation: self.activation,
        }
    }
    fn weight_blocks(&self) -> Vec<usize> {
        self.w_idx.clone()
    }
}

/// `z ← z + b` on one column (the layer's bias for that unit).
fn add_bias(z: &mut [f64], b: f64) {
    for v in z {
        *v += b;
    }
}

/// `h ← σ(z)` on one column (the activation resolved once per column, so the loop
/// vectorises; same operations as [`Activation::apply`]).
fn activate(act: Activation, z: &[f64], h: &mut [f64]) {
    with_act_kernel!(act, K => {
        for (hv, &zv) in h.iter_mut().zip(z) {
            *hv = K::f(zv);
        }
    })
}

/// `g ← g ⊙ σ'(z)` on one column (as [`activate`]; same operations as
/// [`Activation::derivative`]).
fn scale_by_derivative(act: Activation, g: &mut [f64], z: &[f64]) {
    with_act_kernel!(act, K => {
        for (gv, &zv) in g.iter_mut().zip(z) {
            *gv *= K::df(zv);
        }
    })
}
