//! End-to-end tests of `featlab sweep` with the built binary: the shipped 4×4×3 staircase
//! sweep run with `--jobs 2`, as 3 shards merged, and killed with SIGKILL then resumed, must
//! give byte-identical results.csv (and per-point files); failing points are recorded and
//! make the exit code non-zero; `sweep slurm` writes a valid script.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_featlab");

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sweep-staircase.toml")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("featlab-sweep-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn featlab(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args);
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_STEP",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run featlab")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "featlab failed: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Complete records of every shard file of a sweep directory, in file order (a torn last
/// line is skipped, as featlab does).
fn records(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("shards"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "jsonl"));
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["file"] = serde_json::json!(f.file_name().unwrap().to_string_lossy());
            out.push(v);
        }
    }
    out
}

/// Ids of the finished points of a sweep directory, sorted; panics if one is recorded twice.
fn done_ids(dir: &Path) -> Vec<String> {
    let mut done: Vec<String> = records(dir)
        .iter()
        .filter(|r| r["status"] == "done")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    done.sort();
    let n = done.len();
    done.dedup();
    assert_eq!(done.len(), n, "a point was recorded twice");
    done
}

/// A finished point's trajectory and artifacts (name → bytes), read from the shard files.
fn point_data(dir: &Path, id: &str) -> (serde_json::Value, Vec<(String, Vec<u8>)>) {
    let r = records(dir)
        .into_iter()
        .find(|r| r["id"] == id && r["status"] == "done")
        .unwrap_or_else(|| panic!("{id} not done in {}", dir.display()));
    let bin = dir
        .join("shards")
        .join(r["file"].as_str().unwrap().replace(".jsonl", ".bin"));
    let bytes = std::fs::read(&bin).unwrap_or_default();
    let arts = r["artifacts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let (o, l) = (
                a["offset"].as_u64().unwrap() as usize,
                a["len"].as_u64().unwrap() as usize,
            );
            (
                a["name"].as_str().unwrap().to_string(),
                bytes[o..o + l].to_vec(),
            )
        })
        .collect();
    (r["trajectory"].clone(), arts)
}

/// results.parquet rendered back as results.csv text (typed cells printed as featlab prints
/// them), to check the two tables hold the same values with the same column names.
fn parquet_as_csv(path: &Path) -> String {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let names: Vec<String> = r
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| quote(c.name()))
        .collect();
    let mut out = names.join(",") + "\n";
    for row in r.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let cells: Vec<String> = row
            .get_column_iter()
            .map(|(_, f)| match f {
                Field::Null => String::new(),
                Field::Long(i) => i.to_string(),
                Field::Double(x) => format!("{x:?}"),
                Field::Bool(b) => b.to_string(),
                Field::Str(s) => quote(s),
                other => panic!("unexpected parquet field {other:?}"),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn staircase_sweep_is_identical_with_jobs_shards_and_after_sigkill_resume() {
    let root = scratch("acceptance");
    let spec = example();
    let spec = spec.to_str().unwrap();
    let t0 = Instant::now();

    // A: local, two workers.
    let a = root.join("jobs2");
    ok(&featlab(
        &[
            "sweep",
            spec,
            "--out",
            a.to_str().unwrap(),
            "--jobs",
            "2",
            "--quiet",
        ],
        &[],
    ));
    let done_a = done_ids(&a);
    assert_eq!(done_a.len(), 48);
    let files: Vec<String> = std::fs::read_dir(a.join("shards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let mut files = files;
    files.sort();
    assert_eq!(
        files,
        ["shard-0-of-1.bin", "shard-0-of-1.jsonl"],
        "one results file and one artifact file"
    );
    assert!(!a.join("points").exists(), "no directory per point");
    let csv_a = read(&a.join("results.csv"));
    let text = String::from_utf8(csv_a.clone()).unwrap();
    assert_eq!(text.lines().count(), 49, "header + 48 rows");
    assert!(text
        .lines()
        .skip(1)
        .all(|l| l.split(',').nth(1) == Some("done")));
    let t_a = t0.elapsed();

    // B: three shards (one picked from Slurm's environment variables), then merge.
    let b = root.join("shards");
    let bs = b.to_str().unwrap();
    ok(&featlab(
        &[
            "sweep", spec, "--out", bs, "--shard", "0/3", "--quiet", "--jobs", "1",
        ],
        &[],
    ));
    let done_b0 = done_ids(&b);
    assert_eq!(done_b0.len(), 16);
    // A shard task writes sweep.json as the plan only (every point `missing`), so that
    // tasks of one array all write the same bytes; states are merge's to write.
    let plan = read(&b.join("sweep.json"));
    let rec: serde_json::Value = serde_json::from_slice(&plan).unwrap();
    assert_eq!(rec["counts"]["missing"], 48, "{}", rec["counts"]);
    assert!(rec["points"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "missing"));
    let owned: Vec<String> = rec["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["index"].as_u64().unwrap() % 3 == 0)
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let mut owned_sorted = owned.clone();
    owned_sorted.sort();
    assert_eq!(
        done_b0, owned_sorted,
        "shard 0/3 runs exactly the points with index ≡ 0 mod 3"
    );
    // Merging now reports the missing points and fails, but still writes results.csv.
    let m = featlab(&["sweep", "merge", bs, "--quiet", "--no-png"], &[]);
    assert!(!m.status.success());
    assert!(
        String::from_utf8_lossy(&m.stderr).contains("32 missing"),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );
    let partial = String::from_utf8(read(&b.join("results.csv"))).unwrap();
    let after_merge = read(&b.join("sweep.json"));
    assert!(after_merge != plan, "merge writes the states");
    assert_eq!(
        partial.lines().filter(|l| l.contains(",missing,")).count(),
        32
    );
    ok(&featlab(
        &["sweep", spec, "--out", bs, "--quiet", "--jobs", "1"],
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ],
    ));
    assert_eq!(done_ids(&b).len(), 32);
    assert!(b.join("shards/shard-1-of-3.jsonl").exists());
    assert!(
        read(&b.join("sweep.json")) == after_merge,
        "a task leaves an existing sweep.json of this spec as it is"
    );
    ok(&featlab(
        &[
            "sweep", spec, "--out", bs, "--shard", "2/3", "--quiet", "--jobs", "1",
        ],
        &[],
    ));
    ok(&featlab(&["sweep", "merge", bs, "--quiet"], &[]));
    let csv_b = read(&b.join("results.csv"));
    let merged: serde_json::Value = serde_json::from_slice(&read(&b.join("sweep.json"))).unwrap();
    assert_eq!(merged["counts"]["done"], 48, "merge writes the states");

    // B': the three shards at once in a fresh directory (the race of an array's tasks on
    // sweep.json): the plan is the same bytes, and the merge the same table.
    let b2 = root.join("shards-concurrent");
    let b2s = b2.to_str().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            Command::new(BIN)
                .args([
                    "sweep",
                    spec,
                    "--out",
                    b2s,
                    "--shard",
                    &format!("{i}/3"),
                    "--quiet",
                    "--jobs",
                    "1",
                ])
                .env_remove("SLURM_ARRAY_TASK_ID")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert!(
        read(&b2.join("sweep.json")) == plan,
        "concurrent tasks leave the same plan"
    );
    ok(&featlab(
        &["sweep", "merge", b2s, "--quiet", "--no-png"],
        &[],
    ));
    assert!(read(&b2.join("results.csv")) == csv_b);

    // C: killed with SIGKILL part-way, then the same command again.
    let c = root.join("killed");
    let cs = c.to_str().unwrap();
    let mut child = Command::new(BIN)
        .args(["sweep", spec, "--out", cs, "--jobs", "1", "--quiet"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if done_ids(&c).len() >= 8 {
            break;
        }
        assert!(Instant::now() < deadline, "no points appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success());
    let done_killed = done_ids(&c);
    assert!(
        done_killed.len() < 48,
        "the sweep finished before it was killed; the resume test would be vacuous"
    );
    assert!(!c.join("results.csv").exists());
    let o = featlab(&["sweep", spec, "--out", cs, "--jobs", "1"], &[]);
    ok(&o);
    let msg = String::from_utf8_lossy(&o.stdout);
    assert!(
        msg.contains(&format!("{} to run", 48 - done_killed.len())),
        "{msg}"
    );
    let done_c = done_ids(&c);
    assert_eq!(done_c, done_a, "every point exactly once, same ids");
    let csv_c = read(&c.join("results.csv"));

    assert!(
        csv_a == csv_b,
        "results.csv differs between --jobs 2 and 3 merged shards"
    );
    assert!(csv_a == csv_c, "results.csv differs after SIGKILL + resume");
    // results.parquet: the same table, typed, and the same bytes however the sweep ran.
    assert_eq!(parquet_as_csv(&a.join("results.parquet")), text);
    let pq_a = read(&a.join("results.parquet"));
    assert!(pq_a == read(&b.join("results.parquet")) && pq_a == read(&c.join("results.parquet")));
    // The runs themselves are identical too, not just their summaries: trajectories and
    // the kept arrays (a 48-point sweep keeps params and data by default).
    for id in done_a.iter().step_by(7) {
        let (ta, aa) = point_data(&a, id);
        let names: Vec<&str> = aa.iter().map(|(n, _)| n.as_str()).collect();
        for f in ["params/final/W1.npy", "params/final/W2.npy", "data/x.npy"] {
            assert!(names.contains(&f), "{id}: {f} not kept: {names:?}");
        }
        assert!(ta["columns"][0] == "t" && ta["values"][0].as_array().unwrap().len() == 401);
        assert!(
            point_data(&b, id) == (ta.clone(), aa.clone()),
            "{id} differs (shards)"
        );
        assert!(point_data(&c, id) == (ta, aa), "{id} differs (killed)");
    }
    // A second run of a finished sweep runs nothing and leaves results.csv unchanged.
    let o = featlab(
        &["sweep", spec, "--out", a.to_str().unwrap(), "--jobs", "2"],
        &[],
    );
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 to run"));
    assert!(read(&a.join("results.csv")) == csv_a);
    // The report has every figure.
    let html = String::from_utf8(read(&a.join("report.html"))).unwrap();
    assert_eq!(
        html.matches("<figure").count(),
        9,
        "3 fields × (heatmap + 2 line plots)"
    );
    assert!(html.contains("exponent"));
    eprintln!(
        "acceptance: first sweep {:.1} s, all {:.1} s",
        t_a.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn failing_points_are_recorded_and_the_sweep_continues() {
    let root = scratch("failures");
    let spec = root.join("fail.toml");
    std::fs::write(
        &spec,
        "base = \"staircase\"\nunset = [\"reference\"]\n[set]\n\"train.method\" = \"gd\"\n\"train.t_max\" = 40.0\n\
         \"train.record\" = { kind = \"linear\", points = 21 }\n[grid]\n\"model.activation\" = [\"linear\", \"bogus\"]\n\"train.lr\" = [0.05, 2.0]\n",
    )
    .unwrap();
    let out = root.join("out");
    let o = featlab(
        &[
            "sweep",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--no-png",
        ],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("3 of 4 points failed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let status: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(status, ["done", "failed", "failed", "failed"]);
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let pts = rec["points"].as_array().unwrap();
    assert!(
        pts[1]["error"].as_str().unwrap().contains("diverged"),
        "{}",
        pts[1]["error"]
    );
    assert!(
        pts[2]["error"].as_str().unwrap().contains("bogus"),
        "{}",
        pts[2]["error"]
    );
    assert_eq!(rec["counts"]["failed"], 3);
    assert!(
        out.join("report.html").exists(),
        "the report covers the finished point"
    );
    // Resuming keeps failure records unless asked to retry.
    let o = featlab(
        &[
            "sweep",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-png",
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 to run"));
    let o = featlab(
        &[
            "sweep",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-png",
            "--retry-failed",
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 to run"));
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn slurm_script_is_complete_and_valid_shell() {
    let root = scratch("slurm");
    let out = root.join("out");
    let o = featlab(
        &[
            "sweep",
            "slurm",
            example().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--tasks",
            "6",
            "--time",
            "00:20:00",
            "--mem",
            "1G",
            "--cpus",
            "2",
            "--partition",
            "short",
        ],
        &[],
    );
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("48 points over 6 tasks")
            && stdout.contains("sbatch")
            && stdout.contains("sweep merge"),
        "{stdout}"
    );
    let script = std::fs::read_to_string(out.join("slurm/sweep.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-5",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --time=00:20:00",
        "#SBATCH --mem=1G",
        "#SBATCH --partition=short",
        "#SBATCH --requeue",
        "--shard \"${SLURM_ARRAY_TASK_ID}/6\"",
        "--jobs \"${SLURM_CPUS_PER_TASK:-2}\"",
    ] {
        assert!(script.contains(line), "missing `{line}` in\n{script}");
    }
    assert!(
        script.contains(BIN)
            || script.contains(&std::fs::canonicalize(BIN).unwrap().display().to_string())
    );
    let bash = Command::new("bash")
        .arg("-n")
        .arg(out.join("slurm/sweep.sbatch"))
        .output()
        .unwrap();
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );
    std::fs::remove_dir_all(&root).ok();
}

/// `featlab sweep slurm grid.toml --tasks N` without `--out` (the user story's command)
/// writes the script for the directory a plain `featlab sweep grid.toml` would use,
/// sweeps/<file stem> under the current directory.
#[test]
fn slurm_without_out_uses_the_sweep_default_directory() {
    let root = scratch("slurm-default");
    let spec = root.join("grid.toml");
    std::fs::copy(example(), &spec).unwrap();
    let o = Command::new(BIN)
        .current_dir(&root)
        .args(["sweep", "slurm", "grid.toml", "--tasks", "4"])
        .output()
        .unwrap();
    ok(&o);
    let script = std::fs::read_to_string(root.join("sweeps/grid/slurm/sweep.sbatch")).unwrap();
    let dir = std::fs::canonicalize(root.join("sweeps/grid")).unwrap();
    assert!(
        script.contains(&dir.display().to_string()),
        "the script should name {}:\n{script}",
        dir.display()
    );
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn run_report_regenerates_the_same_page_from_disk() {
    let root = scratch("runreport");
    let run = root.join("run");
    let rs = run.to_str().unwrap();
    ok(&featlab(
        &[
            "run",
            "staircase",
            "--out",
            rs,
            "--quiet",
            "--no-png",
            "--set",
            "train.t_max=5",
            "--set",
            "reference.lr=0.01",
            "--set",
            "train.record={kind=\"linear\",points=51}",
        ],
        &[],
    ));
    let html = read(&run.join("report.html"));
    let svg = read(&run.join("plots/loss.svg"));
    assert!(run.join("plots/figures.json").exists());
    std::fs::remove_file(run.join("report.html")).unwrap();
    std::fs::remove_file(run.join("plots/loss.svg")).unwrap();
    ok(&featlab(&["report", rs, "--quiet", "--no-png"], &[]));
    assert!(
        read(&run.join("report.html")) == html,
        "regenerated report.html differs from the original"
    );
    assert!(read(&run.join("plots/loss.svg")) == svg);
    // Without figure specs (a sweep point): generic plots from trajectory.csv.
    std::fs::remove_file(run.join("plots/figures.json")).unwrap();
    ok(&featlab(&["report", rs, "--quiet", "--no-png"], &[]));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "loss + other trajectory columns"
    );
    std::fs::remove_dir_all(&root).ok();
}

/// Issue 26 acceptance: a sweep killed with SIGKILL at ≥ 5 random moments (and once with a
/// torn record planted at the end of its results file) and resumed after each kill ends
/// with every point recorded exactly once and results.csv / results.parquet byte-identical
/// to an uninterrupted run. The kill moments are seeded fractions of the uninterrupted
/// run's duration, so they fall inside the sweep on fast and slow machines alike.
#[test]
fn sweep_killed_at_random_moments_resumes_to_identical_results() {
    let root = scratch("kill9");
    let spec = root.join("tiny.toml");
    let seeds: Vec<String> = (0..80).map(|s| s.to_string()).collect();
    std::fs::write(
        &spec,
        format!(
            "base = \"staircase\"\nseed = 1\nunset = [\"reference\"]\n[set]\n\"train.method\" = \"gd\"\n\
             \"train.lr\" = 0.05\n\"train.t_max\" = 1.0\n\"data.n\" = 16\n\
             \"train.record\" = {{ kind = \"linear\", points = 5 }}\n[grid]\n\
             \"model.width\" = [2, 3, 4]\n\"model.init_scale\" = [0.01, 0.1, 1.0]\nseed = [{}]\n\
             [save]\nparams = {{ every = 7 }}\n",
            seeds.join(", ")
        ),
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let n_points = 3 * 3 * 80;
    // Kills target the point-running phase: runs before the last skip the merge.
    let run = |out: &Path, quiet: bool, merge: bool| {
        let mut c = Command::new(BIN);
        c.args([
            "sweep",
            spec,
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            "2",
            "--no-png",
        ]);
        if quiet {
            c.arg("--quiet");
        }
        if !merge {
            c.arg("--no-merge");
        }
        c.env_remove("SLURM_ARRAY_TASK_ID");
        c
    };
    let a = root.join("whole");
    let t0 = Instant::now();
    ok(&run(&a, true, false).output().unwrap());
    let whole = t0.elapsed();
    assert_eq!(done_ids(&a).len(), n_points);
    ok(&featlab(
        &["sweep", "merge", a.to_str().unwrap(), "--quiet", "--no-png"],
        &[],
    ));

    // xorshift64*, seeded: the kill moments.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut scale = 0.1;
    let mut attempt = 0;
    let (b, kills) = loop {
        attempt += 1;
        assert!(attempt <= 6, "the sweep kept finishing before 5 kills");
        let b = root.join(format!("killed-{attempt}"));
        let mut kills = 0;
        let mut planted = false;
        let finished_early = loop {
            let mut child = run(&b, false, false)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // The clock starts when the run has opened its results file and says so (its
            // first lines), so every kill lands while points run or are written.
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut stdout = String::new();
            std::io::BufRead::read_line(&mut out, &mut stdout).unwrap();
            let delay = whole.mul_f64(0.02 + scale * uniform());
            std::thread::sleep(delay);
            let running = child.try_wait().unwrap().is_none();
            child.kill().ok(); // SIGKILL
            let status = child.wait().unwrap();
            std::io::Read::read_to_string(&mut out, &mut stdout).ok();
            if planted {
                assert!(
                    stdout.contains("torn last record"),
                    "torn record not reported:\n{stdout}"
                );
                planted = false;
            }
            if !running {
                assert!(status.success(), "the sweep failed: {stdout}");
                break true;
            }
            kills += 1;
            if kills == 3 {
                // A record torn by a kill mid-write: half a line at the end.
                let f = b.join("shards/shard-0-of-1.jsonl");
                if f.exists() {
                    let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
                    std::io::Write::write_all(&mut h, br#"{"id":"width=4_init_scale=1_seed=79-"#)
                        .unwrap();
                    planted = true;
                }
            }
            if kills >= 5 && !planted {
                break false;
            }
        };
        if finished_early {
            scale /= 2.0;
            continue;
        }
        break (b, kills);
    };
    assert!(kills >= 5);
    let partial = done_ids(&b).len();
    assert!(
        partial < n_points,
        "every point finished before the last kill"
    );
    let o = run(&b, false, true).output().unwrap();
    ok(&o);
    let msg = String::from_utf8_lossy(&o.stdout);
    assert!(
        msg.contains(&format!("{} to run", n_points - partial)),
        "{msg}"
    );
    let ids = done_ids(&b); // panics on a point recorded twice
    assert_eq!(ids, done_ids(&a), "every point exactly once");
    assert_eq!(records(&b).len(), n_points, "no extra records");
    assert!(
        read(&a.join("results.csv")) == read(&b.join("results.csv")),
        "results.csv differs after {kills} kills"
    );
    assert!(
        read(&a.join("results.parquet")) == read(&b.join("results.parquet")),
        "results.parquet differs after {kills} kills"
    );
    for id in ids.iter().step_by(5) {
        assert!(
            point_data(&a, id) == point_data(&b, id),
            "{id}: trajectory or artifacts differ"
        );
    }
    eprintln!(
        "kill -9: {kills} kills (attempt {attempt}), uninterrupted run {:.2} s, {partial} of {n_points} points done before the final resume",
        whole.as_secs_f64()
    );
    std::fs::remove_dir_all(&root).ok();
}

/// Sweep directories of the old layout (a directory per point with run.json and a `done`
/// marker or failed.json) still merge to the same results.csv, and resume: only their
/// missing points run, into a shard file.
#[test]
fn old_layout_directories_merge_and_resume() {
    let root = scratch("legacy");
    let spec = root.join("small.toml");
    std::fs::write(
        &spec,
        "base = \"staircase\"\nseed = 2\nunset = [\"reference\"]\n[set]\n\"train.method\" = \"gd\"\n\
         \"train.lr\" = 0.05\n\"train.t_max\" = 1.0\n\"data.n\" = 16\n\
         \"train.record\" = { kind = \"linear\", points = 5 }\n[grid]\n\"model.width\" = [2, 3]\nseed = [0, 1, 2]\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let new = root.join("new");
    ok(&featlab(
        &[
            "sweep",
            spec,
            "--out",
            new.to_str().unwrap(),
            "--quiet",
            "--no-png",
        ],
        &[],
    ));
    // Rewrite it in the old layout: points/<id>/{run.json, done}, no shards/.
    let old = root.join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(new.join("sweep.json"), old.join("sweep.json")).unwrap();
    let recs = records(&new);
    for r in &recs[..4] {
        let d = old.join("points").join(r["id"].as_str().unwrap());
        std::fs::create_dir_all(&d).unwrap();
        let run = serde_json::json!({ "seed": r["seed"], "summary": r["summary"] });
        std::fs::write(d.join("run.json"), run.to_string()).unwrap();
        std::fs::write(d.join("done"), r#"{"wall_seconds": 0.1}"#).unwrap();
    }
    let os = old.to_str().unwrap();
    let m = featlab(&["sweep", "merge", os, "--quiet", "--no-png"], &[]);
    assert!(!m.status.success(), "2 points are missing");
    assert!(String::from_utf8_lossy(&m.stderr).contains("2 missing"));
    let o = featlab(&["sweep", spec, "--out", os, "--no-png"], &[]);
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 to run, 4 already finished"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(records(&old).len(), 2, "only the missing points ran");
    assert!(read(&old.join("results.csv")) == read(&new.join("results.csv")));
    ok(&featlab(
        &["sweep", "merge", os, "--quiet", "--no-png"],
        &[],
    ));
    assert!(read(&old.join("results.csv")) == read(&new.join("results.csv")));
    assert!(read(&old.join("results.parquet")) == read(&new.join("results.parquet")));
    std::fs::remove_dir_all(&root).ok();
}
