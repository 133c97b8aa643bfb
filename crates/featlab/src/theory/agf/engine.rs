//! The generic AGF engine: alternating utility maximisation (an ODE on the sphere for every
//! dormant neuron, with exact threshold crossings) and cost minimisation on the active set
//! (Kunin et al. 2025, §2, Algorithm 1).
//!
//! State per neuron i (κ = homogeneity of each neuron in its own parameters θ_i):
//! * unit direction θ̄_i and accumulated utility S_i(t) = ∫ κ Ū_i ds (dormant neurons);
//! * initial norm ρ0_i = ‖θ_i(0)‖ and threshold c_i:
//!   κ = 2: c_i = log(1/ρ0_i);  κ > 2: c_i = ρ0_i^{2−κ}/(κ−2) ([`Threshold::BlowUp`], the
//!   finite-time blow-up of the radial ODE) or (ρ0_i^{2−κ} − 1)/(κ−2) ([`Threshold::UnitNorm`],
//!   "norm reaches 1", what the authors' code uses for κ = 3: 1/ρ0 − 1);
//! * norm in closed form from S_i: κ = 2: ρ = ρ0 e^{S};  κ > 2: ρ = (ρ0^{2−κ} − (κ−2)S)^{−1/(κ−2)};
//! * active flag; active neurons carry their actual parameters.
//!
//! Utility phase (time in gradient-flow units, η = 1): with r = y − f_active the residual,
//! U_i(θ) = (1/n) Σ_n ⟨f_i(x_n; θ), r_n⟩, Ū_i = U_i(θ̄_i) and ∇U_i = ∇_θ U_i(θ̄_i),
//!     dθ̄_i/dt = ρ_i^{κ−2} (∇U_i − κ Ū_i θ̄_i),     dS_i/dt = κ Ū_i,
//! (Euler: ⟨θ̄, ∇U(θ̄)⟩ = κ Ū, so ∇U − κŪθ̄ is the tangent part). The ∇U_i come from a
//! [`UtilityGradient`] (generic: one forward/backward pass of the whole model with the
//! dormant directions as parameters and `d_out = r/n`; linear/diagonal nets: one residual
//! moment per phase, [`super::utility`]). The ODE is integrated by an [`RkStepper`]
//! (`tableau`, adaptive or `fixed_dt`); after each accepted step every dormant neuron with
//! S_i(t0) < c_i ≤ S_i(t1) is located exactly by Brent's method on the dense output. For
//! κ = 2 neurons with quadratic utilities (U_i = ½θᵀK_iθ) the phase is solved exactly
//! instead ([`super::quadratic`], `exact_quadratic`).
//!
//! Cost phase: a [`CostMinimizer`] fits the active set (closed-form least squares for
//! linear and diagonal nets, else adaptive gradient flow); neurons it returns — or whose
//! norm collapses below `collapse_tol` — go back to the dormant set with S_i set from their
//! norm (so the closed-form norm is continuous) and their current direction.

use super::quadratic::QuadraticNeuron;
use super::roots::brent;
use super::utility::{BackpropUtility, UtilityGradient};
use crate::data::Dataset;
use crate::linalg::norm2;
use crate::model::{NeuronSum, Workspace};
use crate::train::ode::{PidController, RkStepper, Tableau, VectorField};
use crate::train::RunContext;
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};

/// Activation threshold of κ > 2 neurons (κ = 2 always uses c = log(1/ρ0)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// c = ρ0^{2−κ}/(κ−2): the time at which the dormant norm blows up (paper, §2.4).
    #[default]
    BlowUp,
    /// c = (ρ0^{2−κ} − 1)/(κ−2): the norm reaches 1 (authors' code: 1/ρ0 − 1 for κ = 3).
    UnitNorm,
}

/// Options of [`run_agf`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgfOptions {
    /// Relative tolerance of the utility ODE (DOPRI5).
    pub rtol: f64,
    /// Absolute tolerance of the utility ODE (states are unit directions and utilities).
    pub atol: f64,
    /// Horizon: stop when no neuron activates before this time.
    pub t_max: f64,
    /// At most this many rounds.
    pub max_rounds: usize,
    /// Threshold convention for κ > 2.
    pub threshold: Threshold,
    /// Neurons whose crossings lie within `t*·(1 + tie_rtol)` of the first one activate in
    /// the same round (lowest index first).
    pub tie_rtol: f64,
    /// Other dormant neurons predicted (at their current rate) to cross within
    /// `t*·near_tie_rtol` after the activation are reported as near-ties.
    pub near_tie_rtol: f64,
    /// An active neuron whose norm falls below this after cost minimisation returns to
    /// the dormant set.
    pub collapse_tol: f64,
    /// Stop when the loss is ≤ `loss_rtol` × the initial loss.
    pub loss_rtol: f64,
    /// Stop when every dormant neuron has `|dθ̄/dt| ≤ stationary_tol·u0` and
    /// `dS/dt ≤ stationary_tol·u0` (u0 = largest initial |κŪ|): no neuron can activate.
    pub stationary_tol: f64,
    /// Step budget of one utility phase.
    pub max_steps: u64,
    /// Fixed step size for the utility ODE (DOPRI5 without error control; dense output and
    /// root finding unchanged). For vector fields with discontinuities — ReLU utilities on
    /// a finite dataset jump where a neuron's hyperplane crosses a sample, and a maximiser
    /// lying on such a kink makes adaptive steps collapse (sliding mode).
    pub fixed_dt: Option<f64>,
    /// Runge–Kutta tableau of the utility ODE (`dopri5`, `tsit5`, `bosh3`, `heun_euler`).
    /// With `fixed_dt` on a discontinuous field a high order buys nothing: `bosh3` (3
    /// evaluations per step, FSAL) costs half of `dopri5` (6).
    pub tableau: String,
    /// For κ = 2 neurons whose utility is a quadratic form (the utility gradient provides
    /// [`UtilityGradient::quadratic_form`]: linear and diagonal nets), solve each utility
    /// phase exactly (matrix exponential in eigen-coordinates + Brent on the crossing,
    /// [`super::quadratic`]) instead of integrating the ODE.
    pub exact_quadratic: bool,
    /// Carry the dormant neurons through cost minimisation (a variant, off by default): the
    /// cost phase then runs on *every* neuron, dormant ones at their closed-form norms
    /// ρ_i = ‖θ_i(0)‖e^{S_i} (κ = 2) along θ̄_i, as in gradient flow's fast phase, where a
    /// κ = 2 dormant neuron keeps turning at a norm-independent rate and neurons parallel
    /// to an active one move with it. Afterwards a formerly dormant neuron joins the active
    /// set (reported in `activated`) when its norm is ≥ `coactivation_norm`; otherwise it
    /// stays dormant with its new direction and S_i from its new norm. Needs a cost
    /// minimiser that moves every neuron it is given (gradient flow).
    pub carry_dormant: bool,
    /// Norm at which a carried dormant neuron counts as active after a cost phase.
    pub coactivation_norm: f64,
    /// Entry norm ρ_e ∈ (0, 1) of an activated neuron (unset: 1). Unset, a neuron crossing
    /// its threshold at t* enters the cost phase at norm 1 along θ̄(t*). Set, it enters at
    /// norm ρ_e along θ̄(t_e), its direction when its closed-form norm passed ρ_e (when
    /// S = [`utility_for_norm`](ρ0, ρ_e)); the rest of its growth, and the active neurons'
    /// response to it, is then gradient flow in the cost phase, as in gradient flow itself.
    /// Jump times are unchanged (still the threshold crossing t*). Needs a cost minimiser
    /// that lets a small neuron grow (gradient flow); κ = 2 utility phases then use the
    /// ODE instead of `exact_quadratic`. Why: docs/agf.md, agf-modular, *Why round 6
    /// (and round 5) disagree*.
    pub entry_norm: Option<f64>,
}

impl Default for AgfOptions {
    fn default() -> Self {
        AgfOptions {
            rtol: 1e-10,
            atol: 1e-12,
            t_max: 1e6,
            max_rounds: 100,
            threshold: Threshold::BlowUp,
            tie_rtol: 1e-9,
            near_tie_rtol: 1e-2,
            collapse_tol: 1e-6,
            loss_rtol: 1e-9,
            stationary_tol: 1e-9,
            max_steps: 10_000_000,
            fixed_dt: None,
            tableau: "dopri5".into(),
            exact_quadratic: true,
            carry_dormant: false,
            coactivation_norm: 0.1,
            entry_norm: None,
        }
    }
}

/// An active neuron sent back to the dormant set by a cost minimiser, with the direction
/// and norm it restarts from (its accumulated utility is set so that the closed-form norm
/// equals `norm`).
#[derive(Debug, Clone, PartialEq)]
pub struct Redormant {
    pub neuron: usize,
    /// Unit direction (θ_i/‖θ_i‖ or a model-specific choice, e.g. consistent with a
    /// conservation law).
    pub direction: Vec<f64>,
    pub norm: f64,
}

/// Why a cost phase stopped (AGF §2.5 asks for "convergence"; with several quadratic
/// neurons on one frequency the cost on the active set has no minimiser — the norms keep
/// growing and ‖∇C‖ decays like a power of t — so two notions of convergence are
/// distinguished).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostStop {
    /// Closed-form minimiser (least squares): exact.
    ClosedForm,
    /// ‖∇_{Θ_A} C‖ ≤ gtol: a stationary point was reached.
    Gradient,
    /// The level converged while ‖∇C‖ did not: the relative decrease of C over a doubling
    /// of the cost-phase time, (C(t/2) − C(t))/C(t), fell below `level_rtol` — the flow
    /// approaches the infimum of C along its path (norms growing, no minimiser attained).
    Level,
    /// A budget (`t_max`, `max_steps`) ran out first: not converged.
    Budget,
}

/// Result of one cost minimisation.
#[derive(Debug, Clone, PartialEq)]
pub struct CostOutcome {
    /// Loss C(Θ_A) = (1/2n) Σ ‖y − f_A‖² at the minimiser.
    pub loss: f64,
    /// Neurons the minimiser deactivated (their parameters must be zero in `params`).
    pub redormant: Vec<Redormant>,
    /// Work done (gradient evaluations or linear solves).
    pub work: u64,
    /// Whether a convergence criterion was met (`stop` is `ClosedForm`, `Gradient` or
    /// `Level`).
    pub converged: bool,
    /// Which criterion stopped the phase.
    pub stop: CostStop,
    /// ‖∇_{Θ_A} C‖ at the end (iterative minimisers; `None` for closed forms).
    pub grad_norm: Option<f64>,
    /// Last relative level decrease over a doubling of the cost-phase time,
    /// (C(t/2) − C(t))/C(t) (`None` unless the level test ran at least twice).
    pub level_change: Option<f64>,
    /// Gradient-flow time the cost phase ran for (iterative minimisers).
    pub time: Option<f64>,
    /// Exact Hessians evaluated (stiff solver with an analytic Jacobian).
    pub hessians: u64,
}

/// Cost minimisation on the active set (AGF §2.5). `params` holds every active neuron's
/// parameters (neurons in `entering` start at norm 1 along their direction at activation)
/// and zeros for dormant neurons; the minimiser overwrites the active neurons' entries with
/// the minimiser of C(Θ_A) = (1/2n) Σ_n ‖y_n − Σ_{j∈A} f_j(x_n; θ_j)‖² and zeroes any neuron
/// it deactivates.
pub trait CostMinimizer<M: NeuronSum + ?Sized> {
    /// Short name for outputs (`gradient_flow`, `linear_least_squares`, …).
    fn name(&self) -> &'static str;
    /// Minimise C over the active neurons.
    fn minimize(
        &mut self,
        model: &M,
        data: &Dataset,
        params: &mut [f64],
        active: &[bool],
        entering: &[usize],
    ) -> Result<CostOutcome>;
}

/// One AGF round: activation at `t`, then cost minimisation.
#[derive(Debug, Clone, PartialEq)]
pub struct AgfRound {
    /// Jump time (gradient-flow time).
    pub t: f64,
    /// Loss level after cost minimisation.
    pub loss: f64,
    /// Neurons activated at `t` (more than one only for ties within `tie_rtol`), lowest
    /// index first after the first crossing.
    pub activated: Vec<usize>,
    /// Unit direction θ̄_i the neuron entered the cost phase along (at activation, or
    /// where its norm passed `entry_norm`), one per activated neuron.
    pub directions: Vec<Vec<f64>>,
    /// Dormant neurons predicted to cross within `near_tie_rtol·t` after `t` (flag: the
    /// order of near-simultaneous activations is fragile).
    pub near_ties: Vec<usize>,
    /// Neurons that returned to the dormant set in this round's cost phase.
    pub deactivated: Vec<usize>,
    /// Active set after the round (sorted).
    pub active: Vec<usize>,
    /// All parameters after cost minimisation (dormant neurons zero).
    pub params: Vec<f64>,
    /// Accepted steps / vector-field evaluations of the utility phase that ended at `t`.
    pub utility_steps: u64,
    pub utility_evals: u64,
    /// Work and convergence of the cost phase.
    pub cost_work: u64,
    pub cost_converged: bool,
    /// Which criterion ended the cost phase ([`CostStop`]: gradient, level, budget).
    pub cost_stop: CostStop,
    /// Last relative level decrease over a doubling of the cost-phase time
    /// ([`CostOutcome::level_change`]).
    pub cost_level_change: Option<f64>,
    /// ‖∇_{Θ_A} C‖ at the end of the cost phase and the (fast-clock) time it ran for
    /// (iterative minimisers), and the exact Hessians it evaluated.
    pub cost_grad_norm: Option<f64>,
    pub cost_time: Option<f64>,
    pub cost_hessians: u64,
}

/// Why AGF stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgfStop {
    /// Every neuron is active.
    NoDormant,
    /// The loss fell below `loss_rtol` × initial loss.
    LossTolerance,
    /// Every dormant neuron sits at a stationary direction with non-positive utility.
    Stationary,
    /// No activation before `t_max`.
    Horizon,
    /// `max_rounds` reached.
    MaxRounds,
}

/// Per-neuron norms along the AGF run: closed-form norm for dormant neurons, actual
/// parameter norm for active ones, recorded at every accepted utility step and at jumps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgfTrace {
    pub t: Vec<f64>,
    /// `norms[k][i]`: neuron i at `t[k]`.
    pub norms: Vec<Vec<f64>>,
}

/// Everything an AGF run produces.
#[derive(Debug, Clone, PartialEq)]
pub struct AgfResult {
    pub kappa: u32,
    /// ρ0_i = ‖θ_i(0)‖.
    pub init_norms: Vec<f64>,
    /// Thresholds c_i.
    pub thresholds: Vec<f64>,
    /// Loss at t = 0 (all neurons dormant, f = 0): (1/2n) Σ ‖y‖².
    pub initial_loss: f64,
    pub rounds: Vec<AgfRound>,
    pub stop: AgfStop,
    pub trace: AgfTrace,
    /// Accumulated utilities S_i at the end.
    pub final_s: Vec<f64>,
    pub cost_name: String,
}

impl AgfResult {
    /// Jump times t^(1), t^(2), ….
    pub fn jump_times(&self) -> Vec<f64> {
        self.rounds.iter().map(|r| r.t).collect()
    }
    /// Loss levels ℓ^(0) (initial), ℓ^(1), ….
    pub fn levels(&self) -> Vec<f64> {
        std::iter::once(self.initial_loss)
            .chain(self.rounds.iter().map(|r| r.loss))
            .collect()
    }
    /// Whether two runs gave bitwise the same staircase: jump times, levels and the
    /// parameters after every round (AGF is deterministic; used to check repeated runs).
    pub fn same_staircase(&self, other: &AgfResult) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.rounds.len() == other.rounds.len()
            && bits(&self.levels()) == bits(&other.levels())
            && bits(&self.jump_times()) == bits(&other.jump_times())
            && self
                .rounds
                .iter()
                .zip(&other.rounds)
                .all(|(a, b)| bits(&a.params) == bits(&b.params))
    }
}

/// The utility-maximisation vector field on y = [θ̄ (all parameter slots), S (one per neuron)].
struct UtilityField<'a, 'u, M: NeuronSum + ?Sized> {
    model: &'a M,
    data: &'a Dataset,
    utility: &'u mut dyn UtilityGradient<M>,
    theta: Vec<f64>,
    grad: Vec<f64>,
    idx: &'a [Vec<usize>],
    dormant: Vec<usize>,
    kappa: f64,
    speed_base: Vec<f64>,
    p: usize,
    evals: u64,
}

impl<M: NeuronSum + ?Sized> UtilityField<'_, '_, M> {
    /// ρ^{κ−2} from S (closed form, capped at 1: beyond norm 1 a neuron is not dormant).
    fn speed(&self, i: usize, s: f64) -> f64 {
        if self.kappa == 2.0 {
            return 1.0;
        }
        let denom = self.speed_base[i] - (self.kappa - 2.0) * s;
        if denom <= 1.0 {
            1.0
        } else {
            1.0 / denom
        }
    }
}

impl<M: NeuronSum + ?Sized> VectorField for UtilityField<'_, '_, M> {
    fn dim(&self) -> usize {
        self.p + self.idx.len()
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        self.evals += 1;
        self.theta.fill(0.0);
        for &i in &self.dormant {
            for &j in &self.idx[i] {
                self.theta[j] = y[j];
            }
        }
        self.utility
            .gradient(self.model, self.data, &self.theta, &mut self.grad);
        dy.fill(0.0);
        let k = self.kappa;
        for &i in &self.dormant {
            let idx = &self.idx[i];
            let nrm = idx.iter().map(|&j| y[j] * y[j]).sum::<f64>().sqrt();
            // ∇U at the unit vector q = θ̄/‖θ̄‖: ∇U(λq) = λ^{κ−1}∇U(q).
            let gscale = nrm.powf(1.0 - k);
            let mut u = 0.0;
            for &j in idx {
                u += (y[j] / nrm) * self.grad[j] * gscale;
            }
            u /= k;
            let sp = self.speed(i, y[self.p + i]);
            for &j in idx {
                dy[j] = sp * (self.grad[j] * gscale - k * u * y[j] / nrm);
            }
            dy[self.p + i] = k * u;
        }
        Ok(())
    }
}

fn check_model<M: NeuronSum + ?Sized>(
    model: &M,
    data: &Dataset,
    init: &[f64],
) -> Result<Vec<Vec<usize>>> {
    if init.len() != model.num_params() {
        return Err(Error::Shape(format!(
            "AGF: {} initial parameters for a model with {}",
            init.len(),
            model.num_params()
        )));
    }
    if data.d() != model.input_dim() || data.c() != model.output_dim() {
        return Err(Error::Shape(format!(
            "AGF: data is {}→{} but the model is {}→{}",
            data.d(),
            data.c(),
            model.input_dim(),
            model.output_dim()
        )));
    }
    if let Some(b) = model.blocks().iter().find(|b| b.lr_mult != 1.0) {
        return Err(Error::config(
            "model",
            format!("AGF runs on the gradient-flow clock with unit learning-rate multipliers; block `{}` has lr_mult = {}", b.name, b.lr_mult),
        ));
    }
    let idx: Vec<Vec<usize>> = (0..model.num_neurons())
        .map(|i| model.neuron_params(i))
        .collect();
    let mut seen = vec![false; model.num_params()];
    for v in &idx {
        for &j in v {
            if seen[j] {
                return Err(Error::Numerical(format!(
                    "AGF: parameter {j} belongs to two neurons"
                )));
            }
            seen[j] = true;
        }
    }
    Ok(idx)
}

/// Accumulated utility S giving norm `rho` for a neuron of initial norm `rho0`:
/// κ = 2: log(ρ/ρ0);  κ > 2: (ρ0^{2−κ} − ρ^{2−κ})/(κ−2).
pub fn utility_for_norm(kappa: u32, rho0: f64, rho: f64) -> f64 {
    if kappa == 2 {
        (rho / rho0).ln()
    } else {
        let e = 2.0 - kappa as f64;
        (rho0.powf(e) - rho.powf(e)) / (kappa as f64 - 2.0)
    }
}

/// Closed-form dormant norm from S: κ = 2: ρ0 e^{S};  κ > 2: (ρ0^{2−κ} − (κ−2)S)^{−1/(κ−2)}
/// (∞ past the blow-up).
pub fn norm_for_utility(kappa: u32, rho0: f64, s: f64) -> f64 {
    if kappa == 2 {
        rho0 * s.exp()
    } else {
        let k = kappa as f64;
        let base = rho0.powf(2.0 - k) - (k - 2.0) * s;
        if base <= 0.0 {
            f64::INFINITY
        } else {
            base.powf(-1.0 / (k - 2.0))
        }
    }
}

/// Threshold c_i for initial norm ρ0 (see the module docs).
pub fn threshold(kappa: u32, rho0: f64, convention: Threshold) -> f64 {
    if kappa == 2 {
        -rho0.ln()
    } else {
        let k = kappa as f64;
        match convention {
            Threshold::BlowUp => rho0.powf(2.0 - k) / (k - 2.0),
            Threshold::UnitNorm => (rho0.powf(2.0 - k) - 1.0) / (k - 2.0),
        }
    }
}

/// Residual r = y − f(params) and loss (1/2n)Σ‖r‖².
fn residual<M: NeuronSum + ?Sized>(
    model: &M,
    data: &Dataset,
    params: &[f64],
    ws: &mut Workspace,
) -> (Mat<f64>, f64) {
    model.forward(params, data.x.as_ref(), ws);
    let (n, c) = (data.n(), data.c());
    let r = Mat::from_fn(n, c, |i, j| data.y[(i, j)] - ws.out[(i, j)]);
    let mut l = 0.0;
    for j in 0..c {
        for i in 0..n {
            l += r[(i, j)] * r[(i, j)];
        }
    }
    (r, 0.5 * l / n as f64)
}

/// Run AGF (Kunin et al. 2025, Algorithm 1) for `model` from the initialisation `init`
/// on `data`, with `cost` as the cost minimiser. Time is gradient-flow time of
/// L = (1/2n)Σ‖f − y‖² with unit learning rate, the units of `trajectory.csv`'s `t`.
///
/// # Errors
/// [`Error::Shape`] for mismatched sizes; [`Error::Config`] when a neuron's initial norm is
/// 0 or ≥ 1 (AGF is the small-initialisation limit) or a block has lr_mult ≠ 1;
/// [`Error::Numerical`] if a utility phase exceeds `max_steps`; cost-minimiser errors.
pub fn run_agf<M: NeuronSum + ?Sized>(
    model: &M,
    data: &Dataset,
    init: &[f64],
    cost: &mut dyn CostMinimizer<M>,
    opts: &AgfOptions,
    ctx: &RunContext<'_>,
) -> Result<AgfResult> {
    let mut utility = BackpropUtility::new(model, data, ctx.par);
    run_agf_with_utility(model, data, init, cost, &mut utility, opts, ctx)
}

/// [`run_agf`] with a model-specific utility gradient (e.g.
/// [`super::utility::LinearMomentUtility`], which evaluates ∇U from one residual moment per
/// phase instead of a pass over the data per evaluation).
///
/// # Errors
/// As [`run_agf`], plus errors of `utility.set_residual`.
pub fn run_agf_with_utility<M: NeuronSum + ?Sized>(
    model: &M,
    data: &Dataset,
    init: &[f64],
    cost: &mut dyn CostMinimizer<M>,
    utility: &mut dyn UtilityGradient<M>,
    opts: &AgfOptions,
    ctx: &RunContext<'_>,
) -> Result<AgfResult> {
    let idx = check_model(model, data, init)?;
    let kappa = model.homogeneity();
    if kappa < 2 {
        return Err(Error::config(
            "model",
            format!("AGF needs neurons homogeneous of degree κ ≥ 2, got κ = {kappa}"),
        ));
    }
    if opts.carry_dormant && !(opts.coactivation_norm > 0.0 && opts.coactivation_norm < 1.0) {
        return Err(Error::config(
            "agf.coactivation_norm",
            format!("must be in (0, 1), got {}", opts.coactivation_norm),
        ));
    }
    if let Some(re) = opts.entry_norm {
        if !(re > 0.0 && re < 1.0) {
            return Err(Error::config(
                "agf.entry_norm",
                format!("must be in (0, 1), got {re}"),
            ));
        }
    }
    let kf = kappa as f64;
    let h = idx.len();
    let p = model.num_params();
    let rho0: Vec<f64> = idx
        .iter()
        .map(|v| norm2(&v.iter().map(|&j| init[j]).collect::<Vec<_>>()))
        .collect();
    if let Some(i) = rho0.iter().position(|&r| !(r > 0.0 && r < 1.0)) {
        return Err(Error::config(
            "model.init_scale",
            format!("AGF needs every initial neuron norm in (0, 1) (small initialisation); neuron {i} has ‖θ(0)‖ = {:e}", rho0[i]),
        ));
    }
    let c: Vec<f64> = rho0
        .iter()
        .map(|&r| threshold(kappa, r, opts.threshold))
        .collect();
    // Entry thresholds S = c_e (closed-form norm ρ_e) and the direction at the last upward
    // crossing of c_e (`entry_norm` set); neurons starting above ρ_e enter along θ̄(0).
    let c_entry: Option<Vec<f64>> = opts.entry_norm.map(|re| {
        rho0.iter()
            .map(|&r| utility_for_norm(kappa, r, re))
            .collect()
    });
    let mut entry_dir: Vec<Option<Vec<f64>>> = vec![None; h];
    let speed_base: Vec<f64> = rho0
        .iter()
        .map(|&r| if kappa == 2 { 0.0 } else { r.powf(2.0 - kf) })
        .collect();

    // State.
    let mut dir = vec![0.0; p];
    for v in &idx {
        let nrm = norm2(&v.iter().map(|&j| init[j]).collect::<Vec<_>>());
        for &j in v {
            dir[j] = init[j] / nrm;
        }
    }
    let mut s = vec![0.0; h];
    let mut active = vec![false; h];
    let mut params = vec![0.0; p];
    let mut ws = model.workspace(data.n());
    ws.par = ctx.par;
    let (mut r, initial_loss) = residual(model, data, &params, &mut ws);
    let mut loss = initial_loss;
    let mut t = 0.0;
    let mut rounds = Vec::new();
    let mut trace = AgfTrace::default();
    let ctrl = match opts.fixed_dt {
        None => PidController::new(opts.rtol, opts.atol),
        Some(dt) => PidController::fixed_step(dt, "agf.fixed_dt")?,
    };
    let tableau = Tableau::from_name(&opts.tableau).ok_or_else(|| {
        Error::config(
            "agf.tableau",
            format!(
                "unknown Runge–Kutta tableau `{}` (dopri5, tsit5, bosh3, heun_euler)",
                opts.tableau
            ),
        )
    })?;
    let mut stepper = RkStepper::new(tableau, ctrl, p + h);
    let mut first = true;
    let mut u0 = f64::NAN;
    let mut y = vec![0.0; p + h];
    let mut buf = vec![0.0; p + h];
    let n = data.n() as f64;

    let norms_now = |active: &[bool], params: &[f64], s: &[f64]| -> Vec<f64> {
        (0..h)
            .map(|i| {
                if active[i] {
                    norm2(&idx[i].iter().map(|&j| params[j]).collect::<Vec<_>>())
                } else {
                    norm_for_utility(kappa, rho0[i], s[i])
                }
            })
            .collect()
    };
    trace.t.push(0.0);
    trace.norms.push(norms_now(&active, &params, &s));
    ctx.progress.start("agf", opts.max_rounds as u64);

    let stop = loop {
        ctx.check_cancel()?;
        let dormant: Vec<usize> = (0..h).filter(|&i| !active[i]).collect();
        if dormant.is_empty() {
            break AgfStop::NoDormant;
        }
        if loss <= opts.loss_rtol * initial_loss {
            break AgfStop::LossTolerance;
        }
        if rounds.len() >= opts.max_rounds {
            break AgfStop::MaxRounds;
        }
        if let Some(ce) = &c_entry {
            // Dormant neurons already at or above ρ_e without a recorded crossing (at the
            // start, or sent back by a cost phase above ρ_e) enter from where they are now.
            for &i in &dormant {
                if s[i] >= ce[i] && entry_dir[i].is_none() {
                    entry_dir[i] = Some(idx[i].iter().map(|&j| dir[j]).collect());
                }
            }
        }
        // ---- utility maximisation ----
        let r_over_n = Mat::from_fn(r.nrows(), r.ncols(), |a, b| r[(a, b)] / n);
        utility.set_residual(model, data, r_over_n.as_ref())?;
        let quad: Option<Vec<QuadraticNeuron>> =
            if kappa == 2 && opts.exact_quadratic && opts.entry_norm.is_none() {
                dormant
                    .iter()
                    .map(|&i| {
                        utility.quadratic_form(model, i).map(|k| {
                            let d: Vec<f64> = idx[i].iter().map(|&j| dir[j]).collect();
                            QuadraticNeuron::new(&k, &d, s[i])
                        })
                    })
                    .collect::<Option<Result<Vec<_>>>>()
                    .transpose()?
            } else {
                None
            };
        let phase = if let Some(qn) = quad {
            // ---- exact phase (quadratic utilities, κ = 2) ----
            let mut evals = 0u64;
            let mut times = Vec::with_capacity(dormant.len());
            for (q, &i) in qn.iter().zip(&dormant) {
                let (dt, e) = q.crossing(c[i])?;
                evals += e;
                times.push(dt);
            }
            let dmin = times
                .iter()
                .flatten()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let horizon = opts.t_max - t;
            let end = dmin.min(horizon.max(0.0));
            // trace: closed-form norms at a few points of the phase
            if end.is_finite() {
                for k in 1..=16 {
                    let dd = end * k as f64 / 16.0;
                    let mut sn = s.clone();
                    for (q, &i) in qn.iter().zip(&dormant) {
                        sn[i] = q.s_at(dd);
                    }
                    trace.t.push(t + dd);
                    trace.norms.push(norms_now(&active, &params, &sn));
                }
            }
            let advance = |dd: f64, dir: &mut [f64], s: &mut [f64]| {
                for (q, &i) in qn.iter().zip(&dormant) {
                    let mut v = vec![0.0; idx[i].len()];
                    q.direction_at(dd, &mut v);
                    for (&j, &x) in idx[i].iter().zip(&v) {
                        dir[j] = x;
                    }
                    s[i] = q.s_at(dd);
                }
            };
            if !dmin.is_finite() {
                break AgfStop::Stationary;
            }
            if dmin > horizon {
                advance(horizon.max(0.0), &mut dir, &mut s);
                break AgfStop::Horizon;
            }
            let tstar = t + dmin;
            let tied: Vec<(usize, f64)> = dormant
                .iter()
                .zip(&times)
                .filter_map(|(&i, dt)| dt.map(|d| (i, t + d)))
                .filter(|&(_, ti)| ti <= tstar + opts.tie_rtol * tstar.abs())
                .collect();
            let near: Vec<usize> = dormant
                .iter()
                .zip(&times)
                .filter_map(|(&i, dt)| dt.map(|d| (i, t + d)))
                .filter(|&(i, ti)| {
                    !tied.iter().any(|x| x.0 == i) && ti - tstar <= opts.near_tie_rtol * tstar.abs()
                })
                .map(|x| x.0)
                .collect();
            advance(dmin, &mut dir, &mut s);
            t = tstar;
            (tstar, tied, near, 0u64, evals)
        } else {
            let mut field = UtilityField {
                model,
                data,
                utility: &mut *utility,
                theta: vec![0.0; p],
                grad: vec![0.0; p],
                idx: &idx,
                dormant: dormant.clone(),
                kappa: kf,
                speed_base: speed_base.clone(),
                p,
                evals: 0,
            };
            y[..p].copy_from_slice(&dir);
            y[p..].copy_from_slice(&s);
            if first {
                stepper.init(&mut field, t, &y, opts.fixed_dt)?;
                first = false;
            } else {
                stepper.reset_state(&mut field, t, &y)?;
            }
            if u0.is_nan() {
                u0 = dormant
                    .iter()
                    .map(|&i| stepper.dy()[p + i].abs())
                    .fold(0.0, f64::max)
                    .max(f64::MIN_POSITIVE);
            }
            let steps0 = stepper.stats().num_accepted;
            let mut crossing: Option<(f64, Vec<(usize, f64)>)> = None;
            let mut stationary = false;
            while stepper.t() < opts.t_max {
                ctx.check_cancel()?;
                if stepper.stats().num_accepted - steps0 >= opts.max_steps {
                    return Err(Error::Numerical(format!(
                    "AGF utility phase exceeded {} steps at t = {:e} (round {}); raise agf.max_steps or loosen agf.rtol",
                    opts.max_steps,
                    stepper.t(),
                    rounds.len() + 1
                )));
                }
                // S before and after the step (the crossings only need S)
                let s0: Vec<f64> = stepper.y()[p..].to_vec();
                let iv = stepper.step(&mut field, opts.t_max)?;
                let s1: Vec<f64> = stepper.y()[p..].to_vec();
                // Upward crossings of level(i) by S_i in this step, located by Brent's
                // method on the dense output.
                let mut roots_of = |level: &dyn Fn(usize) -> f64| -> Result<Vec<(usize, f64)>> {
                    dormant
                        .iter()
                        .copied()
                        .filter(|&i| s0[i] < level(i) && s1[i] >= level(i))
                        .map(|i| {
                            let ti = brent(
                                |tt| {
                                    stepper.interpolate(tt, &mut buf);
                                    buf[p + i] - level(i)
                                },
                                iv.t0,
                                iv.t1,
                                1e-15 * iv.t1.abs(),
                            )?;
                            Ok((i, ti))
                        })
                        .collect()
                };
                let roots = roots_of(&|i| c[i])?;
                let t_first = roots.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
                if let Some(ce) = &c_entry {
                    // Entry directions: crossings of c_e up to the first threshold crossing
                    // (later ones belong to the next phase).
                    for (i, te) in roots_of(&|i| ce[i])? {
                        if te <= t_first {
                            stepper.interpolate(te, &mut buf);
                            let v: Vec<f64> = idx[i].iter().map(|&j| buf[j]).collect();
                            let nrm = norm2(&v);
                            entry_dir[i] = Some(v.iter().map(|x| x / nrm).collect());
                        }
                    }
                }
                if !roots.is_empty() {
                    let tstar = t_first;
                    let tied: Vec<(usize, f64)> = roots
                        .into_iter()
                        .filter(|&(_, ti)| ti <= tstar + opts.tie_rtol * tstar.abs())
                        .collect();
                    crossing = Some((tstar, tied));
                    break;
                }
                trace.t.push(iv.t1);
                trace.norms.push(norms_now(&active, &params, &s1));
                // Stationarity: every dormant neuron at rest with non-positive utility growth.
                let dy = stepper.dy();
                let still = dormant.iter().all(|&i| {
                    let dn = norm2(&idx[i].iter().map(|&j| dy[j]).collect::<Vec<_>>());
                    dn <= opts.stationary_tol * u0 && dy[p + i] <= opts.stationary_tol * u0
                });
                if still {
                    stationary = true;
                    break;
                }
            }
            let utility_steps = stepper.stats().num_accepted - steps0;
            let Some((tstar, tied)) = crossing else {
                let st = stepper.y().to_vec();
                dir.copy_from_slice(&st[..p]);
                s.copy_from_slice(&st[p..]);
                break if stationary {
                    AgfStop::Stationary
                } else {
                    AgfStop::Horizon
                };
            };
            // State at the jump time (dense output).
            stepper.interpolate(tstar, &mut buf);
            t = tstar;
            for &i in &dormant {
                let v = &idx[i];
                let nrm = norm2(&v.iter().map(|&j| buf[j]).collect::<Vec<_>>());
                for &j in v {
                    dir[j] = buf[j] / nrm;
                }
                s[i] = buf[p + i];
            }
            // Near-ties: dormant neurons that would cross soon at their current rate.
            let dy_star: Vec<f64> = {
                let mut dy = vec![0.0; p + h];
                field.eval(tstar, &buf, &mut dy)?;
                dy
            };
            let near_ties: Vec<usize> = dormant
                .iter()
                .copied()
                .filter(|i| !tied.iter().any(|x| x.0 == *i))
                .filter(|&i| {
                    let rate = dy_star[p + i];
                    rate > 0.0 && (c[i] - s[i]) / rate <= opts.near_tie_rtol * tstar.abs()
                })
                .collect();
            (tstar, tied, near_ties, utility_steps, field.evals)
        };
        let (tstar, tied, near_ties, utility_steps, utility_evals) = phase;
        // Activation (ties: first crossing, then increasing index).
        let mut order: Vec<(usize, f64)> = tied.clone();
        order.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let first_i = order[0].0;
        let mut activated = vec![first_i];

        let mut rest: Vec<usize> = order[1..].iter().map(|x| x.0).collect();
        rest.sort_unstable();
        activated.extend(rest);
        let mut directions = Vec::new();
        for &i in &activated {
            s[i] = c[i];
            active[i] = true;
            // enters at norm 1 along θ̄(t*), or at ρ_e along θ̄(t_e) (`entry_norm`)
            let norm = opts.entry_norm.unwrap_or(1.0);
            let d = entry_dir[i]
                .take()
                .unwrap_or_else(|| idx[i].iter().map(|&j| dir[j]).collect());
            for (&j, &v) in idx[i].iter().zip(&d) {
                params[j] = norm * v;
            }
            directions.push(d);
        }
        trace.t.push(tstar);
        trace.norms.push(norms_now(&active, &params, &s));
        // ---- cost minimisation ----
        let carried: Vec<usize> = if opts.carry_dormant {
            (0..h).filter(|&i| !active[i]).collect()
        } else {
            Vec::new()
        };
        let mut cost_active = active.clone();
        for &i in &carried {
            let rho = norm_for_utility(kappa, rho0[i], s[i]).min(1.0);
            for &j in &idx[i] {
                params[j] = rho * dir[j];
            }
            cost_active[i] = true;
        }
        let outcome = cost.minimize(model, data, &mut params, &cost_active, &activated)?;
        for &i in &carried {
            let nrm = norm2(&idx[i].iter().map(|&j| params[j]).collect::<Vec<_>>());
            if nrm >= opts.coactivation_norm {
                active[i] = true;
                activated.push(i);
                directions.push(idx[i].iter().map(|&j| params[j] / nrm).collect());
            } else {
                for &j in &idx[i] {
                    if nrm > 0.0 {
                        dir[j] = params[j] / nrm;
                    }
                    params[j] = 0.0;
                }
                if nrm > 0.0 {
                    s[i] = utility_for_norm(kappa, rho0[i], nrm);
                }
            }
        }
        let mut deactivated = Vec::new();
        for rd in &outcome.redormant {
            let i = rd.neuron;
            if !active[i] {
                continue;
            }
            active[i] = false;
            let nrm = norm2(&rd.direction);
            for (&j, &v) in idx[i].iter().zip(&rd.direction) {
                dir[j] = v / nrm;
                params[j] = 0.0;
            }
            s[i] = utility_for_norm(kappa, rho0[i], rd.norm);
            deactivated.push(i);
        }
        for i in 0..h {
            if !active[i] {
                continue;
            }
            let nrm = norm2(&idx[i].iter().map(|&j| params[j]).collect::<Vec<_>>());
            if nrm < opts.collapse_tol {
                active[i] = false;
                for &j in &idx[i] {
                    dir[j] = if nrm > 0.0 { params[j] / nrm } else { dir[j] };
                    params[j] = 0.0;
                }
                s[i] = if nrm > 0.0 {
                    utility_for_norm(kappa, rho0[i], nrm)
                } else {
                    0.0
                };
                deactivated.push(i);
            }
        }
        let (r_new, l_new) = residual(model, data, &params, &mut ws);
        r = r_new;
        loss = l_new;
        trace.t.push(tstar);
        trace.norms.push(norms_now(&active, &params, &s));
        rounds.push(AgfRound {
            t: tstar,
            loss,
            activated,
            directions,
            near_ties,
            deactivated,
            active: (0..h).filter(|&i| active[i]).collect(),
            params: params.clone(),
            utility_steps,
            utility_evals,
            cost_work: outcome.work,
            cost_converged: outcome.converged,
            cost_stop: outcome.stop,
            cost_level_change: outcome.level_change,
            cost_grad_norm: outcome.grad_norm,
            cost_time: outcome.time,
            cost_hessians: outcome.hessians,
        });
        ctx.progress.update(
            rounds.len() as u64,
            &format!("round {}: t = {tstar:.4e}, loss = {loss:.4e}", rounds.len()),
        );
    };
    ctx.progress.finish();
    Ok(AgfResult {
        kappa,
        init_norms: rho0,
        thresholds: c,
        initial_loss,
        rounds,
        stop,
        trace,
        final_s: s,
        cost_name: cost.name().to_string(),
    })
}
