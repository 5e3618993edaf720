//! Tiles: a job split with `--tile I/N` and joined with `merge` gives the
//! result of the whole job, particle for particle, in input order.

mod common;
mod job;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Sphere, noisy_cloud, particles, plane_grid};
use job::{Job, OUTPUT, attribute, column, count, read_tile, xyz_columns};
use mlsproj::io::{PlyEncoding, file_columns, write_ply};
use mlsproj::pipeline::{JobIdentity, Provenance, Tile};
use mlsproj::{Attribute, Column, Config, PointCloud, Status};
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
/// order relative to another origin (its grid's corner is the tile's own),
/// so neighbours arrive in another order and the fit's sums run in
/// another order; the height and slope sums run in `f32`
/// (`fit::avx::moments`), where that now and then rounds the other way: a
/// written (`f32`) coordinate may then differ by a unit in the last place
/// of the position's largest coordinate ([`within_last_place`]), as the
/// normals may. The neighbour counts are not compared: a
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
        let nan = |p: &Point3<f64>| p.iter().any(|c| c.is_nan());
        assert!(
            within_last_place(a, b) || (nan(a) && nan(b)),
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

/// Whether each written (`f32`) coordinate of `b` is within a unit in the
/// last place of `a`'s largest coordinate of `a`'s (or 1e-9, near the
/// origin): a position is computed relative to the magnitude of the terms
/// that add up to it (the particle, the centroid, the support radius), so a
/// coordinate near zero may differ in more of its own last bits (in the
/// smoothing test each differs by at most 0.6 of that unit, one near zero
/// by 34 of its own).
fn within_last_place(a: &Point3<f64>, b: &Point3<f64>) -> bool {
    let largest = a.coords.amax() as f32;
    let unit = f64::from(largest.next_up() - largest).max(1e-9);
    a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= unit)
}

const SPHERE: Sphere = Sphere {
    centre: Point3::new(3.0, -1.0, 2.0),
    radius: 1.0,
};

/// Writes 30,000 points of a noisy sphere with normals, drawn with `seed`,
/// as the job's cloud.ply.
fn write_sphere_cloud(job: &Job, seed: u64) {
    let cloud = noisy_cloud(&SPHERE, 30_000, 0.002, seed);
    let mut cloud_columns = xyz_columns(&cloud.positions);
    let normals = cloud.normals.as_deref().expect("noisy_cloud gives normals");
    for (axis, name) in ["nx", "ny", "nz"].into_iter().enumerate() {
        let values = normals.iter().map(|n| n[axis]).collect();
        cloud_columns.push(attribute(name, Column::F32(values)));
    }
    job.write_ply("cloud.ply", &cloud_columns);
}

/// A noisy sphere with normals as the cloud, and 3,000 particles up to
/// `offset` off it (one of them NaN) with a label.
fn sphere_job_with_offset(offset: f64) -> Job {
    let mut points = particles(&SPHERE, 3_000, offset, 22, |_| true);
    points[17] = Point3::new(f64::NAN, 0.0, 0.0);
    let job = Job::new();
    write_sphere_cloud(&job, 21);
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

/// The config fields of the sphere job's tiles in the refusal tests.
const SPHERE_FIELDS: &str =
    r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Radius(0.15)"#;

/// The path of tile `index` of `count` of the job's output.
fn tile_path(job: &Job, index: usize, count: usize) -> std::path::PathBuf {
    job.path(&format!("out.tile-{index:04}-of-{count:04}.ply"))
}

/// Runs every tile of the sphere job split in two.
fn sphere_job_in_two_tiles() -> Job {
    let job = sphere_job();
    for tile in ["0/2", "1/2"] {
        let run = job.command("run", SPHERE_FIELDS, &["--tile", tile, "--quiet"]);
        assert!(run.success, "tile {tile}: {}", run.stderr);
    }
    job
}

/// Runs `merge --tiles 2` with `fields`, expected to be refused: non-zero
/// exit, one line naming `file` and saying `reason`, no panic, and neither
/// the output nor a temporary file left. Returns the line.
fn merge_refused(job: &Job, fields: &str, file: &Path, reason: &str) -> String {
    let merged = job.command("merge", fields, &["--tiles", "2"]);
    let line = merged.stderr.trim_end();
    assert!(!merged.success, "should be refused: {}", merged.stdout);
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(!line.contains("panicked"), "{line}");
    assert!(
        line.contains(&*file.to_string_lossy()),
        "names {file:?}: {line}"
    );
    assert!(line.contains(reason), "says {reason:?}: {line}");
    assert!(!job.path(OUTPUT).exists(), "no output");
    let left: Vec<_> = std::fs::read_dir(job.folder())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    line.to_owned()
}

/// The values of the uint column `name`.
fn u32_column(columns: &[Attribute], name: &str) -> Vec<u32> {
    match &columns.iter().find(|c| c.name == name).unwrap().values {
        Column::U32(values) => values.clone(),
        other => panic!("{name} is {:?}", other.kind()),
    }
}

#[test]
fn tiles_record_the_job_they_belong_to() {
    let job = sphere_job_in_two_tiles();
    let config = Config::load(&job.path("job.ron")).unwrap();
    let expected = JobIdentity::of(&config).unwrap();
    for index in 0..2 {
        let (_, comments) = read_tile(&tile_path(&job, index, 2));
        let provenance = Provenance::find(&comments).expect("a provenance comment");
        assert_eq!(provenance.tile, Tile { index, count: 2 });
        assert_eq!(provenance.job, expected);
        assert_eq!(provenance.job.count, 3_000);
    }
}

#[test]
fn merge_refuses_tiles_of_a_job_with_another_cloud() {
    let job = sphere_job_in_two_tiles();
    // The same sphere drawn again: the same size and point count, other
    // points.
    write_sphere_cloud(&job, 99);
    let line = merge_refused(
        &job,
        SPHERE_FIELDS,
        &tile_path(&job, 0, 2),
        "a tile of another job: its cloud differs from",
    );
    assert!(
        line.contains(&*job.path("cloud.ply").to_string_lossy()),
        "{line}"
    );
    assert!(!line.contains("particles differ"), "{line}");
}

#[test]
fn merge_refuses_tiles_of_a_job_with_more_particles() {
    // 3,000 particles in the tiles, 1,500 in the particle file now: merging
    // would write 3,000.
    let job = sphere_job_in_two_tiles();
    let points = particles(&SPHERE, 1_500, 0.03, 23, |_| true);
    job.write_ply("particles.ply", &xyz_columns(&points));
    let line = merge_refused(
        &job,
        SPHERE_FIELDS,
        &tile_path(&job, 0, 2),
        "its particles differ from",
    );
    assert!(line.contains("its job had 3000 particles"), "{line}");
    assert!(line.contains("particles.ply has 1500"), "{line}");
}

#[test]
fn merge_refuses_tiles_run_with_other_settings() {
    let job = sphere_job_in_two_tiles();
    let fields = SPHERE_FIELDS.replace("Radius(0.15)", "Radius(0.2)");
    merge_refused(
        &job,
        &fields,
        &tile_path(&job, 0, 2),
        "its settings differ from the config's",
    );
    // Settings that change no value do not refuse the tiles.
    let fields = format!("{SPHERE_FIELDS}, threads: 1, encoding: Ascii");
    let merged = job.command("merge", &fields, &["--tiles", "2"]);
    assert!(merged.success, "{}", merged.stderr);
}

#[test]
fn merge_refuses_a_tile_copied_over_another() {
    let job = sphere_job_in_two_tiles();
    std::fs::copy(tile_path(&job, 0, 2), tile_path(&job, 1, 2)).unwrap();
    merge_refused(
        &job,
        SPHERE_FIELDS,
        &tile_path(&job, 1, 2),
        "it holds tile 0/2, not 1/2",
    );
}

#[test]
fn merge_refuses_a_tile_that_does_not_say_its_job() {
    let job = sphere_job_in_two_tiles();
    let path = tile_path(&job, 1, 2);
    let (columns, _) = read_tile(&path);
    write_ply(&path, &columns, PlyEncoding::BinaryLittleEndian, &[]).unwrap();
    merge_refused(
        &job,
        SPHERE_FIELDS,
        &path,
        "it does not say which job it is a tile of",
    );
}

#[test]
fn merge_refuses_a_tile_of_another_mlsproj_version() {
    let job = sphere_job_in_two_tiles();
    let path = tile_path(&job, 1, 2);
    let (columns, comments) = read_tile(&path);
    let this = format!("version {}", env!("CARGO_PKG_VERSION"));
    let older: Vec<String> = comments
        .iter()
        .map(|comment| comment.replace(&this, "version 0.0.1"))
        .collect();
    write_ply(&path, &columns, PlyEncoding::BinaryLittleEndian, &older).unwrap();
    merge_refused(
        &job,
        SPHERE_FIELDS,
        &path,
        "a tile of another job: written by mlsproj 0.0.1, this is",
    );
}

#[test]
fn merge_refuses_a_missing_tile_of_more_tiles_than_were_run() {
    let job = sphere_job_in_two_tiles();
    let merged = job.command("merge", SPHERE_FIELDS, &["--tiles", "3"]);
    assert!(!merged.success);
    assert!(
        merged
            .stderr
            .contains("tile-0000-of-0003.ply: tile 0/3 is missing"),
        "{}",
        merged.stderr
    );
}

#[test]
fn merge_refuses_tiles_that_hold_fewer_particles_than_the_job() {
    // A tile altered after its run, its provenance kept: one particle less.
    let job = sphere_job_in_two_tiles();
    job::drop_last_row(&tile_path(&job, 1, 2));
    merge_refused(
        &job,
        SPHERE_FIELDS,
        &job.path("particles.ply"),
        "the 2 tiles hold 2999 particles, the job has 3000",
    );
}

#[test]
fn merge_refuses_a_particle_found_in_two_tiles() {
    // Tile 1 altered, its provenance and count kept: its last particle
    // replaced by the first of tile 0, so that one is in both and the
    // replaced one in neither.
    let job = sphere_job_in_two_tiles();
    let (first, _) = read_tile(&tile_path(&job, 0, 2));
    let twice = u32_column(&first, "index")[0];
    let path = tile_path(&job, 1, 2);
    let (mut columns, comments) = read_tile(&path);
    let mut index = u32_column(&columns, "index");
    *index.last_mut().unwrap() = twice;
    index.sort_unstable();
    columns
        .iter_mut()
        .find(|c| c.name == "index")
        .unwrap()
        .values = Column::U32(index);
    write_ply(&path, &columns, PlyEncoding::BinaryLittleEndian, &comments).unwrap();
    let line = merge_refused(
        &job,
        SPHERE_FIELDS,
        &path,
        &format!("particle {twice} is in this tile and in"),
    );
    assert!(
        line.ends_with(&*tile_path(&job, 0, 2).to_string_lossy()),
        "{line}"
    );
}

#[test]
fn tile_counts_above_the_cap_are_refused_at_once() {
    let job = sphere_job();
    for args in [
        &["run", "--tile", "0/1000000000"][..],
        &["run", "--tile", "0/65537"][..],
        &["merge", "--tiles", "1000000000"][..],
        &["merge", "--tiles", "0"][..],
    ] {
        let started = Instant::now();
        let run = job.command(args[0], SPHERE_FIELDS, &args[1..]);
        assert!(started.elapsed() < Duration::from_secs(2), "{args:?}");
        assert!(!run.success, "{args:?}");
        let line = run.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "one line: {line}");
        assert!(line.contains("1 to 65536 tiles"), "{args:?}: {line}");
    }
    assert!(!job.path(OUTPUT).exists());
    // A command-line error that clap spreads over lines is one line too.
    let run = job.command("merge", SPHERE_FIELDS, &[]);
    let line = run.stderr.trim_end();
    assert!(!run.success);
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(line.contains("--tiles <TILES>"), "{line}");
}

/// A job of `particles` particles over the cloud of `sphere_job`, split
/// into `tiles` tiles written here directly (not run), each with the
/// provenance a run would record: particle `i` in tile `7919·i mod tiles`,
/// so that every tile's particles alternate with every other's. The tiles
/// hold `x y z index`, `x` = the particle's input position.
fn job_of_written_tiles(particles: usize, tiles: usize) -> Job {
    let job = Job::new();
    write_sphere_cloud(&job, 21);
    let positions: Vec<Point3<f64>> = (0..particles)
        .map(|i| Point3::new(i as f64, 0.5, -0.5))
        .collect();
    job.write_ply("particles.ply", &xyz_columns(&positions));
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply"), support: Nearest(20)"#;
    job.write(
        "job.ron",
        format!("({fields}, output: {OUTPUT:?})").as_bytes(),
    );
    let config = Config::load(&job.path("job.ron")).unwrap();
    let identity = JobIdentity::of(&config).unwrap();
    let mut members = vec![Vec::new(); tiles];
    for i in 0..particles {
        members[(7_919 * i) % tiles].push(i as u32);
    }
    for (index, member) in members.into_iter().enumerate() {
        let provenance = Provenance {
            tile: Tile {
                index,
                count: tiles,
            },
            job: identity.clone(),
        };
        let x = member.iter().map(|&i| Point3::new(i as f64, 0.5, -0.5));
        let mut columns = mlsproj::io::position_columns(x, mlsproj::Precision::Single);
        columns.push(attribute("index", Column::U32(member)));
        let path = tile_path(&job, index, tiles);
        write_ply(
            &path,
            &columns,
            PlyEncoding::BinaryLittleEndian,
            &[provenance.to_comment()],
        )
        .unwrap();
    }
    job
}

/// Asserts that the job's output holds particles 0, 1, 2, … `particles`
/// − 1 in order (`x` = input position).
fn assert_merged_in_order(job: &Job, particles: usize) {
    let merged = mlsproj::io::read_points(&job.path(OUTPUT)).unwrap();
    assert_eq!(merged.len(), particles);
    let index = u32_column(&file_columns(&merged), "index");
    assert!(index.iter().enumerate().all(|(i, &at)| at as usize == i));
    assert!(
        merged
            .positions
            .iter()
            .enumerate()
            .all(|(i, p)| p.x == i as f64)
    );
}

#[test]
fn merging_in_groups_gives_the_one_pass_result_byte_for_byte() {
    let job = job_of_written_tiles(500, 10);
    let config = Config::load(&job.path("job.ron")).unwrap();
    let one_pass = mlsproj::pipeline::merge(&config, 10, false).unwrap();
    assert_eq!(one_pass.passes, 1);
    assert_merged_in_order(&job, 500);
    let expected = std::fs::read(job.path(OUTPUT)).unwrap();
    // 10 tiles in groups of 3: 4 groups, then 2, then the output.
    for (group, passes) in [(3, 3), (2, 4), (9, 2)] {
        std::fs::remove_file(job.path(OUTPUT)).unwrap();
        let summary = mlsproj::pipeline::merge_in_groups(&config, 10, false, group).unwrap();
        assert_eq!(summary.passes, passes, "groups of {group}");
        assert!(
            std::fs::read(job.path(OUTPUT)).unwrap() == expected,
            "groups of {group}"
        );
    }
    let files = std::fs::read_dir(job.folder()).unwrap().count();
    assert_eq!(files, 10 + 4, "tiles, inputs, config and output only");
}

#[test]
fn merge_joins_1200_tiles_under_an_open_file_limit_of_1024() {
    let job = job_of_written_tiles(3_600, 1_200);
    let config = job.path("job.ron");
    let merge = |limit: usize| -> job::Run {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {limit} && exec \"$0\" merge \"$1\" --tiles 1200 --quiet"
            ))
            .arg(env!("CARGO_BIN_EXE_mlsproj"))
            .arg(&config)
            .output()
            .expect("sh runs")
            .into()
    };
    let started = Instant::now();
    let merged = merge(1024);
    assert!(merged.success, "{}", merged.stderr);
    assert!(
        merged
            .stdout
            .contains("merged 1200 tiles in 2 passes, 3600 particles"),
        "{}",
        merged.stdout
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_merged_in_order(&job, 3_600);
    let files = std::fs::read_dir(job.folder()).unwrap().count();
    assert_eq!(files, 1_200 + 4, "tiles, inputs, config and output only");
    // Under a limit below a group, the refusal is one line, and nothing is
    // left behind (the merged groups have no name).
    std::fs::remove_file(job.path(OUTPUT)).unwrap();
    let refused = merge(256);
    assert!(!refused.success);
    let line = refused.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("Too many open files"), "{line}");
    let files = std::fs::read_dir(job.folder()).unwrap().count();
    assert_eq!(files, 1_200 + 3, "nothing left behind");
}

#[test]
fn tiles_written_as_text_or_laz_merge_into_the_whole_jobs_result() {
    let sphere = Sphere::unit();
    for output in ["out.xyz", "out.laz"] {
        let job = Job::new();
        job.write_ply(
            "cloud.ply",
            &xyz_columns(&noisy_cloud(&sphere, 3_000, 0.002, 21).positions),
        );
        job.write_ply(
            "particles.ply",
            &xyz_columns(&noisy_cloud(&sphere, 300, 0.01, 22).positions),
        );
        let config = format!(
            r#"(cloud: "cloud.ply", particles: File("particles.ply"), output: "{output}", support: Radius(0.2))"#
        );
        let whole = job.command_with_config("run", &config, &["--quiet"]);
        assert!(whole.success, "{output}: {}", whole.stderr);
        let whole = mlsproj::io::read_points(&job.path(output)).unwrap();
        std::fs::remove_file(job.path(output)).unwrap();
        for index in 0..3 {
            let tile = format!("{index}/3");
            let run = job.command_with_config("run", &config, &["--tile", &tile, "--quiet"]);
            assert!(run.success, "{output} tile {tile}: {}", run.stderr);
        }
        let merged = job.command_with_config("merge", &config, &["--tiles", "3"]);
        assert!(merged.success, "{output} merge: {}", merged.stderr);
        let tiled = mlsproj::io::read_points(&job.path(output)).unwrap();
        assert_eq!(whole.len(), tiled.len(), "{output}");
        // Text keeps every digit; LAS rounds to its scale, which each file
        // chooses from its own first chunk (below a micrometre here).
        for (a, b) in whole.positions.iter().zip(&tiled.positions) {
            assert!((a - b).norm() < 1e-6, "{output}: {a} vs {b}");
        }
        assert_eq!(
            column(&whole, "index"),
            column(&tiled, "index"),
            "{output}: input order"
        );
    }
}
