//! Neighbour search over the cloud: one small type, built once, queried by
//! radius, by count, or both. The rest of the crate does not know which
//! index is behind it: a sparse uniform grid ([`grid`]), which on a scanned
//! surface builds in a third of a k-d tree's time and answers the
//! particles' queries (small balls, each near the last) in about a third.
//!
//! Points are stored relative to an `origin` (the centre of the cloud's
//! bounding box): scanned clouds sit at 10⁵..10⁶ m, and every later step
//! works with small offsets `p − q`, never with raw coordinates.

use std::mem::MaybeUninit;
use std::num::NonZeroUsize;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::{body_bounds, box_holds, finite_bounds, is_finite_point, pick};
use crate::config::Support;
use crate::error::{Error, Result};

mod grid;
mod nearest_k;
mod packing;

use grid::{CellGrid, Local};

/// Neighbours the fit sums at once: four `f64` fill one AVX register. A
/// [`Neighbourhood`]'s offsets and squared distances are padded to whole
/// lanes, so that the fit's sums read them where the gather wrote them.
pub const LANES: usize = 4;

/// Particles in Morton order, for queries that follow one another in
/// space (see [`crate::pipeline::project_all`]).
pub use crate::order::morton_order;

/// One neighbour of a query centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Index of the point in the search: into the slice it was built from
    /// ([`NeighbourSearch::new`]), or its own order
    /// ([`NeighbourSearch::distinct`]).
    pub index: u32,
    /// `p − centre`, in the cloud's units.
    pub offset: Vector3<f64>,
    /// `|p − centre|²`.
    pub distance_squared: f64,
}

/// A neighbour index over a point set, with positions kept relative to
/// `origin`.
pub struct NeighbourSearch {
    grid: CellGrid,
    origin: Point3<f64>,
    /// The box the cloud's body lies in, relative to `origin`.
    body: (Vector3<f64>, Vector3<f64>),
}

impl NeighbourSearch {
    /// Builds the index. `positions` must be finite (the pipeline drops
    /// non-finite cloud points before this) and not empty.
    pub fn new(positions: &[Point3<f64>]) -> Result<Self> {
        let local = Self::local(positions)?;
        Ok(NeighbourSearch {
            grid: CellGrid::new(local),
            origin: local.origin,
            body: local.body,
        })
    }

    /// Builds the index over the distinct points of `positions` (finite,
    /// not empty): a point at exactly the position of another is left out
    /// ([`Self::new`] keeps it). The index's points are in its own order,
    /// the cells' (neighbours sit together in memory): returns the index,
    /// whose point `i` is `positions[kept[i]]`, and `kept`.
    pub fn distinct(positions: &[Point3<f64>]) -> Result<(Self, Vec<u32>)> {
        Self::distinct_for(positions, None)
    }

    /// [`Self::distinct`] with cells sized for the queries of `support`
    /// (of a radius: larger cells for balls of many points, whose gathers
    /// then visit fewer rows of cells); `None` as [`Self::distinct`].
    fn distinct_for(
        positions: &[Point3<f64>],
        support: Option<Support>,
    ) -> Result<(Self, Vec<u32>)> {
        let local = Self::local(positions)?;
        let ball_radius = support.and_then(|support| support.radius());
        let (grid, kept) = CellGrid::distinct(local, ball_radius);
        Ok((
            NeighbourSearch {
                grid,
                origin: local.origin,
                body: local.body,
            },
            kept,
        ))
    }

    /// [`Self::distinct`] over the finite points of `positions` (any:
    /// those with a NaN or infinite coordinate are left out), as a
    /// cloud's surface searches them. Returns the index, the index into
    /// `positions` of each of its points, and how many of `positions` are
    /// finite. Errors when none is.
    /// Its cells are sized for the queries of `support` (see
    /// [`Self::distinct_for`]): a surface's search and the normals
    /// estimated for its job take the job's, so that both build the same
    /// index.
    pub fn distinct_finite(
        positions: &[Point3<f64>],
        support: Option<Support>,
    ) -> Result<(Self, Vec<u32>, usize)> {
        // Every point is finite in most clouds: no list of them, no copy,
        // no renumbering.
        if positions.par_iter().all(is_finite_point) {
            let (search, kept) = Self::distinct_for(positions, support)?;
            return Ok((search, kept, positions.len()));
        }
        let finite: Vec<u32> = (0..positions.len() as u32)
            .into_par_iter()
            .filter(|&i| is_finite_point(&positions[i as usize]))
            .collect();
        let (search, kept) = Self::distinct_for(&pick(positions, &finite), support)?;
        Ok((search, pick(&finite, &kept), finite.len()))
    }

    /// `positions` relative to the centre of their bounding box, or of
    /// their body's ([`body_bounds`]) where the first lies outside the
    /// second: one garbage point at 3e38 put the centre there, and every
    /// offset from it rounded the scan's shape away (a sphere's normals
    /// came out 89° off, every particle "ok").
    fn local(positions: &[Point3<f64>]) -> Result<Local<'_>> {
        let (Some((lo, hi)), Some(body)) = (finite_bounds(positions), body_bounds(positions))
        else {
            return Err(Error::Invalid("cannot search an empty cloud".into()));
        };
        let centre = nalgebra::center(&lo, &hi);
        let origin = if box_holds(&body.0.coords, &body.1.coords, &centre.coords) {
            centre
        } else {
            nalgebra::center(&body.0, &body.1)
        };
        Ok(Local {
            positions,
            origin,
            body: (body.0 - origin, body.1 - origin),
        })
    }

    /// The point subtracted from every position: the centre of the
    /// cloud's bounding box, or of its body where that box reaches far
    /// outliers.
    pub fn origin(&self) -> Point3<f64> {
        self.origin
    }

    /// The box the cloud's body lies in ([`body_bounds`]), relative to
    /// [`Self::origin`]: points beyond it are garbage or far outliers.
    pub fn body_box(&self) -> (Vector3<f64>, Vector3<f64>) {
        self.body
    }

    /// Number of points in the index.
    pub fn len(&self) -> usize {
        self.grid.len()
    }

    /// True when the index holds no point (never, once built).
    pub fn is_empty(&self) -> bool {
        self.grid.len() == 0
    }

    /// Occupied cells of the grid: with the points, what the index's memory
    /// grows with (never the volume of the cloud's bounding box).
    pub fn cell_count(&self) -> usize {
        self.grid.cell_count()
    }

    /// Occupied rows of cells of the grid (each a few words of memory).
    pub fn row_count(&self) -> usize {
        self.grid.row_count()
    }

    /// A point of the index, relative to `origin`.
    pub fn local_point(&self, index: u32) -> Vector3<f64> {
        self.grid.local_point(index)
    }

    /// The nearest point to `centre` (relative to `origin`): its index and
    /// squared distance. Of points at the same distance, the first in the
    /// grid's order. `(0, NaN)` for a centre that is not finite.
    pub fn nearest(&self, centre: &Vector3<f64>) -> (u32, f64) {
        self.nearest_within(centre, f64::INFINITY)
            .unwrap_or((0, f64::NAN))
    }

    /// [`Self::nearest`], if it lies closer than `limit`: `None` when no
    /// point does (or `centre` is not finite). The search stops at the
    /// limit, so a centre far off the cloud costs no more than the limit's
    /// ball. Each pass scans the box of cells around a ball (narrowed as
    /// nearer points turn up), and once a point is found the next ball
    /// passes through it, starting from it, so a search takes
    /// at most two passes after its first point: growing balls alone took
    /// 2.5 passes a particle on sphere_large, and for a particle far off
    /// the cloud dozens, each box larger (10k particles a sphere's radius
    /// off sphere_large's cloud: 15.5 s CPU before, 5.6 s; same points).
    pub fn nearest_within(&self, centre: &Vector3<f64>, limit: f64) -> Option<(u32, f64)> {
        if !centre.iter().all(|c| c.is_finite()) || limit.is_nan() {
            return None;
        }
        // The centre's own cell first: for a centre near the cloud it
        // holds a point, and the box of a ball through that point then
        // holds the nearest.
        let mut radius = 0.0;
        let mut known = None;
        loop {
            let (best, covered) = self.grid.nearest_in_box(centre, radius, known);
            known = best;
            match best {
                // Every point within `covered` was scanned.
                Some((place, distance_squared)) if distance_squared <= covered * covered => {
                    return (distance_squared < limit * limit)
                        .then(|| (self.grid.original(place), distance_squared));
                }
                _ if covered >= limit => return None,
                // The nearest point is no farther than this one: the box of
                // a ball through it settles the search. Never the same ball
                // twice: the square of a rounded root can fall an ulp short
                // of the distance, and the box's reach be the radius.
                Some((_, distance_squared)) => {
                    let through = distance_squared.sqrt();
                    radius = if through > radius {
                        through
                    } else {
                        radius.next_up()
                    }
                    .min(limit);
                }
                // Gently: the first box to find a point may reach past it
                // by the growth, and for a centre far off the cloud that
                // excess is a cap of it to scan.
                None => {
                    let radius_at_least = radius.max(self.grid.cell_size() * 0.25);
                    radius = self.grow(centre, radius_at_least, 1.25).min(limit);
                }
            }
        }
    }

    /// The `k` nearest points to `centre` (relative to `origin`), nearest
    /// first (points at the same distance in the grid's order); fewer when
    /// the index holds fewer or `centre` is not finite.
    pub fn nearest_n(&self, centre: &Vector3<f64>, k: NonZeroUsize) -> Vec<Neighbour> {
        let mut hood = Neighbourhood::default();
        let mut radius = self.grid.cell_size();
        loop {
            self.within(centre, radius * radius, &mut hood);
            if hood.len() >= k.get() || radius == f64::INFINITY {
                break;
            }
            radius = self.grow(centre, radius, 2.0);
        }
        let mut found: Vec<Neighbour> = hood.iter().collect();
        found.sort_by(|a, b| a.distance_squared.total_cmp(&b.distance_squared));
        found.truncate(k.get());
        found
    }

    /// Fills `hood` with the neighbourhood of `centre` (relative to
    /// `origin`) under `support` (its columns padded to whole lanes), and
    /// returns the support radius `h` to weight it with. `nearest_scale`
    /// widens `h` for `Support::Nearest`.
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
        let support_radius = match support {
            Support::Radius(radius) => {
                self.within(centre, radius * radius, hood);
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
                // Once a ball finds nothing: the nearest point's distance
                // and how far past it the ball reaches.
                let mut far: Option<(f64, f64)> = None;
                loop {
                    self.within(centre, radius_squared, hood);
                    // An infinite radius holds every point: a centre that
                    // is not finite finds none, and stops here.
                    if hood.len() >= k || !radius_squared.is_finite() {
                        break;
                    }
                    radius_squared = match far {
                        None if hood.is_empty() => {
                            // The centre lies farther from the cloud than
                            // the last neighbourhood was wide (a particle
                            // well off the scan). Doubling the ball until it
                            // holds k points would take in a cap of the
                            // cloud far larger than k (half of
                            // sphere_large's 2M points, for a particle a
                            // radius off it); this ball reaches past the
                            // nearest point by the last neighbourhood's
                            // radius, and that reach doubles on a miss.
                            let nearest = self.nearest(centre).1.sqrt();
                            let reach = radius_squared.sqrt();
                            far = Some((nearest, reach));
                            (nearest + reach).powi(2)
                        }
                        None => radius_squared * 2.0,
                        Some((nearest, reach)) => {
                            far = Some((nearest, 2.0 * reach));
                            (nearest + 2.0 * reach).powi(2)
                        }
                    };
                }
                hood.keep_nearest(k, previous);
                let kth_squared = hood.distances_squared().iter().copied().fold(0.0, f64::max);
                // A far centre's radius is no guide to the next centre's.
                if far.is_none() {
                    hood.nearest_radius_squared = kth_squared;
                }
                kth_squared.sqrt() * nearest_scale
            }
            Support::RadiusNearest { radius, k } => {
                self.within(centre, radius * radius, hood);
                hood.keep_nearest(k, 0.0);
                radius
            }
        };
        hood.pad();
        support_radius
    }

    /// The next radius of a search about `centre` that found too little
    /// within `radius`: `factor` times as far, or every point once the
    /// ball's box holds every cell (a centre far off need not grow its way
    /// out).
    fn grow(&self, centre: &Vector3<f64>, radius: f64, factor: f64) -> f64 {
        if self.grid.covers_all(centre, radius) {
            f64::INFINITY
        } else {
            radius * factor
        }
    }

    /// Every point within `sqrt(radius_squared)` of `centre`, into `out`,
    /// in the grid's order.
    fn within(&self, centre: &Vector3<f64>, radius_squared: f64, out: &mut Neighbourhood) {
        self.grid.gather_within(centre, radius_squared, out);
    }
}

/// A neighbourhood, and the buffers that gathering it needs: one per
/// thread, reused for every query (no allocation per query once grown).
///
/// The neighbours are stored as columns (index, offset per axis, squared
/// distance), as the grid's gather writes them and the fit's sums read
/// them (`fit::columns`): a row of structs had to be transposed for the
/// fit (with the normals' reads, 13% of a smoothing job's time; the
/// columns took that job's CPU down by 6%, docs/performance.md). The
/// offsets and squared distances are padded to whole [`LANES`] with
/// neighbours at the centre (zero offset and distance, which the fit
/// weighs zero), so that the fit reads them in place rather than copying
/// them into its own padded columns.
#[derive(Debug, Default)]
pub struct Neighbourhood {
    /// Index of each neighbour into the point slice the search was built
    /// from.
    index: Vec<u32>,
    /// `p − centre` of each neighbour, one column per axis, then the
    /// padding to whole lanes (zeros).
    offset: [Vec<f64>; 3],
    /// `|p − centre|²` of each neighbour, then the padding (zeros).
    distance_squared: Vec<f64>,
    /// Room to select the k-th distance in, as the bits of the squared
    /// distances (see [`Neighbourhood::keep_nearest`]).
    distances: Vec<u64>,
    /// Squared radius of the last `Nearest(k)` neighbourhood (0 before
    /// one): where the next search starts.
    nearest_radius_squared: f64,
}

impl Neighbourhood {
    /// Number of neighbours.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when the last gather found no neighbour.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The neighbours' indices into the point slice the search was built
    /// from.
    pub fn indices(&self) -> &[u32] {
        &self.index
    }

    /// The neighbours' offsets from the query's centre, one column per
    /// axis.
    pub fn offsets(&self) -> [&[f64]; 3] {
        self.offset.each_ref().map(|column| &column[..self.len()])
    }

    /// The neighbours' squared distances from the query's centre.
    pub fn distances_squared(&self) -> &[f64] {
        &self.distance_squared[..self.len()]
    }

    /// [`Self::offsets`] in whole lanes, the last padded with zeros.
    pub fn offset_lanes(&self) -> [&[[f64; LANES]]; 3] {
        self.offset.each_ref().map(|column| lanes(column))
    }

    /// [`Self::distances_squared`] in whole lanes, the last padded with
    /// zeros.
    pub fn distance_lanes(&self) -> &[[f64; LANES]] {
        lanes(&self.distance_squared)
    }

    /// The neighbours, one by one, in the order they were gathered.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Neighbour> + '_ {
        (0..self.len()).map(|i| Neighbour {
            index: self.index[i],
            offset: Vector3::new(self.offset[0][i], self.offset[1][i], self.offset[2][i]),
            distance_squared: self.distance_squared[i],
        })
    }

    /// Forgets the neighbours (keeps the buffers and the radius hint).
    fn clear(&mut self) {
        self.index.clear();
        for column in &mut self.offset {
            column.clear();
        }
        self.distance_squared.clear();
    }

    /// Room for `additional` more neighbours in every column.
    fn reserve(&mut self, additional: usize) {
        self.index.reserve(additional);
        for column in &mut self.offset {
            column.reserve(additional);
        }
        self.distance_squared.reserve(additional);
    }

    /// Pads the offsets and squared distances with zeros to whole lanes:
    /// every public way to fill a neighbourhood ends with this (once: a
    /// `Nearest(k)` gather's balls and selection work unpadded).
    ///
    /// A whole lane of zeros is written past the last neighbour, whatever
    /// the padding's length: no loop of one to three writes per column.
    fn pad(&mut self) {
        let padded = self.len().div_ceil(LANES) * LANES;
        for column in self.offset.iter_mut().chain([&mut self.distance_squared]) {
            column.reserve(LANES);
            column.spare_capacity_mut()[..LANES].fill(MaybeUninit::new(0.0));
            // SAFETY: the entries up to `padded`, at most a lane past the
            // column's length, were written just above.
            unsafe { column.set_len(padded) };
        }
    }

    /// Sets the number of neighbours to `len` (unpadded).
    ///
    /// # Safety
    /// The first `len` entries of every column must be written.
    unsafe fn set_len(&mut self, len: usize) {
        // SAFETY: the caller wrote them (and `len` is within capacity).
        unsafe {
            self.index.set_len(len);
            for column in &mut self.offset {
                column.set_len(len);
            }
            self.distance_squared.set_len(len);
        }
    }

    /// Appends one neighbour (to an unpadded neighbourhood).
    fn push(&mut self, neighbour: Neighbour) {
        self.index.push(neighbour.index);
        for (column, value) in self.offset.iter_mut().zip(neighbour.offset.iter()) {
            column.push(*value);
        }
        self.distance_squared.push(neighbour.distance_squared);
    }
}

/// A neighbourhood made by hand (tests, and callers with their own
/// neighbours).
impl FromIterator<Neighbour> for Neighbourhood {
    fn from_iter<I: IntoIterator<Item = Neighbour>>(neighbours: I) -> Self {
        let mut hood = Neighbourhood::default();
        for neighbour in neighbours {
            hood.push(neighbour);
        }
        hood.pad();
        hood
    }
}

/// `column` as whole lanes (its length a multiple of [`LANES`]: a
/// neighbourhood's columns, and the fit's beside them).
#[inline(always)]
pub(crate) fn lanes<T>(column: &[T]) -> &[[T; LANES]] {
    let (whole, rest) = column.as_chunks::<LANES>();
    debug_assert!(rest.is_empty(), "a column is padded to whole lanes");
    whole
}
