//! What `mlsproj check`, `mlsproj info` and `mlsproj init` report before
//! any projection runs: the job as it would run, statistics of a cloud and
//! a support rule on a sample of points, and a config written from them.

use std::num::NonZeroUsize;
use std::path::Path;

use nalgebra::Point3;

use crate::cloud::{PointCloud, Precision, finite_bounds, is_finite_point};
use crate::config::{Config, Particles, Support};
use crate::error::{Error, Location, Result};
use crate::neighbours::{NeighbourSearch, Neighbourhood};

use super::seed::SeedPlan;
use super::{read_particles, read_scan, seed_plan, surface_of};

/// Points sampled for the statistics (evenly spaced in input order).
pub const SAMPLE_SIZE: usize = 1000;

/// Minimum, median and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread<T> {
    /// The least value.
    pub min: T,
    /// The middle value (the upper one of an even count).
    pub median: T,
    /// The largest value.
    pub max: T,
}

impl<T: Copy + PartialOrd> Spread<T> {
    /// The spread of `values` (sorted in place); `None` when empty.
    pub fn of(values: &mut [T]) -> Option<Self> {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Some(Spread {
            min: *values.first()?,
            median: values[values.len() / 2],
            max: *values.last()?,
        })
    }
}

/// Indices of at most [`SAMPLE_SIZE`] points spread over `len`.
fn sample(len: usize) -> impl Iterator<Item = usize> {
    (0..len).step_by(sample_step(len))
}

/// True when point `index` of `len` is in the sample of at most
/// [`SAMPLE_SIZE`] spread over them, the one the spacing estimates use: a
/// caller streaming a file in chunks keeps just those.
pub fn in_sample(index: usize, len: usize) -> bool {
    index.is_multiple_of(sample_step(len))
}

fn sample_step(len: usize) -> usize {
    len.div_ceil(SAMPLE_SIZE).max(1)
}

/// The squared distance from each point of the sample (at most
/// [`SAMPLE_SIZE`], [`in_sample`]) to its `k`-th nearest, itself the first.
pub fn kth_distances_squared(
    search: &NeighbourSearch,
    k: NonZeroUsize,
) -> impl Iterator<Item = f64> + '_ {
    sample(search.len()).map(move |i| {
        let nearest = search.nearest_n(&search.local_point(i as u32), k);
        nearest.last().map_or(0.0, |n| n.distance_squared)
    })
}

/// Mean distance from a point to its nearest other point, on a sample.
pub fn mean_spacing(search: &NeighbourSearch) -> f64 {
    let two = NonZeroUsize::new(2).expect("2 is not zero");
    let distances: Vec<f64> = kth_distances_squared(search, two).map(f64::sqrt).collect();
    distances.iter().sum::<f64>() / distances.len().max(1) as f64
}

/// The median distance to the k-th nearest point on a sample: a support
/// radius giving about `k` neighbours.
pub fn radius_for(search: &NeighbourSearch, k: usize) -> Option<f64> {
    let k = NonZeroUsize::new(k.min(search.len()))?;
    let mut distances: Vec<f64> = kth_distances_squared(search, k).map(f64::sqrt).collect();
    Spread::of(&mut distances).map(|s| s.median)
}

/// Neighbour counts and support radii that `support` gives around a
/// `sample` of particles (drawn with [`in_sample`]; non-finite ones skipped).
pub fn neighbourhoods(
    search: &NeighbourSearch,
    sample: &[Point3<f64>],
    support: Support,
    nearest_scale: f64,
) -> Option<(Spread<usize>, Spread<f64>)> {
    let mut neighbourhood = Neighbourhood::default();
    let (mut counts, mut radii): (Vec<usize>, Vec<f64>) = sample
        .iter()
        .filter(|p| is_finite_point(p))
        .map(|p| {
            let h = search.gather(
                &(p - search.origin()),
                support,
                nearest_scale,
                &mut neighbourhood,
            );
            (neighbourhood.len(), h)
        })
        .unzip();
    Some((Spread::of(&mut counts)?, Spread::of(&mut radii)?))
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
    pub neighbour_counts: Option<Spread<usize>>,
    /// Support radii around the same sample.
    pub support_radii: Option<Spread<f64>>,
    /// How normals would be oriented.
    pub orientation: &'static str,
    /// True when the cloud's normals would enter the fits.
    pub normals_in_fit: bool,
    /// For `Seed` particles: the estimated area, spacing and predicted
    /// count (`particles` is then the prediction).
    pub seeding: Option<SeedPlan>,
}

/// Validates inputs and measures the neighbourhoods the job would see,
/// without projecting or writing anything.
pub fn check(config: &Config) -> Result<CheckReport> {
    let (cloud, scanners) = read_scan(config, matches!(config.particles, Particles::Cloud))?;
    let surface = surface_of(config, &cloud, &scanners)?;
    surface.refuse_whole_cloud_support(&config.cloud, config.support, None)?;
    let cloud_points = cloud.len();
    if let Some(plan) = seed_plan(config, &surface)? {
        // The seeds lie on the cloud: its own points sample their
        // neighbourhoods.
        let sample: Vec<Point3<f64>> = (0..cloud_points)
            .filter(|&i| in_sample(i, cloud_points))
            .map(|i| cloud.positions[i])
            .collect();
        let spreads = neighbourhoods(
            surface.search(),
            &sample,
            config.support,
            config.nearest_scale,
        );
        return Ok(CheckReport {
            cloud_points,
            skipped_cloud_points: surface.skipped(),
            duplicate_cloud_points: surface.duplicates(),
            particles: usize::try_from(plan.predicted).unwrap_or(usize::MAX),
            invalid_particles: 0,
            neighbour_counts: spreads.map(|s| s.0),
            support_radii: spreads.map(|s| s.1),
            orientation: surface.orientation_rule(config.orientation),
            normals_in_fit: surface.normals_in_fit(config.normal_weight),
            seeding: Some(plan),
        });
    }
    // The particles in chunks, keeping only the sample the neighbourhoods
    // are measured on, as `run` streams them.
    let reader = read_particles(config, cloud)?;
    let particles = reader.len();
    let mut invalid_particles = 0;
    let (sample, _) = reader.select(|first, chunk| {
        invalid_particles += chunk
            .positions
            .iter()
            .filter(|p| !is_finite_point(p))
            .count();
        (first..first + chunk.len())
            .map(|i| in_sample(i, particles))
            .collect()
    })?;
    let spreads = neighbourhoods(
        surface.search(),
        &sample.positions,
        config.support,
        config.nearest_scale,
    );
    Ok(CheckReport {
        cloud_points,
        skipped_cloud_points: surface.skipped(),
        duplicate_cloud_points: surface.duplicates(),
        particles,
        invalid_particles,
        neighbour_counts: spreads.map(|s| s.0),
        support_radii: spreads.map(|s| s.1),
        orientation: surface.orientation_rule(config.orientation),
        normals_in_fit: surface.normals_in_fit(config.normal_weight),
        seeding: None,
    })
}

/// What `mlsproj info` reports about a point file.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// Points in the file.
    pub points: usize,
    /// Points with a non-finite coordinate.
    pub non_finite: usize,
    /// Bounding box of the finite points.
    pub bounding_box: Option<(Point3<f64>, Point3<f64>)>,
    /// Property names and types, positions first.
    pub attributes: Vec<String>,
    /// Mean nearest-neighbour spacing.
    pub mean_spacing: Option<f64>,
    /// Suggested support radii for about 30, 100 and 300 neighbours.
    pub suggested_radii: Vec<(usize, f64)>,
}

/// Neighbour counts for which `info` suggests a support radius.
pub const SUGGESTED_COUNTS: [usize; 3] = [30, 100, 300];

/// Describes a point set: size, extent, properties, spacing, support.
pub fn describe(cloud: &PointCloud) -> Result<Description> {
    let finite: Vec<Point3<f64>> = cloud
        .positions
        .iter()
        .copied()
        .filter(is_finite_point)
        .collect();
    let type_name = |precision| match precision {
        Precision::Single => "float",
        Precision::Double => "double",
    };
    let mut attributes = vec![format!("x y z ({})", type_name(cloud.precision))];
    if cloud.normals.is_some() {
        attributes.push(format!("nx ny nz ({})", type_name(cloud.normal_precision)));
    }
    if cloud.colours.is_some() {
        attributes.push("red green blue (uchar)".into());
    }
    attributes.extend(
        cloud
            .attributes
            .iter()
            .map(|a| format!("{} ({})", a.name, a.values.kind().ply_name())),
    );
    let mut description = Description {
        points: cloud.len(),
        non_finite: cloud.len() - finite.len(),
        bounding_box: None,
        attributes,
        mean_spacing: None,
        suggested_radii: Vec::new(),
    };
    if finite.len() >= 2 {
        let search = NeighbourSearch::new(&finite)?;
        description.bounding_box = Some(finite_bounds(&finite).expect("two finite points"));
        description.mean_spacing = Some(mean_spacing(&search));
        description.suggested_radii = SUGGESTED_COUNTS
            .iter()
            .filter(|&&k| k <= finite.len())
            .filter_map(|&k| radius_for(&search, k).map(|r| (k, r)))
            .collect();
    }
    Ok(description)
}

/// The commented config that `mlsproj init` writes for `cloud`: the
/// particles from `particles` (or the cloud's own points, smoothing it),
/// the output beside the cloud (`NAME-mls.ply`), the support radius that
/// gives the median cloud point about 100 neighbours (as `info` suggests),
/// and every other field at its default with its comment, as in
/// `config/default.ron`. Paths are written relative to `config_folder`
/// when they lie inside it, absolute otherwise.
pub fn init_config(cloud: &Path, particles: Option<&Path>, config_folder: &Path) -> Result<String> {
    let points = crate::io::read_points(cloud)?;
    let description = describe(&points)?;
    if description.points == description.non_finite {
        return Err(Error::format(
            cloud,
            Location::File,
            "the cloud has no point with finite coordinates",
        ));
    }
    let support = description
        .suggested_radii
        .iter()
        .rev()
        .find(|(k, _)| *k <= INIT_NEIGHBOURS)
        .map_or_else(
            || "Nearest(3)".to_owned(),
            |(_, radius)| format!("Radius({})", significant(*radius)),
        );
    let stem = cloud
        .file_stem()
        .map_or_else(|| "cloud".into(), |s| s.to_string_lossy().into_owned());
    let output = cloud.with_file_name(format!("{stem}-mls.ply"));
    let quoted = |path: &Path| format!("{:?}", relative_to(path, config_folder).to_string_lossy());
    let particles = match particles {
        Some(path) => format!("File({})", quoted(path)),
        None => "Cloud".to_owned(),
    };
    let radii: Vec<String> = description
        .suggested_radii
        .iter()
        .map(|(k, radius)| format!("Radius({}) for about {k}", significant(*radius)))
        .collect();
    let mut text = format!(
        "// mlsproj job for {}, written by `mlsproj init`; run it with\n\
         // `mlsproj run` on this file. Paths are relative to this file.\n",
        cloud.display()
    );
    for line in DEFAULT_CONFIG
        .lines()
        .skip_while(|line| line.starts_with("//"))
    {
        let field = line.trim_start().split(':').next().unwrap_or_default();
        let replaced = match field {
            "cloud" => format!("    cloud: {},", quoted(cloud)),
            "particles" => format!("    particles: {particles},"),
            "output" => format!("    output: {},", quoted(&output)),
            "support" => format!(
                "    // Suggested from the cloud's spacing: {}.\n    support: {support},",
                radii.join(", ")
            ),
            _ => line.to_owned(),
        };
        text.push_str(&replaced);
        text.push('\n');
    }
    Ok(text)
}

/// The neighbour count `init` aims the support radius at: enough to
/// average a scan's noise, few enough to keep its features.
const INIT_NEIGHBOURS: usize = 100;

/// The config every field of which `init` copies, comments included.
const DEFAULT_CONFIG: &str = include_str!("../../config/default.ron");

/// `value` to four significant digits: enough for a support radius.
fn significant(value: f64) -> String {
    format!("{:.3e}", value)
        .parse::<f64>()
        .map_or_else(|_| value.to_string(), |v| format!("{v:?}"))
}

/// `path` relative to `folder` when it lies inside it, else absolute
/// (or as given, when it cannot be resolved).
fn relative_to(path: &Path, folder: &Path) -> std::path::PathBuf {
    let absolute =
        |p: &Path| std::path::absolute(p).map(|p| p.components().collect::<std::path::PathBuf>());
    match (absolute(path), absolute(folder)) {
        (Ok(path), Ok(folder)) => match path.strip_prefix(&folder) {
            Ok(inside) => inside.to_path_buf(),
            Err(_) => path,
        },
        _ => path.to_path_buf(),
    }
}
