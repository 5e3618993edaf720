//! A cloud made ready for projection: its finite points in a neighbour
//! search, with the normals and colours that go with them.

use std::path::Path;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::{CentroidSum, PointCloud, Precision, finite_bounds, values_precision};
use crate::config::{Orientation, Support};
use crate::error::{Error, Location, Result};
use crate::neighbours::NeighbourSearch;
use crate::order::{NON_FINITE_KEY, morton_keys};
use crate::projection::{Method, NormalSign, Projector, slope_normals};

/// The MLS surface of a cloud, ready to project particles onto.
pub struct MlsSurface {
    search: NeighbourSearch,
    normals: Option<Vec<Vector3<f32>>>,
    colours: Option<Vec<[u8; 3]>>,
    centroid: Vector3<f64>,
    skipped: usize,
    duplicates: usize,
    values_precision: Precision,
    diagonal: f64,
}

impl MlsSurface {
    /// Builds the search over the cloud's finite points; points with a NaN
    /// or infinite coordinate are left out and counted in [`Self::skipped`].
    /// Errors when no finite point remains.
    ///
    /// The points are stored in Morton order, so that the normals and
    /// colours of one neighbourhood sit together in memory.
    ///
    /// Normals are made unit length; a zero or non-finite one becomes zero
    /// (it then says nothing to the fit or the orientation).
    ///
    /// Exact duplicates of a point are merged into it (the first one's
    /// normal and colour kept) and counted in [`Self::duplicates`]: a stack
    /// of coincident points adds no shape, and with a `Nearest(k)` support
    /// it would fill the k nearest with one position.
    pub fn new(cloud: &PointCloud) -> Result<Self> {
        let (finite, duplicates) = distinct_finite(cloud);
        let skipped = cloud.len() - finite.len() - duplicates;
        let positions = pick(&cloud.positions, &finite);
        let normals = cloud
            .normals
            .as_deref()
            .map(|n| pick(n, &finite).into_iter().map(unit_or_zero).collect());
        let colours = cloud.colours.as_deref().map(|c| pick(c, &finite));
        let search = NeighbourSearch::new(&positions)?;
        let (lo, hi) = finite_bounds(&positions).expect("the search has a point");
        let diagonal = (hi - lo).norm();
        let values_precision = values_precision(diagonal, lo.coords.amax().max(hi.coords.amax()));
        // Over every finite point, duplicates included, as a tile's pass
        // over the file sums it.
        let mut centroid = CentroidSum::default();
        for p in &cloud.positions {
            centroid.add(p);
        }
        let centroid = centroid.centroid() - search.origin();
        Ok(MlsSurface {
            search,
            normals,
            colours,
            centroid,
            skipped,
            duplicates,
            values_precision,
            diagonal,
        })
    }

    /// The same surface with the cloud's centroid given: a tile holds part
    /// of the cloud, but orients normals by the whole cloud's centroid.
    pub fn with_centroid(mut self, centroid: Point3<f64>) -> Self {
        self.centroid = centroid - self.search.origin();
        self
    }

    /// Cloud points left out for a non-finite coordinate.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Cloud points merged into an earlier point at the same position.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// True when the cloud's normals enter the fits under `normal_weight`
    /// (it has normals, and the weight is not 0).
    pub fn normals_in_fit(&self, normal_weight: f64) -> bool {
        slope_normals(self.normals.as_deref(), normal_weight).is_some()
    }

    /// The precision the computed values of particles on this surface
    /// need (see [`values_precision`]).
    pub fn values_precision(&self) -> Precision {
        self.values_precision
    }

    /// Refuses a support that takes in the whole cloud read from `path`
    /// (see [`Support::covers_whole_cloud`]); `whole` gives the whole
    /// cloud's point count and diagonal when this surface holds a part of
    /// it (a tile), `None` takes this surface's own.
    pub fn refuse_whole_cloud_support(
        &self,
        path: &Path,
        support: Support,
        whole: Option<(usize, f64)>,
    ) -> Result<()> {
        let (points, diagonal) = whole.unwrap_or((self.search.len(), self.diagonal));
        match support.covers_whole_cloud(points, diagonal) {
            Some(reason) => Err(Error::format(path, Location::File, reason)),
            None => Ok(()),
        }
    }

    /// True when colours can be averaged onto particles.
    pub fn has_colours(&self) -> bool {
        self.colours.is_some()
    }

    /// The neighbour search (for statistics such as neighbour counts).
    pub fn search(&self) -> &NeighbourSearch {
        &self.search
    }

    /// How normals will be oriented under `orientation`, in words.
    pub fn orientation_rule(&self, orientation: Orientation) -> &'static str {
        match self.sign(orientation) {
            NormalSign::CloudNormals(_) => "by the cloud's normals",
            NormalSign::AwayFrom(_) => "away from the cloud's centroid",
            NormalSign::Toward(_) => "toward the viewpoint",
        }
    }

    fn sign(&self, orientation: Orientation) -> NormalSign<'_> {
        match (orientation, &self.normals) {
            (Orientation::Auto, Some(normals)) => NormalSign::CloudNormals(normals),
            (Orientation::Auto | Orientation::AwayFromCentroid, _) => {
                NormalSign::AwayFrom(self.centroid)
            }
            (Orientation::Viewpoint(x, y, z), _) => {
                NormalSign::Toward(Point3::new(x, y, z) - self.search.origin())
            }
        }
    }

    /// A projector with `method`, orienting normals by `orientation`, and
    /// averaging colours when `colours` is set and the cloud has them.
    pub fn projector(
        &self,
        method: Method,
        orientation: Orientation,
        colours: bool,
    ) -> Projector<'_> {
        Projector::new(
            &self.search,
            method,
            self.sign(orientation),
            self.colours.as_deref().filter(|_| colours),
            self.normals.as_deref(),
        )
    }
}

/// Longest stretch of one Morton cell searched for an equal position: keeps
/// the merge linear even when a huge extent puts many points in one cell
/// (a duplicate farther apart in such a cell is kept; it only costs time).
const DUPLICATE_WINDOW: usize = 64;

/// Indices of the finite points in Morton order, exact duplicates left
/// out, and the number of duplicates.
fn distinct_finite(cloud: &PointCloud) -> (Vec<u32>, usize) {
    let keyed = morton_keys(&cloud.positions);
    let mut kept: Vec<u32> = Vec::with_capacity(keyed.len());
    let mut duplicates = 0;
    let mut run = (NON_FINITE_KEY, 0);
    for (key, index) in keyed {
        if key == NON_FINITE_KEY {
            break; // sorted last
        }
        if key != run.0 {
            run = (key, kept.len());
        }
        let position = cloud.positions[index as usize];
        let window = run.1.max(kept.len().saturating_sub(DUPLICATE_WINDOW));
        if kept[window..]
            .iter()
            .any(|&k| cloud.positions[k as usize] == position)
        {
            duplicates += 1;
        } else {
            kept.push(index);
        }
    }
    (kept, duplicates)
}

/// A cloud normal as the fit uses it: unit length, or zero (says nothing)
/// when it is zero or not finite. Files carry normals of any length, and
/// the fit's slope equations weigh a normal by its squared length.
fn unit_or_zero(normal: Vector3<f32>) -> Vector3<f32> {
    let length = normal.norm();
    if length.is_finite() && length > 0.0 {
        normal / length
    } else {
        Vector3::zeros()
    }
}

/// The values at `indices`.
fn pick<T: Copy + Send + Sync>(values: &[T], indices: &[u32]) -> Vec<T> {
    // A gather in Morton order: random reads, so worth every thread.
    indices.par_iter().map(|&i| values[i as usize]).collect()
}
