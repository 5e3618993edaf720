//! A cloud made ready for projection: its finite points in a neighbour
//! search, with the normals and colours that go with them.

use std::num::NonZeroUsize;
use std::path::Path;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::{CentroidSum, PointCloud, Precision, pick, values_precision};
use crate::config::{CloudNormals, Config, Orientation, Support};
use crate::error::{Error, Location, Result};
use crate::neighbours::NeighbourSearch;
use crate::normals::{self, Estimate, SignRule};
use crate::projection::{Method, NormalSign, Projector, slope_normals};

/// How a surface gets its normals: the config's `cloud_normals`,
/// `normal_neighbours` and `orientation`.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalOptions {
    /// Use the cloud's normals when it has them, or estimate anyway.
    pub cloud_normals: CloudNormals,
    /// Neighbours of the PCA that estimates a normal.
    pub neighbours: usize,
    /// How the normals are signed (see [`normals::sign_rule`]).
    pub orientation: Orientation,
    /// Where the scanners of the cloud's scans stood (an E57 file's),
    /// indexed by the points' `scan_index` attribute: under `Auto`, each
    /// estimated normal faces the scanner that saw its point.
    pub scanners: Vec<Point3<f64>>,
    /// The support the surface will be searched with, which sizes the
    /// index's cells (see [`NeighbourSearch::distinct_finite`]); `None`
    /// for the default cells.
    pub support: Option<Support>,
}

impl Default for NormalOptions {
    fn default() -> Self {
        NormalOptions {
            cloud_normals: CloudNormals::Use,
            neighbours: normals::DEFAULT_NEIGHBOURS,
            orientation: Orientation::Auto,
            scanners: Vec::new(),
            support: None,
        }
    }
}

impl From<&Config> for NormalOptions {
    fn from(config: &Config) -> Self {
        NormalOptions {
            cloud_normals: config.cloud_normals,
            neighbours: config.normal_neighbours,
            orientation: config.orientation,
            scanners: Vec::new(),
            support: Some(config.support),
        }
    }
}

/// The MLS surface of a cloud, ready to project particles onto.
pub struct MlsSurface {
    search: NeighbourSearch,
    /// Unit or zero, one per point of `search`: the cloud's or estimated.
    normals: Vec<Vector3<f32>>,
    /// True when `normals` were estimated.
    estimated: bool,
    /// True when estimated normals face the scanner that saw each point.
    scanner_facing: bool,
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
    /// The points are stored in the search's cell order, so that the
    /// normals and colours of one neighbourhood sit together in memory.
    ///
    /// Normals are made unit length; a zero or non-finite one becomes zero
    /// (it then says nothing to the fit or the orientation).
    ///
    /// Exact duplicates of a point are merged into it (the first one's
    /// normal and colour kept) and counted in [`Self::duplicates`]: a stack
    /// of coincident points adds no shape, and with a `Nearest(k)` support
    /// it would fill the k nearest with one position.
    ///
    /// A cloud without normals gets estimated ones, oriented consistently
    /// (`NormalOptions::default()`); [`Self::with_options`] says how.
    pub fn new(cloud: &PointCloud) -> Result<Self> {
        Self::with_options(cloud, &NormalOptions::default())
    }

    /// The surface as `config` asks for it: the cloud's normals or
    /// estimated ones, oriented by its `orientation`.
    pub fn from_config(cloud: &PointCloud, config: &Config) -> Result<Self> {
        Self::with_options(cloud, &NormalOptions::from(config))
    }

    /// As [`Self::new`], with the normals `options` ask for: the cloud's
    /// own (kept as they are, unless the orientation is `Up`, `Consistent`
    /// or `ConsistentToward`, which re-sign them), or, when it has none or
    /// `cloud_normals` is `Estimate`, PCA normals of the `neighbours`
    /// nearest, signed by `orientation` (`Auto` as `Consistent`).
    ///
    /// A tile holds part of the cloud: its consistent signs are those of
    /// its slab and halo, and may differ from a whole run's where a part of
    /// the surface leaves the slab and comes back.
    pub fn with_options(cloud: &PointCloud, options: &NormalOptions) -> Result<Self> {
        // The centroid's pass, one thread in file order (see
        // `CentroidSum`), runs beside the index's build, whose sequential
        // parts leave a thread free. Over every finite point, duplicates
        // included, as a tile's pass over the file sums it.
        let (searched, centroid) = rayon::join(
            || NeighbourSearch::distinct_finite(&cloud.positions, options.support),
            || CentroidSum::of(&cloud.positions),
        );
        // The cloud's index of each point of the search.
        let (search, finite, finite_count) = searched?;
        let skipped = cloud.len() - finite_count;
        let duplicates = finite_count - finite.len();
        let own_normals = cloud
            .normals
            .as_deref()
            .filter(|_| options.cloud_normals == CloudNormals::Use)
            .map(|n| {
                // Picked first, then made unit: the gather alone keeps
                // more of its scattered reads in flight (sphere_large's tree
                // stage 182 → 169 ms, medians of 9 alternated runs).
                let mut picked = pick(n, &finite);
                picked.par_iter_mut().for_each(|n| *n = unit_or_zero(*n));
                picked
            });
        let colours = cloud.colours.as_deref().map(|c| pick(c, &finite));
        let (lo, hi) = centroid.bounds().expect("the search has a point");
        let diagonal = (hi - lo).norm();
        let values_precision = values_precision(diagonal, lo.coords.amax().max(hi.coords.amax()));
        let centroid = centroid.centroid() - search.origin();

        let estimated = own_normals.is_none();
        let re_sign = estimated
            || matches!(
                options.orientation,
                Orientation::Up | Orientation::Consistent | Orientation::ConsistentToward(..)
            );
        let seen_from = estimated
            .then(|| scanner_of_each(cloud, &finite, options, &search))
            .flatten();
        let scanner_facing = seen_from.is_some();
        let normals = match own_normals {
            Some(own) if !re_sign => own,
            None if scanner_facing => {
                let k = NonZeroUsize::new(options.neighbours).unwrap_or(NonZeroUsize::MIN);
                let mut normals = normals::estimate(&search, k).normals;
                face_scanners(&search, &mut normals, &seen_from.unwrap_or_default());
                normals
            }
            own => {
                let rule = normals::sign_rule(options.orientation, &search, centroid);
                // The cloud's own normals need the PCA's graph only to be
                // signed consistently; `Up` signs each on its own.
                let (mut normals, graph, variation) = match own {
                    Some(own) if !matches!(rule, SignRule::Consistent { .. }) => {
                        (own, Vec::new(), Vec::new())
                    }
                    own => {
                        let k = NonZeroUsize::new(options.neighbours).unwrap_or(NonZeroUsize::MIN);
                        let Estimate {
                            normals,
                            variation,
                            graph,
                        } = normals::estimate(&search, k);
                        (own.unwrap_or(normals), graph, variation)
                    }
                };
                normals::orient(&search, &graph, &variation, &mut normals, rule, estimated);
                normals
            }
        };

        Ok(MlsSurface {
            search,
            normals,
            estimated,
            scanner_facing,
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
    /// Estimated normals count as the cloud's.
    pub fn normals_in_fit(&self, normal_weight: f64) -> bool {
        slope_normals(Some(&self.normals), normal_weight).is_some()
    }

    /// True when the normals were estimated (the cloud had none, or
    /// `cloud_normals: Estimate`).
    pub fn normals_estimated(&self) -> bool {
        self.estimated
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
            NormalSign::CloudNormals(_) if self.scanner_facing => {
                "by estimated normals, each facing the scanner that saw its point"
            }
            NormalSign::CloudNormals(_) if self.normals_estimated() => {
                "by estimated normals, oriented consistently"
            }
            NormalSign::CloudNormals(_) => match orientation {
                Orientation::Auto => "by the cloud's normals",
                _ => "by the cloud's normals, re-oriented consistently",
            },
            NormalSign::AwayFrom(_) => "away from the cloud's centroid",
            NormalSign::Toward(_) => "toward the viewpoint",
            NormalSign::Along(_) => "up (nz ≥ 0)",
        }
    }

    fn sign(&self, orientation: Orientation) -> NormalSign<'_> {
        match orientation {
            Orientation::Auto | Orientation::Consistent | Orientation::ConsistentToward(..) => {
                NormalSign::CloudNormals(&self.normals)
            }
            Orientation::AwayFromCentroid => NormalSign::AwayFrom(self.centroid),
            Orientation::Viewpoint(x, y, z) => {
                NormalSign::Toward(Point3::new(x, y, z) - self.search.origin())
            }
            Orientation::Up => NormalSign::Along(Vector3::z()),
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
            Some(&self.normals),
        )
    }
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

/// Where the scanner that saw each point of `search` stood (relative to its
/// origin, in the order of `finite`), when `options` orient by scanners:
/// `Auto`, and scanners given for every point
/// ([`normals::scanner_of_each`]). `None` otherwise.
fn scanner_of_each(
    cloud: &PointCloud,
    finite: &[u32],
    options: &NormalOptions,
    search: &NeighbourSearch,
) -> Option<Vec<Vector3<f64>>> {
    if options.orientation != Orientation::Auto {
        return None;
    }
    let seen_from = normals::scanner_of_each(cloud, &options.scanners)?;
    Some(
        finite
            .iter()
            .map(|&i| seen_from[i as usize] - search.origin())
            .collect(),
    )
}

/// Signs each of `normals` (one per point of `search`) to face the scanner
/// at `seen_from` that saw its point ([`normals::facing`]).
fn face_scanners(
    search: &NeighbourSearch,
    normals: &mut [Vector3<f32>],
    seen_from: &[Vector3<f64>],
) {
    normals
        .par_iter_mut()
        .zip(seen_from.par_iter())
        .enumerate()
        .for_each(|(i, (normal, scanner))| {
            *normal = normals::facing(*normal, &(scanner - search.local_point(i as u32)));
        });
}
