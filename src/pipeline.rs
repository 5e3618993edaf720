//! The whole job: read → build the search → project every particle in
//! parallel → write. The one place that strings the stages together.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nalgebra::Point3;
use rayon::prelude::*;

use crate::cloud::{Attribute, Column, PointCloud, Precision};
use crate::config::{Config, Particles};
use crate::error::{Error, Result};
use crate::io;
use crate::order::morton_order;
use crate::projection::{Method, Projected, Projector, Scratch};
use crate::status::Status;
use crate::surface::MlsSurface;

/// Wall-clock time of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Reading the cloud and the particles.
    pub load: Duration,
    /// Building the neighbour search.
    pub tree: Duration,
    /// Fitting and projecting every particle.
    pub project: Duration,
    /// Writing the output.
    pub write: Duration,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Cloud points read.
    pub cloud_points: usize,
    /// Cloud points left out for a non-finite coordinate.
    pub skipped_cloud_points: usize,
    /// Cloud points merged into another at the same position.
    pub duplicate_cloud_points: usize,
    /// Particles projected (every one is written).
    pub particles: usize,
    /// Particles per status, indexed by status code.
    pub status_counts: [usize; Status::ALL.len()],
    /// How normals were oriented.
    pub orientation: &'static str,
    /// Stage times.
    pub timings: Timings,
    /// The file written.
    pub output: PathBuf,
}

/// Projects every particle, in parallel, and returns the results in input
/// order. Particles are visited in Morton order for cache locality; each
/// worker thread owns one [`Scratch`].
pub fn project_all(projector: &Projector, particles: &[Point3<f64>]) -> Vec<Projected> {
    let order = morton_order(particles);
    let visited: Vec<Projected> = order
        .par_iter()
        .map_init(Scratch::default, |scratch, &i| {
            projector.project(&particles[i as usize], scratch)
        })
        .collect();
    let mut rank = vec![0u32; particles.len()];
    for (position, &i) in order.iter().enumerate() {
        rank[i as usize] = position as u32;
    }
    rank.par_iter().map(|&r| visited[r as usize]).collect()
}

/// Reads the particle set of `config` (or reuses the cloud for smoothing).
fn read_particles(config: &Config, cloud: &PointCloud) -> Result<PointCloud> {
    match &config.particles {
        Particles::File(path) => io::read_points(path),
        Particles::Cloud => Ok(cloud.clone()),
    }
}

/// Reads the cloud, refusing an empty one.
pub fn read_cloud(config: &Config) -> Result<PointCloud> {
    let cloud = io::read_points(&config.cloud)?;
    if cloud.is_empty() {
        return Err(Error::format(
            &config.cloud,
            crate::error::Location::File,
            "the cloud has no points",
        ));
    }
    Ok(cloud)
}

/// Runs a whole job as `config` describes it.
pub fn run(config: &Config) -> Result<Summary> {
    let pool = thread_pool(config.threads)?;
    pool.install(|| run_in_pool(config))
}

fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start {threads} worker threads: {e}")))
}

fn run_in_pool(config: &Config) -> Result<Summary> {
    let started = Instant::now();
    let cloud = read_cloud(config)?;
    let particles = read_particles(config, &cloud)?;
    let load = started.elapsed();

    let started = Instant::now();
    let surface = MlsSurface::new(&cloud)?;
    let tree = started.elapsed();

    let started = Instant::now();
    let projector = surface.projector(Method::from(config), config.orientation, config.colours);
    let projected = project_all(&projector, &particles.positions);
    let project = started.elapsed();

    let started = Instant::now();
    let average_colours = config.colours && surface.has_colours() && particles.colours.is_none();
    let precision =
        if cloud.precision == Precision::Double || particles.precision == Precision::Double {
            Precision::Double
        } else {
            Precision::Single
        };
    let columns = output_columns(
        &particles,
        &projected,
        precision,
        average_colours,
        config.attributes,
    );
    let comments = vec![format!("mlsproj {}", env!("CARGO_PKG_VERSION"))];
    io::write_ply(&config.output, &columns, config.encoding.into(), &comments)?;
    let write = started.elapsed();

    let mut status_counts = [0usize; Status::ALL.len()];
    for p in &projected {
        status_counts[p.status.code() as usize] += 1;
    }
    Ok(Summary {
        cloud_points: cloud.len(),
        skipped_cloud_points: surface.skipped(),
        duplicate_cloud_points: surface.duplicates(),
        particles: projected.len(),
        status_counts,
        orientation: surface.orientation_rule(config.orientation),
        timings: Timings {
            load,
            tree,
            project,
            write,
        },
        output: config.output.clone(),
    })
}

/// Names of the properties mlsproj computes (colours included, whether or
/// not they are written, so that an attribute's output name does not depend
/// on the cloud); a particle attribute with one of these names is renamed
/// (see [`output_columns`]).
const COMPUTED: [&str; 16] = [
    "x",
    "y",
    "z",
    "nx",
    "ny",
    "nz",
    "mean_curvature",
    "gaussian_curvature",
    "residual",
    "neighbours",
    "steps",
    "status",
    "index",
    "red",
    "green",
    "blue",
];

/// The output's vertex properties, in order: position, normal, curvatures,
/// residual, neighbours, steps, status, index, colours (the particles' own,
/// or averaged from the cloud when `average_colours`), then, when
/// `attributes` is set, the particles' other attributes with their types.
///
/// An attribute named like a computed property is renamed `input_<name>`,
/// prefixed again while that clashes with another attribute (a float `red`
/// beside an `input_red` becomes `input_input_red`), so that every name
/// written is unique and nothing is dropped.
pub fn output_columns(
    particles: &PointCloud,
    projected: &[Projected],
    precision: Precision,
    average_colours: bool,
    attributes: bool,
) -> Vec<Attribute> {
    let column = |name: &str, values: Column| Attribute {
        name: name.to_owned(),
        values,
    };
    let float = |f: &dyn Fn(&Projected) -> f64| {
        Column::F32(projected.iter().map(|p| f(p) as f32).collect())
    };
    let mut columns = Vec::with_capacity(16 + particles.attributes.len());
    for axis in 0..3 {
        let values = match precision {
            Precision::Double => Column::F64(projected.iter().map(|p| p.position[axis]).collect()),
            Precision::Single => float(&|p| p.position[axis]),
        };
        columns.push(column(["x", "y", "z"][axis], values));
    }
    for (axis, name) in ["nx", "ny", "nz"].into_iter().enumerate() {
        columns.push(column(name, float(&|p| p.normal[axis])));
    }
    columns.push(column("mean_curvature", float(&|p| p.mean_curvature)));
    columns.push(column(
        "gaussian_curvature",
        float(&|p| p.gaussian_curvature),
    ));
    columns.push(column("residual", float(&|p| p.residual)));
    columns.push(column(
        "neighbours",
        Column::U32(projected.iter().map(|p| p.neighbour_count).collect()),
    ));
    columns.push(column(
        "steps",
        Column::U8(projected.iter().map(|p| p.steps).collect()),
    ));
    columns.push(column(
        "status",
        Column::U8(projected.iter().map(|p| p.status.code()).collect()),
    ));
    columns.push(column(
        "index",
        Column::U32((0..projected.len() as u32).collect()),
    ));
    let colours: Option<Vec<[u8; 3]>> = match (&particles.colours, average_colours) {
        (Some(own), _) => Some(own.clone()),
        (None, true) => Some(projected.iter().map(|p| p.colour).collect()),
        (None, false) => None,
    };
    if let Some(colours) = colours {
        for (channel, name) in ["red", "green", "blue"].into_iter().enumerate() {
            columns.push(column(
                name,
                Column::U8(colours.iter().map(|c| c[channel]).collect()),
            ));
        }
    }
    let passed = if attributes {
        &particles.attributes[..]
    } else {
        &[]
    };
    let taken = |name: &str, columns: &[Attribute]| {
        COMPUTED.contains(&name)
            || passed.iter().any(|a| a.name == name)
            || columns.iter().any(|c| c.name == name)
    };
    for attribute in passed {
        let mut name = attribute.name.clone();
        if COMPUTED.contains(&name.as_str()) {
            while taken(&name, &columns) {
                name.insert_str(0, "input_");
            }
        }
        columns.push(Attribute {
            name,
            values: attribute.values.clone(),
        });
    }
    columns
}

/// What `mlsproj check` reports: the job as it would run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Cloud points read.
    pub cloud_points: usize,
    /// Cloud points that would be left out (non-finite).
    pub skipped_cloud_points: usize,
    /// Cloud points merged into another at the same position.
    pub duplicate_cloud_points: usize,
    /// Particles that would be projected.
    pub particles: usize,
    /// Particles that are not finite (would get `invalid_input`).
    pub invalid_particles: usize,
    /// Neighbour counts around a sample of particles.
    pub neighbour_counts: Option<crate::survey::Spread<usize>>,
    /// Support radii around the same sample.
    pub support_radii: Option<crate::survey::Spread<f64>>,
    /// How normals would be oriented.
    pub orientation: &'static str,
}

/// Validates inputs and measures the neighbourhoods the job would see,
/// without projecting or writing anything.
pub fn check(config: &Config) -> Result<CheckReport> {
    let cloud = read_cloud(config)?;
    let particles = read_particles(config, &cloud)?;
    let surface = MlsSurface::new(&cloud)?;
    let invalid_particles = particles
        .positions
        .iter()
        .filter(|p| !p.iter().all(|c| c.is_finite()))
        .count();
    let spreads = crate::survey::neighbourhoods(
        surface.search(),
        &particles.positions,
        config.support,
        config.nearest_scale,
    );
    Ok(CheckReport {
        cloud_points: cloud.len(),
        skipped_cloud_points: surface.skipped(),
        duplicate_cloud_points: surface.duplicates(),
        particles: particles.len(),
        invalid_particles,
        neighbour_counts: spreads.map(|s| s.0),
        support_radii: spreads.map(|s| s.1),
        orientation: surface.orientation_rule(config.orientation),
    })
}
