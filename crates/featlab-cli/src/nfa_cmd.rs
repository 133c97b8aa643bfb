//! `featlab nfa`: the Neural Feature Ansatz metrics of your own trained MLP.
//!
//! Reads a PyTorch state dict saved as `.safetensors` (or a numpy `.npz`), maps
//! `<layer>.weight` / `<layer>.bias` tensors to layers in natural name order
//! ([`featlab::theory::nfa::network`]), computes per-layer NFM, AGOP, UC-NFC, C-NFC and the
//! best-fit exponent α on the rows of `--x` with the library's
//! [`featlab::theory::nfa::TrainedNetwork::measure`] (the code behind `featlab.nfa.measure`),
//! prints a table and writes a run directory through [`crate::write::write_all`].

use anyhow::{Context, Result};
use faer::Mat;
use featlab::data::io::{read_npy, read_tensors};
use featlab::experiments::nfa::trained::{run_trained, TrainedSource};
use featlab::experiments::RunOutput;
use featlab::theory::nfa::network::parse_activation;
use featlab::theory::nfa::{Correlation, NfaOptions, TrainedNetwork};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `featlab nfa`.
#[derive(clap::Args, Debug, Clone)]
pub struct NfaArgs {
    /// Trained weights: `.safetensors` (safetensors.torch.save_file(model.state_dict(), …))
    /// or `.npz`; tensors `<layer>.weight` (fan-out × fan-in) and optional `<layer>.bias`.
    #[arg(long)]
    pub weights: PathBuf,
    /// Inputs, an n × d `.npy` (the data the AGOP averages over, e.g. the training set).
    #[arg(long)]
    pub x: PathBuf,
    /// The activation between layers: linear, relu, tanh, quadratic, gelu.
    #[arg(long)]
    pub activation: String,
    /// Initial weights (same layout as --weights) for the centred C-NFC and ‖ΔW‖/‖W‖.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Output directory.
    #[arg(long, short, default_value = "runs/nfa")]
    pub out: PathBuf,
    /// Exponent α of the reported ρ(WᵀW, G^α).
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// Matrix correlation: pearson (the public NFA code's) or cosine.
    #[arg(long, default_value = "pearson")]
    pub correlation: String,
    /// Gradient-centred AGOP and PTK (subtract the mean Jacobian).
    #[arg(long)]
    pub center_agop: bool,
    /// Use only the first N rows of --x.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Samples per batch of the AGOP computation.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Search interval of the best-fit α: lower end.
    #[arg(long, default_value_t = 0.02)]
    pub alpha_min: f64,
    /// Search interval of the best-fit α: upper end.
    #[arg(long, default_value_t = 2.0)]
    pub alpha_max: f64,
    /// No table on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip PNG rendering (SVG only).
    #[arg(long)]
    pub no_png: bool,
}

fn load_network(path: &Path, activation: &str, what: &str) -> Result<TrainedNetwork> {
    let act = parse_activation(activation, "--activation")?;
    let tensors = read_tensors(path).with_context(|| format!("reading {what}"))?;
    let net = TrainedNetwork::from_tensors(tensors, act, &format!("`{}`", path.display()))
        .with_context(|| format!("in {what} `{}`", path.display()))?;
    Ok(net)
}

/// Execute `featlab nfa`; returns the run output (also written to `--out`).
pub fn nfa_command(args: &NfaArgs) -> Result<RunOutput> {
    let correlation = match args.correlation.as_str() {
        "pearson" => Correlation::Pearson,
        "cosine" => Correlation::Cosine,
        other => anyhow::bail!("--correlation must be pearson or cosine, got `{other}`"),
    };
    let opts = NfaOptions {
        alpha: args.alpha,
        correlation,
        center_agop: args.center_agop,
        batch: args.batch,
        alpha_min: args.alpha_min,
        alpha_max: args.alpha_max,
        samples: args.samples,
    };
    let start = Instant::now();
    let net = load_network(&args.weights, &args.activation, "--weights")?;
    let init: Option<Vec<Mat<f64>>> = match &args.init {
        None => None,
        Some(p) => {
            let w0 = load_network(p, &args.activation, "--init")?;
            if w0.names != net.names {
                anyhow::bail!(
                    "--init `{}` has layers [{}], --weights has [{}]",
                    p.display(),
                    w0.names.join(", "),
                    net.names.join(", ")
                );
            }
            Some(w0.weights)
        }
    };
    let x = read_npy(&args.x).context("reading --x")?;
    if x.shape.len() != 2 {
        anyhow::bail!(
            "--x `{}` has shape {:?}; it must be n × d (flatten images first)",
            args.x.display(),
            x.shape
        );
    }
    let x = x.to_mat();
    if !args.quiet {
        println!("layers used (in order):");
        for (l, n) in net.names.iter().enumerate() {
            println!(
                "  {} {:<20} {}×{}{}",
                l + 1,
                format!("`{n}.weight`"),
                net.weights[l].nrows(),
                net.weights[l].ncols(),
                if net.biases[l].is_some() {
                    format!(" + `{n}.bias`")
                } else {
                    String::new()
                }
            );
        }
    }
    let source = TrainedSource {
        weights: args.weights.display().to_string(),
        x: args.x.display().to_string(),
        init: args.init.as_ref().map(|p| p.display().to_string()),
    };
    let out = run_trained(
        &net,
        init.as_deref(),
        x.as_ref(),
        &opts,
        &source,
        faer::Par::Seq,
    )
    .with_context(|| format!("measuring the network of `{}`", args.weights.display()))?;
    let wall = start.elapsed().as_secs_f64();
    crate::write::write_all(&args.out, &out, "nfa-trained", "nfa", wall, !args.no_png)?;
    if !args.quiet {
        print_table(&net, &out, args.alpha);
        println!("wrote {} in {wall:.2} s", args.out.display());
        println!("  report: {}", args.out.join("report.html").display());
    }
    Ok(out)
}

fn print_table(net: &TrainedNetwork, out: &RunOutput, alpha: f64) {
    let fmt = |v: &serde_json::Value| match v.as_f64() {
        Some(x) => format!("{x:>9.4}"),
        None => format!("{:>9}", "—"),
    };
    println!(
        "{:>5} {:<12} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "layer",
        "name",
        "shape",
        format!("ρ(G^{alpha})"),
        "alpha_fit",
        "UC-NFC",
        "C-NFC"
    );
    if let Some(layers) = out.summary["layers"].as_array() {
        for (l, v) in layers.iter().enumerate() {
            println!(
                "{:>5} {:<12} {:>11} {} {} {} {}",
                l + 1,
                net.names[l],
                format!("{}×{}", net.weights[l].nrows(), net.weights[l].ncols()),
                fmt(&v["nfm_agop_corr"]),
                fmt(&v["alpha_fit"]),
                fmt(&v["uc_nfc"]),
                fmt(&v["c_nfc"])
            );
        }
    }
}
