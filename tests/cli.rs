//! The `mlsproj` binary end to end: the sample job, `check`, `info`, and
//! every refusal (one clear line, non-zero exit, no output left behind).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod job;

use mlsproj::{Column, Status};

fn mlsproj(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlsproj"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hippo1.ply")
}

/// Writes a config into `dir` and returns its path.
fn config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("job.ron");
    std::fs::write(&path, body).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a config expected to fail: returns stderr, checks the exit code,
/// one line, and that `output` was not created.
fn refused(dir: &Path, body: &str, output: &Path) -> String {
    let out = mlsproj(&["run", config(dir, body).to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!output.exists(), "no output left behind");
    let leftovers: Vec<_> = std::fs::read_dir(output.parent().unwrap_or(dir))
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|name| !name.to_string_lossy().contains(".tmp")),
        "no temporary file left: {leftovers:?}"
    );
    stderr
}

#[test]
fn the_sample_job_runs_and_writes_every_particle() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.ply");
    let body = format!(
        "(cloud: {:?}, particles: Cloud, output: \"out.ply\", support: Nearest(30))",
        sample()
    );
    let out = mlsproj(&["run", config(dir.path(), &body).to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for status in Status::ALL {
        assert!(stdout.contains(status.name()), "summary lists {status}");
    }
    for stage in ["load", "tree", "project", "write"] {
        assert!(stdout.contains(stage), "summary times {stage}");
    }
    assert!(
        stdout.contains("fit: the cloud's points and normals"),
        "the sample has normals, and the summary says they enter the fit: {stdout}"
    );

    let input = mlsproj::io::read_points(&sample()).unwrap();
    let written = mlsproj::io::read_points(&output).unwrap();
    assert_eq!(written.len(), input.len());
    assert_eq!(
        written.precision,
        mlsproj::Precision::Double,
        "double in, double out"
    );
    assert!(written.normals.is_some());
    let column = |name: &str| job::column(&written, name);
    for name in ["mean_curvature", "gaussian_curvature", "residual"] {
        assert!(matches!(column(name), Column::F32(_)), "{name} is float");
    }
    assert!(matches!(column("neighbours"), Column::U32(_)));
    assert!(matches!(column("steps"), Column::U8(_)));
    let Column::U32(index) = column("index") else {
        panic!("index is uint")
    };
    assert!(
        index.iter().enumerate().all(|(i, &v)| v as usize == i),
        "input order"
    );
    let Column::U8(status) = column("status") else {
        panic!("status is uchar")
    };
    let ok = status.iter().filter(|&&s| s == Status::Ok.code()).count();
    assert!(ok as f64 >= 0.99 * input.len() as f64, "{ok} ok");
    // Smoothing moves points by about the scan noise, not across the model.
    let (lo, hi) = mlsproj::cloud::finite_bounds(&input.positions).unwrap();
    let diagonal = (hi - lo).norm();
    let moved = input
        .positions
        .iter()
        .zip(&written.positions)
        .map(|(a, b)| (a - b).norm())
        .fold(0.0, f64::max);
    assert!(
        moved < 0.05 * diagonal,
        "largest move {moved} of diagonal {diagonal}"
    );
}

#[test]
fn the_default_config_checks() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.ron");
    let out = mlsproj(&["check", config.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("6104 points"), "{stdout}");
    assert!(stdout.contains("neighbours on a sample"), "{stdout}");
}

#[test]
fn check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "(cloud: {:?}, particles: Cloud, output: \"out.ply\")",
        sample()
    );
    let out = mlsproj(&["check", config(dir.path(), &body).to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.path().join("out.ply").exists());
}

#[test]
fn info_describes_a_file() {
    let out = mlsproj(&["info", sample().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for expected in [
        "6104 points",
        "bounding box",
        "nx ny nz",
        "spacing",
        "about 100 neighbours",
    ] {
        assert!(stdout.contains(expected), "{expected} in {stdout}");
    }
}

#[test]
fn help_explains_every_command() {
    for command in ["run", "check", "info"] {
        let out = mlsproj(&[command, "--help"]);
        assert!(out.status.success());
        assert!(
            text(&out.stdout).len() > 80,
            "{command} --help says something"
        );
    }
}

#[test]
fn a_missing_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.ply");
    let stderr = refused(
        dir.path(),
        "(cloud: \"nowhere.ply\", particles: Cloud, output: \"out.ply\")",
        &output,
    );
    assert!(stderr.contains("nowhere.ply"), "{stderr}");
}

#[test]
fn a_missing_config_is_named() {
    let out = mlsproj(&["run", "/no/such/job.ron"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/no/such/job.ron"));
}

#[test]
fn a_malformed_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.ply");
    let stderr = refused(
        dir.path(),
        "(cloud: \"a.ply\", particles: Cloud, output: ",
        &output,
    );
    assert!(stderr.contains("job.ron"), "{stderr}");
}

#[test]
fn an_unknown_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.ply");
    let body = format!(
        "(cloud: {:?}, particles: Cloud, output: \"out.ply\", suport: Radius(1.0))",
        sample()
    );
    let stderr = refused(dir.path(), &body, &output);
    assert!(stderr.contains("suport"), "{stderr}");
}

#[test]
fn an_output_equal_to_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud.ply");
    std::fs::copy(sample(), &cloud).unwrap();
    let before = std::fs::read(&cloud).unwrap();
    let out = mlsproj(&[
        "run",
        config(
            dir.path(),
            "(cloud: \"cloud.ply\", particles: Cloud, output: \"./cloud.ply\")",
        )
        .to_str()
        .unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cloud.ply") && stderr.contains("input"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&cloud).unwrap(), before, "input untouched");
}

#[test]
fn a_missing_output_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("absent/out.ply");
    let body = format!(
        "(cloud: {:?}, particles: Cloud, output: \"absent/out.ply\")",
        sample()
    );
    let stderr = refused(dir.path(), &body, &output);
    assert!(stderr.contains("absent"), "{stderr}");
}

#[test]
fn a_broken_particle_file_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.ply");
    std::fs::write(dir.path().join("p.ply"), "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 0 0\n1 1\n").unwrap();
    let body = format!(
        "(cloud: {:?}, particles: File(\"p.ply\"), output: \"out.ply\")",
        sample()
    );
    let stderr = refused(dir.path(), &body, &output);
    assert!(
        stderr.contains("p.ply") && stderr.contains("line"),
        "{stderr}"
    );
}
