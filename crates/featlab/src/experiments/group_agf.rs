//! The `group_agf` experiment: a two-layer net with σ(z) = z^k learns the composition of
//! k = 2 or 3 elements of a finite group one real irrep at a time (Marchetti, Kunin, Myers, Acosta,
//! Miolane, *Sequential group composition*, arXiv 2602.03655) — gradient flow (or GD) vs
//! numerical AGF from the same init vs the theory of [`crate::theory::group_agf`].
//!
//! * Data ([`crate::data::group_composition`]): all |G|² pairs, template with the
//!   configured power per real irrep ([`crate::groups::template_from_powers`]).
//! * Model: `TwoLayer` with σ(z) = z^k (square for k = 2, cubic for k = 3), d = k|G|,
//!   c = |G|, no bias (homogeneous of degree κ = k + 1 for AGF). Init as the reference
//!   code: W₁ ~ N(0, α²/(k|G|)), W₂ ~ N(0, α²/H).
//! * Loss L = (1/2n)Σ‖f − y‖² (reference `nn.MSELoss` = (2/|G|)·L).
//! * Trajectory columns `power_<irrep>`: P_σ(f) = (1/n)Σ_n ‖π_σ f(x_n)‖², the learned
//!   function's power in real irrep σ (reaches P(σ) when σ is learned; L = ½Σ_σ P_σ(f − y)).
//!   Irrep names are sanitised for columns: `'` → `p`, `(a,b)` → `a_b`.

use super::agf::compare::refined_schedule;
use super::agf::modular::{cpu_since, thread_cpu_seconds};
use super::{param_arrays, Experiment, RunOutput};
use crate::compare::drops::{drop_errors, drops_json, match_drops, Staircase};
use crate::compare::AgreementRow;
use crate::config::{from_table, to_table};
use crate::data::group_composition::group_composition;
use crate::experiments::agf::compare::settings_for_alpha;
use crate::figure::{LinePlot, RefLine, Scale, Series};
use crate::groups::{template_from_powers, FiniteGroup, GroupSpec, Irreps};
use crate::model::two_layer::TwoLayer;
use crate::model::{Activation, Loss, Model, NeuronSum};
use crate::rng::{normal_vec, stream};
use crate::theory::agf::{
    run_agf, AgfOptions, AgfResult, CostMinimizer, CostOutcome, CostStop, GradientFlowCost,
};
use crate::theory::group_agf::{isotypic_basis, torch_mse_factor, GroupAgfTheory};
use crate::train::{self, LossObserver, Observer, Problem, RunContext, TrainConfig};
use crate::{Error, NdArray, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

fn name() -> String {
    "group_agf".into()
}
fn d_k() -> usize {
    2
}
fn d_alpha() -> f64 {
    1e-5
}

/// `[data]`: the group, k (2: square activation; 3: cubic) and the template's power per real irrep (by name; unnamed
/// irreps get 0). A real irrep merging a conjugate pair carries the pair's total power.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupDataConfig {
    pub group: GroupSpec,
    #[serde(default = "d_k")]
    pub k: usize,
    pub powers: BTreeMap<String, f64>,
}

/// `[model]`: width H of the quadratic net.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupModelConfig {
    pub width: usize,
}

/// Config of the `group_agf` experiment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupAgfConfig {
    #[serde(default = "name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    pub data: GroupDataConfig,
    pub model: GroupModelConfig,
    /// Initial scale α.
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    pub train: TrainConfig,
    #[serde(default)]
    pub agf: AgfOptions,
    #[serde(default)]
    pub cost: GradientFlowCost,
    /// Gradient flow / GD and theory only.
    #[serde(default)]
    pub skip_agf: bool,
    /// AGF cost phases on the entering neuron's irrep only ([`IrrepBlockCost`]): the
    /// active neurons whose dominant real irrep is that of a neuron entering this round
    /// are minimised, the others stay where the previous phases left them.
    #[serde(default)]
    pub cost_by_irrep: bool,
    /// Extra initial scales (AGF and GF from the same init direction), tabulated per irrep.
    #[serde(default)]
    pub alpha_series: Vec<f64>,
}

/// Everything built from `[data]`.
struct Setup {
    group: FiniteGroup,
    irreps: Irreps,
    powers: Vec<f64>,
}

impl GroupAgfConfig {
    fn setup(&self) -> Result<Setup> {
        if !(2..=3).contains(&self.data.k) {
            return Err(Error::config(
                "data.k",
                format!(
                    "k = {} is not implemented: k = 2 (σ = z²) and k = 3 (σ = z³)",
                    self.data.k
                ),
            ));
        }
        if self.model.width == 0 {
            return Err(Error::config("model.width", "must be ≥ 1"));
        }
        for (key, a) in std::iter::once(("alpha", self.alpha))
            .chain(self.alpha_series.iter().map(|a| ("alpha_series", *a)))
        {
            if !(a.is_finite() && a > 0.0 && a < 0.5) {
                return Err(Error::config(key, format!("must be in (0, 0.5), got {a}")));
            }
        }
        let group = self.data.group.build()?;
        let irreps = Irreps::compute(&group)?;
        let powers = powers_by_name(&group, &irreps, &self.data.powers)?;
        Ok(Setup {
            group,
            irreps,
            powers,
        })
    }
}

/// Power per real irrep from `data.powers` (by irrep name; unnamed irreps get 0). Errors
/// name `data.powers.<name>` and list the group's real irreps.
pub(crate) fn powers_by_name(
    group: &FiniteGroup,
    irreps: &Irreps,
    named: &BTreeMap<String, f64>,
) -> Result<Vec<f64>> {
    let mut powers = vec![0.0; irreps.real.len()];
    for (name, p) in named {
        let i = irreps.real_by_name(name).ok_or_else(|| {
            let known: Vec<&str> = irreps.real.iter().map(|r| r.name.as_str()).collect();
            Error::config(
                format!("data.powers.{name}"),
                format!(
                    "{} has no real irrep `{name}`; its real irreps: {}",
                    group.name,
                    known.join(", ")
                ),
            )
        })?;
        if !(p.is_finite() && *p >= 0.0) {
            return Err(Error::config(
                format!("data.powers.{name}"),
                format!("must be finite and ≥ 0, got {p}"),
            ));
        }
        powers[i] = *p;
    }
    if powers.iter().sum::<f64>() <= 0.0 {
        return Err(Error::config(
            "data.powers",
            "all powers are zero: nothing to learn",
        ));
    }
    Ok(powers)
}

/// Learned power per real irrep against t (log), in `order`, with the template's power P(σ)
/// of each irrep as a horizontal line: the irrep-power figure of the group studies
/// (`group_agf`, `group_rnn`). `pcols[i]` is the recorded `power_<irrep>` column; the first
/// record (t = 0) is left out of the log axis.
pub(crate) fn irrep_power_figure(
    title: &str,
    order: &[usize],
    names: &[String],
    irreps: &Irreps,
    t: &[f64],
    pcols: &[Vec<f64>],
    tpow: &[f64],
) -> LinePlot {
    let mut pp = LinePlot::new(title, "t", "P_σ(f)").scales(Scale::Log, Scale::Linear);
    for &i in order {
        pp.series.push(Series::line(
            format!("{} (d = {})", names[i], irreps.real[i].dim),
            t[1..].to_vec(),
            pcols[i][1..].to_vec(),
        ));
        pp.ref_lines.push(RefLine {
            label: format!("P({})", names[i]),
            vertical: false,
            value: tpow[i],
        });
    }
    pp
}

/// Column-safe irrep name: `'` → `p`, `(a,b)` → `a_b`.
pub fn column_name(irrep: &str) -> String {
    let s: String = irrep
        .chars()
        .filter_map(|c| match c {
            '\'' => Some('p'),
            '(' | ')' => None,
            ',' => Some('_'),
            c => Some(c),
        })
        .collect();
    format!("power_{s}")
}

/// P_σ(F) = (1/n)‖F Q_σ‖²_F per real irrep.
pub(crate) fn irrep_powers(f: &Mat<f64>, bases: &[Mat<f64>]) -> Vec<f64> {
    let n = f.nrows() as f64;
    bases
        .iter()
        .map(|q| {
            let p = f * q;
            p.col_iter()
                .map(|c| c.iter().map(|v| v * v).sum::<f64>())
                .sum::<f64>()
                / n
        })
        .collect()
}

pub(crate) struct IrrepPowerObserver {
    pub(crate) names: Vec<String>,
    pub(crate) bases: Vec<Mat<f64>>,
}

impl Observer for IrrepPowerObserver {
    fn columns(&self) -> Vec<String> {
        self.names.iter().map(|n| column_name(n)).collect()
    }
    fn observe(&mut self, _t: f64, params: &[f64], problem: &mut Problem<'_>) -> Result<Vec<f64>> {
        let f = problem.model.predict(params, problem.data.x.as_ref());
        Ok(irrep_powers(&f, &self.bases))
    }
}

/// Energy of neuron i's weights (u₁, …, u_k, w) in each real isotypic component.
fn neuron_irrep_energy(model: &TwoLayer, params: &[f64], i: usize, bases: &[Mat<f64>]) -> Vec<f64> {
    let n = model.c;
    let v: Vec<f64> = model.neuron_params(i).iter().map(|&j| params[j]).collect();
    bases
        .iter()
        .map(|q| {
            (0..v.len() / n)
                .map(|b| {
                    let seg = &v[b * n..(b + 1) * n];
                    (0..q.ncols())
                        .map(|c| (0..n).map(|h| q[(h, c)] * seg[h]).sum::<f64>().powi(2))
                        .sum::<f64>()
                })
                .sum()
        })
        .collect()
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}

/// First time each irrep's learned power reaches half its template power (None: never).
pub(crate) fn half_power_times(
    t: &[f64],
    powers: &[Vec<f64>],
    target: &[f64],
    irreps: &[usize],
) -> Vec<Option<f64>> {
    irreps
        .iter()
        .map(|&s| {
            (0..t.len())
                .find(|&i| powers[s][i] >= 0.5 * target[s])
                .map(|i| t[i])
        })
        .collect()
}

/// GF plateau levels: ℓ₀ = loss at t = 0; between consecutive irrep half-power times the
/// recorded point of smallest |d log L/d log t| in the middle 60% (log time) of the
/// interval; after the last irrep the final loss.
pub(crate) fn plateau_levels(t: &[f64], loss: &[f64], bounds: &[f64]) -> Vec<f64> {
    let mut out = vec![loss[0]];
    for j in 0..bounds.len() {
        if j + 1 == bounds.len() {
            out.push(*loss.last().unwrap_or(&f64::NAN));
            break;
        }
        let (a, b) = (bounds[j].ln(), bounds[j + 1].ln());
        let (lo, hi) = (a + 0.2 * (b - a), a + 0.8 * (b - a));
        let best = (1..t.len().saturating_sub(1))
            .filter(|&i| t[i] > 0.0 && t[i].ln() >= lo && t[i].ln() <= hi && t[i - 1] > 0.0)
            .min_by(|&i, &k| {
                let s = |i: usize| {
                    ((loss[i + 1].ln() - loss[i - 1].ln()) / (t[i + 1].ln() - t[i - 1].ln())).abs()
                };
                s(i).total_cmp(&s(k))
            });
        out.push(best.map_or(f64::NAN, |i| loss[i]));
    }
    out
}

/// The activation of the k-fold composition net: z² for k = 2, z³ for k = 3.
pub fn activation_for(k: usize) -> Activation {
    if k == 3 {
        Activation::Cubic
    } else {
        Activation::Quadratic
    }
}

/// The reference init direction (α = 1): W₁ ~ N(0, 1/d), W₂ ~ N(0, 1/H), from `(seed, "init")`.
pub fn init_direction(seed: u64, d: usize, width: usize, c: usize) -> Vec<f64> {
    let mut rng = stream(seed, "init");
    let mut dir = normal_vec(&mut rng, width * d, 1.0 / (d as f64).sqrt());
    dir.extend(normal_vec(&mut rng, c * width, 1.0 / (width as f64).sqrt()));
    dir
}

/// One α: AGF then GF; per-irrep half-power times of both.
struct AlphaRun {
    stairs: Option<Staircase>,
    agf: Option<AgfResult>,
    agf_seconds: f64,
    agf_cpu_seconds: Option<f64>,
    agf_irrep_times: Vec<Option<f64>>,
    agf_order: Vec<usize>,
    gf: train::TrainResult,
    gf_seconds: f64,
    gf_cpu_seconds: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
fn run_alpha(
    cfg: &GroupAgfConfig,
    model: &TwoLayer,
    data: &crate::data::Dataset,
    direction: &[f64],
    alpha: f64,
    bases: &[Mat<f64>],
    names: &[String],
    learn: &[usize],
    powers: &[f64],
    ctx: &RunContext<'_>,
) -> Result<AlphaRun> {
    let init: Vec<f64> = direction.iter().map(|g| alpha * g).collect();
    // plateaus grow ∝ α^{−(k−1)} (κ = k + 1): move the horizons by that factor
    let alpha_eff = cfg.alpha * (alpha / cfg.alpha).powi(cfg.data.k as i32 - 1);
    let (mut tc, ao) = settings_for_alpha(&cfg.train, &cfg.agf, cfg.alpha, alpha_eff);
    let start = Instant::now();
    let cpu = thread_cpu_seconds();
    let agf = if cfg.skip_agf {
        None
    } else {
        let mut inner = cfg.cost.clone();
        let mut by_irrep = IrrepBlockCost {
            inner: cfg.cost.clone(),
            bases: bases.to_vec(),
        };
        let cost: &mut dyn CostMinimizer<TwoLayer> = if cfg.cost_by_irrep {
            &mut by_irrep
        } else {
            &mut inner
        };
        Some(run_agf(model, data, &init, cost, &ao, ctx)?)
    };
    let agf_seconds = start.elapsed().as_secs_f64();
    let agf_cpu_seconds = cpu_since(cpu);
    let mut agf_irrep_times = vec![None; learn.len()];
    let mut agf_order = Vec::new();
    let stairs = agf.as_ref().map(|a| {
        let features: Vec<usize> = a
            .rounds
            .iter()
            .map(|r| {
                argmax(&neuron_irrep_energy(
                    model,
                    &r.params,
                    r.activated[0],
                    bases,
                ))
            })
            .collect();
        for r in &a.rounds {
            let f = model.predict(&r.params, data.x.as_ref());
            let p = irrep_powers(&f, bases);
            for (j, &s) in learn.iter().enumerate() {
                if agf_irrep_times[j].is_none() && p[s] >= 0.5 * powers[s] {
                    agf_irrep_times[j] = Some(r.t);
                    agf_order.push(s);
                }
            }
        }
        Staircase {
            initial_loss: a.initial_loss,
            times: a.jump_times(),
            levels: a.rounds.iter().map(|r| r.loss).collect(),
            features,
        }
    });
    if let Some(st) = &stairs {
        tc.record = refined_schedule(&tc, &st.times)?;
    }
    let mut observers: Vec<Box<dyn Observer>> = vec![
        Box::new(LossObserver),
        Box::new(IrrepPowerObserver {
            names: names.to_vec(),
            bases: bases.to_vec(),
        }),
    ];
    let mut problem = Problem::new(model, data, Loss::Mse, 0.0, ctx.par);
    let mut stepper = tc.stepper(init, stream(cfg.seed, "batches"))?;
    let opts = tc.run_options()?;
    let start = Instant::now();
    let cpu = thread_cpu_seconds();
    let gf = train::run(&mut problem, stepper.as_mut(), &mut observers, &opts, ctx)?;
    let gf_seconds = start.elapsed().as_secs_f64();
    let gf_cpu_seconds = cpu_since(cpu);
    Ok(AlphaRun {
        stairs,
        agf,
        agf_seconds,
        agf_cpu_seconds,
        agf_irrep_times,
        agf_order,
        gf,
        gf_seconds,
        gf_cpu_seconds,
    })
}

/// AGF cost minimisation restricted to one irrep block (config `cost_by_irrep`): a neuron
/// whose weights (u₁, …, u_k, w) lie in the real isotypic component E_σ only changes the
/// σ-component of the output, and the loss L = ½Σ_σ P_σ(f − y) splits over σ, so the
/// cost C(Θ_A) is a sum of one term per irrep block and the blocks minimise independently
/// (exact for neurons inside one component — the α → 0 limit, where the utility maximisers
/// lie in one component; an approximation for neurons with cross-irrep weight left at
/// finite α). Each round minimises only the block of the entering neurons' dominant irreps
/// (by [`neuron_irrep_energy`]) with the inner gradient-flow cost; the other active neurons
/// keep their parameters. The cost phase then works on ≤ (neurons of one irrep) instead of
/// all active neurons.
pub struct IrrepBlockCost {
    pub inner: GradientFlowCost,
    /// Orthonormal bases of the real isotypic components (|G| × dim E_σ).
    pub bases: Vec<Mat<f64>>,
}

impl CostMinimizer<TwoLayer> for IrrepBlockCost {
    fn name(&self) -> &'static str {
        "gradient_flow_by_irrep"
    }
    fn minimize(
        &mut self,
        model: &TwoLayer,
        data: &crate::data::Dataset,
        params: &mut [f64],
        active: &[bool],
        entering: &[usize],
    ) -> Result<CostOutcome> {
        let irrep = |i: usize| argmax(&neuron_irrep_energy(model, params, i, &self.bases));
        let blocks: Vec<usize> = entering.iter().map(|&i| irrep(i)).collect();
        let block: Vec<bool> = (0..active.len())
            .map(|i| active[i] && (entering.contains(&i) || blocks.contains(&irrep(i))))
            .collect();
        self.inner.minimize(model, data, params, &block, entering)
    }
}

/// Per-round cost-phase diagnostics (`summary.agf_cost_phases`).
fn cost_phases_json(a: &AgfResult) -> serde_json::Value {
    json!(a
        .rounds
        .iter()
        .map(|r| json!({
            "converged": r.cost_converged,
            "stop": r.cost_stop,
            "grad_norm": r.cost_grad_norm,
            "level_change": r.cost_level_change,
            "time": r.cost_time,
            "gradient_evals": r.cost_work,
            "hessians": r.cost_hessians,
            "utility_evals": r.utility_evals,
            "active": r.active.len(),
        }))
        .collect::<Vec<_>>())
}

/// Notes for cost phases that stopped on their budget (not converged) or on the level test.
fn cost_phase_notes(a: &AgfResult, gtol: f64) -> Vec<String> {
    let budget: Vec<usize> = (0..a.rounds.len())
        .filter(|&k| a.rounds[k].cost_stop == CostStop::Budget)
        .map(|k| k + 1)
        .collect();
    let level = a
        .rounds
        .iter()
        .filter(|r| r.cost_stop == CostStop::Level)
        .count();
    let mut notes = Vec::new();
    if !budget.is_empty() {
        notes.push(format!(
            "AGF rounds {budget:?}: the cost phase stopped on its budget (cost.t_max / cost.max_steps) with ‖∇C‖ > gtol = {gtol:.1e}: not converged (agf_cost_phases)"
        ));
    }
    if level > 0 {
        notes.push(format!(
            "AGF: {level} of {} cost phases stopped on the level test (relative decrease over a doubling ≤ cost.level_rtol) with ‖∇C‖ > gtol: no minimiser attained, the level is the infimum along the flow (agf_cost_phases)",
            a.rounds.len()
        ));
    }
    notes
}

/// The `group_agf` experiment.
pub struct GroupAgfExperiment;

impl Experiment for GroupAgfExperiment {
    fn name(&self) -> &'static str {
        "group_agf"
    }
    fn about(&self) -> &'static str {
        "Sequential group composition (Marchetti et al. 2026): a z^k net learns G's real irreps one at a time — theory order and levels vs gradient flow vs numerical AGF, for cyclic, product, dihedral, octahedral, A5 or any group given by generators or a table"
    }
    fn resolve(&self, table: &toml::Table) -> Result<toml::Table> {
        let mut cfg: GroupAgfConfig = from_table(table)?;
        cfg.train.resolve();
        cfg.train.validate()?;
        cfg.setup()?;
        to_table(&cfg)
    }

    fn run(&self, resolved: &toml::Table, ctx: &RunContext<'_>) -> Result<RunOutput> {
        let cfg: GroupAgfConfig = from_table(resolved)?;
        let Setup {
            group,
            irreps,
            powers,
        } = cfg.setup()?;
        let n_g = group.order();
        let k = cfg.data.k;
        let template = template_from_powers(&irreps.real, &powers, "data.powers")?;
        let data = group_composition(&group, &template, k)?;
        let start = Instant::now();
        let theory = GroupAgfTheory::new(&group, &irreps, &template, &data, k, cfg.seed)?;
        let theory_seconds = start.elapsed().as_secs_f64();
        let order = theory.order();
        let levels = theory.levels();
        let names: Vec<String> = irreps.real.iter().map(|r| r.name.clone()).collect();
        let bases: Vec<Mat<f64>> = irreps
            .real
            .iter()
            .map(|r| isotypic_basis(&group, r))
            .collect::<Result<_>>()?;
        let tpow: Vec<f64> = theory.irreps.iter().map(|r| r.power).collect();
        let model = TwoLayer::new(k * n_g, cfg.model.width, n_g, activation_for(k), false);
        let direction = init_direction(cfg.seed, k * n_g, cfg.model.width, n_g);
        let main = run_alpha(
            &cfg, &model, &data, &direction, cfg.alpha, &bases, &names, &order, &tpow, ctx,
        )?;

        let mut out = RunOutput {
            config: resolved.clone(),
            seed: cfg.seed,
            ..Default::default()
        };
        out.arrays.push((
            "data/template.npy".into(),
            NdArray::vector(template.clone()),
        ));
        out.arrays.extend(param_arrays(
            &model,
            &direction.iter().map(|g| cfg.alpha * g).collect::<Vec<_>>(),
            "params/init",
        ));
        out.arrays
            .extend(param_arrays(&model, &main.gf.final_params, "params/final"));
        let traj = &main.gf.trajectory;
        let t = traj.column("t").unwrap_or_default();
        let loss = traj.column("loss").unwrap_or_default();
        let pcols: Vec<Vec<f64>> = names
            .iter()
            .map(|n| traj.column(&column_name(n)).unwrap_or_default())
            .collect();
        let gf_times = half_power_times(&t, &pcols, &tpow, &order);
        let mut learned: Vec<(usize, f64)> = order
            .iter()
            .zip(&gf_times)
            .filter_map(|(&s, t)| t.map(|t| (s, t)))
            .collect();
        learned.sort_by(|a, b| a.1.total_cmp(&b.1));
        let order_gf: Vec<usize> = learned.iter().map(|x| x.0).collect();
        let bounds: Vec<f64> = learned.iter().map(|x| x.1).collect();
        let levels_gf = plateau_levels(&t, &loss, &bounds);
        let name_list =
            |v: &[usize]| -> Vec<String> { v.iter().map(|&i| names[i].clone()).collect() };

        let s = &mut out.summary;
        s.insert("group".into(), json!(group.name));
        s.insert("order".into(), json!(n_g));
        s.insert("k".into(), json!(k));
        s.insert("activation".into(), json!(activation_for(k).name()));
        s.insert("theory_seconds".into(), json!(theory_seconds));
        s.insert(
            "irreps".into(),
            json!(theory.irreps.iter().map(|r| json!({"name": r.name, "dim": r.dim, "kind": r.kind, "power": r.power, "max_utility": r.max_utility})).collect::<Vec<_>>()),
        );
        s.insert("levels_theory".into(), json!(levels));
        s.insert("levels_gf".into(), json!(levels_gf));
        s.insert("torch_mse_factor".into(), json!(torch_mse_factor(n_g)));
        s.insert("irrep_order_theory".into(), json!(name_list(&order)));
        s.insert("irrep_order_gf".into(), json!(name_list(&order_gf)));
        s.insert(
            "irrep_times_gf".into(),
            json!(order
                .iter()
                .zip(&gf_times)
                .map(|(&i, t)| json!({"irrep": names[i], "t": t}))
                .collect::<Vec<_>>()),
        );
        s.insert("gf_seconds".into(), json!(main.gf_seconds));
        s.insert("gf_cpu_seconds".into(), json!(main.gf_cpu_seconds));
        s.insert("gf_method".into(), json!(cfg.train.method.name()));
        s.insert("final_loss_gf".into(), json!(loss.last()));
        let rho_max = (0..cfg.model.width)
            .map(|i| {
                crate::linalg::norm2(
                    &model
                        .neuron_params(i)
                        .iter()
                        .map(|&j| cfg.alpha * direction[j])
                        .collect::<Vec<_>>(),
                )
            })
            .fold(0.0f64, f64::max);
        s.insert(
            "jump_time_from_maximiser".into(),
            json!(order
                .iter()
                .map(|&i| json!({"irrep": names[i], "t": theory.jump_time(i, rho_max)}))
                .collect::<Vec<_>>()),
        );
        let ag = &mut out.agreement;
        let same = order_gf == order;
        ag.push(
            AgreementRow::relative_to(
                "irrep order (GF = theory: 1)",
                1.0,
                f64::from(u8::from(same)),
                1.0,
                0.0,
            )
            .with_note(format!(
                "theory {:?}, GF {:?}",
                name_list(&order),
                name_list(&order_gf)
            )),
        );
        for j in 1..levels.len() {
            let q = format!(
                "plateau ℓ{j} after {} (GF vs theory, relative to ℓ₀)",
                name_list(&order[..j]).join(", ")
            );
            ag.push(AgreementRow::relative_to(
                q,
                levels[j],
                levels_gf.get(j).copied().unwrap_or(f64::NAN),
                levels[0],
                0.01,
            ));
        }
        if let Some(st) = &main.stairs {
            let drops = match_drops(st, &t, &loss);
            let errs = drop_errors(&drops, levels[0]);
            let (et, el) = (errs.max_time, errs.max_level);
            s.insert("drops".into(), drops_json(&drops));
            s.insert("max_rel_time_error".into(), json!(et));
            s.insert("max_rel_loss_error".into(), json!(el));
            s.insert("agf_seconds".into(), json!(main.agf_seconds));
            s.insert(
                "agf_cost_fraction".into(),
                json!(main.agf_seconds / main.gf_seconds.max(f64::MIN_POSITIVE)),
            );
            s.insert("agf_cpu_seconds".into(), json!(main.agf_cpu_seconds));
            s.insert(
                "agf_cost_fraction_cpu".into(),
                json!(main
                    .agf_cpu_seconds
                    .zip(main.gf_cpu_seconds)
                    .map(|(a, g)| a / g)),
            );
            if let Some(a) = &main.agf {
                s.insert("agf_stop".into(), json!(a.stop));
                s.insert("agf_cost_phases".into(), cost_phases_json(a));
                out.notes.extend(cost_phase_notes(a, cfg.cost.gtol));
            }
            let s = &mut out.summary;
            s.insert("agf_rounds".into(), json!(st.times.len()));
            s.insert("irrep_order_agf".into(), json!(name_list(&main.agf_order)));
            s.insert(
                "irrep_times_agf".into(),
                json!(order
                    .iter()
                    .zip(&main.agf_irrep_times)
                    .map(|(&i, t)| json!({"irrep": names[i], "t": t}))
                    .collect::<Vec<_>>()),
            );
            let ag = &mut out.agreement;
            ag.push(AgreementRow::relative_to(
                "irrep order (AGF = theory: 1)",
                1.0,
                f64::from(u8::from(main.agf_order == order)),
                1.0,
                0.0,
            ));
            for (j, &i) in order.iter().enumerate() {
                if let Some(tg) = gf_times[j] {
                    ag.push(
                        AgreementRow::relative_opt(
                            format!("time irrep {} reaches half power (AGF vs GF)", names[i]),
                            tg,
                            main.agf_irrep_times[j],
                            0.05,
                        )
                        .with_note(format!("α = {}", cfg.alpha)),
                    );
                }
            }
            out.tables
                .push(super::agf::compare::drops_table(&drops, "irrep"));
        }
        // α-series at the irrep level: the main α and every `alpha_series` entry, same
        // init direction; per irrep the GF and AGF half-power times and their relative gap
        if !cfg.alpha_series.is_empty() && !cfg.skip_agf {
            let mut alphas = cfg.alpha_series.clone();
            alphas.push(cfg.alpha);
            alphas.sort_by(|a, b| b.total_cmp(a));
            alphas.dedup();
            let mut rows = Vec::new();
            let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 7];
            for &a in &alphas {
                let extra;
                let r = if a == cfg.alpha {
                    &main
                } else {
                    extra = run_alpha(
                        &cfg, &model, &data, &direction, a, &bases, &names, &order, &tpow, ctx,
                    )?;
                    &extra
                };
                let rt = r.gf.trajectory.column("t").unwrap_or_default();
                let rp: Vec<Vec<f64>> = names
                    .iter()
                    .map(|n| r.gf.trajectory.column(&column_name(n)).unwrap_or_default())
                    .collect();
                let g = half_power_times(&rt, &rp, &tpow, &order);
                let errs: Vec<Option<f64>> = g
                    .iter()
                    .zip(&r.agf_irrep_times)
                    .map(|(g, a)| Some((a.as_ref()? - g.as_ref()?).abs() / g.as_ref()?))
                    .collect();
                for (j, &i) in order.iter().enumerate() {
                    cols[0].push(a);
                    cols[1].push(i as f64);
                    cols[2].push(g[j].unwrap_or(f64::NAN));
                    cols[3].push(r.agf_irrep_times[j].unwrap_or(f64::NAN));
                    cols[4].push(errs[j].unwrap_or(f64::NAN));
                    cols[5].push(r.agf_cpu_seconds.unwrap_or(f64::NAN));
                    cols[6].push(r.gf_cpu_seconds.unwrap_or(f64::NAN));
                }
                let max_err = errs.iter().flatten().fold(0.0f64, |m, e| m.max(*e));
                rows.push(json!({
                    "alpha": a,
                    "irreps": name_list(&order),
                    "t_gf": g,
                    "t_agf": r.agf_irrep_times,
                    "irrep_time_rel_errors": errs,
                    "max_irrep_time_rel_error": max_err,
                    "agf_order": name_list(&r.agf_order),
                    "agf_cpu_seconds": r.agf_cpu_seconds,
                    "gf_cpu_seconds": r.gf_cpu_seconds,
                    "agf_seconds": r.agf_seconds,
                    "gf_seconds": r.gf_seconds,
                }));
            }
            out.summary.insert("alpha_series".into(), json!(rows));
            out.tables.push(super::CsvTable {
                name: "alpha_series".into(),
                columns: [
                    "alpha",
                    "irrep",
                    "t_gf",
                    "t_agf",
                    "rel_error",
                    "agf_cpu_seconds",
                    "gf_cpu_seconds",
                ]
                .iter()
                .map(|c| c.to_string())
                .collect(),
                values: cols,
            });
        }
        // figures
        let t_start = t.get(1).copied().unwrap_or(1e-3);
        let t_end = *t.last().unwrap_or(&1.0);
        let mut lp = LinePlot::new(
            format!("{}: loss", group.name),
            "t (gradient-flow time)",
            "loss",
        )
        .scales(Scale::Log, Scale::Log);
        lp.series.push(Series::line(
            cfg.train.method.name(),
            t[1..].to_vec(),
            loss[1..].to_vec(),
        ));
        if let Some(st) = &main.stairs {
            let (sx, sy) = st.step_series(t_start, t_end);
            lp.series.push(Series::step(
                "numerical AGF",
                sx,
                sy.iter().map(|v| v.max(1e-12 * levels[0])).collect(),
            ));
        }
        for (j, l) in levels.iter().enumerate() {
            if *l > 1e-10 * levels[0] {
                lp.ref_lines.push(RefLine {
                    label: format!("ℓ{j} (theory)"),
                    vertical: false,
                    value: *l,
                });
            }
        }
        out.figures.push(lp.figure("loss", "Loss under gradient flow / GD, the numerical AGF staircase and the theory plateaus ½Σ(power left), one per real irrep in order of decreasing utility."));
        out.figures.push(
            irrep_power_figure("Learned power per real irrep", &order, &names, &irreps, &t, &pcols, &tpow)
                .figure("irrep_power", "Power of the learned function in each real irrep; horizontal lines: the template's power P(σ), reached when σ is learned."),
        );
        out.trajectory = main.gf.trajectory.clone();
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{apply_set, parse_toml, prepare};

    /// A preset at its quick settings with `sets` applied, resolved.
    fn quick(preset: &str, sets: &[&str]) -> Result<toml::Table> {
        let t = parse_toml(crate::presets::get(preset).unwrap(), preset)?;
        let mut t = prepare(t, true)?;
        for s in sets {
            apply_set(&mut t, s)?;
        }
        GroupAgfExperiment.resolve(&t)
    }

    fn summary(preset: &str, sets: &[&str]) -> serde_json::Map<String, serde_json::Value> {
        let r = quick(preset, sets).unwrap();
        GroupAgfExperiment
            .run(&r, &RunContext::default())
            .unwrap()
            .summary
    }

    fn levels(s: &serde_json::Map<String, serde_json::Value>, key: &str) -> Vec<f64> {
        s[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect()
    }

    /// D₅ (quick: H = 24, α = 3e-3, GF to t = 0.4, numerical AGF by irrep blocks): the sign
    /// irrep, then 2_1, then 2_2, as the utilities predict, in GF and in AGF; the plateaus
    /// after the sign irrep and after 2_1 within 1% of ℓ₀ of ½Σ(power left) = 1500, 500; the
    /// AGF cascade needs 2d² neurons per irrep (at least 2 + 8 + 8 rounds).
    #[test]
    fn d5_learns_sign_then_the_two_planes_at_the_theory_levels() {
        let s = summary("group-agf-d5", &[]);
        assert_eq!(s["irrep_order_agf"], s["irrep_order_theory"]);
        assert!(
            s["agf_rounds"].as_u64().unwrap_or(0) >= 18,
            "{}",
            s["agf_rounds"]
        );
        assert_eq!(s["irrep_order_theory"], json!(["1'", "2_1", "2_2"]));
        assert_eq!(s["irrep_order_gf"], s["irrep_order_theory"]);
        let (th, gf) = (levels(&s, "levels_theory"), levels(&s, "levels_gf"));
        assert!(
            (th[1] - 1500.0).abs() < 1e-9 && (th[2] - 500.0).abs() < 1e-9,
            "{th:?}"
        );
        for j in 1..=2 {
            assert!(
                (gf[j] - th[j]).abs() < 0.01 * th[0],
                "level {j}: {gf:?} vs {th:?}"
            );
        }
    }

    /// C₁₁ (quick: H = 24, α = 1e-2, GF to t = 60): frequencies in decreasing power order.
    #[test]
    fn c11_learns_frequencies_in_the_predicted_order() {
        let s = summary("group-agf-c11", &["skip_agf=true"]);
        assert_eq!(
            s["irrep_order_theory"],
            json!(["k1", "k2", "k3", "k4", "k5"])
        );
        assert_eq!(s["irrep_order_gf"], s["irrep_order_theory"]);
    }

    /// Bad configs are refused with the key: unknown irrep names (listing the known ones),
    /// k ∉ {2, 3}, invalid groups.
    #[test]
    fn bad_configs_name_the_key() {
        let e = quick("group-agf-d5", &["data.powers.x3=1.0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.powers.x3") && e.contains("2_1"), "{e}");
        let e = quick("group-agf-d5", &["data.k=4"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.k"), "{e}");
        let e = quick(
            "group-agf-d5",
            &["data.group={ kind = \"dihedral\", n = 2 }"],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data.group") && e.contains("n ≥ 3"), "{e}");
        let e = quick(
            "group-agf-d5",
            &["data.group={ kind = \"table\", table = [[0, 1], [1, 1]] }"],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data.group") && e.contains("inverse"), "{e}");
        let e = quick("group-agf-d5", &["alpha=0.7"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("alpha"), "{e}");
        assert_eq!(column_name("(1,0)"), "power_1_0");
        assert_eq!(column_name("3'"), "power_3p");
    }
}
