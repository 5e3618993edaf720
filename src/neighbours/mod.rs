//! Neighbour search over the cloud: one small type, built once, queried by
//! radius, by count, or both. The rest of the crate does not know which tree
//! is behind it.
//!
//! Points are stored relative to an `origin` (the centre of the cloud's
//! bounding box): scanned clouds sit at 10⁵..10⁶ m, and every later step
//! works with small offsets `p − q`, never with raw coordinates.

use std::num::NonZeroUsize;

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::finite_bounds;
use crate::config::Support;
use crate::error::{Error, Result};

/// One neighbour of a query centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Index into the point slice the search was built from.
    pub index: u32,
    /// `p − centre`, in the cloud's units.
    pub offset: Vector3<f64>,
    /// `|p − centre|²`.
    pub distance_squared: f64,
}

/// A k-d tree over a point set, with positions kept relative to `origin`.
pub struct NeighbourSearch {
    tree: ImmutableKdTree<f64, 3>,
    local: Vec<[f64; 3]>,
    origin: Point3<f64>,
}

impl NeighbourSearch {
    /// Builds the tree. `positions` must be finite (the pipeline drops
    /// non-finite cloud points before this) and not empty.
    pub fn new(positions: &[Point3<f64>]) -> Result<Self> {
        let Some((lo, hi)) = finite_bounds(positions) else {
            return Err(Error::Invalid("cannot search an empty cloud".into()));
        };
        let origin = nalgebra::center(&lo, &hi);
        let local: Vec<[f64; 3]> = positions.par_iter().map(|p| (p - origin).into()).collect();
        let tree = ImmutableKdTree::builder()
            .with_parallel_construction_threshold(PARALLEL_BUILD_THRESHOLD)
            .build_from_slice(&local)
            .map_err(|e| Error::Invalid(format!("k-d tree construction failed: {e:?}")))?;
        Ok(NeighbourSearch {
            tree,
            local,
            origin,
        })
    }

    /// The centre of the cloud's bounding box, subtracted from every point.
    pub fn origin(&self) -> Point3<f64> {
        self.origin
    }

    /// Number of points in the tree.
    pub fn len(&self) -> usize {
        self.local.len()
    }

    /// True when the tree holds no point (never, once built).
    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }

    /// A point of the tree, relative to `origin`.
    pub fn local_point(&self, index: u32) -> Vector3<f64> {
        Vector3::from(self.local[index as usize])
    }

    /// The nearest point to `centre` (relative to `origin`): its index and
    /// squared distance.
    pub fn nearest(&self, centre: &Vector3<f64>) -> (u32, f64) {
        let found = self
            .tree
            .query(&(*centre).into())
            .nearest_one::<SquaredEuclidean<f64>>()
            .execute();
        (found.item, found.distance)
    }

    /// The `k` nearest points to `centre` (relative to `origin`), nearest
    /// first.
    pub fn nearest_n(&self, centre: &Vector3<f64>, k: NonZeroUsize) -> Vec<Neighbour> {
        let query: [f64; 3] = (*centre).into();
        self.tree
            .query(&query)
            .nearest_n::<SquaredEuclidean<f64>>(k)
            .execute()
            .into_iter()
            .map(|found| self.neighbour(centre, found.item, found.distance))
            .collect()
    }

    fn neighbour(&self, centre: &Vector3<f64>, index: u32, distance_squared: f64) -> Neighbour {
        Neighbour {
            index,
            offset: self.local_point(index) - centre,
            distance_squared,
        }
    }

    /// Fills `hood` with the neighbourhood of `centre` (relative to
    /// `origin`) under `support`, and returns the support radius `h` to
    /// weight it with. `nearest_scale` widens `h` for `Support::Nearest`.
    ///
    /// For `Nearest(k)` the k nearest are found by radius queries, starting
    /// from the radius of the last `Nearest` neighbourhood gathered with
    /// `hood` (usually a particle close by when particles come in Morton
    /// order) and growing until k are inside,
    /// then keeping the k closest: much cheaper than a sorted k-nearest
    /// query, with the same result.
    pub fn gather(
        &self,
        centre: &Vector3<f64>,
        support: Support,
        nearest_scale: f64,
        hood: &mut Neighbourhood,
    ) -> f64 {
        match support {
            Support::Radius(radius) => {
                self.within(centre, radius * radius, &mut hood.neighbours);
                radius
            }
            Support::Nearest(k) => {
                let k = k.min(self.len());
                let previous = hood.nearest_radius_squared;
                // A quarter more area than the last neighbourhood, and twice
                // the area on a miss: measured on sphere_large (k = 30), 7%
                // faster than half more and four times.
                let mut radius_squared = if previous > 0.0 {
                    previous * 1.25
                } else {
                    // No hint: one exact query sets the scale.
                    let nearest = NonZeroUsize::new(k).map(|k| self.nearest_n(centre, k));
                    nearest
                        .and_then(|n| n.last().map(|n| n.distance_squared))
                        .unwrap_or(0.0)
                        * (1.0 + 1e-9)
                        + f64::MIN_POSITIVE
                };
                loop {
                    self.within(centre, radius_squared, &mut hood.neighbours);
                    if hood.neighbours.len() >= k {
                        break;
                    }
                    radius_squared *= 2.0;
                }
                hood.keep_nearest(k);
                hood.nearest_radius_squared = hood
                    .neighbours
                    .iter()
                    .map(|n| n.distance_squared)
                    .fold(0.0, f64::max);
                hood.nearest_radius_squared.sqrt() * nearest_scale
            }
            Support::RadiusNearest { radius, k } => {
                self.within(centre, radius * radius, &mut hood.neighbours);
                hood.keep_nearest(k);
                radius
            }
        }
    }

    /// Every point within `sqrt(radius_squared)` of `centre`, into `out`.
    fn within(&self, centre: &Vector3<f64>, radius_squared: f64, out: &mut Vec<Neighbour>) {
        out.clear();
        self.tree
            .query(&(*centre).into())
            .within::<SquaredEuclidean<f64>>(radius_squared)
            .unsorted()
            .with_points()
            .visit(|found| {
                out.push(Neighbour {
                    index: found.item,
                    offset: Vector3::from(found.point) - centre,
                    distance_squared: found.distance,
                })
            });
    }
}

/// A neighbourhood, and the buffers that gathering it needs: one per
/// thread, reused for every query (no allocation per query once grown).
#[derive(Debug, Default)]
pub struct Neighbourhood {
    /// The neighbours of the last gather.
    pub neighbours: Vec<Neighbour>,
    /// Room to select the k-th distance in.
    distances: Vec<f64>,
    /// Squared radius of the last `Nearest(k)` neighbourhood (0 before
    /// one): where the next search starts.
    nearest_radius_squared: f64,
}

impl Neighbourhood {
    /// Keeps the `k` nearest neighbours, in the order they came.
    ///
    /// The order matters: the fit sums over the neighbours in this order,
    /// and the tree hands out the points of a query in one order whatever
    /// its radius (its traversal order depends on the centre only).
    /// Keeping that order, rather than the order a selection leaves behind,
    /// makes the result independent of the radius the search started from,
    /// hence of the particle a thread did before, hence of the number of
    /// threads.
    fn keep_nearest(&mut self, k: usize) {
        if self.neighbours.len() <= k || k == 0 {
            return;
        }
        self.distances.clear();
        self.distances
            .extend(self.neighbours.iter().map(|n| n.distance_squared));
        let kth = *self
            .distances
            .select_nth_unstable_by(k - 1, f64::total_cmp)
            .1;
        let closer = self
            .neighbours
            .iter()
            .filter(|n| n.distance_squared < kth)
            .count();
        // Ties at the k-th distance: the first ones in order fill up to k.
        let mut ties = k - closer;
        self.neighbours.retain(|n| {
            n.distance_squared < kth
                || (n.distance_squared == kth && ties > 0 && {
                    ties -= 1;
                    true
                })
        });
    }
}

/// Subtrees of at least this many points are built in parallel. Kiddo's
/// default (2¹⁸) builds a cloud of 200k points on one thread.
const PARALLEL_BUILD_THRESHOLD: usize = 1 << 15;
