//! Models: differentiable architectures whose parameters live in one flat `f64` vector,
//! so that every optimiser and the gradient-flow integrator work on any model alike.
//!
//! One architecture per file, forward and backward side by side (micrograd / nanoGPT
//! style). Every gradient is checked against central finite differences in
//! `model::tests`.

pub mod activation;
pub mod config;
pub mod deep_linear;
pub mod diagonal;
pub mod layered;
pub mod linear_attention;
pub mod loss;
pub mod mlp;
pub mod parametrization;
pub mod quadratic_rnn;
mod simd8;
pub mod two_layer;
mod two_layer_hessian;
mod two_layer_rows;
mod two_layer_tiles;

pub use activation::Activation;
pub use config::ModelConfig;
pub use layered::{LayerStack, Layered};
pub use loss::Loss;
pub use parametrization::Parametrization;

use faer::{Mat, MatRef, Par};

/// One named parameter tensor inside the flat parameter vector, stored in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamBlock {
    /// Name used for output files (`params/final/<name>.npy`) and per-layer options
    /// (`W1`, `b1`, `W2`, …).
    pub name: String,
    /// Tensor shape (a weight matrix `W_l` is `[fan_out, fan_in]`).
    pub shape: Vec<usize>,
    /// Offset of the first element in the flat vector.
    pub offset: usize,
    /// Learning-rate multiplier of this block (from the parametrisation and per-layer
    /// options): the stepper uses `lr · lr_mult`, gradient flow uses `dθ/dt = −lr_mult ∇L`.
    pub lr_mult: f64,
}

impl ParamBlock {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True when the block holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The block's range in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Lay out blocks contiguously from `(name, shape, lr_mult)` triples.
pub fn layout(spec: Vec<(String, Vec<usize>, f64)>) -> Vec<ParamBlock> {
    let mut off = 0;
    spec.into_iter()
        .map(|(name, shape, lr_mult)| {
            let b = ParamBlock {
                name,
                shape,
                offset: off,
                lr_mult,
            };
            off += b.len();
            b
        })
        .collect()
}

/// Scratch memory of a model for a batch of `n` samples: the output `out` (n × c), the
/// output gradient `d_out` (n × c) and model-specific buffers. Allocated once by
/// [`Model::workspace`]; forward/backward never allocate.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Batch size these buffers are sized for.
    pub n: usize,
    /// Network output f(x) (n × c), written by `forward`.
    pub out: Mat<f64>,
    /// ∂L/∂f (n × c), read by `backward`.
    pub d_out: Mat<f64>,
    /// Model-specific buffers (pre-activations, activations, back-propagated signals).
    pub bufs: Vec<Mat<f64>>,
    /// Model-specific plain buffers (column-major matrices with stride = rows, for fused
    /// kernels that slice columns directly).
    pub vecs: Vec<Vec<f64>>,
    /// A small scratch vector (e.g. scaled output weights), reused across steps.
    pub bufs_scratch: Vec<f64>,
    /// Parallelism for the GEMMs of this model (results do not depend on it).
    pub par: Par,
    /// A spinning helper thread for passes of a few microseconds on two threads (started
    /// on first use; a clone starts without one).
    pub spin: crate::spin_join::SpinJoinSlot,
}

impl Workspace {
    /// Output/gradient buffers plus `bufs`, sequential.
    pub fn new(n: usize, c: usize, bufs: Vec<Mat<f64>>) -> Self {
        Workspace {
            n,
            out: Mat::zeros(n, c),
            d_out: Mat::zeros(n, c),
            bufs,
            vecs: Vec::new(),
            bufs_scratch: Vec::new(),
            par: Par::Seq,
            spin: Default::default(),
        }
    }
}

/// Loss and gradient by three passes: `forward`, the loss and its output gradient
/// `dF = ∂L/∂f` (into `ws.d_out`), then `backward`.
pub fn loss_and_grad_by_passes<M: Model + ?Sized>(
    model: &M,
    params: &[f64],
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    loss: Loss,
    grad: &mut [f64],
    ws: &mut Workspace,
) -> f64 {
    model.forward(params, x, ws);
    let l = loss.value_and_grad(ws.out.as_ref(), y, ws.d_out.as_mut());
    model.backward(params, x, grad, ws);
    l
}

/// A differentiable model `f(x; θ)` with θ a flat vector laid out in [`Model::blocks`].
pub trait Model: Send + Sync {
    /// Short architecture name (`two_layer`, `deep_linear`, `diagonal`, `mlp`).
    fn name(&self) -> &'static str;
    /// Input dimension d.
    fn input_dim(&self) -> usize;
    /// Output dimension c.
    fn output_dim(&self) -> usize;
    /// Parameter blocks, contiguous and in order.
    fn blocks(&self) -> &[ParamBlock];
    /// Total number of parameters.
    fn num_params(&self) -> usize {
        self.blocks()
            .last()
            .map(|b| b.offset + b.len())
            .unwrap_or(0)
    }
    /// Scratch buffers for batches of `n` samples.
    fn workspace(&self, n: usize) -> Workspace;
    /// Forward pass on `x` (n × d): writes `ws.out` and caches what backward needs.
    fn forward(&self, params: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace);
    /// Backward pass: given `ws.d_out = ∂L/∂f` and the caches of the last `forward` on the
    /// same `x`, writes `∂L/∂θ` into `grad` (overwriting it).
    fn backward(&self, params: &[f64], x: MatRef<'_, f64>, grad: &mut [f64], ws: &mut Workspace);

    /// Loss and gradient in one call (default: [`loss_and_grad_by_passes`]). Allocation-free.
    fn loss_and_grad(
        &self,
        params: &[f64],
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        loss: Loss,
        grad: &mut [f64],
        ws: &mut Workspace,
    ) -> f64 {
        loss_and_grad_by_passes(self, params, x, y, loss, grad, ws)
    }

    /// Loss only (forward pass).
    fn loss(
        &self,
        params: &[f64],
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        loss: Loss,
        ws: &mut Workspace,
    ) -> f64 {
        self.forward(params, x, ws);
        loss.value_and_grad(ws.out.as_ref(), y, ws.d_out.as_mut())
    }

    /// Predictions f(x) (n × c), allocating.
    fn predict(&self, params: &[f64], x: MatRef<'_, f64>) -> Mat<f64> {
        let mut ws = self.workspace(x.nrows());
        self.forward(params, x, &mut ws);
        ws.out
    }

    /// Weight matrices of a layered model in order (`W1 … WL`, each fan_out × fan_in),
    /// or empty when the model has no layer structure (diagonal nets).
    fn layer_weights<'a>(&self, params: &'a [f64]) -> Vec<MatRef<'a, f64>> {
        let _ = params;
        Vec::new()
    }

    /// This model as a sum of homogeneous neurons, when it is one (AGF; per-neuron norms).
    fn as_neuron_sum(&self) -> Option<&dyn NeuronSum> {
        None
    }

    /// The model as a [`Layered`] one (deep linear, MLP, two-layer), if it is.
    fn as_layered(&self) -> Option<&dyn Layered> {
        None
    }
}

/// Models that are a sum over neurons, `f(x; Θ) = Σ_i f_i(x; θ_i)`, each `f_i` positively
/// homogeneous of degree κ in its own parameters: `f_i(x; λθ) = λ^κ f_i(x; θ)` for λ > 0
/// (AGF, Kunin et al. 2025, §1.1). κ = 2 for linear/ReLU two-layer nets and diagonal nets,
/// κ = 3 for quadratic nets and linear attention heads.
///
/// Because f is linear in the neurons' outputs, one forward/backward pass of the whole
/// model with parameters Θ gives every neuron's utility gradient at once:
/// with `d_out = −r/n`, backward returns `∂/∂θ_i [(1/n) Σ_n ⟨f_i(x_n; θ_i), r_n⟩]` in neuron
/// i's slots, and by Euler's identity `U_i = ⟨θ_i, ∇U_i⟩ / κ`.
pub trait NeuronSum: Model {
    /// Number of neurons H.
    fn num_neurons(&self) -> usize;
    /// Homogeneity degree κ of each neuron in its own parameters.
    fn homogeneity(&self) -> u32;
    /// Indices into the flat parameter vector of neuron i's parameters θ_i (fixed order).
    fn neuron_params(&self, i: usize) -> Vec<usize>;
    /// Exact Hessian `∇²_{θ_A} L` of the ½-MSE loss `L = (1/2n) Σ_s ‖f(x_s; Θ) − y_s‖²` with
    /// respect to the parameters of `neurons` (in that order, each in
    /// [`neuron_params`](NeuronSum::neuron_params) order; the other neurons fixed), written
    /// into `out` (k × k, k = Σ |θ_i|). Returns `Ok(false)` (the default) when the model has
    /// no exact Hessian: callers then use finite differences of the gradient. Used for the
    /// stiff solver's Jacobian in AGF cost phases (Kunin et al. 2025, §2.5).
    fn neuron_loss_hessian(
        &self,
        _params: &[f64],
        _x: MatRef<'_, f64>,
        _y: MatRef<'_, f64>,
        _neurons: &[usize],
        _out: faer::MatMut<'_, f64>,
    ) -> crate::Result<bool> {
        Ok(false)
    }
    /// The same model with only `neurons` kept, in that order: neuron j of the result is
    /// neuron `neurons[j]` here, with its parameters in the same
    /// [`neuron_params`](NeuronSum::neuron_params) order, and the result has no other
    /// parameters. With the left-out neurons at zero (zero output) both models compute the
    /// same function, so a sum over an active subset costs ∝ |subset| instead of H — AGF's
    /// cost phases, where dormant neurons are frozen at zero (Kunin et al. 2025, §2.5).
    /// `None` (the default) when the model cannot be restricted.
    fn restricted(&self, _neurons: &[usize]) -> Option<Box<dyn NeuronSum>> {
        None
    }
}

#[cfg(test)]
mod tests;
