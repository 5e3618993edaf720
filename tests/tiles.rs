//! Tiles: a job split with `--tile I/N` and joined with `merge` gives the
//! result of the whole job, particle for particle, in input order.

mod common;
mod job;

use common::{Sphere, noisy_cloud, particles, plane_grid};
use job::{Job, OUTPUT, attribute, column, count, xyz_columns};
use mlsproj::{Column, PointCloud, Status};
use nalgebra::{Point3, Vector3};

/// Runs the job whole, then as `tiles` tiles merged, asserts that both give
/// the same result ([`assert_same_result`]), and returns both outputs.
fn whole_and_tiled(job: &Job, fields: &str, tiles: usize) -> (PointCloud, PointCloud) {
    let (_, whole) = job.output(fields);
    std::fs::remove_file(job.path(OUTPUT)).unwrap();
    for index in 0..tiles {
        let tile = format!("{index}/{tiles}");
        let run = job.command("run", fields, &["--tile", &tile, "--quiet"]);
        assert!(run.success, "tile {tile}: {}", run.stderr);
    }
    let merged = job.command("merge", fields, &["--tiles", &tiles.to_string()]);
    assert!(merged.success, "merge: {}", merged.stderr);
    let tiled = mlsproj::io::read_points(&job.path(OUTPUT)).unwrap();
    assert_same_result(&whole, &tiled);
    (whole, tiled)
}

/// Equal but for rounding: a tile's tree holds its points in another
/// order relative to another origin, so sums run in another order
/// (differences of order 1e-15). The neighbour counts are not compared: a
/// `Nearest(k)` neighbourhood's farthest point sits exactly on the support
/// radius, where rounding decides between weight 0 and a weight of 1e-30.
fn assert_same_result(whole: &PointCloud, tiled: &PointCloud) {
    assert_eq!(whole.len(), tiled.len());
    assert!(
        column(whole, "index") == column(tiled, "index"),
        "input order"
    );
    assert!(
        column(whole, "status") == column(tiled, "status"),
        "statuses"
    );
    for (i, (a, b)) in whole.positions.iter().zip(&tiled.positions).enumerate() {
        assert!(
            (a - b).norm() <= 1e-9
                || (a.iter().any(|c| c.is_nan()) && b.iter().any(|c| c.is_nan())),
            "particle {i}: {a} vs {b}"
        );
    }
    let (Some(a), Some(b)) = (&whole.normals, &tiled.normals) else {
        panic!("both have normals")
    };
    // Normals are written as float: equal to a unit in the last place.
    assert!(
        a.iter().zip(b).all(|(a, b)| (a - b).norm() <= 1e-6),
        "normals"
    );
    assert_eq!(
        whole.attributes.len(),
        tiled.attributes.len(),
        "same properties"
    );
    // Every other property, in its type: integers (steps, labels, colours)
    // exactly, floats (curvatures, residual) to rounding.
    for (a, b) in whole.attributes.iter().zip(&tiled.attributes) {
        assert_eq!(a.name, b.name);
        let close = |x: f32, y: f32| x == y || (x - y).abs() <= 1e-5 * x.abs().max(1.0);
        match (&a.values, &b.values) {
            _ if a.name == "neighbours" => {}
            (Column::F32(x), Column::F32(y)) => assert!(
                x.iter()
                    .zip(y)
                    .all(|(&x, &y)| close(x, y) || (x.is_nan() && y.is_nan())),
                "{}",
                a.name
            ),
            (x, y) => assert!(x == y, "{}", a.name),
        }
    }
}

/// A noisy sphere with normals as the cloud, and 3,000 particles up to
/// `offset` off it (one of them NaN) with a label.
fn sphere_job_with_offset(offset: f64) -> Job {
    let sphere = Sphere {
        centre: Point3::new(3.0, -1.0, 2.0),
        radius: 1.0,
    };
    let cloud = noisy_cloud(&sphere, 30_000, 0.002, 21);
    let mut points = particles(&sphere, 3_000, offset, 22, |_| true);
    points[17] = Point3::new(f64::NAN, 0.0, 0.0);
    let job = Job::new();
    let mut cloud_columns = xyz_columns(&cloud.positions);
    let normals = cloud.normals.as_deref().expect("noisy_cloud gives normals");
    for (axis, name) in ["nx", "ny", "nz"].into_iter().enumerate() {
        let values = normals.iter().map(|n| n[axis]).collect();
        cloud_columns.push(attribute(name, Column::F32(values)));
    }
    job.write_ply("cloud.ply", &cloud_columns);
    let mut columns = xyz_columns(&points);
    columns.push(attribute(
        "label",
        Column::I32((0..points.len() as i32).collect()),
    ));
    job.write_ply("particles.ply", &columns);
    job
}

fn sphere_job() -> Job {
    sphere_job_with_offset(0.03)
}

#[test]
fn tiles_merged_equal_the_whole_job_with_a_radius_support() {
    let job = sphere_job();
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Radius(0.15)"#;
    let (whole, tiled) = whole_and_tiled(&job, fields, 4);
    assert_eq!(
        column(&whole, "label"),
        column(&tiled, "label"),
        "attributes follow"
    );
}

#[test]
fn tiles_merged_equal_the_whole_job_with_particles_beyond_their_support() {
    // Particles up to 8h off: their nearest points lie farther than the
    // first halo, (iterations + 1)·h, and the halo must grow to reach them.
    let job = sphere_job_with_offset(0.4);
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Radius(0.05)"#;
    let (whole, _) = whole_and_tiled(&job, fields, 4);
    // The far particles are projected (most more than h off, which a
    // one-radius reach would leave), not merely equally unprojected.
    let projected = count(
        &whole,
        &[Status::Ok, Status::LowerDegree, Status::NotConverged],
    );
    assert!(projected >= 2_900, "{projected} of 3,000 projected");
}

#[test]
fn tiles_merged_equal_the_whole_job_with_a_nearest_support_and_iterations() {
    let job = sphere_job();
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Nearest(40), iterations: 3"#;
    whole_and_tiled(&job, fields, 3);
}

#[test]
fn smoothing_the_cloud_in_tiles_equals_smoothing_it_whole() {
    let job = sphere_job();
    let fields = r#"cloud: "cloud.ply", particles: Cloud, support: Nearest(30)"#;
    whole_and_tiled(&job, fields, 5);
}

#[test]
fn smoothing_equals_projecting_the_clouds_own_points() {
    // With `particles: Cloud` each projection starts at the point itself,
    // without searching for its nearest cloud point: the same start, so
    // the same result to the bit.
    let job = sphere_job();
    let cloud = r#"cloud: "cloud.ply", support: Radius(0.15)"#;
    let (_, smoothed) = job.output(&format!("{cloud}, particles: Cloud"));
    let (_, projected) = job.output(&format!(r#"{cloud}, particles: File("cloud.ply")"#));
    assert_eq!(smoothed.positions, projected.positions);
    assert_eq!(smoothed.normals, projected.normals);
}

#[test]
fn merge_refuses_a_missing_tile() {
    let job = sphere_job();
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Radius(0.15)"#;
    let run = job.command("run", fields, &["--tile", "0/2", "--quiet"]);
    assert!(run.success, "{}", run.stderr);
    let merged = job.command("merge", fields, &["--tiles", "2"]);
    assert!(!merged.success);
    assert!(
        merged.stderr.contains("tile-0001-of-0002"),
        "{}",
        merged.stderr
    );
    assert!(!job.path(OUTPUT).exists());
}

#[test]
fn tiles_and_the_whole_job_orient_by_one_centroid_when_the_cloud_has_duplicates() {
    // A plane with no normals, so normals point away from the cloud's
    // centroid; far from the particles, ten points above it and one point
    // below it written a thousand times. The distinct points' centroid
    // lies above the plane, that of every finite point below it: the
    // normals point up, in the whole job as in its tiles.
    let mut cloud = plane_grid(-30..=29, 1.0 / 30.0);
    cloud.extend((0..10).map(|i| Point3::new(5.0 + 0.01 * i as f64, 5.0, 1.0)));
    cloud.extend(std::iter::repeat_n(Point3::new(-5.0, -5.0, -1.0), 1_000));
    let particles: Vec<Point3<f64>> = plane_grid(-10..=9, 0.08)
        .into_iter()
        .map(|p| p + Vector3::new(0.0, 0.0, 0.05))
        .collect();
    let job = Job::new();
    job.write_ply("cloud.ply", &xyz_columns(&cloud));
    job.write_ply("particles.ply", &xyz_columns(&particles));
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Radius(0.15)"#;
    let (whole, _) = whole_and_tiled(&job, fields, 2);
    let normals = whole.normals.as_deref().expect("normals written");
    assert!(normals.iter().all(|n| n.z > 0.99), "normals point up");
}

#[test]
fn tiles_with_repeated_coordinates_and_empty_tiles_equal_the_whole_job() {
    // 300 particles on three short lines x = −0.5, 0, 0.5 over a plane,
    // cut into eight tiles along x (the longest side of their box): the
    // cuts repeat, five tiles hold no particle, and with `Nearest(k)` their
    // halo starts at 0.
    let cloud = plane_grid(-30..=29, 1.0 / 30.0);
    let particles: Vec<Point3<f64>> = (0..300)
        .map(|i| {
            Point3::new(
                0.5 * ((i % 3) as f64 - 1.0),
                -0.3 + (i / 3) as f64 * 0.006,
                0.05,
            )
        })
        .collect();
    let job = Job::new();
    job.write_ply("cloud.ply", &xyz_columns(&cloud));
    job.write_ply("particles.ply", &xyz_columns(&particles));
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Nearest(20)"#;
    let (whole, _) = whole_and_tiled(&job, fields, 8);
    let ok = count(&whole, &[Status::Ok]);
    assert_eq!(ok, 300, "every particle projected");
    let sizes: Vec<usize> = (0..8)
        .map(|i| {
            let tile = job.path(&format!("out.tile-{i:04}-of-0008.ply"));
            mlsproj::io::read_points(&tile).unwrap().len()
        })
        .collect();
    assert_eq!(sizes.iter().filter(|&&n| n == 0).count(), 5, "{sizes:?}");
}
