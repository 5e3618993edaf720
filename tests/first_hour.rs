//! A new user's first hour (issue 16): a config written for them, runs
//! that say when they failed and why, refusals that teach, viewers that get
//! a property they read; and settings that would silently produce nonsense
//! refused (issue 17).

mod common;
mod job;

use common::{Sphere, noisy_cloud, real};
use job::{Job, column, mlsproj, xyz_columns};
use mlsproj::Column;

/// The sample scans kept in the repository.
const SCANS: [&str; 4] = ["hippo1.ply", "kitten.xyz", "oni.ply", "b9_training.ply"];

#[test]
fn init_writes_a_config_that_run_accepts_for_every_sample_scan() {
    for name in SCANS {
        let job = Job::new();
        let scan = job.path(name);
        std::fs::copy(real(name), &scan).unwrap();
        let config = job.path("job.ron");
        let init = mlsproj(&[
            "init",
            scan.to_str().unwrap(),
            "-o",
            config.to_str().unwrap(),
        ]);
        assert!(init.success, "{name}: {}", init.stderr);
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.contains("support: Radius("), "{name}: {text}");
        let run = mlsproj(&["run", config.to_str().unwrap(), "--quiet"]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        let stem = name.split('.').next().unwrap();
        let output = mlsproj::io::read_points(&job.path(&format!("{stem}-mls.ply"))).unwrap();
        let input = mlsproj::io::read_points(&scan).unwrap();
        assert_eq!(output.len(), input.len(), "{name}");
        // A second init never overwrites the config.
        let again = mlsproj(&[
            "init",
            scan.to_str().unwrap(),
            "-o",
            config.to_str().unwrap(),
        ]);
        assert!(
            !again.success && again.stderr.contains("exists"),
            "{}",
            again.stderr
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    }
}

#[test]
fn init_takes_a_particle_file_relative_to_the_config() {
    let job = Job::new();
    let sphere = Sphere::unit();
    job.write_ply(
        "cloud.ply",
        &xyz_columns(&noisy_cloud(&sphere, 3_000, 0.002, 1).positions),
    );
    job.write_ply(
        "particles.ply",
        &xyz_columns(&noisy_cloud(&sphere, 200, 0.01, 2).positions),
    );
    let config = job.path("job.ron");
    let init = mlsproj(&[
        "init",
        job.path("cloud.ply").to_str().unwrap(),
        "--particles",
        job.path("particles.ply").to_str().unwrap(),
        "-o",
        config.to_str().unwrap(),
    ]);
    assert!(init.success, "{}", init.stderr);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("cloud: \"cloud.ply\""), "{text}");
    assert!(
        text.contains("particles: File(\"particles.ply\")"),
        "{text}"
    );
    let run = mlsproj(&["run", config.to_str().unwrap(), "--quiet"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

/// A sphere scan and particles near it, in a job folder.
fn sphere_job() -> Job {
    let job = Job::new();
    let sphere = Sphere::unit();
    job.write_ply(
        "cloud.ply",
        &xyz_columns(&noisy_cloud(&sphere, 5_000, 0.002, 3).positions),
    );
    job.write_ply(
        "particles.ply",
        &xyz_columns(&noisy_cloud(&sphere, 300, 0.01, 4).positions),
    );
    job
}

const SPHERE: &str = r#"cloud: "cloud.ply", particles: File("particles.ply")"#;

#[test]
fn exit_codes_tell_success_too_few_projected_and_refusal_apart() {
    let job = sphere_job();
    let ok = job.run(&format!("{SPHERE}, support: Radius(0.2)"));
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);

    // A support far below the spacing: nothing is projected. The output is
    // written, every particle in it, and the run says it failed.
    let failed = job.run(&format!("{SPHERE}, support: Radius(0.001)"));
    assert_eq!(failed.code, Some(3), "{}", failed.stderr);
    let output = mlsproj::io::read_points(&job.path("out.ply")).unwrap();
    assert_eq!(output.len(), 300);
    assert!(
        failed.stderr.contains("only 0 of 300 particles projected"),
        "{}",
        failed.stderr
    );

    // min_projected sets the threshold: with 0, only "none" fails.
    let lenient = job.run(&format!(
        "{SPHERE}, support: Radius(0.001), min_projected: 0.0"
    ));
    assert_eq!(lenient.code, Some(3), "none projected still fails");

    let refused = job.run(r#"cloud: "missing.ply", particles: Cloud"#);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
}

#[test]
fn a_failed_run_names_the_commonest_failure_and_its_cause() {
    let job = sphere_job();
    let run = job.run(&format!("{SPHERE}, support: Radius(0.001)"));
    let warning = run
        .stderr
        .lines()
        .find(|line| line.contains("warning"))
        .unwrap_or_else(|| panic!("no warning: {}", run.stderr));
    assert!(warning.contains("too_few_neighbours"), "{warning}");
    assert!(warning.contains("support is too small"), "{warning}");
    let clean = job.run(&format!("{SPHERE}, support: Radius(0.2)"));
    assert!(!clean.stderr.contains("warning"), "{}", clean.stderr);
}

#[test]
fn check_warns_about_too_few_and_too_many_neighbours() {
    let job = sphere_job();
    let few = job.command("check", &format!("{SPHERE}, support: Radius(0.01)"), &[]);
    assert!(few.success, "{}", few.stderr);
    assert!(few.stderr.contains("below 10"), "{}", few.stderr);
    let many = Job::new();
    let sphere = Sphere::unit();
    many.write_ply(
        "cloud.ply",
        &xyz_columns(&noisy_cloud(&sphere, 12_000, 0.002, 5).positions),
    );
    let check = many.command(
        "check",
        r#"cloud: "cloud.ply", particles: Cloud, support: Radius(1.8)"#,
        &[],
    );
    assert!(check.success, "{}", check.stderr);
    assert!(check.stderr.contains("above 5000"), "{}", check.stderr);
    let fine = job.command("check", &format!("{SPHERE}, support: Radius(0.2)"), &[]);
    assert!(!fine.stderr.contains("warning"), "{}", fine.stderr);
}

#[test]
fn config_errors_name_the_field_and_its_accepted_forms() {
    let job = sphere_job();
    for (fields, field, forms) in [
        (
            r#"cloud: "cloud.ply", particles: "p.xyz""#,
            "particles",
            "Cloud, File(\"path\"), Seed(spacing: d) or Seed(count: n)",
        ),
        (
            &format!("{SPHERE}, support: Radius(\"big\")") as &str,
            "support",
            "Nearest(k)",
        ),
        (
            &format!("{SPHERE}, iterations: \"two\""),
            "iterations",
            "a whole number",
        ),
        (
            &format!("{SPHERE}, weight: Triangle"),
            "weight",
            "Broad, Plateau",
        ),
        (
            &format!("{SPHERE}, orientation: Sideways"),
            "orientation",
            "ConsistentToward(x, y, z)",
        ),
    ] {
        let line = job.refused(fields, &job.path("job.ron"));
        assert!(
            line.contains(&format!("field `{field}`")),
            "{fields}: {line}"
        );
        assert!(line.contains(forms), "{fields}: {line}");
    }
    for (fields, field) in [
        ("iterations: 300", "iterations"),
        ("orientation: Viewpoint(NaN, inf, 0.0)", "Viewpoint"),
        ("threads: 1000000", "threads"),
        ("min_projected: 2.0", "min_projected"),
    ] {
        let line = job.refused(&format!("{SPHERE}, {fields}"), &job.path("job.ron"));
        assert!(line.contains(field), "{fields}: {line}");
    }
}

#[test]
fn a_point_file_given_as_a_config_points_to_init() {
    let job = sphere_job();
    for name in ["cloud.ply", "points.txt"] {
        if name == "points.txt" {
            job.write(name, b"0 0 0\n1 0 0\n0 1 0\n");
        }
        let run = mlsproj(&["run", job.path(name).to_str().unwrap()]);
        assert_eq!(run.code, Some(1));
        assert!(
            run.stderr.contains("mlsproj init"),
            "{name}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
    // Text that is neither RON nor numbers is a plain config error.
    let other = job.write("notes.ron", b"hello\n");
    let run = mlsproj(&["run", other.to_str().unwrap()]);
    assert!(!run.stderr.contains("mlsproj init"), "{}", run.stderr);
}

#[test]
fn quality_carries_the_chosen_property_for_viewers() {
    let job = sphere_job();
    let (_, output) = job.output(&format!(
        "{SPHERE}, support: Radius(0.2), quality: MeanCurvature"
    ));
    let (Column::F32(quality), Column::F32(mean)) = (
        column(&output, "quality"),
        column(&output, "mean_curvature"),
    ) else {
        panic!("float quality and mean_curvature")
    };
    assert_eq!(quality, mean);
    let (_, plain) = job.output(&format!("{SPHERE}, support: Radius(0.2)"));
    assert!(plain.attributes.iter().all(|a| a.name != "quality"));
}

#[test]
fn a_support_that_covers_the_whole_cloud_is_refused() {
    let job = sphere_job();
    for (support, reason) in [
        ("Nearest(100000)", "more than the cloud's"),
        (
            "RadiusNearest(radius: 0.2, k: 6000)",
            "more than the cloud's",
        ),
        ("Radius(1e300)", "bounding-box diagonal"),
    ] {
        let line = job.refused(
            &format!("{SPHERE}, support: {support}"),
            &job.path("cloud.ply"),
        );
        assert!(line.contains(reason), "{support}: {line}");
    }
}

#[test]
fn extreme_scales_write_finite_values_with_projected_statuses() {
    // The unit sphere scaled to 1e100 and to 1e-100: residuals and
    // curvatures leave float's range, and must not be written as ±inf or 0
    // with a status that says they were projected.
    for scale in [1e100, 1e-100] {
        let job = Job::new();
        let sphere = Sphere::unit();
        let scaled = |points: Vec<nalgebra::Point3<f64>>| -> Vec<_> {
            points.into_iter().map(|p| p * scale).collect()
        };
        let cloud = scaled(noisy_cloud(&sphere, 3_000, 0.002, 6).positions);
        let particles = scaled(noisy_cloud(&sphere, 100, 0.01, 7).positions);
        let double = |points: &[nalgebra::Point3<f64>]| {
            mlsproj::io::position_columns(points.iter().copied(), mlsproj::Precision::Double)
        };
        job.write_ply("cloud.ply", &double(&cloud));
        job.write_ply("particles.ply", &double(&particles));
        let (_, output) = job.output(&format!("{SPHERE}, support: Nearest(30)"));
        let statuses = job::statuses(&output).to_vec();
        for name in ["mean_curvature", "gaussian_curvature", "residual"] {
            let Column::F64(values) = column(&output, name) else {
                panic!("{scale}: {name} in double")
            };
            for (value, status) in values.iter().zip(&statuses) {
                if *status <= 2 {
                    assert!(value.is_finite(), "{scale}: {name} {value}");
                }
            }
        }
        let projected = statuses.iter().filter(|&&s| s <= 2).count();
        assert!(projected >= 95, "{scale}: {projected} of 100 projected");
        let radius = output.positions[0].coords.norm() / scale;
        assert!((radius - 1.0).abs() < 0.01, "{scale}: radius {radius}");
    }
}

#[test]
fn info_names_the_types_the_file_holds() {
    let double = mlsproj(&["info", real("oni.ply").to_str().unwrap()]);
    assert!(
        double.stdout.contains("x y z (double), nx ny nz (double)"),
        "{}",
        double.stdout
    );
    let job = Job::new();
    let sphere = Sphere::unit();
    let cloud = noisy_cloud(&sphere, 100, 0.002, 8);
    let mut columns = xyz_columns(&cloud.positions);
    let normals = cloud.normals.expect("the sphere scan has normals");
    for (axis, name) in ["nx", "ny", "nz"].into_iter().enumerate() {
        columns.push(job::attribute(
            name,
            Column::F32(normals.iter().map(|n| n[axis]).collect()),
        ));
    }
    let path = job.write_ply("float.ply", &columns);
    let float = mlsproj(&["info", path.to_str().unwrap()]);
    assert!(
        float.stdout.contains("x y z (float), nx ny nz (float)"),
        "{}",
        float.stdout
    );
}

#[test]
fn the_normals_command_writes_the_cloud_unmoved_with_outward_normals() {
    // A sphere scan without normals, a label per point to pass through.
    let job = Job::new();
    let sphere = Sphere::unit();
    let cloud = noisy_cloud(&sphere, 4_000, 0.002, 9);
    let mut columns =
        mlsproj::io::position_columns(cloud.positions.iter().copied(), mlsproj::Precision::Double);
    let labels: Vec<i32> = (0..4_000).collect();
    columns.push(job::attribute("label", Column::I32(labels.clone())));
    job.write_ply("cloud.ply", &columns);
    let run = job.command(
        "normals",
        r#"cloud: "cloud.ply", particles: Cloud"#,
        &["--quiet"],
    );
    assert!(run.success, "{}", run.stderr);
    let output = mlsproj::io::read_points(&job.path("out.ply")).unwrap();
    assert_eq!(output.positions, cloud.positions, "unmoved, in input order");
    assert_eq!(column(&output, "label"), &Column::I32(labels));
    let normals = output.normals.expect("normals written");
    let wrong = normals
        .iter()
        .zip(&cloud.positions)
        .filter(|(n, p)| f64::from(n.x) * p.x + f64::from(n.y) * p.y + f64::from(n.z) * p.z <= 0.0)
        .count();
    assert_eq!(wrong, 0, "every normal points out of the sphere");
}
