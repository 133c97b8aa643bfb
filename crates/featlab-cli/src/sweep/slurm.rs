//! `featlab sweep slurm`: a ready-to-submit `sbatch` job-array script.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Arguments of `featlab sweep slurm`.
#[derive(clap::Args, Debug, Clone)]
pub struct SlurmArgs {
    /// The sweep file.
    pub spec: PathBuf,
    /// Output directory of the sweep (the script goes to DIR/slurm/sweep.sbatch). Default:
    /// sweeps/<file stem>, as for `featlab sweep`.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Number of array tasks (shards).
    #[arg(long)]
    pub tasks: usize,
    /// Wall-time limit per task (`--time`, e.g. `02:00:00`).
    #[arg(long, default_value = "01:00:00")]
    pub time: String,
    /// Memory per task (`--mem`, e.g. `4G`).
    #[arg(long, default_value = "2G")]
    pub mem: String,
    /// CPUs per task; each task runs this many points in parallel.
    #[arg(long, default_value_t = 1)]
    pub cpus: usize,
    /// Partition (`--partition`); omitted when not given.
    #[arg(long)]
    pub partition: Option<String>,
    /// Account (`--account`); omitted when not given.
    #[arg(long)]
    pub account: Option<String>,
    /// At most this many tasks at once (`--array=0-N%K`).
    #[arg(long)]
    pub max_running: Option<usize>,
    /// The featlab binary the tasks run (default: this one).
    #[arg(long)]
    pub featlab: Option<PathBuf>,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("cannot read the current directory")?
            .join(p))
    }
}

/// Quote a string for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The script text.
pub fn script(args: &SlurmArgs, name: &str, featlab: &Path, spec: &Path, out: &Path) -> String {
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!(
        "# featlab sweep `{name}` as a Slurm job array of {} tasks.\n",
        args.tasks
    ));
    s.push_str("# Submit:   sbatch THIS_FILE\n");
    s.push_str("# Resume:   sbatch THIS_FILE again (finished points are skipped; unfinished ones are redone)\n");
    s.push_str("# One task: sbatch --array=K THIS_FILE (the shard count is fixed below, not read from Slurm)\n");
    s.push_str(&format!(
        "# Merge:    {} sweep merge {}\n",
        shell_quote(&featlab.display().to_string()),
        shell_quote(&out.display().to_string())
    ));
    s.push_str(&format!(
        "#SBATCH --job-name={}\n",
        shell_quote(&format!("featlab-{name}"))
    ));
    match args.max_running {
        Some(k) => s.push_str(&format!("#SBATCH --array=0-{}%{k}\n", args.tasks - 1)),
        None => s.push_str(&format!("#SBATCH --array=0-{}\n", args.tasks - 1)),
    }
    s.push_str("#SBATCH --ntasks=1\n");
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", args.cpus));
    s.push_str(&format!("#SBATCH --time={}\n", args.time));
    s.push_str(&format!("#SBATCH --mem={}\n", args.mem));
    if let Some(p) = &args.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(a) = &args.account {
        s.push_str(&format!("#SBATCH --account={a}\n"));
    }
    s.push_str(&format!(
        "#SBATCH --output={}/slurm/%A_%a.out\n",
        out.display()
    ));
    s.push_str("#SBATCH --requeue\n");
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!(
        "exec {} sweep {} --out {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\" --jobs \"${{SLURM_CPUS_PER_TASK:-{}}}\" --quiet\n",
        shell_quote(&featlab.display().to_string()),
        shell_quote(&spec.display().to_string()),
        shell_quote(&out.display().to_string()),
        args.tasks,
        args.cpus
    ));
    s
}

/// Write DIR/slurm/sweep.sbatch and print how to submit, resume and merge.
pub fn slurm_command(args: &SlurmArgs) -> Result<PathBuf> {
    if args.tasks == 0 {
        anyhow::bail!("--tasks must be ≥ 1");
    }
    if args.cpus == 0 {
        anyhow::bail!("--cpus must be ≥ 1");
    }
    // Parse the spec now so a broken file fails here, not on the cluster.
    let spec = featlab::sweep::SweepSpec::from_file(&args.spec)?;
    let n = spec.expansion().try_fold(0usize, |n, p| p.map(|_| n + 1))?;
    let featlab = match &args.featlab {
        Some(p) => absolute(p)?,
        None => std::env::current_exe().context("cannot locate the featlab binary")?,
    };
    let spec_path = absolute(&args.spec)?;
    let out = absolute(
        &args
            .out
            .clone()
            .unwrap_or_else(|| super::default_out(&args.spec)),
    )?;
    let name = args
        .spec
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "sweep".into());
    let text = script(args, &name, &featlab, &spec_path, &out);
    let path = out.join("slurm").join("sweep.sbatch");
    featlab::data::io::write_atomic(&path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    let per = n.div_ceil(args.tasks);
    println!(
        "wrote {} ({n} points over {} tasks, ≤ {per} points per task)",
        path.display(),
        args.tasks
    );
    println!(
        "  submit:  sbatch {}",
        shell_quote(&path.display().to_string())
    );
    println!("  resume:  sbatch the same script again after preemption or time-outs: finished points are skipped");
    println!(
        "  merge:   {} sweep merge {}",
        shell_quote(&featlab.display().to_string()),
        shell_quote(&out.display().to_string())
    );
    println!(
        "  report:  {} report {}",
        shell_quote(&featlab.display().to_string()),
        shell_quote(&out.display().to_string())
    );
    Ok(path)
}
