//! Unsigned normals by PCA of each point's k nearest, and the neighbour
//! graph that the orientation propagates over, in one parallel pass.

use std::num::NonZeroUsize;

use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;

use crate::config::Support;
use crate::fit::eigen::principal_axes;
use crate::neighbours::{NeighbourSearch, Neighbourhood};

/// Neighbours of each point in the orientation graph: the nearest few of
/// its PCA neighbourhood. Fewer edges than the PCA's k keep the graph off
/// the far face of a thin part (its points come last among the k) and the
/// sort of the edges short. Measured on the truth sets (wrong signs,
/// bunny / armadillo): 6 gives 0.0135% / 0.206%, 10 0.012% / 0.194%, 20
/// 0.0105% / 0.64% (more edges reach across the armadillo's fingers).
pub const GRAPH_NEIGHBOURS: usize = 10;

/// A neighbourhood whose middle eigenvalue is below this fraction of its
/// largest spans no plane (collinear points, or a strip a thousand times
/// longer than wide): its normal is undefined. Far above the error of the
/// closed-form eigenvalues at a double root (about 1e-8 of the largest).
const FLATNESS_FLOOR: f64 = 1e-6;

/// Unsigned unit normals, how far each neighbourhood is from a plane, and
/// the k-nearest graph of a point set.
pub struct Estimate {
    /// One per point of the search: the eigenvector of the smallest
    /// eigenvalue of the covariance of its k nearest (itself included),
    /// with an arbitrary sign; zero where the neighbourhood spans no plane
    /// (a lone point, collinear points).
    pub normals: Vec<Vector3<f32>>,
    /// One per point: the surface variation λ0 / (λ0 + λ1 + λ2) of its
    /// neighbourhood (Pauly et al. 2002), 0 on a plane, ⅓ for points
    /// spread alike in every direction: high where the PCA normal is least
    /// trustworthy (two faces of a thin part, a sharp edge, noise larger
    /// than the spacing). ⅓ where the normal is zero.
    pub variation: Vec<f32>,
    /// Row `i` holds point i's nearest graph neighbours (itself excluded),
    /// `GRAPH_NEIGHBOURS` slots, padded with `NO_NEIGHBOUR` when the cloud
    /// has fewer points.
    pub graph: Vec<[u32; GRAPH_NEIGHBOURS]>,
}

/// Padding of a graph row.
pub const NO_NEIGHBOUR: u32 = u32::MAX;

/// Scratch of one thread: the neighbourhood buffers and the room to select
/// the graph neighbours in. Reused for every point.
#[derive(Default)]
struct Scratch {
    hood: Neighbourhood,
    nearest: Vec<(f64, u32)>,
}

/// Estimates the normal and the graph row of every point of `search`, in
/// parallel, from its `k` nearest (clamped to the cloud's size).
pub fn estimate(search: &NeighbourSearch, k: NonZeroUsize) -> Estimate {
    // Unzipped as they come: a vector of rows, then three, would hold
    // every row twice (1.1 GB at 20M points).
    let (normals, (variation, graph)) = (0..search.len() as u32)
        .into_par_iter()
        // Consecutive indices are neighbours in Morton order: each gather
        // starts from the radius of the one before (see `gather`).
        .with_min_len(256)
        .map_init(Scratch::default, |scratch, index| {
            let (normal, variation, row) = point_estimate(search, k, index, scratch);
            (normal, (variation, row))
        })
        .unzip();
    Estimate {
        normals,
        variation,
        graph,
    }
}

/// The normal, the surface variation and the graph row of one point.
fn point_estimate(
    search: &NeighbourSearch,
    k: NonZeroUsize,
    index: u32,
    scratch: &mut Scratch,
) -> (Vector3<f32>, f32, [u32; GRAPH_NEIGHBOURS]) {
    let centre = search.local_point(index);
    search.gather(&centre, Support::Nearest(k.get()), 1.0, &mut scratch.hood);
    let neighbours = &scratch.hood;

    let count = neighbours.len() as f64;
    let mean = neighbours
        .iter()
        .fold(Vector3::zeros(), |sum, n| sum + n.offset)
        / count.max(1.0);
    let mut covariance = Matrix3::zeros();
    for neighbour in neighbours.iter() {
        let d = neighbour.offset - mean;
        covariance += d * d.transpose();
    }
    let axes = principal_axes(&covariance);
    let spans_a_plane = axes.eigenvalues[1] > FLATNESS_FLOOR * axes.eigenvalues[2];
    let total: f64 = axes.eigenvalues.iter().sum();
    let (normal, variation) = if spans_a_plane && axes.normal.iter().all(|c| c.is_finite()) {
        (
            axes.normal.cast::<f32>(),
            // The closed-form smallest eigenvalue of a flat patch may
            // land a few ulp below zero; a variation is never negative.
            (axes.eigenvalues[0] / total).max(0.0) as f32,
        )
    } else {
        (Vector3::zeros(), 1.0 / 3.0)
    };

    scratch.nearest.clear();
    scratch.nearest.extend(
        neighbours
            .iter()
            .filter(|n| n.index != index)
            .map(|n| (n.distance_squared, n.index)),
    );
    let keep = GRAPH_NEIGHBOURS.min(scratch.nearest.len());
    if keep > 0 && keep < scratch.nearest.len() {
        scratch
            .nearest
            .select_nth_unstable_by(keep - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
    let mut row = [NO_NEIGHBOUR; GRAPH_NEIGHBOURS];
    for (slot, &(_, neighbour)) in row.iter_mut().zip(&scratch.nearest[..keep]) {
        *slot = neighbour;
    }
    (normal, variation, row)
}
