//! Particles seeded on the surface (`particles: Seed(...)`): spacing and
//! coverage against the area of a sphere and a torus, no seeds across a
//! hole, the cap's refusal, the same output whatever the threads, and the
//! same rows from tiles merged as from one run.

mod common;
mod job;

use std::num::NonZeroUsize;

use common::{Plane, Rng, Sphere, Torus, Truth, noisy_cloud};
use job::{Job, OUTPUT, xyz_columns};
use mlsproj::config::Orientation;
use mlsproj::neighbours::NeighbourSearch;
use mlsproj::pipeline::seed::{self, PACKING, SeedPlan, SeedRequest};
use mlsproj::{Config, Method, MlsSurface, PointCloud};
use nalgebra::Point3;

/// The seeds of `cloud` at spacing `d`, projected and settled as `run`
/// makes them, slab by slab.
fn seeded_slabs(cloud: &PointCloud, d: f64) -> (Vec<Vec<Point3<f64>>>, SeedPlan) {
    let surface = MlsSurface::new(cloud).unwrap();
    let plan = SeedPlan::new(surface.search(), SeedRequest::Spacing(d));
    let config = Config::parse(r#"(cloud: "c.ply", particles: Cloud, output: "o.ply")"#).unwrap();
    let projector = surface.projector(Method::from(&config), Orientation::Auto, false);
    let mut slabs: Vec<(i64, Vec<Point3<f64>>)> = Vec::new();
    // Even slabs made before an odd one wait in a file in the temporary
    // folder.
    let beside = std::env::temp_dir().join("seeds.ply");
    seed::seed_surface(
        surface.search(),
        &projector,
        d,
        0,
        None,
        &beside,
        |slab, part| {
            assert!(part.iter().all(|p| p.status.is_projected()));
            let positions = part.iter().map(|p| p.position);
            match slabs.last_mut() {
                Some((at, seeds)) if *at == slab => seeds.extend(positions),
                _ => slabs.push((slab, positions.collect())),
            }
            Ok(())
        },
    )
    .unwrap();
    (slabs.into_iter().map(|(_, seeds)| seeds).collect(), plan)
}

/// The seeds of `cloud` at spacing `d`, projected and settled as `run`
/// makes them.
fn seeded(cloud: &PointCloud, d: f64) -> (Vec<Point3<f64>>, SeedPlan) {
    let (slabs, plan) = seeded_slabs(cloud, d);
    (slabs.concat(), plan)
}

/// Distance from each point to its nearest other one.
fn nearest_distances(points: &[Point3<f64>]) -> Vec<f64> {
    let search = NeighbourSearch::new(points).unwrap();
    let two = NonZeroUsize::new(2).unwrap();
    (0..points.len() as u32)
        .map(|i| {
            search.nearest_n(&search.local_point(i), two)[1]
                .distance_squared
                .sqrt()
        })
        .collect()
}

/// Distance from each of `probes` to the nearest of `points`.
fn gaps(points: &[Point3<f64>], probes: &[Point3<f64>]) -> Vec<f64> {
    let search = NeighbourSearch::new(points).unwrap();
    probes
        .iter()
        .map(|p| search.nearest(&(p - search.origin())).1.sqrt())
        .collect()
}

/// Mean and coefficient of variation.
fn mean_cov(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt() / mean)
}

/// Checks blue noise at spacing `d` on a closed surface of area `area`.
fn spacing_and_coverage(truth: &dyn Truth, area: f64, cloud_points: usize, d: f64) {
    let cloud = noisy_cloud(truth, cloud_points, 0.1 * d, 3);
    let (seeds, plan) = seeded(&cloud, d);
    let expected = PACKING * area / (d * d);
    let count = seeds.len() as f64;
    let nearest = nearest_distances(&seeds);
    let (mean, cov) = mean_cov(&nearest);
    let least = nearest.iter().copied().fold(f64::INFINITY, f64::min);
    let mut rng = Rng::new(9);
    let probes: Vec<Point3<f64>> = (0..50_000).map(|_| truth.sample(&mut rng)).collect();
    let gaps = gaps(&seeds, &probes);
    let holes = gaps.iter().filter(|&&g| g > 1.5 * d).count() as f64 / gaps.len() as f64;
    let widest = gaps.iter().copied().fold(0.0, f64::max);
    println!(
        "{count} seeds (area predicts {expected:.0}, check {}; packing {:.3}), area est {:.4} true {area:.4}, nearest: min {:.3} d, mean {:.3} d, CoV {cov:.3}; holes {:.3}%, widest gap {:.3} d",
        plan.predicted,
        count * d * d / area,
        plan.area,
        least / d,
        mean / d,
        100.0 * holes,
        widest / d
    );
    assert!((count / expected - 1.0).abs() < 0.1, "count against area");
    assert!(
        (count / plan.predicted as f64 - 1.0).abs() < 0.1,
        "count against check's prediction"
    );
    assert!(least >= 0.8 * d, "min distance {least}");
    assert!((0.9 * d..=1.5 * d).contains(&mean), "mean nearest {mean}");
    assert!(cov <= 0.15, "CoV {cov}");
    assert!(holes <= 0.001, "holes {holes}");
    assert!(widest <= 2.0 * d, "widest gap {}", widest / d);
}

#[test]
fn seeds_on_a_sphere_are_evenly_spaced_and_cover_it() {
    spacing_and_coverage(&Sphere::unit(), 4.0 * std::f64::consts::PI, 20_000, 0.01);
}

#[test]
fn seeds_on_a_torus_are_evenly_spaced_and_cover_it() {
    let torus = Torus {
        major: 1.0,
        minor: 0.35,
    };
    let area = 4.0 * std::f64::consts::PI.powi(2) * torus.major * torus.minor;
    spacing_and_coverage(&torus, area, 20_000, 0.012);
}

/// The least and the greatest y of `seeds`.
fn y_range(seeds: &[Point3<f64>]) -> (f64, f64) {
    seeds
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.y), hi.max(p.y))
        })
}

/// The plane [-1, 1] × [-2, 2] sampled by `count` points, σ = 0.001.
fn long_plane(count: usize) -> PointCloud {
    let mut cloud = noisy_cloud(&Plane, count, 0.001, 4);
    for p in &mut cloud.positions {
        p.y *= 2.0;
    }
    cloud
}

#[test]
fn seeds_come_slab_by_slab_along_the_longest_side() {
    // At d = 0.01: blocks of 32 d, so about twelve slabs across y, each
    // made, projected and handed on before the next.
    let cloud = long_plane(20_000);
    let d = 0.01;
    let (slabs, _) = seeded_slabs(&cloud, d);
    let total: usize = slabs.iter().map(Vec::len).sum();
    let largest = slabs.iter().map(Vec::len).max().unwrap_or(0);
    println!("{} slabs, largest {largest} of {total} seeds", slabs.len());
    assert!(slabs.len() >= 10, "{} slabs", slabs.len());
    assert!(largest <= total / 8, "a slab of {largest} of {total} seeds");
    for pair in slabs.windows(2) {
        let (before, after) = (y_range(&pair[0]), y_range(&pair[1]));
        // Seeds move along the normal only: slabs stay apart in y.
        assert!(after.0 >= before.1 - d, "slabs {before:?} then {after:?}");
    }
}

#[test]
fn slabs_stay_32_spacings_thick_however_many_seeds_per_cloud_point() {
    // 1,000 points, whose discs have a radius of about 0.1 (half the
    // distance to their 16th neighbour), seeded at d = 0.008: about 74
    // seeds per cloud point. Blocks four disc radii wide (0.4, 50 d), as
    // they were, made a slab's seeds grow with the seeds per cloud point
    // (8.0M seeds of the bunny scan of docs/seeding.md took 1,003 MB).
    let cloud = long_plane(1_000);
    let d = 0.008;
    let (slabs, _) = seeded_slabs(&cloud, d);
    let total: usize = slabs.iter().map(Vec::len).sum();
    let thickest = slabs
        .iter()
        .map(|slab| {
            let (lo, hi) = y_range(slab);
            hi - lo
        })
        .fold(0.0, f64::max);
    println!(
        "{} slabs, {total} seeds, thickest {:.1} d",
        slabs.len(),
        thickest / d
    );
    assert!(total > 50_000, "{total} seeds");
    // Seeds move along the normal only.
    assert!(thickest <= 32.0 * d, "a slab {:.1} d thick", thickest / d);
}

#[test]
fn no_seeds_across_a_hole_nor_far_beyond_the_edge() {
    // The plane [-1, 1]² with a hole of radius 0.3 at the centre; the
    // support (Nearest(64)) reaches about 0.1.
    let mut rng = Rng::new(5);
    let mut cloud = PointCloud::default();
    while cloud.len() < 20_000 {
        let p = Plane.sample(&mut rng);
        if p.coords.norm() > 0.3 {
            cloud.positions.push(p);
        }
    }
    let d = 0.01;
    let (seeds, _) = seeded(&cloud, d);
    let inside = seeds
        .iter()
        .filter(|p| p.coords.xy().norm() < 0.3 - 1.5 * d)
        .count();
    let deepest = seeds
        .iter()
        .map(|p| 0.3 - p.coords.xy().norm())
        .fold(f64::NEG_INFINITY, f64::max);
    println!("{inside} seeds in the hole, deepest {:.2} d", deepest / d);
    assert_eq!(inside, 0, "seeds in the hole");
    let beyond = seeds
        .iter()
        .map(|p| p.x.abs().max(p.y.abs()) - 1.0)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(beyond <= 1.5 * d, "a seed {} d beyond the edge", beyond / d);
    let probes: Vec<Point3<f64>> = (0..20_000)
        .map(|_| Plane.sample(&mut rng))
        .filter(|p| p.coords.norm() > 0.3 + 2.0 * d && p.x.abs().max(p.y.abs()) < 1.0 - 2.0 * d)
        .collect();
    let widest = gaps(&seeds, &probes).into_iter().fold(0.0, f64::max);
    assert!(widest <= 2.0 * d, "a gap of {} d inside", widest / d);
}

#[test]
fn outliers_far_off_get_no_seeds_nor_a_share_of_the_area() {
    // A unit sphere scan, one point 10¹² away and 100 scattered over a box
    // 10⁴ wide: isolated points, no samples of a surface. Before, the far
    // one's disc drew billions of candidates (the job was killed for its
    // memory), the scattered ones grew 166k seeds and took the area
    // estimate (hence `Seed(count)`'s spacing) up ten thousandfold.
    let sphere = noisy_cloud(&Sphere::unit(), 5_000, 0.002, 11);
    // Without normals, as such a scan comes: the surface estimates them.
    let mut cloud = PointCloud {
        positions: sphere.positions.clone(),
        ..PointCloud::default()
    };
    cloud.positions.push(Point3::new(1e12, -1e12, 3e11));
    let mut rng = Rng::new(12);
    cloud
        .positions
        .extend((0..100).map(|_| Point3::from([(); 3].map(|_| rng.range(-1e4, 1e4)))));
    let area = |cloud: &PointCloud| seed::estimated_area(MlsSurface::new(cloud).unwrap().search());
    let (with, without) = (area(&cloud), area(&sphere));
    println!("area with the outliers {with:.4}, without {without:.4}");
    assert!((with / without - 1.0).abs() < 0.05, "the outliers' share");
    let d = 0.06;
    let (seeds, plan) = seeded(&cloud, d);
    let off = seeds
        .iter()
        .filter(|p| (p.coords.norm() - 1.0).abs() > 0.1)
        .count();
    println!(
        "{} seeds, check {}, {off} off the sphere",
        seeds.len(),
        plan.predicted
    );
    assert_eq!(off, 0, "seeds off the sphere");
    assert!(
        (seeds.len() as f64 / plan.predicted as f64 - 1.0).abs() < 0.1,
        "count against check's prediction"
    );
}

#[test]
fn a_scan_thinning_with_range_is_seeded_to_its_far_end() {
    // A strip [1, 20] × [0, 1] sampled as a scanner at the origin sees
    // it, density falling with the square of the range: the far end
    // 400 times thinner than the near one, its points' reach 20 times
    // the median point's. It is surface all the same.
    let mut rng = Rng::new(21);
    let mut cloud = PointCloud::default();
    while cloud.len() < 20_000 {
        // x from the density 1/x² on [1, 20], by its inverse CDF.
        let u = rng.uniform();
        let x = 1.0 / (1.0 - u * (1.0 - 1.0 / 20.0));
        cloud.positions.push(Point3::new(x, rng.uniform(), 0.0));
    }
    let d = 0.05;
    let (seeds, _) = seeded(&cloud, d);
    let probes: Vec<Point3<f64>> = (0..2_000)
        .map(|_| Point3::new(rng.range(15.0, 19.0), rng.range(0.2, 0.8), 0.0))
        .collect();
    let covered = gaps(&seeds, &probes)
        .into_iter()
        .filter(|&gap| gap <= 1.5 * d)
        .count();
    println!(
        "{} seeds; far end: {covered} of {} probes within 1.5 d",
        seeds.len(),
        probes.len()
    );
    assert!(
        covered as f64 >= 0.95 * probes.len() as f64,
        "the far end left unseeded"
    );
}

/// A small sphere scan written as a PLY file in `job`'s folder.
fn sphere_file(job: &Job) {
    sphere_file_of(job, 5_000);
}

/// A sphere scan of `points` points as `cloud.ply` in `job`'s folder.
fn sphere_file_of(job: &Job, points: usize) {
    let cloud = noisy_cloud(&Sphere::unit(), points, 0.002, 4);
    job.write_ply("cloud.ply", &xyz_columns(&cloud.positions));
}

#[test]
fn a_job_over_max_particles_is_refused_before_any_work() {
    let job = Job::new();
    sphere_file(&job);
    // The message names the request as written, and what to change.
    for (particles, asked, remedy) in [
        (
            "Seed(spacing: 0.001)",
            "Seed(spacing: 1.0000e-3) would make about 7",
            "or raise the spacing",
        ),
        (
            "Seed(count: 2000000)",
            "Seed(count: 2000000) would make about ",
            "or lower the count",
        ),
    ] {
        let fields =
            format!(r#"cloud: "cloud.ply", particles: {particles}, max_particles: 1000000"#);
        for line in refused_by_run_and_check(&job, &fields) {
            assert!(
                line.contains(asked)
                    && line.contains("max_particles (1000000)")
                    && line.contains(remedy),
                "{line}"
            );
        }
    }
}

/// The refusals of `run` and of `check` of a job with `fields`: each exits
/// 1 with one line on stderr, and no output is written.
fn refused_by_run_and_check(job: &Job, fields: &str) -> Vec<String> {
    ["run", "check"]
        .into_iter()
        .map(|command| {
            let run = job.command(command, fields, &[]);
            assert_eq!(run.code, Some(1), "{command}: {}", run.stdout);
            let line = job::one_line_refusal(&run);
            assert!(!job.path(OUTPUT).exists(), "{command} wrote an output");
            line
        })
        .collect()
}

#[test]
fn a_spacing_too_fine_for_the_cloud_is_refused_with_the_limit() {
    // 5,000 points of the unit sphere: discs of radius about 0.057, so
    // spacings finer than about 0.0024 (some 270 seeds per cloud point,
    // 1.3M seeds) are refused.
    let job = Job::new();
    sphere_file(&job);
    for (seed, asked) in [
        ("Seed(count: 2000000)", "Seed(count: 2000000) is too many"),
        (
            "Seed(spacing: 0.001)",
            "Seed(spacing: 1.0000e-3) is too fine",
        ),
    ] {
        let run = job.command(
            "check",
            &format!(r#"cloud: "cloud.ply", particles: {seed}"#),
            &[],
        );
        let line = &job::one_line_refusal(&run);
        let number =
            |text: &str| -> f64 { text.parse().unwrap_or_else(|_| panic!("{text}: {line}")) };
        // The finest spacing comes last; the largest count last in a
        // spacing's refusal, after "at most about" in a count's.
        let last = |marker: &str| &line[line.rfind(marker).unwrap_or_else(|| panic!("{line}"))..];
        let most = if seed.contains("count") {
            number(between(line, "at most about ", " seeds"))
        } else {
            number(between(last("about "), "about ", " seeds"))
        };
        let finest = number(between(last("(spacing "), "(spacing ", ","));
        println!("{line}");
        assert!(line.contains(asked), "{line}");
        assert!((1.0e6..2.0e6).contains(&most), "{line}");
        assert!((0.002..0.003).contains(&finest), "{line}");
    }
}

/// The text of `line` between `before` and the next `after`.
fn between<'a>(line: &'a str, before: &str, after: &str) -> &'a str {
    let start = line
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in {line}"))
        + before.len();
    let end = line[start..]
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} after {before:?} in {line}"));
    &line[start..start + end]
}

#[test]
fn check_reports_area_count_and_spacing_and_run_meets_them() {
    let job = Job::new();
    sphere_file(&job);
    let fields = r#"cloud: "cloud.ply", particles: Seed(count: 20000)"#;
    let check = job.command("check", fields, &[]);
    assert!(check.success, "{}", check.stderr);
    let line = check
        .stdout
        .lines()
        .find(|line| line.starts_with("particles: Seed:"))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    // The unit sphere, sampled by 5,000 points.
    let area: f64 = between(line, "estimated area ", ",").parse().unwrap();
    let spacing = between(line, "spacing ", ",");
    let predicted: f64 = between(line, "about ", " particles").parse().unwrap();
    assert!(
        (area / (4.0 * std::f64::consts::PI) - 1.0).abs() < 0.05,
        "{line}"
    );
    let d: f64 = spacing.parse().unwrap();
    assert!(
        (PACKING * area / (d * d) / 20_000.0 - 1.0).abs() < 1e-3,
        "{line}"
    );
    assert!((predicted - 20_000.0).abs() <= 1.0, "{line}");
    // `run` says the spacing it chose, and makes about the count predicted.
    let (run, output) = job.output(fields);
    let summary = run
        .stdout
        .lines()
        .find(|line| line.starts_with("seeding:"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(between(summary, "spacing ", ","), spacing, "{summary}");
    assert!(
        summary.contains(&format!("estimated area {area:.6e}")),
        "{summary}"
    );
    let count = output.len() as f64;
    assert!(
        (count / predicted - 1.0).abs() < 0.1,
        "{count} seeds, {predicted} predicted"
    );
}

#[test]
fn a_spacing_wider_than_the_surface_is_refused_before_any_work() {
    let job = Job::new();
    sphere_file(&job);
    let fields = r#"cloud: "cloud.ply", particles: Seed(spacing: 1e9)"#;
    for line in refused_by_run_and_check(&job, fields) {
        assert!(
            line.contains("Seed(spacing: 1.0000e9) would make no seeds"),
            "{line}"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_output_whatever_the_threads() {
    let job = Job::new();
    sphere_file(&job);
    let read = |fields: &str| {
        let (_, output) = job.output(fields);
        std::fs::read(job.path(OUTPUT)).map(|bytes| (bytes, output.len()))
    };
    let fields = r#"cloud: "cloud.ply", particles: Seed(spacing: 0.02)"#;
    let (one, count) = read(&format!("{fields}, threads: 1")).unwrap();
    let (two, _) = read(&format!("{fields}, threads: 2")).unwrap();
    assert!(count > 10_000);
    assert!(one == two, "threads 1 and 2 differ");
    let (other, _) = read(&format!("{fields}, threads: 2, seed: 7")).unwrap();
    assert!(one != other, "another seed, other particles");
}

/// The rows of a PLY file: its bytes after the header (whose comments
/// say whether it is a tile, a merge or a whole run).
fn rows(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let end = b"end_header\n";
    let at = bytes
        .windows(end.len())
        .position(|w| w == end)
        .expect("a PLY header");
    bytes[at + end.len()..].to_vec()
}

/// A sphere job seeded at 0.015: blocks 32 d = 0.48 wide, so five slabs
/// across the unit sphere, and tiles whose borders fall on even and odd
/// slabs alike.
const SLABBED: &str = r#"cloud: "cloud.ply", particles: Seed(spacing: 0.015)"#;

/// Runs tiles `indices` of `count` of the job `fields`, each on one thread.
fn run_tiles(job: &Job, fields: &str, indices: &[usize], count: usize) -> Vec<usize> {
    indices
        .iter()
        .map(|index| {
            let tile = format!("{index}/{count}");
            let run = job.command(
                "run",
                &format!("{fields}, threads: 1"),
                &["--tile", &tile, "--quiet"],
            );
            assert!(run.success, "tile {tile}: {}", run.stderr);
            let path = job.path(&format!("out.tile-{index:04}-of-{count:04}.ply"));
            mlsproj::io::read_points(&path).unwrap().len()
        })
        .collect()
}

/// Checks that the job `fields` run whole on two threads, and in each of
/// `tiles` tiles on one thread then merged, writes the same rows; the
/// first count of `tiles` must leave no tile empty.
fn tiles_merge_to_the_whole_run(job: &Job, fields: &str, tiles: &[usize]) {
    let (_, whole) = job.output(&format!("{fields}, threads: 2"));
    let whole_rows = rows(&job.path(OUTPUT));
    for &count in tiles {
        std::fs::remove_file(job.path(OUTPUT)).unwrap();
        let counts = run_tiles(job, fields, &(0..count).collect::<Vec<_>>(), count);
        println!("{count} tiles: {counts:?} of {} seeds", whole.len());
        if count == tiles[0] {
            assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
        }
        let merged = job.command("merge", fields, &["--tiles", &count.to_string()]);
        assert!(merged.success, "merge: {}", merged.stderr);
        // The same bytes: positions, every property, and `index` numbering
        // the rows 0, 1, 2, … in the whole run's order.
        assert!(
            rows(&job.path(OUTPUT)) == whole_rows,
            "{count} tiles merged differ from the whole run"
        );
    }
}

#[test]
fn seeded_tiles_merged_equal_the_whole_run_row_for_row() {
    let job = Job::new();
    sphere_file(&job);
    // Three tiles cut the five slabs; eight leave some tiles empty.
    tiles_merge_to_the_whole_run(&job, SLABBED, &[3, 8]);
}

#[test]
fn seeded_tiles_merge_to_the_whole_run_where_discs_reach_three_blocks() {
    // 1,000 points of the unit sphere, whose discs have a radius of about
    // 0.13, seeded at 0.007: blocks of 32 d = 0.22, so discs cut to four
    // median radii (0.5) reach three blocks beyond their foot's, and a
    // slab draws the discs of seven (about 160 seeds per cloud point).
    let job = Job::new();
    sphere_file_of(&job, 1_000);
    let fields = r#"cloud: "cloud.ply", particles: Seed(spacing: 0.007)"#;
    tiles_merge_to_the_whole_run(&job, fields, &[3]);
}

#[test]
fn merge_refuses_a_missing_seeded_tile_one_of_another_seed_and_an_altered_one() {
    let job = Job::new();
    sphere_file(&job);
    run_tiles(&job, SLABBED, &[0, 2], 3);
    let missing = job.command("merge", SLABBED, &["--tiles", "3"]);
    let line = job::refused_line(&missing, &job.path("out.tile-0001-of-0003.ply"));
    assert!(line.contains("missing"), "{line}");
    assert!(!job.path(OUTPUT).exists());
    run_tiles(&job, &format!("{SLABBED}, seed: 7"), &[1], 3);
    let foreign = job.command("merge", SLABBED, &["--tiles", "3"]);
    let line = job::refused_line(&foreign, &job.path("out.tile-0001-of-0003.ply"));
    assert!(line.contains("another job"), "{line}");
    assert!(!job.path(OUTPUT).exists());
    run_tiles(&job, SLABBED, &[1], 3);
    let altered = job.path("out.tile-0002-of-0003.ply");
    job::drop_last_row(&altered);
    let line = job::refused_line(&job.command("merge", SLABBED, &["--tiles", "3"]), &altered);
    assert!(line.contains("its run made"), "{line}");
    assert!(!job.path(OUTPUT).exists());
}
