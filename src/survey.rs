//! Statistics of a cloud and a support rule on a sample of points: what
//! `mlsproj info` and `mlsproj check` report before any projection runs.

use std::num::NonZeroUsize;

use nalgebra::Point3;

use crate::cloud::{finite_bounds, is_finite_point};
use crate::config::Support;
use crate::neighbours::{NeighbourSearch, Neighbourhood};

/// Points sampled for the statistics (evenly spaced in input order).
pub const SAMPLE_SIZE: usize = 1000;

/// Minimum, median and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread<T> {
    pub min: T,
    pub median: T,
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

/// Mean distance from a point to its nearest other point, on a sample.
pub fn mean_spacing(search: &NeighbourSearch) -> f64 {
    let two = NonZeroUsize::new(2).expect("2 is not zero");
    let distances: Vec<f64> = sample(search.len())
        .map(|i| {
            let nearest = search.nearest_n(&search.local_point(i as u32), two);
            nearest.last().map_or(0.0, |n| n.distance_squared.sqrt())
        })
        .collect();
    distances.iter().sum::<f64>() / distances.len().max(1) as f64
}

/// The median distance to the k-th nearest point on a sample: a support
/// radius giving about `k` neighbours.
pub fn radius_for(search: &NeighbourSearch, k: usize) -> Option<f64> {
    let k = NonZeroUsize::new(k.min(search.len()))?;
    let mut distances: Vec<f64> = sample(search.len())
        .map(|i| {
            let nearest = search.nearest_n(&search.local_point(i as u32), k);
            nearest.last().map_or(0.0, |n| n.distance_squared.sqrt())
        })
        .collect();
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
    let mut hood = Neighbourhood::default();
    let (mut counts, mut radii): (Vec<usize>, Vec<f64>) = sample
        .iter()
        .filter(|p| is_finite_point(p))
        .map(|p| {
            let h = search.gather(&(p - search.origin()), support, nearest_scale, &mut hood);
            (hood.neighbours.len(), h)
        })
        .unzip();
    Some((Spread::of(&mut counts)?, Spread::of(&mut radii)?))
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
pub fn describe(cloud: &crate::cloud::PointCloud) -> crate::error::Result<Description> {
    let finite: Vec<Point3<f64>> = cloud
        .positions
        .iter()
        .copied()
        .filter(is_finite_point)
        .collect();
    let precision = match cloud.precision {
        crate::cloud::Precision::Single => "float",
        crate::cloud::Precision::Double => "double",
    };
    let mut attributes = vec![format!("x y z ({precision})")];
    if cloud.normals.is_some() {
        attributes.push("nx ny nz (float)".into());
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
