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
//!
//! With a scalar output (c = 1) the same passes run row block by row block, fused with the
//! ½-MSE loss in `loss_and_grad` ([`super::two_layer_rows`]).

use super::activation::with_act_kernel;
use super::two_layer_rows::{run_batch_on, Batch, Pass, RowBlocks, Weights};
use super::two_layer_tiles::{lane_scratch_len, Tier};
use super::{
    layout, Activation, LayerStack, Layered, Loss, Model, NeuronSum, ParamBlock, Workspace,
};
use crate::linalg::{matmul, view, view_mut};
use faer::{Accum, Mat, MatRef};

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
    /// The parameters as the row-blocked scalar-output kernels take them.
    fn weights<'a>(&self, p: &'a [f64]) -> Weights<'a> {
        Weights {
            w1t: self.w1(p).transpose(),
            a: &p[self.blocks[self.blocks.len() - 1].range()],
            bias: self.bias.then(|| &p[self.blocks[1].range()]),
            mult1: self.mult1,
            mult2: self.mult2,
        }
    }

    /// One row-blocked pass of the scalar-output net (see [`super::two_layer_rows`]);
    /// returns Σ r² for the fused ½-MSE pass.
    fn scalar_pass(
        &self,
        params: &[f64],
        x: MatRef<'_, f64>,
        pass: Pass<'_>,
        grad: &mut [f64],
        ws: &mut Workspace,
    ) -> f64 {
        self.scalar_pass_on(Tier::detect(), params, x, pass, grad, ws)
    }

    /// [`TwoLayer::scalar_pass`] with the kernels of `tier` (tests compare the tiers).
    pub(crate) fn scalar_pass_on(
        &self,
        tier: Tier,
        params: &[f64],
        x: MatRef<'_, f64>,
        pass: Pass<'_>,
        grad: &mut [f64],
        ws: &mut Workspace,
    ) -> f64 {
        let geo = RowBlocks::new(x.nrows(), self.width);
        let Workspace {
            out,
            d_out,
            vecs,
            par,
            spin,
            ..
        } = ws;
        let [z, h, dz, partials, lane_sq, scratch, panel] = &mut vecs[..] else {
            unreachable!("two_layer: scalar-output workspace has seven buffers")
        };
        let bufs = Batch {
            z,
            h,
            dz,
            out: out.col_as_slice_mut(0),
            d_out: d_out.col_as_slice_mut(0),
            partials,
            lane_sq,
            scratch,
            panel,
            spin,
        };
        let net = self.weights(params);
        with_act_kernel!(self.activation, K => run_batch_on::<K>(tier, &geo, net, x, pass, bufs, grad, *par))
    }

    fn check_input(&self, x: MatRef<'_, f64>, ws: &Workspace) {
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
    }

    fn w2<'a>(&self, p: &'a [f64]) -> MatRef<'a, f64> {
        view(
            &p[self.blocks[self.blocks.len() - 1].range()],
            self.c,
            self.width,
        )
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
            // vecs: Z, H, dZ (n×m, row block after row block, each block column-major);
            // the lanes' partial gradients (lanes × P, when there are several lanes) and
            // their Σ r², the lanes' scratch and W₁ packed (see two_layer_rows, _tiles).
            let geo = RowBlocks::new(n, m);
            let partials = if geo.lanes > 1 {
                geo.lanes * self.num_params()
            } else {
                0
            };
            let mut ws = Workspace::new(n, 1, Vec::new());
            ws.vecs = vec![
                vec![0.0; n * m],
                vec![0.0; n * m],
                vec![0.0; n * m],
                vec![0.0; partials],
                vec![0.0; geo.lanes],
                vec![0.0; geo.lanes * lane_scratch_len(&geo, self.d)],
                vec![0.0; m * self.d],
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
        self.check_input(x, ws);
        if self.c == 1 {
            self.scalar_pass(params, x, Pass::Forward, &mut [], ws);
            return;
        }
        let par = ws.par;
        let m = self.width;
        let bias = if self.bias {
            Some(&params[self.blocks[1].range()])
        } else {
            None
        };
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
        if c == 1 {
            self.check_input(x, ws);
            self.scalar_pass(params, x, Pass::Backward, grad, ws);
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

    /// For c = 1 and ½-MSE, forward, loss and backward run fused, one row block at a time
    /// (see [`super::two_layer_rows`]); the gradient is bitwise that of forward + loss +
    /// backward. Otherwise the three passes run one after the other.
    fn loss_and_grad(
        &self,
        params: &[f64],
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        loss: Loss,
        grad: &mut [f64],
        ws: &mut Workspace,
    ) -> f64 {
        if self.c == 1 && loss == Loss::Mse {
            if let Some(yc) = y.col(0).try_as_col_major() {
                self.check_input(x, ws);
                assert_eq!(y.nrows(), x.nrows(), "loss: output and target rows differ");
                assert_eq!(y.ncols(), 1, "loss: output and target columns differ");
                let pass = Pass::MseValueAndGrad { y: yc.as_slice() };
                let sq = self.scalar_pass(params, x, pass, grad, ws);
                return 0.5 * sq / x.nrows() as f64;
            }
        }
        super::loss_and_grad_by_passes(self, params, x, y, loss, grad, ws)
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
    /// The exact Hessian of [`TwoLayer::neuron_loss_hessian`] (module `two_layer_hessian`).
    fn neuron_loss_hessian(
        &self,
        params: &[f64],
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        neurons: &[usize],
        out: faer::MatMut<'_, f64>,
    ) -> crate::Result<bool> {
        TwoLayer::neuron_loss_hessian(self, params, x, y, neurons, out)?;
        Ok(true)
    }
    /// The net of width |`neurons`| with the same multipliers and activation (no biases,
    /// as for every two-layer neuron sum).
    fn restricted(&self, neurons: &[usize]) -> Option<Box<dyn NeuronSum>> {
        if self.bias || neurons.iter().any(|&i| i >= self.width) {
            return None;
        }
        Some(Box::new(
            TwoLayer::new(self.d, neurons.len(), self.c, self.activation, false)
                .multipliers(self.mult1, self.mult2),
        ))
    }
}

/// The initial direction of the quadratic net f = W₂(W₁x)² of AGF §3.4 (Kunin et al.
/// 2025): W₁ (width × d) ~ N(0, 1/d), then W₂ (c × width) ~ N(0, 1/c), from the seeded
/// stream `(seed, "init")`; the init is α times it (u, v ~ N(0, α²/(2p)), w ~ N(0, α²/p)
/// for modular addition, d = 2p, c = p). Shared with the Python bindings so that
/// `featlab.agf.run("modular", …)` starts from the preset's init bit for bit.
pub fn quadratic_init_direction(seed: u64, d: usize, width: usize, c: usize) -> Vec<f64> {
    let mut rng = crate::rng::stream(seed, "init");
    let mut dir = crate::rng::normal_vec(&mut rng, width * d, 1.0 / (d as f64).sqrt());
    dir.extend(crate::rng::normal_vec(
        &mut rng,
        c * width,
        1.0 / (c as f64).sqrt(),
    ));
    dir
}
