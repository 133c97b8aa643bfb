//! Quadratic recurrent network for sequential group composition (Marchetti, Kunin, Myers,
//! Acosta, Miolane, *Sequential group composition*, arXiv 2602.03655, §RNNs; the reference
//! code's `QuadraticRNN`).
//!
//! The input row is the concatenation (x₁, …, x_k) of k encodings in ℝ^p (p = |G|), so the
//! model reads the same data as the two-layer net of the group-AGF study:
//!
//! ```text
//! A₁ = X₁ W_inᵀ + X₂ W_driveᵀ,        h₁ = A₁ ⊙ A₁                    (n × H)
//! A_t = h_{t−1} W_mixᵀ + X_{t+1} W_driveᵀ,  h_t = A_t ⊙ A_t,  t = 2 … k−1
//! F = h_{k−1} W_outᵀ                                                 (n × p)
//! ```
//!
//! Backward, given dF = ∂L/∂F (reverse-mode through the k − 1 steps):
//!
//! ```text
//! ∂W_out = dFᵀ h_{k−1},   dh_{k−1} = dF W_out
//! for t = k−1 … 1:  dA_t = 2 A_t ⊙ dh_t,  ∂W_drive += dA_tᵀ X_{t+1}
//!     t ≥ 2:  ∂W_mix += dA_tᵀ h_{t−1},  dh_{t−1} = dA_t W_mix
//!     t = 1:  ∂W_in = dA₁ᵀ X₁
//! ```
//!
//! Blocks (row-major, shape [fan_out, fan_in]): `W_in` [H, p], `W_drive` [H, p], `W_mix`
//! [H, H], `W_out` [p, H]. For k = 2 `W_mix` is unused (its gradient is zero). The model is
//! not a sum of homogeneous neurons (hidden units interact through W_mix, and f is of
//! different degrees in different blocks), so AGF does not apply to it.

use super::{layout, Model, ParamBlock, Workspace};
use crate::linalg::{col, col_mut, matmul, view, view_mut};
use crate::rng::{normal_vec, Rng};
use faer::{Accum, Mat, MatRef};

/// The quadratic RNN (see module docs).
#[derive(Debug, Clone)]
pub struct QuadraticRnn {
    /// Encoding dimension p (= |G|): input k·p, output p.
    pub p: usize,
    /// Hidden width H.
    pub width: usize,
    /// Sequence length k ≥ 2.
    pub k: usize,
    blocks: Vec<ParamBlock>,
}

/// Block indices.
const W_IN: usize = 0;
const W_DRIVE: usize = 1;
const W_MIX: usize = 2;
const W_OUT: usize = 3;

impl QuadraticRnn {
    /// A network on sequences of `k` ≥ 2 vectors of dimension `p`, hidden width `width`.
    pub fn new(p: usize, width: usize, k: usize) -> crate::Result<Self> {
        if k < 2 {
            return Err(crate::Error::config(
                "data.k",
                format!("the quadratic RNN needs k ≥ 2 elements, got {k}"),
            ));
        }
        if width == 0 || p == 0 {
            return Err(crate::Error::config(
                "model.width",
                format!("width and encoding size must be ≥ 1, got H = {width}, p = {p}"),
            ));
        }
        let spec = vec![
            ("W_in".to_string(), vec![width, p], 1.0),
            ("W_drive".to_string(), vec![width, p], 1.0),
            ("W_mix".to_string(), vec![width, width], 1.0),
            ("W_out".to_string(), vec![p, width], 1.0),
        ];
        Ok(QuadraticRnn {
            p,
            width,
            k,
            blocks: layout(spec),
        })
    }

    /// The reference code's initialisation: W_in, W_drive ~ N(0, α²/p), W_mix, W_out ~
    /// N(0, α²/H), drawn in block order from `rng`.
    pub fn init(&self, alpha: f64, rng: &mut Rng) -> Vec<f64> {
        let (p, h) = (self.p as f64, self.width as f64);
        let mut v = Vec::with_capacity(self.num_params());
        for (b, std) in [
            (W_IN, alpha / p.sqrt()),
            (W_DRIVE, alpha / p.sqrt()),
            (W_MIX, alpha / h.sqrt()),
            (W_OUT, alpha / h.sqrt()),
        ] {
            v.extend(normal_vec(rng, self.blocks[b].len(), std));
        }
        v
    }

    fn w<'a>(&self, params: &'a [f64], b: usize) -> MatRef<'a, f64> {
        let s = &self.blocks[b].shape;
        view(&params[self.blocks[b].range()], s[0], s[1])
    }

    /// Input block t (0-based) of the concatenated rows.
    fn xt<'a>(&self, x: MatRef<'a, f64>, t: usize) -> MatRef<'a, f64> {
        x.subcols(t * self.p, self.p)
    }
}

impl Model for QuadraticRnn {
    fn name(&self) -> &'static str {
        "quadratic_rnn"
    }
    fn input_dim(&self) -> usize {
        self.k * self.p
    }
    fn output_dim(&self) -> usize {
        self.p
    }
    fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }
    /// bufs: A₁ … A_{k−1}, then h₁ … h_{k−1}, then dh, dA (each n × H).
    fn workspace(&self, n: usize) -> Workspace {
        let steps = self.k - 1;
        let bufs = (0..2 * steps + 2)
            .map(|_| Mat::zeros(n, self.width))
            .collect();
        Workspace::new(n, self.p, bufs)
    }

    fn forward(&self, params: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) {
        assert_eq!(
            x.ncols(),
            self.input_dim(),
            "quadratic_rnn: input has {} columns, model expects k·p = {}",
            x.ncols(),
            self.input_dim()
        );
        let steps = self.k - 1;
        let par = ws.par;
        let (a_bufs, rest) = ws.bufs.split_at_mut(steps);
        let (h_bufs, _) = rest.split_at_mut(steps);
        let w_drive = self.w(params, W_DRIVE);
        for s in 0..steps {
            let a = &mut a_bufs[s];
            if s == 0 {
                let w_in = self.w(params, W_IN);
                matmul(
                    a.as_mut(),
                    Accum::Replace,
                    self.xt(x, 0),
                    w_in.transpose(),
                    1.0,
                    par,
                );
            } else {
                matmul(
                    a.as_mut(),
                    Accum::Replace,
                    h_bufs[s - 1].as_ref(),
                    self.w(params, W_MIX).transpose(),
                    1.0,
                    par,
                );
            }
            matmul(
                a.as_mut(),
                Accum::Add,
                self.xt(x, s + 1),
                w_drive.transpose(),
                1.0,
                par,
            );
            for j in 0..self.width {
                let (src, dst) = (col(a.as_ref(), j), col_mut(h_bufs[s].as_mut(), j));
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = v * v;
                }
            }
        }
        matmul(
            ws.out.as_mut(),
            Accum::Replace,
            h_bufs[steps - 1].as_ref(),
            self.w(params, W_OUT).transpose(),
            1.0,
            par,
        );
    }

    fn backward(&self, params: &[f64], x: MatRef<'_, f64>, grad: &mut [f64], ws: &mut Workspace) {
        let steps = self.k - 1;
        let par = ws.par;
        let (p, hw) = (self.p, self.width);
        let (a_bufs, rest) = ws.bufs.split_at_mut(steps);
        let (h_bufs, scratch) = rest.split_at_mut(steps);
        let (dh, da) = scratch.split_at_mut(1);
        let (dh, da) = (&mut dh[0], &mut da[0]);
        let d_out = ws.d_out.as_ref();
        let (g_in, g_rest) = grad.split_at_mut(self.blocks[W_DRIVE].offset);
        let (g_drive, g_rest) = g_rest.split_at_mut(self.blocks[W_DRIVE].len());
        let (g_mix, g_out) = g_rest.split_at_mut(self.blocks[W_MIX].len());
        matmul(
            view_mut(g_out, p, hw),
            Accum::Replace,
            d_out.transpose(),
            h_bufs[steps - 1].as_ref(),
            1.0,
            par,
        );
        matmul(
            dh.as_mut(),
            Accum::Replace,
            d_out,
            self.w(params, W_OUT),
            1.0,
            par,
        );
        if steps == 1 {
            g_mix.iter_mut().for_each(|v| *v = 0.0);
        }
        for s in (0..steps).rev() {
            for j in 0..hw {
                let (a, g) = (col(a_bufs[s].as_ref(), j), col(dh.as_ref(), j));
                for ((d, av), gv) in col_mut(da.as_mut(), j).iter_mut().zip(a).zip(g) {
                    *d = 2.0 * av * gv;
                }
            }
            let acc = if s + 1 == steps {
                Accum::Replace
            } else {
                Accum::Add
            };
            matmul(
                view_mut(g_drive, hw, p),
                acc,
                da.as_ref().transpose(),
                self.xt(x, s + 1),
                1.0,
                par,
            );
            if s >= 1 {
                matmul(
                    view_mut(g_mix, hw, hw),
                    acc,
                    da.as_ref().transpose(),
                    h_bufs[s - 1].as_ref(),
                    1.0,
                    par,
                );
                matmul(
                    dh.as_mut(),
                    Accum::Replace,
                    da.as_ref(),
                    self.w(params, W_MIX),
                    1.0,
                    par,
                );
            } else {
                matmul(
                    view_mut(g_in, hw, p),
                    Accum::Replace,
                    da.as_ref().transpose(),
                    self.xt(x, 0),
                    1.0,
                    par,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::grad_check;
    use crate::model::Loss;
    use crate::rng::stream;

    fn data(n: usize, d: usize, c: usize) -> (Mat<f64>, Mat<f64>) {
        let mut r = stream(7, "rnn-test-data");
        let xv = normal_vec(&mut r, n * d, 1.0);
        let yv = normal_vec(&mut r, n * c, 1.0);
        (
            Mat::from_fn(n, d, |i, j| xv[i * d + j]),
            Mat::from_fn(n, c, |i, j| yv[i * c + j]),
        )
    }

    /// The recurrence written out per sample, with plain loops (the module docs' formula).
    fn naive(m: &QuadraticRnn, params: &[f64], x: &Mat<f64>) -> Mat<f64> {
        let (p, hw) = (m.p, m.width);
        let w = |b: usize| m.w(params, b);
        Mat::from_fn(x.nrows(), p, |i, o| {
            let xt = |t: usize, j: usize| x[(i, t * p + j)];
            let mut h: Vec<f64> = (0..hw)
                .map(|u| {
                    let a: f64 = (0..p)
                        .map(|j| w(W_IN)[(u, j)] * xt(0, j) + w(W_DRIVE)[(u, j)] * xt(1, j))
                        .sum();
                    a * a
                })
                .collect();
            for t in 2..m.k {
                h = (0..hw)
                    .map(|u| {
                        let a: f64 = (0..hw).map(|v| w(W_MIX)[(u, v)] * h[v]).sum::<f64>()
                            + (0..p).map(|j| w(W_DRIVE)[(u, j)] * xt(t, j)).sum::<f64>();
                        a * a
                    })
                    .collect();
            }
            (0..hw).map(|u| w(W_OUT)[(o, u)] * h[u]).sum()
        })
    }

    #[test]
    fn forward_is_the_recurrence_and_gradient_passes_finite_differences() {
        for k in [2, 3, 4] {
            let m = QuadraticRnn::new(3, 4, k).unwrap();
            let params = m.init(0.9, &mut stream(3, "init"));
            assert_eq!(params.len(), m.num_params());
            let (x, y) = data(7, 3 * k, 3);
            let f = m.predict(&params, x.as_ref());
            let g = naive(&m, &params, &x);
            let scale = g.norm_l2();
            assert!(
                (&f - &g).norm_l2() <= 1e-13 * scale,
                "k = {k}: forward differs from the recurrence"
            );
            let err = grad_check(&m, &params, &x, &y, Loss::Mse);
            assert!(
                err <= 1e-6,
                "k = {k}: max relative gradient error {err:.3e}"
            );
        }
    }

    #[test]
    fn k2_leaves_w_mix_out_and_bad_sizes_are_refused() {
        let m = QuadraticRnn::new(3, 4, 2).unwrap();
        let params = m.init(1.0, &mut stream(1, "init"));
        let (x, y) = data(5, 6, 3);
        let mut ws = m.workspace(5);
        let mut g = vec![f64::NAN; params.len()];
        m.loss_and_grad(&params, x.as_ref(), y.as_ref(), Loss::Mse, &mut g, &mut ws);
        assert!(g[m.blocks[W_MIX].range()].iter().all(|v| *v == 0.0));
        assert!(g.iter().all(|v| v.is_finite()));
        let e = QuadraticRnn::new(3, 4, 1).unwrap_err().to_string();
        assert!(e.contains("data.k"), "{e}");
        let e = QuadraticRnn::new(3, 0, 3).unwrap_err().to_string();
        assert!(e.contains("model.width"), "{e}");
    }
}
