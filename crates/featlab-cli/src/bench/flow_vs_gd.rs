//! `featlab bench flow-vs-gd`: the adaptive gradient-flow integrator against GD at a small
//! learning rate on the same problem from the same initialisation.
//!
//! Runs a `train` preset with a `[reference]` section (default `staircase`: two-layer
//! linear net, linear teacher with singular values 4, 2, 1, 0.5, Dormand–Prince at rtol
//! 1e-6, GD at lr 1e-3) exactly as `featlab run` does, and reports from its summary the
//! gradient evaluations, the drop times (midpoint crossings of the theoretical plateau
//! levels) and the training wall time of each method. Issue 8's target: ≥ 20× fewer
//! gradient evaluations, drop times within ±1%, and a lower wall time.

use super::pool_and_par;
use anyhow::{Context, Result};
use featlab::config::parse_toml;
use featlab::experiments::run_table;
use featlab::train::RunContext;
use serde_json::{json, Value};

/// Issue 8's target for the ratio of gradient evaluations (GD / flow).
pub const TARGET_EVAL_RATIO: f64 = 20.0;
/// Issue 8's tolerance on the relative difference of drop times.
pub const TARGET_DROP_REL_DIFF: f64 = 0.01;

/// Arguments of `featlab bench flow-vs-gd`.
#[derive(clap::Parser, Debug, Clone)]
pub struct FlowVsGdArgs {
    /// A `train` preset with gradient flow as `[train]` method and a `[reference]` method.
    #[arg(long, default_value = "staircase")]
    pub preset: String,
    /// Threads for the matrix products (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

impl Default for FlowVsGdArgs {
    /// The command-line defaults (the `staircase` preset, one thread).
    fn default() -> Self {
        <FlowVsGdArgs as clap::Parser>::parse_from(["flow-vs-gd"])
    }
}

/// Run `featlab bench flow-vs-gd` and return its JSON line.
pub fn bench_flow_vs_gd(args: &FlowVsGdArgs) -> Result<Value> {
    let text = featlab::presets::get(&args.preset).with_context(|| {
        format!(
            "no preset `{}` (see `featlab list`; the default is `staircase`)",
            args.preset
        )
    })?;
    let table = parse_toml(text, &args.preset)?;
    let (pool, par) = pool_and_par(args.threads)?;
    let ctx = RunContext {
        par,
        ..RunContext::default()
    };
    let out = pool.install(|| run_table(&table, &ctx))?;
    let s = &out.summary;
    let reference = s.get("reference").with_context(|| {
        format!(
            "preset `{}` has no [reference] method to compare with",
            args.preset
        )
    })?;
    let num = |v: Option<&Value>, what: &str| -> Result<f64> {
        v.and_then(Value::as_f64)
            .with_context(|| format!("the run summary has no number `{what}`"))
    };
    let flow_evals = num(s.get("grad_evals"), "grad_evals")?;
    let gd_evals = num(reference.get("grad_evals"), "reference.grad_evals")?;
    let flow_secs = num(s.get("train_seconds"), "train_seconds")?;
    let gd_secs = num(reference.get("train_seconds"), "reference.train_seconds")?;
    let eval_ratio = gd_evals / flow_evals.max(1.0);
    // Drop times exist only when a staircase theory applies (linear teacher, linear student).
    let max_rel = s.get("max_drop_time_rel_diff").and_then(Value::as_f64);
    let drops_ok = max_rel.is_some_and(|r| r <= TARGET_DROP_REL_DIFF);
    Ok(json!({
        "bench": "flow-vs-gd", "preset": args.preset, "threads": args.threads,
        "flow": {
            "method": s.get("method"), "grad_evals": s.get("grad_evals"), "steps": s.get("steps"),
            "seconds": flow_secs, "drop_times": s.get("drop_times"),
            "final_loss": s.get("final_loss"), "integrator": s.get("integrator"),
        },
        "gd": {
            "method": reference.get("method"), "lr": reference.get("lr"),
            "grad_evals": reference.get("grad_evals"), "steps": reference.get("steps"), "seconds": gd_secs,
            "drop_times": s.get("drop_times_reference"), "final_loss": reference.get("final_loss"),
        },
        "grad_eval_ratio": eval_ratio,
        "wall_time_ratio": gd_secs / flow_secs,
        "drop_time_rel_diff": s.get("drop_time_rel_diff"),
        "max_drop_time_rel_diff": max_rel,
        "meets_target": eval_ratio >= TARGET_EVAL_RATIO && drops_ok && flow_secs < gd_secs,
    }))
}
