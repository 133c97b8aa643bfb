//! Attention-only linear transformer (multi-head, softmax-free) for in-context linear
//! regression, with the sparse head pattern of AGF §3.3 (Kunin et al. 2025; the pattern of
//! von Oswald et al. 2023 / Zhang, Frei & Bartlett 2024).
//!
//! A sequence holds N context tokens z_n = (x_n, y_n) ∈ R^{D+1} and a query x_{N+1} ∈ R^D.
//! Head h has a value scalar v_h (the (y, y) entry of W_V) and key/query vectors
//! k_h, q_h ∈ R^D (the x-blocks of W_K, W_Q); it predicts
//!
//! ```text
//!   f_h(Z) = v_h · (Σ_{n≤N} y_n x_nᵀ k_h) · (x_{N+1}ᵀ q_h)        (cubic in θ_h: κ = 3)
//!   ŷ      = Σ_h f_h(Z) = sᵀ M x_{N+1},   s = Σ_n y_n x_n,   M = Σ_h v_h k_h q_hᵀ
//! ```
//!
//! **Input layout** (one sequence per row, `d = N(D+1) + D` columns):
//! `[x_1 (D), y_1, x_2 (D), y_2, …, x_N (D), y_N, x_{N+1} (D)]`; the target is y_{N+1}
//! (one column). Since ŷ depends on the context only through s = Σ_n y_n x_n, the model
//! built by [`LinearAttention::on_summaries`] takes the *summarised* rows `[s (D), x_{N+1} (D)]`
//! ([`LinearAttention::summarise`] turns sequences into them, computing s exactly as the
//! sequence model's forward pass does): bitwise the same predictions, loss and gradient,
//! without the O(N·D) context sum in every pass.
//!
//! **Parameters**: blocks `v` [H], `K` [H, D] (row h = k_h), `Q` [H, D] (row h = q_h).
//!
//! Forward (n sequences): S = [s_i] (n×D), X_q (n×D), A = S Kᵀ, B = X_q Qᵀ (n×H),
//! F_i = Σ_h v_h A_ih B_ih. Backward, given dF: ∂v_h = Σ_i dF_i A_ih B_ih,
//! dA_ih = dF_i v_h B_ih, dB_ih = dF_i v_h A_ih, ∂K = dAᵀ S, ∂Q = dBᵀ X_q.
//!
//! [`population_loss_and_grad`] is the exact population loss for x_n, x_{N+1} ~ N(0, Σ)
//! and task vector w ~ N(0, I_D) (AGF digest §7.2), with its gradient in (v, K, Q).
#![allow(clippy::needless_range_loop, clippy::useless_vec)] // index-heavy numeric kernels (shapes in comments)

use super::{layout, Model, NeuronSum, ParamBlock, Workspace};
use crate::linalg::{matmul, view, view_mut};
use faer::{Accum, Mat, MatRef};

/// The attention-only linear transformer (see module docs).
#[derive(Debug, Clone)]
pub struct LinearAttention {
    /// Token feature dimension D.
    pub dim: usize,
    /// Context length N.
    pub context: usize,
    /// Number of heads H.
    pub heads: usize,
    /// Input rows are summaries `[s, x_{N+1}]` (2D columns) instead of sequences.
    pub summaries: bool,
    blocks: Vec<ParamBlock>,
}

impl LinearAttention {
    /// The AGF §3.3 init direction (Kunin et al. 2025): v_h = |g|, k_h, q_h = g with
    /// g ~ N(0, 1) drawn in parameter order from the seeded stream `(seed, "init")`; the
    /// init at scale α is α times it. Shared by the `agf_attention` experiment and
    /// `featlab.agf.run("attention", …)`.
    pub fn init_direction(&self, seed: u64) -> Vec<f64> {
        let mut rng = crate::rng::stream(seed, "init");
        (0..self.num_params())
            .map(|j| {
                if j < self.heads {
                    crate::rng::normal(&mut rng).abs()
                } else {
                    crate::rng::normal(&mut rng)
                }
            })
            .collect()
    }

    /// H heads on D-dimensional tokens with N context tokens.
    pub fn new(dim: usize, context: usize, heads: usize) -> Self {
        let blocks = layout(vec![
            ("v".into(), vec![heads], 1.0),
            ("K".into(), vec![heads, dim], 1.0),
            ("Q".into(), vec![heads, dim], 1.0),
        ]);
        LinearAttention {
            dim,
            context,
            heads,
            summaries: false,
            blocks,
        }
    }

    /// The same model (same parameters, same N) on summarised rows `[s, x_{N+1}]` (2D
    /// columns, s = Σ_n y_n x_n; see [`LinearAttention::summarise`]).
    pub fn on_summaries(dim: usize, context: usize, heads: usize) -> Self {
        LinearAttention {
            summaries: true,
            ..LinearAttention::new(dim, context, heads)
        }
    }

    /// Column of the first query coordinate in an input row: N(D+1) for sequences, D for
    /// summaries.
    pub fn query_offset(&self) -> usize {
        if self.summaries {
            self.dim
        } else {
            self.context * (self.dim + 1)
        }
    }

    /// Summaries `[s_i, x_{N+1,i}]` (n × 2D) of sequences `x` (n × (N(D+1) + D), layout in
    /// the module docs) with s_i = Σ_{t<N} y_t x_t summed in token order: the input of
    /// [`LinearAttention::on_summaries`], on which it gives bitwise the predictions of
    /// [`LinearAttention::new`] on `x`. Errors on a wrong column count.
    pub fn summarise(&self, x: MatRef<'_, f64>) -> crate::Result<Mat<f64>> {
        let (d, n_ctx) = (self.dim, self.context);
        let want = n_ctx * (d + 1) + d;
        if x.ncols() != want {
            return Err(crate::Error::Shape(format!(
                "linear_attention: sequences need N(D+1)+D = {want} columns, got {}",
                x.ncols()
            )));
        }
        let mut s = Mat::zeros(x.nrows(), d);
        context_sums(x, d, n_ctx, &mut s);
        let off = n_ctx * (d + 1);
        Ok(Mat::from_fn(x.nrows(), 2 * d, |i, j| {
            if j < d {
                s[(i, j)]
            } else {
                x[(i, off + j - d)]
            }
        }))
    }

    /// Write one sequence into an input row (layout in the module docs; for a summary
    /// model the row is `[Σ_t y_t x_t, x_{N+1}]`).
    pub fn write_sequence(&self, xs: &[Vec<f64>], ys: &[f64], xq: &[f64], row: &mut [f64]) {
        let (d, n) = (self.dim, self.context);
        assert!(xs.len() == n && ys.len() == n && xq.len() == d && row.len() == self.input_dim());
        if self.summaries {
            row[..d].fill(0.0);
            for t in 0..n {
                for j in 0..d {
                    row[j] += ys[t] * xs[t][j];
                }
            }
            row[d..].copy_from_slice(xq);
            return;
        }
        for t in 0..n {
            row[t * (d + 1)..t * (d + 1) + d].copy_from_slice(&xs[t]);
            row[t * (d + 1) + d] = ys[t];
        }
        row[n * (d + 1)..].copy_from_slice(xq);
    }

    /// v (H), K (H×D), Q (H×D) views of the flat parameters.
    pub fn split<'a>(&self, p: &'a [f64]) -> (&'a [f64], MatRef<'a, f64>, MatRef<'a, f64>) {
        let (h, d) = (self.heads, self.dim);
        (
            &p[self.blocks[0].range()],
            view(&p[self.blocks[1].range()], h, d),
            view(&p[self.blocks[2].range()], h, d),
        )
    }

    /// The end-to-end bilinear map M = Σ_h v_h k_h q_hᵀ (D×D): ŷ = sᵀ M x_{N+1}.
    pub fn end_to_end(&self, p: &[f64]) -> Mat<f64> {
        let (v, k, q) = self.split(p);
        Mat::from_fn(self.dim, self.dim, |a, b| {
            (0..self.heads).map(|h| v[h] * k[(h, a)] * q[(h, b)]).sum()
        })
    }

    /// Exact population loss `L = ½ E[(ŷ − y_{N+1})²]` for x_n, x_{N+1} ~ N(0, Σ), w ~ N(0, I)
    /// (Wishart identity E[S B S] = N(N+1) ΣBΣ + N tr(BΣ) Σ with S = Σ_n x_n x_nᵀ):
    ///
    /// ```text
    ///   L(M) = ½ [ N(N+1) tr(Σ M Σ Mᵀ Σ) + N trΣ · tr(M Σ Mᵀ Σ) − 2N tr(Σ M Σ) + trΣ ]
    ///   ∇_M L = N(N+1) Σ² M Σ + N trΣ · Σ M Σ − N Σ²
    /// ```
    ///
    /// and the chain rule through M = Σ_h v_h k_h q_hᵀ: ∂v_h = k_hᵀ G q_h, ∂k_h = v_h G q_h,
    /// ∂q_h = v_h Gᵀ k_h with G = ∇_M L. Writes the gradient into `grad`, returns L.
    pub fn population_loss_and_grad(
        &self,
        p: &[f64],
        sigma: MatRef<'_, f64>,
        grad: &mut [f64],
    ) -> f64 {
        let (d, h) = (self.dim, self.heads);
        assert!(
            sigma.nrows() == d && sigma.ncols() == d,
            "population loss: Σ must be D×D"
        );
        let nn = self.context as f64;
        let m = self.end_to_end(p);
        let tr = (0..d).map(|i| sigma[(i, i)]).sum::<f64>();
        let s2 = sigma * sigma;
        let sms = sigma * &m * sigma; // Σ M Σ
        let s2ms = &s2 * &m * sigma; // Σ² M Σ
                                     // tr(Σ M Σ Mᵀ Σ) = ⟨Σ² M Σ, M⟩ ; tr(M Σ Mᵀ Σ) = ⟨Σ M Σ, M⟩ ; tr(Σ M Σ) = ⟨Σ², M⟩ (Σ symmetric)
        let inner = |a: &Mat<f64>, b: &Mat<f64>| -> f64 {
            (0..d)
                .flat_map(|i| (0..d).map(move |j| (i, j)))
                .map(|(i, j)| a[(i, j)] * b[(i, j)])
                .sum()
        };
        let loss = 0.5
            * (nn * (nn + 1.0) * inner(&s2ms, &m) + nn * tr * inner(&sms, &m)
                - 2.0 * nn * inner(&s2, &m)
                + tr);
        let g = Mat::from_fn(d, d, |i, j| {
            nn * (nn + 1.0) * s2ms[(i, j)] + nn * tr * sms[(i, j)] - nn * s2[(i, j)]
        });
        let (v, k, q) = self.split(p);
        let (gv, rest) = grad.split_at_mut(h);
        let (gk, gq) = rest.split_at_mut(h * d);
        for hh in 0..h {
            let mut dv = 0.0;
            for a in 0..d {
                let mut gq_a = 0.0; // (G q_h)_a
                let mut gtk_a = 0.0; // (Gᵀ k_h)_a
                for b in 0..d {
                    gq_a += g[(a, b)] * q[(hh, b)];
                    gtk_a += g[(b, a)] * k[(hh, b)];
                }
                dv += k[(hh, a)] * gq_a;
                gk[hh * d + a] = v[hh] * gq_a;
                gq[hh * d + a] = v[hh] * gtk_a;
            }
            gv[hh] = dv;
        }
        loss
    }
}

impl Model for LinearAttention {
    fn name(&self) -> &'static str {
        "linear_attention"
    }
    fn input_dim(&self) -> usize {
        self.query_offset() + self.dim
    }
    fn output_dim(&self) -> usize {
        1
    }
    fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }
    /// Buffers: S (n×D), A = S Kᵀ (n×H), B = X_q Qᵀ (n×H), dA (n×H), dB (n×H).
    fn workspace(&self, n: usize) -> Workspace {
        let (d, h) = (self.dim, self.heads);
        Workspace::new(
            n,
            1,
            vec![
                Mat::zeros(n, d),
                Mat::zeros(n, h),
                Mat::zeros(n, h),
                Mat::zeros(n, h),
                Mat::zeros(n, h),
            ],
        )
    }

    fn forward(&self, params: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) {
        assert_eq!(
            x.ncols(),
            self.input_dim(),
            "linear_attention: input has {} columns, the layout needs {} = {}",
            x.ncols(),
            if self.summaries { "2D" } else { "N(D+1)+D" },
            self.input_dim()
        );
        assert_eq!(
            x.nrows(),
            ws.n,
            "linear_attention: workspace sized for a different batch"
        );
        let (d, n_ctx, h) = (self.dim, self.context, self.heads);
        let par = ws.par;
        let (v, k, q) = self.split(params);
        let [s, a, b, ..] = &mut ws.bufs[..] else {
            unreachable!("workspace has 5 buffers")
        };
        if self.summaries {
            s.copy_from(x.subcols(0, d));
        } else {
            context_sums(x, d, n_ctx, s);
        }
        let xq = x.subcols(self.query_offset(), d);
        matmul(
            a.as_mut(),
            Accum::Replace,
            s.as_ref(),
            k.transpose(),
            1.0,
            par,
        );
        matmul(b.as_mut(), Accum::Replace, xq, q.transpose(), 1.0, par);
        let out = ws.out.col_as_slice_mut(0);
        out.fill(0.0);
        for (hh, &vh) in v.iter().enumerate().take(h) {
            let (ac, bc) = (a.col_as_slice(hh), b.col_as_slice(hh));
            for ((o, &ai), &bi) in out.iter_mut().zip(ac).zip(bc) {
                *o += vh * ai * bi;
            }
        }
    }

    fn backward(&self, params: &[f64], x: MatRef<'_, f64>, grad: &mut [f64], ws: &mut Workspace) {
        let (d, h) = (self.dim, self.heads);
        let par = ws.par;
        let (v, _, _) = self.split(params);
        let df = ws.d_out.col_as_slice(0);
        let [s, a, b, da, db] = &mut ws.bufs[..] else {
            unreachable!("workspace has 5 buffers")
        };
        for hh in 0..h {
            let (ac, bc) = (a.col_as_slice(hh), b.col_as_slice(hh));
            let mut gv = 0.0;
            {
                let dac = da.col_as_slice_mut(hh);
                for i in 0..df.len() {
                    gv += df[i] * ac[i] * bc[i];
                    dac[i] = df[i] * v[hh] * bc[i];
                }
            }
            let dbc = db.col_as_slice_mut(hh);
            for i in 0..df.len() {
                dbc[i] = df[i] * v[hh] * ac[i];
            }
            grad[hh] = gv;
        }
        let (_, rest) = grad.split_at_mut(h);
        let (gk, gq) = rest.split_at_mut(h * d);
        matmul(
            view_mut(gk, h, d),
            Accum::Replace,
            da.transpose(),
            s.as_ref(),
            1.0,
            par,
        );
        let xq = x.subcols(self.query_offset(), d);
        matmul(
            view_mut(gq, h, d),
            Accum::Replace,
            db.transpose(),
            xq,
            1.0,
            par,
        );
    }
}

/// `S[i, j] = Σ_{t<N} y_t x_{t,j}` for every sequence (row) i of `x`, summed in token
/// order t = 0, 1, … (the same sequence of roundings whatever the memory layout).
///
/// This is most of a forward pass (N·D products per sequence against H·D for the heads),
/// so a column-major `x` (the [`crate::data::Dataset`] layout) takes a loop over
/// contiguous columns that the compiler vectorises across sequences; any other layout
/// takes the strided loop. Both give bitwise the same S (products and sums are rounded
/// separately, never fused).
fn context_sums(x: MatRef<'_, f64>, d: usize, n_ctx: usize, s: &mut Mat<f64>) {
    let n = x.nrows();
    for j in 0..d {
        s.col_as_slice_mut(j).fill(0.0);
    }
    if x.row_stride() == 1 {
        for t in 0..n_ctx {
            let col = |c: usize| -> &[f64] {
                x.col(c)
                    .try_as_col_major()
                    .map(|c| c.as_slice())
                    .unwrap_or(&[])
            };
            let yc = &col(t * (d + 1) + d)[..n];
            for j in 0..d {
                let xc = &col(t * (d + 1) + j)[..n];
                let sc = &mut s.col_as_slice_mut(j)[..n];
                for i in 0..n {
                    sc[i] += yc[i] * xc[i];
                }
            }
        }
    } else {
        for t in 0..n_ctx {
            for j in 0..d {
                let xc = x.col(t * (d + 1) + j);
                let yc = x.col(t * (d + 1) + d);
                for (i, si) in s.col_as_slice_mut(j).iter_mut().enumerate() {
                    *si += yc[i] * xc[i];
                }
            }
        }
    }
}

/// Neuron h = head h, θ_h = (v_h, k_h, q_h); f_h is homogeneous of degree κ = 3.
impl NeuronSum for LinearAttention {
    fn num_neurons(&self) -> usize {
        self.heads
    }
    fn homogeneity(&self) -> u32 {
        3
    }
    fn neuron_params(&self, i: usize) -> Vec<usize> {
        let (d, h) = (self.dim, self.heads);
        let mut idx = vec![i];
        idx.extend((0..d).map(|j| h + i * d + j));
        idx.extend((0..d).map(|j| h + h * d + i * d + j));
        idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::in_context::{population_sequences, random_covariance, sample_sequences};
    use crate::model::Loss;
    use crate::rng::{normal_vec, stream};

    fn setup() -> (LinearAttention, Vec<f64>, Mat<f64>) {
        let model = LinearAttention::new(3, 5, 4);
        let p = normal_vec(&mut stream(1, "p"), model.num_params(), 0.7);
        let sigma = random_covariance(&mut stream(2, "sigma"), &[1.3, 0.6, 0.2]).unwrap();
        (model, p, sigma)
    }

    #[test]
    fn sampled_loss_gradient_matches_finite_differences() {
        let (model, p, sigma) = setup();
        let data =
            sample_sequences(&mut stream(3, "data"), sigma.as_ref(), model.context, 7).unwrap();
        let err = crate::model::tests::grad_check(&model, &p, &data.x, &data.y, Loss::Mse);
        assert!(err <= 1e-6, "max relative gradient error {err:.3e}");
    }

    /// The summary model on summarised rows is bitwise the sequence model on the sequences
    /// (loss, gradient, predictions), for i.i.d. sequences (every context token non-zero)
    /// and for the moment-matched population set.
    #[test]
    fn summary_model_is_bitwise_the_sequence_model() {
        let (model, p, sigma) = setup();
        let summary = LinearAttention::on_summaries(model.dim, model.context, model.heads);
        assert_eq!(summary.input_dim(), 2 * model.dim);
        let sampled =
            sample_sequences(&mut stream(6, "data"), sigma.as_ref(), model.context, 9).unwrap();
        let population = population_sequences(sigma.as_ref(), model.context).unwrap();
        for data in [sampled, population] {
            let xs = model.summarise(data.x.as_ref()).unwrap();
            assert_eq!((xs.nrows(), xs.ncols()), (data.n(), 2 * model.dim));
            let mut g_seq = vec![0.0; p.len()];
            let mut g_sum = vec![0.0; p.len()];
            let mut ws_seq = model.workspace(data.n());
            let mut ws_sum = summary.workspace(data.n());
            let l_seq = model.loss_and_grad(
                &p,
                data.x.as_ref(),
                data.y.as_ref(),
                Loss::Mse,
                &mut g_seq,
                &mut ws_seq,
            );
            let l_sum = summary.loss_and_grad(
                &p,
                xs.as_ref(),
                data.y.as_ref(),
                Loss::Mse,
                &mut g_sum,
                &mut ws_sum,
            );
            assert_eq!(l_seq.to_bits(), l_sum.to_bits(), "{l_seq} vs {l_sum}");
            for (a, b) in g_seq.iter().zip(&g_sum) {
                assert_eq!(a.to_bits(), b.to_bits(), "gradient {a} vs {b}");
            }
            // the summarised query is the sequence's query, s the context sum
            for i in 0..data.n() {
                for j in 0..model.dim {
                    assert_eq!(
                        xs[(i, model.dim + j)],
                        data.x[(i, model.query_offset() + j)]
                    );
                    let s: f64 = (0..model.context)
                        .map(|t| {
                            data.x[(i, t * (model.dim + 1) + model.dim)]
                                * data.x[(i, t * (model.dim + 1) + j)]
                        })
                        .sum();
                    assert!((xs[(i, j)] - s).abs() <= 1e-12 * (1.0 + s.abs()));
                }
            }
        }
        let err = model
            .summarise(Mat::<f64>::zeros(2, 7).as_ref())
            .unwrap_err();
        assert!(err.to_string().contains("columns"), "{err}");
    }

    #[test]
    fn summary_model_gradient_matches_finite_differences() {
        let (model, p, sigma) = setup();
        let summary = LinearAttention::on_summaries(model.dim, model.context, model.heads);
        let data =
            sample_sequences(&mut stream(7, "data"), sigma.as_ref(), model.context, 6).unwrap();
        let xs = model.summarise(data.x.as_ref()).unwrap();
        let err = crate::model::tests::grad_check(&summary, &p, &xs, &data.y, Loss::Mse);
        assert!(err <= 1e-6, "max relative gradient error {err:.3e}");
    }

    #[test]
    fn summary_rows_from_write_sequence() {
        let (model, _, _) = setup();
        let summary = LinearAttention::on_summaries(model.dim, model.context, model.heads);
        let mut rng = stream(8, "seq");
        let xs: Vec<Vec<f64>> = (0..model.context)
            .map(|_| normal_vec(&mut rng, model.dim, 1.0))
            .collect();
        let ys = normal_vec(&mut rng, model.context, 1.0);
        let xq = normal_vec(&mut rng, model.dim, 1.0);
        let mut row = vec![0.0; model.input_dim()];
        model.write_sequence(&xs, &ys, &xq, &mut row);
        let mut srow = vec![0.0; summary.input_dim()];
        summary.write_sequence(&xs, &ys, &xq, &mut srow);
        let from_seq = model
            .summarise(Mat::from_fn(1, row.len(), |_, j| row[j]).as_ref())
            .unwrap();
        for j in 0..2 * model.dim {
            assert_eq!(srow[j].to_bits(), from_seq[(0, j)].to_bits(), "column {j}");
        }
    }

    #[test]
    fn forward_is_s_transpose_m_xq() {
        let (model, p, sigma) = setup();
        let data =
            sample_sequences(&mut stream(4, "data"), sigma.as_ref(), model.context, 5).unwrap();
        let out = model.predict(&p, data.x.as_ref());
        let m = model.end_to_end(&p);
        let (d, n) = (model.dim, model.context);
        for i in 0..5 {
            let s: Vec<f64> = (0..d)
                .map(|a| {
                    (0..n)
                        .map(|t| data.x[(i, t * (d + 1) + d)] * data.x[(i, t * (d + 1) + a)])
                        .sum()
                })
                .collect();
            let xq: Vec<f64> = (0..d)
                .map(|b| data.x[(i, model.query_offset() + b)])
                .collect();
            let want: f64 = (0..d)
                .flat_map(|a| (0..d).map(move |b| (a, b)))
                .map(|(a, b)| s[a] * m[(a, b)] * xq[b])
                .sum();
            assert!(
                (out[(i, 0)] - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "{} vs {want}",
                out[(i, 0)]
            );
        }
    }

    #[test]
    fn population_gradient_matches_finite_differences() {
        let (model, p, sigma) = setup();
        let mut g = vec![0.0; p.len()];
        model.population_loss_and_grad(&p, sigma.as_ref(), &mut g);
        let mut scratch = vec![0.0; p.len()];
        let gmax = g.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        for k in 0..p.len() {
            let h = 1e-4 * (1.0 + p[k].abs());
            let mut at = |delta: f64| {
                let mut q = p.clone();
                q[k] += delta;
                model.population_loss_and_grad(&q, sigma.as_ref(), &mut scratch)
            };
            let fd = (-at(2.0 * h) + 8.0 * at(h) - 8.0 * at(-h) + at(-2.0 * h)) / (12.0 * h);
            let rel = (g[k] - fd).abs() / g[k].abs().max(fd.abs()).max(1e-6 * gmax);
            assert!(
                rel <= 1e-7,
                "param {k}: analytic {} vs fd {fd} (rel {rel:.2e})",
                g[k]
            );
        }
    }

    #[test]
    fn moment_matched_sequences_reproduce_the_population_loss_and_gradient() {
        let (model, p, sigma) = setup();
        let data = population_sequences(sigma.as_ref(), model.context).unwrap();
        assert_eq!(data.n(), 10);
        for scale in [0.0, 0.3, 1.0] {
            let q: Vec<f64> = p.iter().map(|v| v * scale).collect();
            let mut gp = vec![0.0; p.len()];
            let lp = model.population_loss_and_grad(&q, sigma.as_ref(), &mut gp);
            let mut ge = vec![0.0; p.len()];
            let mut ws = model.workspace(data.n());
            let le = model.loss_and_grad(
                &q,
                data.x.as_ref(),
                data.y.as_ref(),
                Loss::Mse,
                &mut ge,
                &mut ws,
            );
            assert!(
                (lp - le).abs() <= 1e-12 * lp.abs().max(1.0),
                "scale {scale}: population {lp} vs moment set {le}"
            );
            for (a, b) in gp.iter().zip(&ge) {
                assert!(
                    (a - b).abs() <= 1e-10 * (1.0 + a.abs()),
                    "gradient {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn population_loss_agrees_with_monte_carlo() {
        // Unbiased MC estimate of ½E[(ŷ − y)²] from 40 000 fresh sequences; the closed form
        // must lie within 4 standard errors, and the standard error must be small (< 2%).
        let (model, p, sigma) = setup();
        let q: Vec<f64> = p.iter().map(|v| 0.4 * v).collect();
        let mut g = vec![0.0; p.len()];
        let lp = model.population_loss_and_grad(&q, sigma.as_ref(), &mut g);
        let n = 40_000;
        let data =
            sample_sequences(&mut stream(9, "mc"), sigma.as_ref(), model.context, n).unwrap();
        let out = model.predict(&q, data.x.as_ref());
        let per: Vec<f64> = (0..n)
            .map(|i| 0.5 * (out[(i, 0)] - data.y[(i, 0)]).powi(2))
            .collect();
        let mean = per.iter().sum::<f64>() / n as f64;
        let var = per.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let se = (var / n as f64).sqrt();
        assert!(
            se < 0.02 * mean,
            "MC standard error too large to be a test: {se} vs {mean}"
        );
        assert!(
            (mean - lp).abs() < 4.0 * se,
            "MC {mean} ± {se} vs closed form {lp}"
        );
    }

    #[test]
    fn heads_are_cubic_neurons() {
        let (model, p, sigma) = setup();
        let data =
            sample_sequences(&mut stream(5, "data"), sigma.as_ref(), model.context, 4).unwrap();
        let full = model.predict(&p, data.x.as_ref());
        let mut sum = [0.0; 4];
        for h in 0..model.heads {
            let idx = model.neuron_params(h);
            assert_eq!(idx.len(), 1 + 2 * model.dim);
            let mut only = vec![0.0; p.len()];
            for &i in &idx {
                only[i] = p[i];
            }
            let f1 = model.predict(&only, data.x.as_ref());
            for &i in &idx {
                only[i] *= 1.7;
            }
            let f2 = model.predict(&only, data.x.as_ref());
            for r in 0..4 {
                assert!(
                    (f2[(r, 0)] - 1.7f64.powi(3) * f1[(r, 0)]).abs()
                        <= 1e-12 * (1.0 + f2[(r, 0)].abs())
                );
                sum[r] += f1[(r, 0)];
            }
        }
        for r in 0..4 {
            assert!((sum[r] - full[(r, 0)]).abs() <= 1e-12 * (1.0 + sum[r].abs()));
        }
    }
}
