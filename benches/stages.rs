//! Each stage of a job, and the whole job, on the benchmark sets of
//! `../shared/bench` (issue 3): where the time of `mlsproj run` goes, stage
//! by stage, so that a change to one stage shows up in that stage alone.
//!
//! Every set is measured with the support radius of its `manifest.json` and
//! the default weight, as `mlsproj run` would be configured for it; the
//! stages are the ones `mlsproj run` times (load, tree, project, write) with
//! the neighbour search split out of the projection. Smoothing mode
//! (`particles: Cloud`) runs on sphere_seed's 200k points.
//!
//! `cargo bench --bench stages`; outputs go to `target/bench-stages/`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use rayon::prelude::*;
use serde::Deserialize;

use mlsproj::config::Particles;
use mlsproj::io::{self, PlyEncoding};
use mlsproj::neighbours::Neighbourhood;
use mlsproj::neighbours::morton_order;
use mlsproj::projection::Method;
use mlsproj::{Config, MlsSurface, PointCloud, Projected, project_all};

/// The sets issue 3 names, in the order they are reported.
const SETS: [&str; 3] = ["sphere_seed", "torus", "saddle"];

/// The one set whose cloud is also smoothed: the seed question's workload.
const SMOOTHING_SET: &str = "sphere_seed";

/// The part of a set's manifest the benchmarks need.
#[derive(Deserialize)]
struct Manifest {
    radius_h: f64,
}

/// `../shared/bench` beside the repository, if this checkout has it.
fn bench_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench");
    root.is_dir().then_some(root)
}

/// Where the benchmarks write their outputs (never beside the inputs).
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-stages");
    std::fs::create_dir_all(&dir).expect("cannot create target/bench-stages");
    dir
}

/// The job `mlsproj run` would do on set `dir`, built from RON text as a
/// user's config file is, so that defaults (weight, degree, threads) are
/// exactly the command's.
fn job(dir: &Path, particles: Particles, output: &Path) -> Config {
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("cannot read manifest.json"),
    )
    .expect("manifest.json has no radius_h");
    let quoted = |path: &Path| format!("{:?}", path.display().to_string());
    let particles = match particles {
        Particles::File(path) => format!("File({})", quoted(&path)),
        Particles::Cloud => "Cloud".to_owned(),
        Particles::Seed { spacing, count } => match (spacing, count) {
            (Some(d), _) => format!("Seed(spacing: {d:?})"),
            (None, n) => format!("Seed(count: {})", n.unwrap_or(1)),
        },
    };
    let text = format!(
        "(cloud: {}, particles: {particles}, output: {}, support: Radius({}))",
        quoted(&dir.join("cloud.ply")),
        quoted(output),
        manifest.radius_h,
    );
    let config = Config::parse(&text).expect("benchmark config does not parse");
    config.validate().expect("benchmark config is invalid");
    config
}

/// A group with flat sampling (the same number of iterations in every
/// sample): most stages take 10-100 ms and smoothing seconds, for which
/// criterion's default linear sampling overruns its measurement time.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat);
    group
}

/// Benchmarks the neighbour search alone: one neighbourhood per particle,
/// gathered around the particle in parallel, not fitted. Particles are
/// visited in the Morton order `project_all` uses, since cache locality is
/// much of a search's cost. A projection searches more than this (the
/// nearest point first, then one neighbourhood per step), so `search` is
/// the cost of one search per particle, not `project` less its fits.
fn bench_search(
    group: &mut BenchmarkGroup<WallTime>,
    surface: &MlsSurface,
    config: &Config,
    particles: &PointCloud,
) {
    let search = surface.search();
    let centres: Vec<_> = morton_order(&particles.positions)
        .into_iter()
        .map(|i| particles.positions[i as usize] - search.origin())
        .collect();
    group.bench_function("search", |b| {
        b.iter(|| {
            centres
                .par_iter()
                .map_init(Neighbourhood::default, |neighbourhood, centre| {
                    search.gather(centre, config.support, config.nearest_scale, neighbourhood);
                    neighbourhood.len()
                })
                .sum::<usize>()
        })
    });
}

/// Benchmarks fit + project of every particle, and returns the result for
/// the write stage.
fn bench_project(
    group: &mut BenchmarkGroup<WallTime>,
    surface: &MlsSurface,
    config: &Config,
    particles: &PointCloud,
) -> Vec<Projected> {
    let projector = surface.projector(Method::from(config), config.orientation, config.colours);
    group.bench_function("project", |b| {
        b.iter(|| project_all(&projector, black_box(&particles.positions)))
    });
    project_all(&projector, &particles.positions)
}

/// Benchmarks the whole job: `mlsproj run` without the process around it.
fn bench_run(group: &mut BenchmarkGroup<WallTime>, config: &Config) {
    group.bench_function("run", |b| {
        b.iter(|| mlsproj::run(config).expect("run failed"))
    });
}

/// All stages of one set with its own particle file.
fn bench_set(c: &mut Criterion, dir: &Path, name: &str) {
    let out = out_dir();
    let particles_path = dir.join("particles.ply");
    let config = job(
        dir,
        Particles::File(particles_path.clone()),
        &out.join(format!("{name}.ply")),
    );
    let mut group = group(c, name);

    group.bench_function("load", |b| {
        b.iter(|| {
            let cloud = io::read_points(&config.cloud).expect("cannot read cloud");
            let particles = io::read_points(&particles_path).expect("cannot read particles");
            (cloud, particles)
        })
    });
    let cloud = io::read_points(&config.cloud).expect("cannot read cloud");
    let particles = io::read_points(&particles_path).expect("cannot read particles");

    group.bench_function("tree", |b| {
        b.iter(|| MlsSurface::new(black_box(&cloud)).expect("tree"))
    });
    let surface = MlsSurface::new(&cloud).expect("tree");

    bench_search(&mut group, &surface, &config, &particles);
    let projected = bench_project(&mut group, &surface, &config, &particles);

    // The sets carry no colours, so there is nothing to average, and the
    // positions keep the particles' precision, as in the pipeline.
    let written = out.join(format!("{name}-write.ply"));
    group.bench_function("write", |b| {
        b.iter(|| {
            let record = mlsproj::io::Record {
                positions: particles.precision,
                values: surface.values_precision(),
                average_colours: false,
                attributes: config.attributes,
                quality: config.quality,
            };
            let columns = mlsproj::io::output_columns(
                &record,
                &particles,
                0..projected.len(),
                &projected,
                (0..projected.len() as u32).collect(),
            );
            io::write_ply(&written, &columns, PlyEncoding::BinaryLittleEndian, &[])
                .expect("write failed")
        })
    });

    bench_run(&mut group, &config);
    group.finish();
}

/// Smoothing: the cloud projected onto its own MLS surface, 200k particles.
fn bench_smoothing(c: &mut Criterion, dir: &Path) {
    let config = job(
        dir,
        Particles::Cloud,
        &out_dir().join(format!("{SMOOTHING_SET}-smoothed.ply")),
    );
    let cloud = io::read_points(&config.cloud).expect("cannot read cloud");
    let surface = MlsSurface::new(&cloud).expect("tree");
    let mut group = group(c, &format!("{SMOOTHING_SET}_smoothing"));
    // Ten samples of one 200k-particle job each: seconds per sample.
    group.measurement_time(Duration::from_secs(20));
    bench_project(&mut group, &surface, &config, &cloud);
    bench_run(&mut group, &config);
    group.finish();
}

fn stages(c: &mut Criterion) {
    let Some(root) = bench_root() else {
        eprintln!("note: ../shared/bench not found beside the repository: nothing to benchmark");
        return;
    };
    for name in SETS {
        let dir = root.join(name);
        if dir.join("manifest.json").is_file() {
            bench_set(c, &dir, name);
        } else {
            eprintln!("note: {} has no manifest.json: skipped", dir.display());
        }
    }
    let dir = root.join(SMOOTHING_SET);
    if dir.join("manifest.json").is_file() {
        bench_smoothing(c, &dir);
    }
}

criterion_group! {
    name = benches;
    // Small samples: the whole file runs in a few minutes on 2 cores.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = stages
}
criterion_main!(benches);
