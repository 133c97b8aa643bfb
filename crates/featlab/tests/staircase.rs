//! The default demo: the `staircase` preset shows ≥ 3 plateaus and drops, and the adaptive
//! gradient-flow solver reproduces GD at lr 1e-3 (drop times within 1%) with ≥ 20× fewer
//! gradient evaluations.

use featlab::config::parse_toml;
use featlab::experiments::run_table;
use featlab::train::RunContext;

#[test]
fn staircase_preset_has_plateaus_and_flow_matches_gd() {
    let table = parse_toml(featlab::presets::get("staircase").unwrap(), "staircase").unwrap();
    let out = run_table(&table, &RunContext::default()).unwrap();
    let s = &out.summary;
    println!("{}", serde_json::to_string_pretty(s).unwrap());
    let drops: Vec<Option<f64>> = serde_json::from_value(s["drop_times"].clone()).unwrap();
    let observed = drops.iter().filter(|d| d.is_some()).count();
    assert!(observed >= 3, "only {observed} drops: {drops:?}");
    // drops are ordered and separated
    let d: Vec<f64> = drops.iter().flatten().copied().collect();
    assert!(
        d.windows(2).all(|w| w[1] > 1.3 * w[0]),
        "drops not separated: {d:?}"
    );
    let max_rel = s["max_drop_time_rel_diff"].as_f64().unwrap();
    assert!(max_rel < 0.01, "flow vs GD drop times differ by {max_rel}");
    let ratio = s["grad_eval_ratio"].as_f64().unwrap();
    assert!(
        ratio >= 20.0,
        "flow used only {ratio}x fewer gradient evaluations than GD"
    );
    // every loss value is finite
    let loss = out.trajectory.column("loss").unwrap();
    assert!(loss.iter().all(|l| l.is_finite()));
}
