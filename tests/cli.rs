//! The `mlsproj` binary end to end: the sample job, `check`, `info`, and
//! every refusal (one clear line, non-zero exit, no output left behind).

use std::path::{Path, PathBuf};

mod job;

use job::{Job, OUTPUT, mlsproj, ply, xyz_header};
use mlsproj::{Column, Status};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hippo1.ply")
}

#[test]
fn the_sample_job_runs_and_writes_every_particle() {
    let job = Job::new();
    let run = job.run(&format!(
        "cloud: {:?}, particles: Cloud, support: Nearest(30)",
        sample()
    ));
    let stdout = run.stdout;
    assert!(run.success, "{}", run.stderr);
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
    let written = mlsproj::io::read_points(&job.path(OUTPUT)).unwrap();
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
    let ok = job::count(&written, &[Status::Ok]);
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
    let run = mlsproj(&["check", config.to_str().unwrap()]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("6104 points"), "{}", run.stdout);
    assert!(
        run.stdout.contains("neighbours on a sample"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_writes_nothing() {
    let job = Job::new();
    let fields = format!("cloud: {:?}, particles: Cloud", sample());
    let run = job.command("check", &fields, &[]);
    assert!(run.success, "{}", run.stderr);
    assert!(!job.path(OUTPUT).exists());
}

#[test]
fn info_describes_a_file() {
    let run = mlsproj(&["info", sample().to_str().unwrap()]);
    let stdout = run.stdout;
    assert!(run.success, "{}", run.stderr);
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
    for (command, arguments) in [
        ("run", &["<CONFIG>", "--tile", "--quiet"][..]),
        ("check", &["<CONFIG>"]),
        ("info", &["<FILE>"]),
        ("merge", &["<CONFIG>", "--tiles"]),
    ] {
        let run = mlsproj(&[command, "--help"]);
        assert!(run.success);
        let usage = format!("mlsproj {command}");
        for expected in std::iter::once(usage.as_str()).chain(arguments.iter().copied()) {
            assert!(
                run.stdout.contains(expected),
                "{expected} in {}",
                run.stdout
            );
        }
    }
}

#[test]
fn a_missing_input_is_refused_with_the_reason() {
    let stderr = Job::new().refused_as_cloud("nowhere.ply");
    assert!(stderr.contains("No such file"), "{stderr}");
}

#[test]
fn a_missing_config_is_named() {
    let run = mlsproj(&["run", "/no/such/job.ron"]);
    assert!(!run.success);
    assert!(run.stderr.contains("/no/such/job.ron"));
}

#[test]
fn a_malformed_config_is_refused() {
    let job = Job::new();
    let stderr = job.refused_config(
        "(cloud: \"a.ply\", particles: Cloud, output: ",
        &job.path("job.ron"),
    );
    // Where RON stopped reading, and what it expected there.
    assert!(
        stderr.contains("1:43") && stderr.contains("Expected"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_field_is_named() {
    let job = Job::new();
    let fields = format!(
        "cloud: {:?}, particles: Cloud, suport: Radius(1.0)",
        sample()
    );
    let stderr = job.refused(&fields, &job.path("job.ron"));
    assert!(stderr.contains("suport"), "{stderr}");
}

#[test]
fn an_output_equal_to_an_input_is_refused() {
    let job = Job::new();
    let cloud = job.path("cloud.ply");
    std::fs::copy(sample(), &cloud).unwrap();
    let before = std::fs::read(&cloud).unwrap();
    let stderr = job.refused_config(
        "(cloud: \"cloud.ply\", particles: Cloud, output: \"./cloud.ply\")",
        &job.path("./cloud.ply"),
    );
    assert!(
        stderr.contains("cloud.ply") && stderr.contains("input"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&cloud).unwrap(), before, "input untouched");
}

#[test]
fn a_missing_output_folder_is_named() {
    let job = Job::new();
    let config = format!(
        "(cloud: {:?}, particles: Cloud, output: \"absent/out.ply\")",
        sample()
    );
    let stderr = job.refused_config(&config, &job.path("absent"));
    assert!(stderr.contains("folder does not exist"), "{stderr}");
}

#[test]
fn a_broken_particle_file_is_named_and_nothing_is_written() {
    let job = Job::new();
    let header = xyz_header("ascii", "float", 2);
    let particles = job.write("p.ply", &ply(&header, b"0 0 0\n1 1\n"));
    let fields = format!("cloud: {:?}, particles: File(\"p.ply\")", sample());
    let stderr = job.refused(&fields, &particles);
    assert!(stderr.contains("line"), "{stderr}");
}
