//! Normals for clouds that come without them (or whose normals the user
//! distrusts): PCA of each point's k nearest ([`estimate`]), then signs
//! consistent over each connected part of the cloud ([`orient`]).
//!
//! Estimated and oriented, they serve exactly as a file's normals do: they
//! enter the fit under `normal_weight` and give every projected
//! particle its sign (see [`crate::surface::MlsSurface`]).

pub mod estimate;
pub mod orient;
mod thin;

use std::num::NonZeroUsize;

use nalgebra::{Point3, Vector3};

pub use estimate::{Estimate, estimate};
pub use orient::{SignRule, orient};

use crate::cloud::{CentroidSum, is_finite_point};
use crate::config::{Orientation, Support};
use crate::error::Result;
use crate::neighbours::NeighbourSearch;

/// Neighbours of the PCA by default: the usual choice of scanner software,
/// CGAL's and Open3D's examples and the truth sets' `*_pca` normals; enough
/// to average σ = 0.2% noise to 11-17°, few enough not to round off the
/// armadillo's fingers.
pub const DEFAULT_NEIGHBOURS: usize = 30;

/// The sign rule that `orientation` asks of a cloud's normals, in the
/// coordinates of `search` (relative to its origin). `centroid` is the
/// cloud's centroid there. `Auto` orients consistently: it is asked of
/// normals only when they are estimated (a file's own are kept as they
/// are).
pub fn sign_rule(
    orientation: Orientation,
    search: &NeighbourSearch,
    centroid: Vector3<f64>,
) -> SignRule {
    let local = |x: f64, y: f64, z: f64| Point3::new(x, y, z) - search.origin();
    match orientation {
        Orientation::Auto | Orientation::Consistent => SignRule::Consistent {
            viewpoint: None,
            centroid,
        },
        Orientation::ConsistentToward(x, y, z) => SignRule::Consistent {
            viewpoint: Some(local(x, y, z)),
            centroid,
        },
        Orientation::AwayFromCentroid => SignRule::AwayFrom(centroid),
        Orientation::Viewpoint(x, y, z) => SignRule::Toward(local(x, y, z)),
        Orientation::Up => SignRule::Up,
    }
}

/// Estimated normals of `positions` from their `neighbours` nearest,
/// oriented by `orientation`, indexed like `positions`: what a `normals`
/// command writes, or what another tool (Poisson reconstruction) needs.
/// `support` is the job's whose run they must equal to the bit (its
/// surface's index has cells sized for it), else `None`.
///
/// A point with a NaN or infinite coordinate gets a zero normal and takes
/// no part; so does a point whose neighbourhood spans no plane (collinear
/// points, a lone point). Exact duplicates are merged, as the surface of a
/// `run` merges them (each copy gets the normal of the one kept): the
/// normals are those `run` projects with. Errors only when `neighbours` is
/// 0.
pub fn estimate_oriented(
    positions: &[Point3<f64>],
    neighbours: usize,
    orientation: Orientation,
    support: Option<Support>,
) -> Result<Vec<Vector3<f32>>> {
    estimate_oriented_about(
        positions,
        neighbours,
        orientation,
        CentroidSum::of(positions).centroid(),
        support,
    )
}

/// [`estimate_oriented`] for part of a cloud whose whole has its centroid
/// at `centroid` (a tile's slab and halo): the rules that look at the
/// centroid (`AwayFromCentroid`, and a vertical sheet's sign under
/// `Consistent`) then sign the part as they sign the whole. `support` is
/// the job's (as a run's surface is searched with), so that the index is
/// the run's own.
pub fn estimate_oriented_about(
    positions: &[Point3<f64>],
    neighbours: usize,
    orientation: Orientation,
    centroid: Point3<f64>,
    support: Option<Support>,
) -> Result<Vec<Vector3<f32>>> {
    let Some(k) = NonZeroUsize::new(neighbours) else {
        return Err(crate::Error::Invalid(
            "normals need at least one neighbour".into(),
        ));
    };
    // The surface's own search (`MlsSurface`): the finite points, exact
    // duplicates merged, numbered in the grid's cell order, so that a
    // `run` projects with these very normals.
    let mut out = vec![Vector3::zeros(); positions.len()];
    if !positions.iter().any(is_finite_point) {
        return Ok(out);
    }
    let (search, kept, finite_count) = NeighbourSearch::distinct_finite(positions, support)?;
    let centroid = centroid - search.origin();
    let Estimate {
        mut normals,
        variation,
        graph,
    } = estimate(&search, k);
    orient(
        &search,
        &graph,
        &variation,
        &mut normals,
        sign_rule(orientation, &search, centroid),
        true,
    );
    for (&i, normal) in kept.iter().zip(&normals) {
        out[i as usize] = *normal;
    }
    // A duplicate takes the normal of the copy the search kept.
    if kept.len() < finite_count {
        let mut merged = vec![true; positions.len()];
        for &i in &kept {
            merged[i as usize] = false;
        }
        for i in 0..positions.len() as u32 {
            if merged[i as usize] && is_finite_point(&positions[i as usize]) {
                let (twin, _) = search.nearest(&(positions[i as usize] - search.origin()));
                out[i as usize] = normals[twin as usize];
            }
        }
    }
    Ok(out)
}

/// `normal` signed to face along `towards` (from its point to the scanner
/// that saw it): a scanner sees only the side of a surface that faces it,
/// whatever the shape, so this sign is right where a consistent
/// orientation can only guess (open scenes, thin parts).
pub fn facing(normal: Vector3<f32>, towards: &Vector3<f64>) -> Vector3<f32> {
    if normal.cast::<f64>().dot(towards) < 0.0 {
        -normal
    } else {
        normal
    }
}

/// The scanner that saw each point of `cloud`, when it records one: its
/// `scan_index` attribute (u16, as E57 files give it) into `scanners`.
/// `None` when the cloud has no such attribute, or a point's index names
/// no scanner with finite coordinates.
pub fn scanner_of_each<'a>(
    cloud: &'a crate::PointCloud,
    scanners: &'a [Point3<f64>],
) -> Option<Vec<&'a Point3<f64>>> {
    let crate::Column::U16(scan) = &cloud
        .attributes
        .iter()
        .find(|a| a.name == "scan_index")?
        .values
    else {
        return None;
    };
    scan.iter()
        .map(|&i| {
            scanners
                .get(usize::from(i))
                .filter(|s| s.iter().all(|c| c.is_finite()))
        })
        .collect()
}
