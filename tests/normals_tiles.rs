//! `mlsproj normals --tile I/N` and `merge`: the tiles merged hold the
//! cloud's points as a whole `normals` run writes them (same positions,
//! input order, count, properties) with the same signs on closed shapes,
//! and `merge` refuses a set that mixes `run` tiles with `normals` tiles.

mod common;
mod job;

use std::path::{Path, PathBuf};

use common::{Sphere, Torus, Truth, noisy_cloud};
use job::{Job, OUTPUT, xyz_columns};
use mlsproj::PointCloud;
use nalgebra::{Point3, Vector3};

/// A cloud without normals, smoothed onto itself: the one config `normals`
/// and `run` both take.
const FIELDS: &str = r#"cloud: "cloud.ply", particles: Cloud, support: Nearest(30)"#;

/// A job whose cloud is `count` points of `truth` with noise σ along the
/// normal, written without normals.
fn job_of(truth: &dyn Truth, count: usize, sigma: f64) -> Job {
    let job = Job::new();
    let cloud = noisy_cloud(truth, count, sigma, 7);
    job.write_ply("cloud.ply", &xyz_columns(&cloud.positions));
    job
}

/// Runs `mlsproj COMMAND` on a config of `fields`, expected to succeed.
fn succeeds(job: &Job, fields: &str, command: &str, args: &[&str]) {
    let run = job.command(command, fields, args);
    assert!(run.success, "{command} {args:?}: {}", run.stderr);
}

/// Runs every tile of `command` split in `tiles`.
fn run_tiles(job: &Job, fields: &str, command: &str, tiles: usize) {
    for index in 0..tiles {
        let tile = format!("{index}/{tiles}");
        succeeds(job, fields, command, &["--tile", &tile, "--quiet"]);
    }
}

/// The whole `normals` output of a config of `fields` and the merge of its
/// `tiles` tiles.
fn whole_and_tiled(job: &Job, fields: &str, tiles: usize) -> (PointCloud, PointCloud) {
    succeeds(job, fields, "normals", &["--quiet"]);
    let whole = mlsproj::io::read_points(&job.path(OUTPUT)).unwrap();
    std::fs::remove_file(job.path(OUTPUT)).unwrap();
    run_tiles(job, fields, "normals", tiles);
    succeeds(
        job,
        fields,
        "merge",
        &["--tiles", &tiles.to_string(), "--quiet"],
    );
    let tiled = mlsproj::io::read_points(&job.path(OUTPUT)).unwrap();
    (whole, tiled)
}

/// Asserts that the merged tiles hold the whole run's points, exactly, in
/// its order, with its properties (no `index`: a `normals` output is the
/// cloud's properties) and its normals' directions, and returns how many
/// normals have the other sign (or are zero in one and not the other).
///
/// Directions agree to rounding (1e-5, a few units in the last place of a
/// float; a tile's search has another origin, so sums round otherwise)
/// because a tile's halo holds every neighbourhood its slab's PCA and
/// mending read; with no halo, the PCA of points near a slab's faces sees
/// one side only and this fails.
fn sign_differences(whole: &PointCloud, tiled: &PointCloud) -> usize {
    assert_eq!(whole.len(), tiled.len(), "count");
    assert!(whole.positions == tiled.positions, "positions, in order");
    let names = |cloud: &PointCloud| -> Vec<String> {
        mlsproj::io::file_columns(cloud)
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(names(whole), names(tiled), "properties");
    let (Some(a), Some(b)) = (&whole.normals, &tiled.normals) else {
        panic!("both have normals")
    };
    let apart = |(a, b): (&Vector3<f32>, &Vector3<f32>)| (a - b).norm().min((a + b).norm());
    let farthest = a.iter().zip(b).map(apart).fold(0.0, f32::max);
    assert!(farthest <= 1e-5, "directions differ by {farthest}");
    a.iter().zip(b).filter(|(a, b)| a.dot(b) <= 0.0).count()
}

/// How many points of `cloud` have a normal against `truth`'s (or zero).
fn wrong_signs(truth: &dyn Truth, cloud: &PointCloud) -> usize {
    let normals = cloud.normals.as_ref().expect("normals");
    cloud
        .positions
        .iter()
        .zip(normals)
        .filter(|(p, n)| n.cast::<f64>().dot(&truth.normal(p)) <= 0.0)
        .count()
}

#[test]
fn normals_tiles_merged_hold_the_whole_runs_points_and_signs_on_a_torus() {
    let torus = Torus {
        major: 1.0,
        minor: 0.3,
    };
    let job = job_of(&torus, 40_000, 0.003);
    for tiles in [3, 5] {
        let (whole, tiled) = whole_and_tiled(&job, FIELDS, tiles);
        let differ = sign_differences(&whole, &tiled);
        eprintln!(
            "torus, {tiles} tiles: {differ} signs differ; wrong: whole {}, tiled {}",
            wrong_signs(&torus, &whole),
            wrong_signs(&torus, &tiled)
        );
        assert_eq!(differ, 0, "{tiles} tiles");
    }
}

#[test]
fn normals_tiles_merged_hold_the_whole_runs_points_and_signs_on_a_sphere() {
    let sphere = Sphere {
        centre: Point3::new(3.0, -2.0, 1.0),
        radius: 1.0,
    };
    let job = job_of(&sphere, 30_000, 0.002);
    let (whole, tiled) = whole_and_tiled(&job, FIELDS, 4);
    let differ = sign_differences(&whole, &tiled);
    eprintln!(
        "sphere, 4 tiles: {differ} signs differ; wrong: whole {}, tiled {}",
        wrong_signs(&sphere, &whole),
        wrong_signs(&sphere, &tiled)
    );
    assert_eq!(differ, 0);
}

/// Runs `merge --tiles 2` with `fields`, expected to be refused: one line
/// naming `file` and saying `reason`, and no output.
fn merge_refused(job: &Job, fields: &str, file: &Path, reason: &str) {
    let merged = job.command("merge", fields, &["--tiles", "2"]);
    let line = job::refused_line(&merged, file);
    assert!(line.contains(reason), "says {reason:?}: {line}");
    assert!(!job.path(OUTPUT).exists(), "no output");
}

fn tile_path(job: &Job, index: usize) -> PathBuf {
    job.path(&format!("out.tile-{index:04}-of-0002.ply"))
}

#[test]
fn merge_refuses_normals_tiles_mixed_with_run_tiles() {
    let job = job_of(&Sphere::unit(), 4_000, 0.002);
    // Tile 1 of one command written over tile 1 of the other: tile 0 says
    // which command's tiles are merged.
    for (first, second) in [("normals", "run"), ("run", "normals")] {
        run_tiles(&job, FIELDS, first, 2);
        succeeds(&job, FIELDS, second, &["--tile", "1/2", "--quiet"]);
        let reason = format!(
            "written by `mlsproj {second} --tile`, and the first tile by `mlsproj {first} --tile`"
        );
        merge_refused(&job, FIELDS, &tile_path(&job, 1), &reason);
    }
    // A whole set of one command merges.
    run_tiles(&job, FIELDS, "normals", 2);
    succeeds(&job, FIELDS, "merge", &["--tiles", "2", "--quiet"]);
}

#[test]
fn merge_refuses_normals_tiles_of_a_job_with_other_settings() {
    let job = job_of(&Sphere::unit(), 4_000, 0.002);
    run_tiles(&job, FIELDS, "normals", 2);
    let other = format!("{FIELDS}, normal_neighbours: 20");
    merge_refused(&job, &other, &tile_path(&job, 0), "its settings differ");
}

#[test]
fn a_normals_tile_refuses_a_cloud_with_an_index_property() {
    let job = Job::new();
    let cloud = noisy_cloud(&Sphere::unit(), 1_000, 0.002, 7);
    let mut columns = xyz_columns(&cloud.positions);
    columns.push(job::attribute(
        "index",
        mlsproj::Column::U32((0..1_000).collect()),
    ));
    let path = job.write_ply("cloud.ply", &columns);
    let run = job.command("normals", FIELDS, &["--tile", "0/2", "--quiet"]);
    let line = job::refused_line(&run, &path);
    assert!(line.contains("'index'"), "{line}");
    assert!(!tile_path(&job, 0).exists(), "no tile written");
    // Whole, it is written with the cloud's other properties.
    succeeds(&job, FIELDS, "normals", &["--quiet"]);
}

#[test]
fn normals_tiles_with_non_finite_points_merge_as_text_into_the_whole_runs_output() {
    let job = Job::new();
    let mut cloud = noisy_cloud(&Sphere::unit(), 3_000, 0.002, 7);
    cloud.positions[10] = Point3::new(f64::NAN, 0.0, 0.0);
    cloud.positions[2_000] = Point3::new(1.0, f64::INFINITY, 2.0);
    job.write_ply("cloud.ply", &xyz_columns(&cloud.positions));
    let config = r#"(cloud: "cloud.ply", particles: Cloud, output: "out.xyz")"#;
    let command = |args: &[&str]| {
        let run = job.command_with_config(args[0], config, &args[1..]);
        assert!(run.success, "{args:?}: {}", run.stderr);
    };
    // The text written, but for its comment (which says what wrote it).
    let text = || -> Vec<String> {
        let text = std::fs::read_to_string(job.path("out.xyz")).unwrap();
        let lines = text.lines().filter(|line| !line.starts_with('#'));
        lines.map(str::to_owned).collect()
    };
    command(&["normals", "--quiet"]);
    let whole = text();
    for index in 0..3 {
        command(&["normals", "--tile", &format!("{index}/3"), "--quiet"]);
    }
    command(&["merge", "--tiles", "3", "--quiet"]);
    assert_eq!(whole.len(), 3_001, "a header line and every point");
    assert!(
        whole == text(),
        "the merged text differs from the whole run's"
    );
}

#[test]
fn normals_tiles_of_a_seed_jobs_config_count_the_clouds_points() {
    // The particles play no part in `normals`: a `Seed` job's config
    // writes the cloud's points, whole or in tiles (whose `run` tiles each
    // record their own count, which `normals` tiles must not).
    let job = job_of(&Sphere::unit(), 4_000, 0.002);
    let fields = r#"cloud: "cloud.ply", particles: Seed(spacing: 0.05)"#;
    let (whole, tiled) = whole_and_tiled(&job, fields, 2);
    assert_eq!(whole.len(), 4_000);
    assert_eq!(sign_differences(&whole, &tiled), 0);
}
