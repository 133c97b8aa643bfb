//! Fully-connected deep linear network `f(x) = m_L W_L ⋯ m_1 W_1 x`.
//!
//! The model of the deep-linear NFA theorems (Tansley, Massart & Cartis 2025) and of the
//! singular-mode staircase (Saxe et al. 2014; AGF §3.2 for L = 2). Widths
//! `[d, k_1, …, k_{L−1}, c]`; W_l is k_l × k_{l−1}.
//!
//! Forward: H_0 = X, H_l = m_l H_{l−1} W_lᵀ (n × k_l), F = H_L.
//! Backward: G_L = dF; ∂W_l = m_l G_lᵀ H_{l−1}; G_{l−1} = m_l G_l W_l.

use super::{layout, Activation, LayerStack, Layered, Model, ParamBlock, Workspace};
use crate::linalg::{matmul, view, view_mut};
use faer::{Accum, Mat, MatRef};

/// Deep linear network (see module docs).
#[derive(Debug, Clone)]
pub struct DeepLinear {
    /// `[d, k_1, …, c]` (length L + 1).
    pub widths: Vec<usize>,
    /// Per-layer multipliers m_l (length L).
    pub mults: Vec<f64>,
    blocks: Vec<ParamBlock>,
}

impl DeepLinear {
    /// Network with the given widths (≥ 2 entries), multipliers and lr multipliers.
    pub fn new(widths: Vec<usize>, mults: Vec<f64>, lr_mults: Vec<f64>) -> Self {
        let l = widths.len() - 1;
        assert_eq!(mults.len(), l);
        assert_eq!(lr_mults.len(), l);
        let spec = (0..l)
            .map(|i| {
                (
                    format!("W{}", i + 1),
                    vec![widths[i + 1], widths[i]],
                    lr_mults[i],
                )
            })
            .collect();
        DeepLinear {
            widths,
            mults,
            blocks: layout(spec),
        }
    }
    /// Depth L.
    pub fn depth(&self) -> usize {
        self.widths.len() - 1
    }
    fn w<'a>(&self, p: &'a [f64], l: usize) -> MatRef<'a, f64> {
        view(
            &p[self.blocks[l].range()],
            self.widths[l + 1],
            self.widths[l],
        )
    }
}

impl Model for DeepLinear {
    fn name(&self) -> &'static str {
        "deep_linear"
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
        // bufs[0..l-1]: hidden activations H_1..H_{L-1}; bufs[l-1..]: back signals G_1..G_{L-1}
        let mut bufs: Vec<Mat<f64>> = (1..l).map(|i| Mat::zeros(n, self.widths[i])).collect();
        bufs.extend((1..l).map(|i| Mat::zeros(n, self.widths[i])));
        Workspace::new(n, self.output_dim(), bufs)
    }

    fn forward(&self, params: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) {
        assert_eq!(
            x.ncols(),
            self.widths[0],
            "deep_linear: input has {} columns, model expects d = {}",
            x.ncols(),
            self.widths[0]
        );
        let l = self.depth();
        let par = ws.par;
        for i in 0..l {
            let w = self.w(params, i);
            if l == 1 {
                matmul(
                    ws.out.as_mut(),
                    Accum::Replace,
                    x,
                    w.transpose(),
                    self.mults[0],
                    par,
                );
            } else if i == 0 {
                matmul(
                    ws.bufs[0].as_mut(),
                    Accum::Replace,
                    x,
                    w.transpose(),
                    self.mults[0],
                    par,
                );
            } else if i + 1 == l {
                matmul(
                    ws.out.as_mut(),
                    Accum::Replace,
                    ws.bufs[i - 1].as_ref(),
                    w.transpose(),
                    self.mults[i],
                    par,
                );
            } else {
                let (prev, next) = ws.bufs.split_at_mut(i);
                matmul(
                    next[0].as_mut(),
                    Accum::Replace,
                    prev[i - 1].as_ref(),
                    w.transpose(),
                    self.mults[i],
                    par,
                );
            }
        }
    }

    fn backward(&self, params: &[f64], x: MatRef<'_, f64>, grad: &mut [f64], ws: &mut Workspace) {
        let l = self.depth();
        let par = ws.par;
        let (hs, gs) = ws.bufs.split_at_mut(l - 1);
        for i in (0..l).rev() {
            let (fo, fi) = (self.widths[i + 1], self.widths[i]);
            let input: MatRef<'_, f64> = if i == 0 { x } else { hs[i - 1].as_ref() };
            // split gs so that G_{i+1} (source) and G_i (destination) can be borrowed together
            let (gi_part, gip1_part) = gs.split_at_mut(i.min(gs.len()));
            let g_out: MatRef<'_, f64> = if i + 1 == l {
                ws.d_out.as_ref()
            } else {
                gip1_part[0].as_ref()
            };
            let gw = view_mut(&mut grad[self.blocks[i].range()], fo, fi);
            matmul(
                gw,
                Accum::Replace,
                g_out.transpose(),
                input,
                self.mults[i],
                par,
            );
            if i > 0 {
                matmul(
                    gi_part[i - 1].as_mut(),
                    Accum::Replace,
                    g_out,
                    self.w(params, i),
                    self.mults[i],
                    par,
                );
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

/// h_l = m_l W_l x_l, σ = identity.
impl Layered for DeepLinear {
    fn stack<'a>(&self, params: &'a [f64]) -> LayerStack<'a> {
        LayerStack {
            weights: self.layer_weights(params),
            biases: vec![None; self.depth()],
            mults: self.mults.clone(),
            activation: Activation::Linear,
        }
    }
    fn weight_blocks(&self) -> Vec<usize> {
        (0..self.depth()).collect()
    }
}
