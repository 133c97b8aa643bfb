//! The `exact_1d` experiment: train `f(x) = γ(u·w)x` (featlab's `TwoLayer` with d_in = 1,
//! linear activation, output multiplier γ, lr multipliers (η_w, η_u)) with the engine and
//! compare every recorded quantity with the closed form of
//! [`crate::theory::exact_linear_1d`] (Xu & Ziyin, arXiv 2401.07085 v3).

use super::{Model1dConfig, Model1dObserver};
use crate::compare::AgreementRow;
use crate::data::DataConfig;
use crate::experiments::study::{summary_map, Study, StudyOutputs};
use crate::experiments::RunOutput;
use crate::figure::{LinePlot, Scale, Series};
use crate::model::Loss;
use crate::rng::stream;
use crate::theory::exact_linear_1d::mechanism::{classify_exact, Classification};
use crate::theory::exact_linear_1d::{
    classify, pack, unpack, DynamicsMeasures, ExactLinear1d, Hyper1d, Moments1d, State1d,
    Thresholds,
};
use crate::train::{self, LossObserver, Observer, Problem, RunContext, TrainConfig, Trajectory};
use crate::{NdArray, Result};
use serde::{Deserialize, Serialize};

fn name() -> String {
    "exact_1d".into()
}

/// Config of `exact_1d`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Exact1dConfig {
    #[serde(default = "name")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub description: String,
    pub model: Model1dConfig,
    /// Any dataset with one input and one output column (only E[x²] and E[xy] matter).
    pub data: DataConfig,
    /// Training of the engine side (`method = "flow"` for gradient flow).
    pub train: TrainConfig,
    #[serde(default)]
    pub thresholds: Thresholds,
}

/// The `exact_1d` study (the worked example of `docs/adding-a-study.md`).
pub struct Exact1dExperiment;

/// What the engine measured: the setup it trained from and the recorded observables.
pub struct Exact1dRun {
    data: crate::data::Dataset,
    moments: Moments1d,
    hyper: Hyper1d,
    u0: Vec<f64>,
    w0: Vec<f64>,
    /// Recorded times and observables (`loss`, β, K, cos∠(u, w), |u|, |w|).
    t: Vec<f64>,
    loss: Vec<f64>,
    beta: Vec<f64>,
    ntk: Vec<f64>,
    cos: Vec<f64>,
    norm_u: Vec<f64>,
    norm_w: Vec<f64>,
    t_final: f64,
    u_final: Vec<f64>,
    w_final: Vec<f64>,
    steps: u64,
    grad_evals: u64,
    /// The mechanism read from the engine's initial and final parameters.
    class: Classification,
}

/// What the closed form predicts for that run: the solution and its states at the
/// recorded times and at the end.
pub struct Exact1dPrediction {
    sol: ExactLinear1d,
    /// `sol.at(t_i)` at every recorded time.
    states: Vec<State1d>,
    u_final: Vec<f64>,
    w_final: Vec<f64>,
    class: Classification,
}

/// run.json `summary` of `exact_1d` (besides `agreement`).
#[derive(Debug, Serialize)]
pub struct Exact1dSummary {
    gamma: f64,
    lr_u: f64,
    lr_w: f64,
    width: usize,
    #[serde(rename = "data_E_x2")]
    data_e_x2: f64,
    #[serde(rename = "data_E_xy")]
    data_e_xy: f64,
    data_slope_k: f64,
    data_loss_floor: f64,
    data_note: &'static str,
    beta0: f64,
    beta_inf: f64,
    kbar: f64,
    rho0: f64,
    omega_conserved: f64,
    #[serde(rename = "imbalance_C_conserved")]
    imbalance_c_conserved: f64,
    ntk_rel_change_inf_theory: f64,
    log_z_plus: f64,
    convergence_rate: f64,
    t_final: f64,
    method: train::Method,
    steps: u64,
    grad_evals: u64,
    /// max_i |β − β_th| / √(β_th² + ω²).
    max_rel_error_beta: f64,
    /// max_i |β − β_th| / |β_th|.
    max_rel_error_beta_pointwise: f64,
    max_rel_error_ntk: f64,
    max_rel_error_loss: f64,
    max_abs_error_alignment: f64,
    max_rel_error_norms: f64,
    rel_error_final_vectors: f64,
    mechanism_sim: Classification,
    mechanism_theory: Classification,
}

/// Relative Euclidean distance ‖a − b‖/‖b‖.
fn rel_distance(a: &[f64], b: &[f64]) -> f64 {
    let n: f64 = b.iter().map(|v| v * v).sum::<f64>().sqrt();
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
        / n.max(f64::MIN_POSITIVE)
}

impl Exact1dPrediction {
    /// Engine vs closed form for the final vectors: max of the relative distances of u and w.
    fn final_vector_error(&self, run: &Exact1dRun) -> f64 {
        rel_distance(&run.u_final, &self.u_final).max(rel_distance(&run.w_final, &self.w_final))
    }
}

impl Study for Exact1dExperiment {
    type Config = Exact1dConfig;
    type Simulation = Exact1dRun;
    type Prediction = Exact1dPrediction;
    const NAME: &'static str = "exact_1d";
    const ABOUT: &'static str = "exact finite-width solution of f(x) = γ(u·w)x on 1-D data vs the engine's gradient flow (Xu & Ziyin 2024)";

    fn resolve(&self, cfg: &mut Exact1dConfig) -> Result<()> {
        cfg.train.resolve();
        cfg.train.validate()?;
        cfg.model.build(&mut stream(cfg.seed, "init"), "model")?;
        Ok(())
    }

    fn simulate(&self, cfg: &Exact1dConfig, ctx: &RunContext<'_>) -> Result<Exact1dRun> {
        let data = cfg.data.build(&mut stream(cfg.seed, "data"))?;
        let moments = Moments1d::from_dataset(&data)?;
        let (hyper, u0, w0) = cfg.model.build(&mut stream(cfg.seed, "init"), "model")?;
        let model = cfg.model.model();
        let p0 = pack(&u0, &w0);

        let mut problem = Problem::new(&model, &data, Loss::Mse, cfg.train.weight_decay, ctx.par);
        let mut observers: Vec<Box<dyn Observer>> = vec![
            Box::new(LossObserver),
            Box::new(Model1dObserver::new(hyper.gamma)),
        ];
        let mut stepper = cfg.train.stepper(p0.clone(), stream(cfg.seed, "batches"))?;
        let res = train::run(
            &mut problem,
            stepper.as_mut(),
            &mut observers,
            &cfg.train.run_options()?,
            ctx,
        )?;
        let col = |n: &str| res.trajectory.column(n).unwrap_or_default();

        let obs = Model1dObserver::new(hyper.gamma);
        let (m0, m1) = (
            obs.measure(&model, &p0),
            obs.measure(&model, &res.final_params),
        );
        let lr = |a: f64, b: f64| {
            if a > 0.0 && b > 0.0 {
                (b / a).ln()
            } else {
                0.0
            }
        };
        let class = classify(
            &DynamicsMeasures {
                ntk_rel_change: (m1[1] / m0[1] - 1.0).abs(),
                alignment_start: vec![m0[2] * m0[2]],
                alignment_end: vec![m1[2] * m1[2]],
                log_norm_ratios: vec![lr(m0[4], m1[4]), lr(m0[3], m1[3])],
            },
            &cfg.thresholds,
        );
        let (u_final, w_final) = unpack(&res.final_params);
        Ok(Exact1dRun {
            t: col("t"),
            loss: col("loss"),
            beta: col("beta"),
            ntk: col("ntk"),
            cos: col("alignment"),
            norm_u: col("norm_u"),
            norm_w: col("norm_w"),
            t_final: res.t_final,
            u_final,
            w_final,
            steps: res.steps,
            grad_evals: problem.grad_evals,
            class,
            data,
            moments,
            hyper,
            u0,
            w0,
        })
    }

    fn predict(
        &self,
        cfg: &Exact1dConfig,
        run: &Exact1dRun,
        _ctx: &RunContext<'_>,
    ) -> Result<Exact1dPrediction> {
        let sol = ExactLinear1d::from_vectors(run.hyper, run.moments, &run.u0, &run.w0)?;
        let states = run.t.iter().map(|&t| sol.at(t)).collect();
        let (u_final, w_final) = sol.vectors_at(run.t_final).expect("built from vectors");
        let class = classify_exact(&sol, run.t_final, &cfg.thresholds);
        Ok(Exact1dPrediction {
            sol,
            states,
            u_final,
            w_final,
            class,
        })
    }

    fn compare(
        &self,
        cfg: &Exact1dConfig,
        run: &Exact1dRun,
        pred: &Exact1dPrediction,
    ) -> Vec<AgreementRow> {
        let th = &pred.states;
        let mut rows = agreement_rows(
            &[
                (
                    "β(t) = γu·w",
                    &run.beta,
                    &th.iter().map(|s| s.beta).collect::<Vec<_>>(),
                ),
                (
                    "NTK K(t)",
                    &run.ntk,
                    &th.iter().map(|s| s.ntk).collect::<Vec<_>>(),
                ),
            ],
            pred.sol.omega(),
            cfg.train.method == train::Method::Flow,
        );
        rows.push(
            AgreementRow::relative_to(
                "final (u, w) engine vs closed form (relative Euclidean distance)",
                0.0,
                pred.final_vector_error(run),
                1.0,
                EXACT_TOLERANCE,
            )
            .with_note(format!("t = {}", run.t_final)),
        );
        rows
    }

    fn outputs(
        &self,
        cfg: &Exact1dConfig,
        run: Exact1dRun,
        pred: Exact1dPrediction,
    ) -> Result<StudyOutputs> {
        let mut out = RunOutput {
            seed: cfg.seed,
            ..Default::default()
        };
        out.summary = summary_map(&summary(cfg, &run, &pred))?;
        out.trajectory = trajectory(&run, &pred)?;
        out.arrays = vec![
            ("data/x.npy".into(), NdArray::from_mat(run.data.x.as_ref())),
            ("data/y.npy".into(), NdArray::from_mat(run.data.y.as_ref())),
            ("params/init/w.npy".into(), NdArray::vector(run.w0.clone())),
            ("params/init/u.npy".into(), NdArray::vector(run.u0.clone())),
            (
                "params/final/w.npy".into(),
                NdArray::vector(run.w_final.clone()),
            ),
            (
                "params/final/u.npy".into(),
                NdArray::vector(run.u_final.clone()),
            ),
            (
                "params/final/w_theory.npy".into(),
                NdArray::vector(pred.w_final.clone()),
            ),
            (
                "params/final/u_theory.npy".into(),
                NdArray::vector(pred.u_final.clone()),
            ),
        ];
        out.notes.push(
            "max_rel_error_beta is |β_sim − β_theory| / √(β² + ω²) (ω = |γ||u₀∧w₀| conserved): relative to |γ||u||w|, the size β has when u ∥ w; \
             max_rel_error_beta_pointwise divides by |β| itself and is large only where β crosses zero."
                .into(),
        );
        if cfg.train.method != train::Method::Flow {
            out.notes.push(format!(
                "the engine ran {:?} with lr {} — a discretisation of gradient flow; expect O(lr) differences from the closed form (which is exact for gradient flow)",
                cfg.train.method, cfg.train.lr
            ));
        }
        if !cfg.description.is_empty() {
            out.notes.push(cfg.description.clone());
        }
        out.figures = figures(&run, &pred);
        Ok(out)
    }
}

/// The typed summary: setup, the closed form's order parameters, counters and the
/// worst-case errors over the recorded times.
fn summary(cfg: &Exact1dConfig, run: &Exact1dRun, pred: &Exact1dPrediction) -> Exact1dSummary {
    let (th, sol, m) = (&pred.states, &pred.sol, &run.moments);
    let omega = sol.omega();
    let n = run.t.len();
    let max_over = |f: &dyn Fn(usize) -> f64| (0..n).map(f).fold(0.0f64, f64::max);
    let op = sol.order_parameters();
    Exact1dSummary {
        gamma: run.hyper.gamma,
        lr_u: run.hyper.lr_u,
        lr_w: run.hyper.lr_w,
        width: cfg.model.width,
        data_e_x2: m.s,
        data_e_xy: m.s * m.k,
        data_slope_k: m.k,
        data_loss_floor: m.loss_floor,
        data_note: "the dynamics depend on the data only through E[x²] and E[xy] (and the loss through E[y²])",
        beta0: op.beta0,
        beta_inf: op.beta_inf,
        kbar: op.kbar,
        rho0: op.rho0,
        omega_conserved: omega,
        imbalance_c_conserved: sol.imbalance(),
        ntk_rel_change_inf_theory: op.ntk_rel_change,
        log_z_plus: op.log_z_plus,
        convergence_rate: sol.rate(),
        t_final: run.t_final,
        method: cfg.train.method,
        steps: run.steps,
        grad_evals: run.grad_evals,
        max_rel_error_beta: max_over(&|i| {
            (run.beta[i] - th[i].beta).abs() / th[i].beta.hypot(omega).max(f64::MIN_POSITIVE)
        }),
        max_rel_error_beta_pointwise: max_over(&|i| {
            (run.beta[i] - th[i].beta).abs() / th[i].beta.abs().max(f64::MIN_POSITIVE)
        }),
        max_rel_error_ntk: max_over(&|i| {
            (run.ntk[i] - th[i].ntk).abs() / th[i].ntk.max(f64::MIN_POSITIVE)
        }),
        max_rel_error_loss: max_over(&|i| {
            (run.loss[i] - th[i].loss).abs() / th[i].loss.max(f64::MIN_POSITIVE)
        }),
        max_abs_error_alignment: max_over(&|i| (run.cos[i] - th[i].cos_angle).abs()),
        max_rel_error_norms: max_over(&|i| {
            ((run.norm_u[i] - th[i].norm_u).abs() / th[i].norm_u)
                .max((run.norm_w[i] - th[i].norm_w).abs() / th[i].norm_w)
        }),
        rel_error_final_vectors: pred.final_vector_error(run),
        mechanism_sim: run.class.clone(),
        mechanism_theory: pred.class.clone(),
    }
}

/// trajectory.csv: `t`, then each observable beside its `_theory` column.
fn trajectory(run: &Exact1dRun, pred: &Exact1dPrediction) -> Result<Trajectory> {
    let th = &pred.states;
    let mut traj = Trajectory {
        columns: Vec::new(),
        rows: vec![Vec::new(); run.t.len()],
    };
    let pairs: [(&str, &[f64], Vec<f64>); 6] = [
        ("loss", &run.loss, th.iter().map(|s| s.loss).collect()),
        ("beta", &run.beta, th.iter().map(|s| s.beta).collect()),
        ("ntk", &run.ntk, th.iter().map(|s| s.ntk).collect()),
        (
            "alignment",
            &run.cos,
            th.iter().map(|s| s.cos_angle).collect(),
        ),
        ("norm_u", &run.norm_u, th.iter().map(|s| s.norm_u).collect()),
        ("norm_w", &run.norm_w, th.iter().map(|s| s.norm_w).collect()),
    ];
    traj.push_column("t", &run.t)?;
    for (n, s, tv) in &pairs {
        traj.push_column(*n, s)?;
        traj.push_column(format!("{n}_theory"), tv)?;
    }
    Ok(traj)
}

/// Loss, β, NTK, alignment and norms (engine points, closed form dashed on a dense grid),
/// and the relative error of β and K over time.
fn figures(run: &Exact1dRun, pred: &Exact1dPrediction) -> Vec<crate::figure::Figure> {
    let (t, th, sol) = (&run.t, &pred.states, &pred.sol);
    let omega = sol.omega();
    let th_t = dense_times(run.t_final, 400);
    let th_s: Vec<_> = th_t.iter().map(|&x| sol.at(x)).collect();
    let fig = |title: &str, y: &str, sim_v: &[f64], f: &dyn Fn(&State1d) -> f64, ys: Scale| {
        LinePlot::new(title, "t (gradient-flow time)", y)
            .scales(Scale::Linear, ys)
            .with(Series::points(
                "engine (DOPRI5 flow)",
                t.clone(),
                sim_v.to_vec(),
            ))
            .with(Series::dashed(
                "closed form",
                th_t.clone(),
                th_s.iter().map(f).collect(),
            ))
    };
    let floor_positive = run.moments.loss_floor > 0.0 || th_s.iter().all(|s| s.loss > 0.0);
    let loss_scale = if floor_positive {
        Scale::Log
    } else {
        Scale::Linear
    };
    let eb: Vec<f64> = (0..t.len())
        .map(|i| ((run.beta[i] - th[i].beta).abs() / th[i].beta.hypot(omega)).max(1e-18))
        .collect();
    let ek: Vec<f64> = (0..t.len())
        .map(|i| ((run.ntk[i] - th[i].ntk).abs() / th[i].ntk).max(1e-18))
        .collect();
    vec![
        fig("Loss", "loss", &run.loss, &|s| s.loss, loss_scale).figure(
            "loss",
            "Training loss: engine gradient flow (points) and the closed form (dashed).",
        ),
        fig("End-to-end coefficient β = γ u·w", "β", &run.beta, &|s| s.beta, Scale::Linear).figure(
            "beta",
            "β(t) from the engine and from the closed form; β → k = E[xy]/E[x²].",
        ),
        fig("NTK K = γ²(η_u|w|² + η_w|u|²)", "K", &run.ntk, &|s| s.ntk, Scale::Linear).figure("ntk", "Empirical NTK at x = 1 from the engine's backward pass vs the closed form K(β) = √(γ⁴C² + 4γ²η_uη_w(β² + ω²))."),
        fig("Alignment cos∠(u, w)", "cos∠(u, w)", &run.cos, &|s| s.cos_angle, Scale::Linear).figure("alignment", "cos∠(u, w) = sign(γ)β/√(β² + ω²): the angle follows β because γ|u||w|sin∠ = ω is conserved."),
        LinePlot::new("Layer norms", "t (gradient-flow time)", "norm")
            .with(Series::points("|u| engine", t.clone(), run.norm_u.clone()))
            .with(Series::dashed("|u| closed form", th_t.clone(), th_s.iter().map(|s| s.norm_u).collect()))
            .with(Series::points("|w| engine", t.clone(), run.norm_w.clone()))
            .with(Series::dashed("|w| closed form", th_t.clone(), th_s.iter().map(|s| s.norm_w).collect()))
            .figure("norms", "Per-layer norms; η_w|u|² − η_u|w|² = C is conserved."),
        LinePlot::new("Closed form vs engine: relative error", "t", "relative error")
            .scales(Scale::Linear, Scale::Log)
            .with(Series::line("β (relative to √(β²+ω²))", t.clone(), eb))
            .with(Series::line("K", t.clone(), ek))
            .figure("errors", "Relative error of the closed form against the engine's adaptive gradient flow (floored at 1e-18 for the log axis)."),
    ]
}

/// n + 1 equally spaced times in [0, t_end].
pub fn dense_times(t_end: f64, n: usize) -> Vec<f64> {
    (0..=n).map(|i| t_end * i as f64 / n as f64).collect()
}

/// The claim of the exact-1d study (docs/exact-linear-1d.md): the engine's adaptive gradient
/// flow (rtol 1e-11) and the closed form agree to the integrator's accuracy, ≤ 1e-10
/// relative, at every recorded time.
pub const EXACT_TOLERANCE: f64 = 1e-10;

/// One agreement row per observable: its worst recorded time, engine vs closed form.
/// (The loss, (s/2)(β − k)² + L*, is an algebraic function of β whose relative error is
/// that of β amplified by 2|β − k|·s|β − k|/L; it is in the trajectory and the summary,
/// not in the agreement.)
/// β is measured against √(β² + ω²) (its size when u ∥ w; β itself crosses zero), the
/// others against their own closed-form value. With a discrete method (`flow = false`) the
/// claim is O(lr), not 1e-10: the rows then carry the note and still use the flow tolerance.
fn agreement_rows(series: &[(&str, &[f64], &[f64])], omega: f64, flow: bool) -> Vec<AgreementRow> {
    series
        .iter()
        .filter_map(|(name, sim, th)| {
            let scale = |i: usize| {
                if name.starts_with('β') {
                    th[i].hypot(omega)
                } else {
                    th[i].abs()
                }
            };
            let err = |i: usize| (sim[i] - th[i]).abs() / scale(i).max(f64::MIN_POSITIVE);
            let worst = (0..sim.len().min(th.len())).max_by(|&a, &b| err(a).total_cmp(&err(b)))?;
            let row = AgreementRow::relative_to(
                format!(
                    "{name} engine vs closed form, worst of {} recorded times",
                    sim.len()
                ),
                th[worst],
                sim[worst],
                scale(worst),
                EXACT_TOLERANCE,
            );
            Some(if flow {
                row
            } else {
                row.with_note("discrete method: expect O(lr) differences")
            })
        })
        .collect()
}
