//! The headline agreement of the studies of papers 2–5 (exact 1-D, NFA, RFM, unlearning),
//! pinned at each preset's quick settings (`[quick]`, `featlab run --quick`): the rows are
//! present, and each headline row holds with the tolerance the study claims — or, for a
//! documented disagreement (docs/nfa.md, docs/unlearning.md), is measured as documented.
//!
//! Presets on scikit-learn's digits need `scripts/fetch-digits.sh`; without the file those
//! tests say so and return (as the other digits tests do).

use featlab::compare::AgreementRow;
use featlab::config::{apply_set, parse_toml, prepare};
use featlab::experiments::{run_table, RunOutput};
use featlab::train::RunContext;
use std::path::PathBuf;

/// The preset with its quick settings merged in.
fn quick(name: &str) -> toml::Table {
    let text = featlab::presets::get(name).unwrap_or_else(|| panic!("preset {name}"));
    prepare(parse_toml(text, name).unwrap(), true).unwrap()
}

fn run(table: &toml::Table) -> RunOutput {
    let out = run_table(table, &RunContext::default()).unwrap();
    assert!(!out.agreement.is_empty(), "empty agreement");
    for r in &out.agreement {
        println!(
            "{} | theory {:?} | experiment {:?} | rel_error {:?} | tol {} | holds {}",
            r.quantity, r.theory, r.experiment, r.rel_error, r.tolerance, r.holds
        );
    }
    out
}

/// The rows whose quantity starts with `prefix` (at least one).
fn rows<'a>(out: &'a RunOutput, prefix: &str) -> Vec<&'a AgreementRow> {
    let v: Vec<&AgreementRow> = out
        .agreement
        .iter()
        .filter(|r| r.quantity.starts_with(prefix))
        .collect();
    assert!(!v.is_empty(), "no agreement row starting with {prefix:?}");
    v
}

fn assert_hold(out: &RunOutput, prefix: &str) {
    for r in rows(out, prefix) {
        assert!(r.holds, "does not hold: {r:?}");
        assert!(r.rel_error.is_some_and(|e| e <= r.tolerance), "{r:?}");
    }
}

/// The digits preset pointed at the fetched file, or None (with a note) when it is absent.
fn with_digits(mut t: toml::Table) -> Option<toml::Table> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/digits.csv.gz");
    if !path.exists() {
        eprintln!(
            "note: {} absent (run scripts/fetch-digits.sh); this digits agreement test is skipped",
            path.display()
        );
        return None;
    }
    apply_set(
        &mut t,
        &format!("data.path={:?}", path.display().to_string()),
    )
    .unwrap();
    Some(t)
}

#[test]
fn exact_1d_closed_form_matches_training_to_1e_10() {
    let out = run(&quick("exact-1d"));
    assert_eq!(out.agreement.len(), 3);
    for p in ["β(t)", "NTK K(t)", "final (u, w)"] {
        assert_hold(&out, p);
    }
    assert!(out.agreement.iter().all(|r| r.tolerance == 1e-10));
}

#[test]
fn exact_mechanisms_engine_matches_closed_form_and_labels_are_right() {
    let out = run(&quick("exact-mechanisms"));
    for case in ["kernel", "alignment", "disalignment", "rescaling"] {
        assert_hold(&out, &format!("{case}: NTK change"));
        assert_hold(&out, &format!("{case}: alignment change"));
    }
    assert_hold(&out, "cases labelled as built");
    assert_eq!(out.agreement.len(), 9);
}

#[test]
fn exact_phase_diagram_trained_checks_match_closed_form() {
    let out = run(&quick("exact-phase-diagram"));
    let r = rows(&out, "ln K(T)/K(0) engine vs closed form");
    assert_eq!(r.len(), 4, "one row per [[check]]");
    assert_hold(&out, "ln K(T)/K(0)");
}

#[test]
fn exact_deep_real_is_kernel_at_the_largest_output_scale() {
    let Some(t) = with_digits(quick("exact-deep-real")) else {
        return;
    };
    let out = run(&t);
    assert_hold(&out, "NTK change ΔK/K(0) at γ = 100");
}

#[test]
fn nfa_deep_linear_nfm_is_agop_to_the_1_over_l() {
    let out = run(&quick("nfa-deep-linear"));
    for l in [2, 4] {
        assert_hold(&out, &format!("L = {l}: min over t of ρ"));
        assert_hold(&out, &format!("L = {l}: best-fit exponent α"));
    }
}

#[test]
fn nfa_unbalanced_wd_imbalance_decays_at_2_lambda() {
    let out = run(&quick("nfa-unbalanced-wd"));
    assert_hold(&out, "imbalance decay rate of ‖D‖, flow");
    assert_hold(&out, "imbalance without weight decay");
    assert_hold(&out, "table: imbalance decay rate");
    assert_eq!(rows(&out, "table:").len(), 3, "flow, gd, momentum with λ");
}

#[test]
fn nfa_counterexample_fits_while_the_nfa_fails_and_the_control_satisfies_it() {
    let out = run(&quick("nfa-counterexample"));
    assert_hold(&out, "final training loss");
    assert_hold(&out, "control (live units only)");
    // the finding, as documented: ρ < 0.5 with the dead units (docs/nfa.md: 0.222, best 0.280)
    for r in rows(&out, "with dead units") {
        assert!(!r.holds, "{r:?}");
        assert!(r.experiment.unwrap() < 0.5, "{r:?}");
    }
}

#[test]
fn nfa_alignment_c_nfc_above_uc_nfc_and_early_prediction_gap() {
    let Some(t) = with_digits(quick("nfa-alignment")) else {
        return;
    };
    let out = run(&t);
    assert_eq!(rows(&out, "layer ").len(), 5);
    for l in 1..=5 {
        assert_hold(&out, &format!("layer {l}: UC-NFC − C-NFC"));
    }
    // documented disagreement (docs/nfa.md): the infinite-width prediction is well below the
    // exact t → 0⁺ value of this deep, finite-width net (0.21 at width 256)
    for r in rows(&out, "layer-1 C-NFC at t → 0⁺") {
        assert!(!r.holds, "{r:?}");
        assert!(r.experiment.unwrap() - r.theory.unwrap() > 0.1, "{r:?}");
    }
}

#[test]
fn nfa_speed_limited_raises_the_boosted_layers_nfc() {
    let Some(t) = with_digits(quick("nfa-speed-limited")) else {
        return;
    };
    let out = run(&t);
    assert_hold(&out, "layer 1: SGD − SLO UC-NFC");
    assert_hold(&out, "layer 1: SGD − SLO C-NFC");
    // the probe row is measured (at the full preset SLO's probe is 2 images worse: docs/nfa.md)
    assert!(rows(&out, "layer 1: SGD − SLO linear-probe")[0]
        .experiment
        .is_some());
}

#[test]
fn rfm_digits_agop_matches_network_agop_not_its_nfm() {
    let Some(t) = with_digits(quick("rfm-digits")) else {
        return;
    };
    let out = run(&t);
    assert_hold(&out, "network: ρ(W₁ᵀW₁, G₁^{1/2})");
    assert_hold(&out, "RFM M vs network AGOP");
    assert_hold(&out, "RFM test MSE");
    // documented (docs/nfa.md): M^{1/2} correlates weakly with the NFM (0.462), and the AGOP
    // updates do not raise the test accuracy on digits
    let r = rows(&out, "RFM M^{1/2} vs network W₁ᵀW₁")[0];
    assert!(!r.holds && r.experiment.unwrap() < 0.5, "{r:?}");
    let r = rows(&out, "RFM test accuracy")[0];
    assert!(!r.holds && r.experiment.unwrap() > 0.0, "{r:?}");
}

/// The rows every unlearning preset has (its main run against the limit ODE).
fn unlearning_main_rows(out: &RunOutput) {
    for p in ["peak alignment max_t m", "final alignment m(T)"] {
        let r = rows(out, p)[0];
        assert!(r.experiment.is_some() && r.theory.is_some(), "{r:?}");
        assert!(r.tolerance > 0.0, "the measured spread: {r:?}");
    }
}

#[test]
fn unlearning_main_run_against_the_limit_ode() {
    let out = run(&quick("unlearning"));
    unlearning_main_rows(&out);
    // peak alignment within 1 % of the limit ODE; the final alignment differs by more than
    // the neurons' spread at N = 32 (finite-width offset, docs/unlearning.md)
    let r = rows(&out, "peak alignment max_t m")[0];
    assert!(r.rel_error.unwrap() < 0.01, "{r:?}");
    assert_eq!(out.agreement.len(), 2);
}

#[test]
fn unlearning_nonlinearity_sweep_ode_and_sgd_agree_on_unlearning() {
    let out = run(&quick("unlearning-nonlinearity"));
    unlearning_main_rows(&out);
    assert_hold(&out, "sweep of c*_2");
}

#[test]
fn unlearning_second_layer_init_sweep_ode_and_sgd_agree_on_unlearning() {
    let out = run(&quick("unlearning-second-layer-init"));
    unlearning_main_rows(&out);
    assert_hold(&out, "sweep of a0");
}

#[test]
fn unlearning_width_error_falls_like_one_over_n() {
    let out = run(&quick("unlearning-width"));
    unlearning_main_rows(&out);
    let r = rows(&out, "population flow: log–log slope")[0];
    assert!(r.experiment.unwrap() < -0.5, "{r:?}");
}

#[test]
fn unlearning_scaling_exponents_are_one_quarter() {
    let out = run(&quick("unlearning-scaling"));
    unlearning_main_rows(&out);
    assert_hold(&out, "m decay exponent, reduced flow");
    assert_hold(&out, "a growth exponent, reduced flow");
    assert_hold(&out, "m decay exponent, full limit ODE");
    assert_hold(&out, "a growth exponent, full limit ODE");
    assert_eq!(rows(&out, "m decay exponent, simulation").len(), 1);
}

/// The column `name` of the run's table `table`.
fn table_column(out: &RunOutput, table: &str, name: &str) -> Vec<f64> {
    let t = out
        .tables
        .iter()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("table {table}"));
    let j = t
        .columns
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("column {name} of {table}"));
    t.values[j].clone()
}

/// docs/unlearning.md, "Finite-width saturation": the finite-N ODE (no free parameter) predicts
/// population GD's deviation from the N = ∞ ODE (within 5 % at N = 16, 32; at N = 64 the
/// random-frame transient is not over by T = 100 and the row measures 10 %, documented); the
/// deviation falls with N; SGD sits farther from the finite-N ODE than population GD (noise).
#[test]
fn unlearning_saturation_finite_n_ode_predicts_the_stall() {
    let out = run(&quick("unlearning-saturation"));
    unlearning_main_rows(&out);
    assert_hold(&out, "finite-width stall N = 16:");
    assert_hold(&out, "finite-width stall N = 32:");
    let r = rows(&out, "finite-width stall N = 64:")[0];
    let e = r.rel_error.unwrap();
    assert!(!r.holds && e > 0.05 && e < 0.15, "{r:?}");
    let dev = table_column(&out, "saturation", "deviation_popgd");
    assert!(dev.iter().all(|d| *d > 0.0), "{dev:?}");
    assert!(dev.windows(2).all(|w| w[1] < w[0]), "{dev:?}");
    let sgd = table_column(&out, "saturation", "sgd_vs_finite_n_ode_max");
    let pop = table_column(&out, "saturation", "popgd_vs_finite_n_ode_max");
    for (s, p) in sgd.iter().zip(&pop).take(2) {
        assert!(s > p, "SGD {s} vs popGD {p}");
    }
}

/// docs/unlearning.md, "SGD noise": SGD stays above population GD from the same init; the 2-D
/// per-neuron noise ODE predicts the opposite sign (refuted); the 3-D common-mode ODE has the
/// right sign but only part of the shift.
#[test]
fn unlearning_noise_per_neuron_correction_is_refuted() {
    let out = run(&quick("unlearning-noise"));
    unlearning_main_rows(&out);
    let per = rows(&out, "SGD noise shift m_SGD − m_popGD at t = 60, B = 16 ");
    let per_neuron = per.iter().find(|r| r.quantity.contains("2-D")).unwrap();
    let common = per.iter().find(|r| r.quantity.contains("3-D")).unwrap();
    let measured = per_neuron.experiment.unwrap();
    assert!(measured > 0.0, "{per_neuron:?}");
    assert!(
        per_neuron.theory.unwrap() < 0.0 && !per_neuron.holds,
        "{per_neuron:?}"
    );
    let fraction = common.theory.unwrap() / measured;
    assert!(
        fraction > COMMON_MODE_FRACTION.0 && fraction < COMMON_MODE_FRACTION.1,
        "{fraction}"
    );
}

/// docs/unlearning.md, `unlearning-scaling`: over wide ranges the reduced flow and the limit ODE
/// give 1/4 within their window spreads.
#[test]
fn unlearning_exponents_over_wide_ranges_are_one_quarter() {
    let out = run(&quick("unlearning-exponents"));
    unlearning_main_rows(&out);
    assert_hold(&out, "m decay exponent, reduced slow flow");
    assert_hold(&out, "a growth exponent, reduced slow flow");
    assert_hold(&out, "m decay exponent, full limit ODE");
    assert_hold(&out, "a growth exponent, full limit ODE");
    assert_eq!(rows(&out, "m decay exponent, reduced slow flow").len(), 2);
}

/// The range of the 3-D common-mode ODE's share of the measured noise shift at the quick noise
/// settings (0.30 measured at N = 32, B = 16, 4 seeds; docs/unlearning.md: 40–50 % at N = 64).
const COMMON_MODE_FRACTION: (f64, f64) = (0.15, 0.6);
