//! A uniform grid of cubic cells over the cloud, stored sparsely: only the
//! occupied cells exist, so memory follows the point count, not the volume
//! of the bounding box (a street scan is a thin shell in a 1 km box).
//!
//! The points are sorted by cell, cells by row (`z`, then `y`) and by `x`
//! within a row, so that every row of cells is one contiguous run of
//! points. A query walks the occupied rows that cross the box around its
//! ball (found through a table of the first row of each `z` slice), finds
//! the run of each row among the row's cells, and scans the run. A gather
//! (radius, k nearest) tests every point of the run exactly and keeps those
//! that pass without a branch per point ([`CellGrid::gather_within`]); the
//! nearest-point search, whose boxes can be large and keep one point,
//! scans in groups of 8: squared distances in `f32` (in one AVX register
//! where the CPU has it) and one bit per point that passes a slightly
//! widened bound, then the exact `f64` test for the few that pass.
//!
//! Every query visits points in one global order (rows by `z`, `y`, cells
//! by `x`, points within a cell in a fixed order), whatever the size of its
//! box: two points found by two queries of different radii come in the same
//! relative order. The fit sums neighbours in that order, so its result
//! does not depend on the radius a search started from.

use std::cell::Cell;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::packing::{pack, packing};
use super::{LANES, Neighbourhood};
use crate::cloud::trimmed_range;
use crate::cpu::floor_i64;
#[cfg(target_arch = "x86_64")]
use crate::cpu::wide_lanes;
use crate::order::{morton_cell, morton_code};

/// Mean number of points in an occupied cell that the cell size aims at
/// (cells are power-of-two sizes, so the mean lands within a factor of 2-4
/// of it): a `Nearest(30)` ball on a surface then spans about 2 × 2 cells.
/// Measured on sphere_large (user time, under load): 16 (25 points a cell)
/// 5.6-5.7 s, 4 (6 points a cell) 6.1 s.
const POINTS_PER_CELL: f64 = 16.0;

/// Points in the balls for which [`POINTS_PER_CELL`] was measured best
/// (sphere_large's `Nearest(30)` gathers hold 30-49, 40 on the mean).
/// Larger balls visit more rows of cells, each a call and a search for
/// its run: cells aim at `POINTS_PER_CELL · √(B / TUNED_BALL)` points for
/// balls of B (never fewer than [`POINTS_PER_CELL`]). For `Radius(0.11)`
/// on sphere_seed (B about 600): aims of 16, 32, 64, 128, 256 took the
/// seed arithmetic job 0.118, 0.111, 0.113, 0.115, 0.116 s CPU (medians
/// of 9 alternated runs; 32 to 128 pick the same level, about 100 points a
/// cell, against 25), smoothing 1.741 s at 16, 1.673 s at 64, 1.794 s at
/// 256 (docs/performance.md).
const TUNED_BALL: f64 = 40.0;

/// Cells a plane crosses per area c² on the mean over its directions
/// (3/2: the mean of |n_x| + |n_y| + |n_z| over the sphere): how many
/// cells of side c a surface's disc of area A spans, A / c² times this.
const CELLS_PER_AREA: f64 = 1.5;

/// How many points the build's copies in cell order read before working on
/// any: their cache misses (the input is in file order) overlap, where one
/// at a time each point's arithmetic (three divisions) held the next reads
/// back.
const COPY_BATCH: usize = 16;

/// Bits of a fine cell coordinate on each axis, as in a Morton code: a
/// cell is 2^shift fine cells on a side, a row key holds `z` and `y`.
const CELL_BITS: u32 = 21;

/// Largest fine cell coordinate; points beyond the grid's box are clamped
/// into its border cells (still found: the mapping from position to cell
/// only has to be monotone for the box of a ball to hold the ball).
const MAX_CELL: u32 = (1 << CELL_BITS) - 1;

/// Points sampled per axis to find the box the fine cells span.
const BOX_SAMPLE: usize = 8192;

/// Fraction of the sample left out at each end of each axis: a far outlier
/// does not stretch the box (and with it the cells) over empty space.
const BOX_TAIL: f64 = 0.001;

/// Points whose distances the scan computes at once, and the number of
/// padding entries after the last point in each column (so a group may
/// read past a run's end; what it reads there is masked out).
const GROUP: usize = 8;

/// Largest magnitude of a position in cell units kept in the `f32`
/// columns: beyond it they would overflow the squared distance.
const COLUMN_LIMIT: f64 = (1u64 << 50) as f64;

/// The points a grid is built from, relative to the search's origin:
/// each subtracted as it is read, never stored (a copy of the cloud's
/// positions was 48 MB and a pass of its own for 2M points).
#[derive(Clone, Copy)]
pub(super) struct Local<'a> {
    pub(super) positions: &'a [Point3<f64>],
    pub(super) origin: Point3<f64>,
    /// The box the cloud's body lies in (`cloud::body_bounds`), relative
    /// to the origin.
    pub(super) body: Bounds,
}

/// A box: lowest and highest corner.
pub(super) type Bounds = (Vector3<f64>, Vector3<f64>);

impl Local<'_> {
    fn len(&self) -> usize {
        self.positions.len()
    }

    /// Point `index`, relative to the origin.
    fn at(&self, index: u32) -> Vector3<f64> {
        self.positions[index as usize] - self.origin
    }

    fn iter(&self) -> impl Iterator<Item = Vector3<f64>> + '_ {
        self.positions.iter().map(|p| p - self.origin)
    }
}

/// The grid, its points in cell order.
pub(super) struct CellGrid {
    /// Corner of cell (0, 0, 0), relative to the search's origin.
    corner: Vector3<f64>,
    /// Edge of a fine cell (a Morton code's last level), in the cloud's
    /// units.
    fine_size: f64,
    /// A cell is `2^shift` fine cells on a side.
    shift: u32,
    /// Largest occupied cell coordinate on each axis.
    last_cell: [u32; 3],
    /// First row of each `z` slice of cells, and one past the last row: at
    /// most 2^21 + 1 entries, and as many as the grid's cells are high.
    slice_first_row: Vec<u32>,
    /// `y` coordinate of each occupied row, rows in order (by `z`, then
    /// `y`).
    row_y: Vec<u32>,
    /// First cell of each row, and one past the last row's last cell.
    row_first_cell: Vec<u32>,
    /// `x` coordinate of each occupied cell, rows in order.
    cell_x: Vec<u32>,
    /// First point of each cell, and one past the last cell's last point.
    cell_first_point: Vec<u32>,
    /// Positions relative to `corner` in cell units, one column per axis,
    /// in cell order, then [`GROUP`] entries of padding: the scan reads
    /// these.
    columns: [Vec<f32>; 3],
    /// Positions relative to the search's origin, one column per axis, in
    /// cell order: the exact test and the offsets handed to the fit, read
    /// a lane of four at a time by the gather.
    exact: [Vec<f64>; 3],
    /// For each point in cell order, its index in the slice built from
    /// (the identity for [`CellGrid::distinct`], whose indices are its
    /// own order).
    original: Vec<u32>,
    /// For each index of the slice built from, its place in cell order;
    /// `None` for [`CellGrid::distinct`], whose indices are its order.
    place: Option<Vec<u32>>,
}

impl CellGrid {
    /// Sorts `local` (positions relative to the search's origin, finite,
    /// not empty) into cells.
    ///
    /// One sort does it: points sorted by the Morton code of their fine
    /// cell give the count of occupied cells at every power-of-two cell
    /// size (two points share a cell of a level exactly when their codes
    /// share that level's prefix), hence the cell size that holds about
    /// [`POINTS_PER_CELL`] points on the mean over occupied cells, whatever
    /// the cloud's shape (a surface, a line, clusters, a thin shell in a big
    /// box); and each cell's points are one run of that order. Only the
    /// cells are then sorted into rows.
    pub(super) fn new(local: Local) -> Self {
        Self::build(local, false, None).0
    }

    /// As [`Self::new`], leaving out each point at exactly the position
    /// of one before it in cell order (of equal positions, the first in
    /// `local`): the same sort finds them, as equal positions have equal
    /// codes. Returns the grid, whose point `i` (in cell order) is
    /// `local.positions[kept[i]]`, and `kept`.
    /// `ball_radius`: the radius of the balls that the queries it serves
    /// most gather (a radius support's), whose size the cells follow
    /// ([`TUNED_BALL`]); `None` for small balls (`Nearest(k)`).
    pub(super) fn distinct(local: Local, ball_radius: Option<f64>) -> (Self, Vec<u32>) {
        let (grid, kept) = Self::build(local, true, ball_radius);
        (grid, kept.expect("a distinct build maps its points"))
    }

    /// [`Self::new`], or with `drop_duplicates` [`Self::distinct`]: then
    /// the grid's indices are its own cell order, and the second value
    /// maps them to `local`.
    fn build(
        local: Local,
        drop_duplicates: bool,
        ball_radius: Option<f64>,
    ) -> (Self, Option<Vec<u32>>) {
        let (corner, fine_size) = fine_grid(local);
        let mut grid = CellGrid {
            corner,
            fine_size,
            shift: 0,
            last_cell: [0; 3],
            slice_first_row: Vec::new(),
            row_y: Vec::new(),
            row_first_cell: Vec::new(),
            cell_x: Vec::new(),
            cell_first_point: Vec::new(),
            columns: Default::default(),
            exact: Default::default(),
            original: Vec::new(),
            place: None,
        };
        let mut coded: Vec<(u64, u32)> = (0..local.len() as u32)
            .into_par_iter()
            .map(|i| (morton_code(grid.fine_cell(&local.at(i))), i))
            .collect();
        // Within a cell: by fine code, then by input order; a fixed order
        // (a distinct grid orders a run of equal codes by position).
        coded.par_sort_unstable();
        if drop_duplicates {
            drop_coincident(&mut coded, local);
        }
        grid.shift = CELL_BITS - level(&coded, fine_size, ball_radius);

        // Each cell's run in `coded`: (row and x, first, one past last),
        // the cell read off its points' shared code (no position read).
        let cell_bits = 3 * grid.shift;
        let starts: Vec<u32> = (0..coded.len())
            .into_par_iter()
            .filter(|&at| at == 0 || coded[at].0 >> cell_bits != coded[at - 1].0 >> cell_bits)
            .map(|at| at as u32)
            .collect();
        let mut runs: Vec<(u64, u32, u32)> = starts
            .par_iter()
            .enumerate()
            .map(|(run, &first)| {
                let end = starts.get(run + 1).copied().unwrap_or(coded.len() as u32);
                let [x, y, z] = morton_cell(coded[first as usize].0).map(|c| c >> grid.shift);
                (row_key(z, y) << CELL_BITS | u64::from(x), first, end)
            })
            .collect();
        drop(starts);
        runs.par_sort_unstable();

        // The points' indices cell by cell, each cell's copied from its
        // run into its own part of `original`.
        let mut original = vec![0; coded.len()];
        let mut parts = Vec::with_capacity(runs.len());
        let mut rest = original.as_mut_slice();
        let mut last_row = u64::MAX;
        for &(key, first, end) in &runs {
            let (row, x) = (key >> CELL_BITS, (key & u64::from(MAX_CELL)) as u32);
            let (z, y) = split_row(row);
            if row != last_row {
                let rows = grid.row_y.len() as u32;
                grid.slice_first_row.resize(z as usize + 1, rows);
                grid.row_y.push(y);
                grid.row_first_cell.push(grid.cell_x.len() as u32);
                last_row = row;
            }
            grid.cell_x.push(x);
            grid.cell_first_point
                .push((coded.len() - rest.len()) as u32);
            let (part, after) = rest.split_at_mut((end - first) as usize);
            parts.push((part, &coded[first as usize..end as usize]));
            rest = after;
            for (last, c) in grid.last_cell.iter_mut().zip([x, y, z]) {
                *last = (*last).max(c);
            }
        }
        parts.into_par_iter().for_each(|(part, run)| {
            for (slot, &(_, i)) in part.iter_mut().zip(run) {
                *slot = i;
            }
        });
        grid.original = original;
        grid.slice_first_row.push(grid.row_y.len() as u32);
        grid.row_first_cell.push(grid.cell_x.len() as u32);
        grid.cell_first_point.push(grid.original.len() as u32);
        // Freed before the copies in cell order: the build's peak memory.
        drop((coded, runs));

        // Both copies in one pass over the points in cell order, each
        // point read once (a pass per column read every point six times in
        // random order: 155 ms of the 2M-point build), [`COPY_BATCH`] points
        // at a time.
        let padded = grid.original.len() + GROUP;
        let [mut ex, mut ey, mut ez] = [(); 3].map(|_| vec![0.0; grid.original.len()]);
        let [mut cx, mut cy, mut cz] = [(); 3].map(|_| vec![0.0f32; padded]);
        (
            grid.original.par_chunks(COPY_BATCH),
            ex.par_chunks_mut(COPY_BATCH),
            ey.par_chunks_mut(COPY_BATCH),
            ez.par_chunks_mut(COPY_BATCH),
            cx.par_chunks_mut(COPY_BATCH),
            cy.par_chunks_mut(COPY_BATCH),
            cz.par_chunks_mut(COPY_BATCH),
        )
            .into_par_iter()
            .for_each(|(original, ex, ey, ez, cx, cy, cz)| {
                let points: [Vector3<f64>; COPY_BATCH] = std::array::from_fn(|j| {
                    original
                        .get(j)
                        .map_or_else(Vector3::zeros, |&i| local.at(i))
                });
                for (j, p) in points[..original.len()].iter().enumerate() {
                    (ex[j], ey[j], ez[j]) = (p.x, p.y, p.z);
                    let c = grid
                        .in_cells(p)
                        .map(|v| v.clamp(-COLUMN_LIMIT, COLUMN_LIMIT) as f32);
                    (cx[j], cy[j], cz[j]) = (c[0], c[1], c[2]);
                }
            });
        grid.exact = [ex, ey, ez];
        grid.columns = [cx, cy, cz];
        // Without duplicates the grid's indices are its own order, so that
        // what the caller keeps per point (normals, colours) is read in
        // cell order too.
        let kept = drop_duplicates.then(|| {
            let own_order = (0..grid.original.len() as u32).collect();
            std::mem::replace(&mut grid.original, own_order)
        });
        if !drop_duplicates {
            let mut place = vec![0; grid.original.len()];
            for (at, &i) in grid.original.iter().enumerate() {
                place[i as usize] = at as u32;
            }
            grid.place = Some(place);
        }
        (grid, kept)
    }

    /// Number of points.
    pub(super) fn len(&self) -> usize {
        self.original.len()
    }

    /// Number of occupied cells: what the index's memory grows with, besides
    /// the points.
    pub(super) fn cell_count(&self) -> usize {
        self.cell_x.len()
    }

    /// Number of occupied rows of cells.
    pub(super) fn row_count(&self) -> usize {
        self.row_y.len()
    }

    /// Edge of a cell, in the cloud's units.
    pub(super) fn cell_size(&self) -> f64 {
        self.fine_size * f64::from(1u32 << self.shift)
    }

    /// Point `index` of the slice built from, relative to the search's
    /// origin.
    pub(super) fn local_point(&self, index: u32) -> Vector3<f64> {
        let place = self
            .place
            .as_ref()
            .map_or(index, |place| place[index as usize]);
        self.point(place as usize)
    }

    /// The point at `place` in cell order, relative to the search's origin.
    fn point(&self, place: usize) -> Vector3<f64> {
        let [x, y, z] = &self.exact;
        Vector3::new(x[place], y[place], z[place])
    }

    /// Index in the slice built from of the point at `place` in cell order.
    pub(super) fn original(&self, place: u32) -> u32 {
        self.original[place as usize]
    }

    /// `p` relative to the grid's corner, in cell units.
    fn in_cells(&self, p: &Vector3<f64>) -> [f64; 3] {
        let cell_size = self.cell_size();
        [0, 1, 2].map(|axis| (p[axis] - self.corner[axis]) / cell_size)
    }

    /// The fine cell holding `p` (clamped into the grid).
    fn fine_cell(&self, p: &Vector3<f64>) -> [u32; 3] {
        [0, 1, 2].map(|axis| fine_coordinate((p[axis] - self.corner[axis]) / self.fine_size))
    }

    /// True when the box of cells around a ball of `radius` about `centre`
    /// holds every occupied cell: a larger ball scans every point.
    pub(super) fn covers_all(&self, centre: &Vector3<f64>, radius: f64) -> bool {
        let (low, high) = self.cell_box(centre, radius);
        (0..3).all(|axis| low[axis] == 0 && high[axis] >= self.last_cell[axis])
    }

    /// The cells that a ball of `radius` about `centre` can touch, lowest
    /// and highest corner.
    #[inline(always)]
    fn cell_box(&self, centre: &Vector3<f64>, radius: f64) -> ([u32; 3], [u32; 3]) {
        let radius = radius / self.fine_size;
        let centre = [0, 1, 2].map(|axis| (centre[axis] - self.corner[axis]) / self.fine_size);
        // Widened by far more than the rounding of the positions in fine
        // cell units, so a point the exact test keeps is never in a cell
        // left out.
        let reach = |c: f64| radius + (c.abs() + radius + 1.0) * f64::EPSILON * 64.0;
        let low = centre.map(|c| fine_coordinate(c - reach(c)) >> self.shift);
        let high = centre.map(|c| fine_coordinate(c + reach(c)) >> self.shift);
        (low, high)
    }

    /// Every point within `sqrt(radius_squared)` of `centre` (relative to
    /// the search's origin) into `out`, in the grid's global order.
    ///
    /// Every point of the rows the ball's box crosses is tested exactly
    /// and written, and only those that pass are kept (the write position
    /// advances by the test's outcome): no branch per point. A radius
    /// support keeps most of the points it scans (about 700 of 1,000 on
    /// sphere_seed), and there the branches of a filter that picked the
    /// passing points one by one cost more than the points' own work.
    /// Where the CPU has AVX2, four points at a time: their passing lanes
    /// packed to the front of each column by one permutation.
    pub(super) fn gather_within(
        &self,
        centre: &Vector3<f64>,
        radius_squared: f64,
        out: &mut Neighbourhood,
    ) {
        out.clear();
        if radius_squared.is_nan() || radius_squared < 0.0 || !centre.iter().all(|c| c.is_finite())
        {
            return;
        }
        let (low, high) = self.cell_box(centre, radius_squared.sqrt());
        let ball = Ball {
            centre: *centre,
            radius_squared,
        };
        self.visit_rows(&low, &high, |points| {
            // Room for the run, and for a whole lane of four written past
            // the last point kept.
            out.reserve(points.len() + LANES);
            let (mut place, end) = (points.start, points.end);
            #[cfg(target_arch = "x86_64")]
            if wide_lanes() {
                // SAFETY: the CPU has AVX2, and `out` has room for the
                // run and a lane more.
                place = unsafe { gather_lanes(self, points, &ball, out) };
            }
            // SAFETY: `out` has room for the run.
            unsafe { gather_plain(self, place..end, &ball, out) };
        });
    }

    /// The nearest point to `centre` (finite, relative to the search's
    /// origin) among the points of the cells a ball of `radius` about it
    /// can touch (its place in cell order and squared distance; of points
    /// at the same distance the first in the grid's order), and how far
    /// those cells reach around the centre: every point of the grid that
    /// close is among them, so a nearest point found no farther is the
    /// nearest of the whole grid.
    ///
    /// Scanning the whole box rather than the ball settles most searches
    /// in one or two passes: a small ball often holds no point, while its
    /// box of whole cells does (sphere_large's particles, up to 1.3
    /// neighbourhood radii off the surface, took 2.5 ball searches each).
    /// `known`: a point already found (an earlier pass's nearest, with its
    /// squared distance), which a point of the box replaces when nearer, or
    /// as near and earlier in the grid's order. The slices of
    /// cells are visited outward from the centre's, and once a point is
    /// found the box narrows to the ball through it: sphere_large −3% CPU
    /// (the whole box, in order, scanned points no nearer than the first
    /// found).
    pub(super) fn nearest_in_box(
        &self,
        centre: &Vector3<f64>,
        radius: f64,
        known: Option<(u32, f64)>,
    ) -> (Option<(u32, f64)>, f64) {
        crate::cpu::with_v3!(Self::nearest_in_box_body(self, centre, radius, known))
    }

    /// [`Self::nearest_in_box`]'s body, compiled into each copy
    /// ([`crate::cpu::with_v3!`]) with the cell box, the rows, the scan
    /// (its AVX2 loop in the v3 copy) and the box's reach inlined.
    #[inline(always)]
    fn nearest_in_box_body<const V3: bool>(
        &self,
        centre: &Vector3<f64>,
        radius: f64,
        known: Option<(u32, f64)>,
    ) -> (Option<(u32, f64)>, f64) {
        let (low, high) = self.cell_box(centre, radius);
        let scan_centre = ScanCentre::new(self, centre);
        // Read by the box's narrowing below while the scan's candidates set it.
        let best = Cell::new(known);
        // Every point passes until one is found; then only those the `f32`
        // test cannot tell from nearer ones.
        let mut limit = known.map_or(f32::INFINITY, |(_, distance_squared)| {
            scan_centre.limit(distance_squared.sqrt())
        });
        // Of points at the same distance, the first in the grid's order,
        // whatever order the slices are visited in.
        let mut candidate = |place: usize, limit: &mut f32| {
            let distance_squared = (self.point(place) - centre).norm_squared();
            let nearer = best.get().is_none_or(|(nearest_place, nearest)| {
                distance_squared < nearest
                    || (distance_squared == nearest && (place as u32) < nearest_place)
            });
            if nearer {
                best.set(Some((place as u32, distance_squared)));
                *limit = scan_centre.limit(distance_squared.sqrt());
            }
        };
        // Once a point is found, the rest of the box need only hold what
        // is as near: the box of the ball through it.
        let mut narrowed_to = f64::INFINITY;
        let mut run = |points| {
            self.scan(points, &scan_centre.in_cells, &mut limit, &mut candidate);
            let (_, distance_squared) = best.get()?;
            (distance_squared < narrowed_to).then(|| {
                narrowed_to = distance_squared;
                self.cell_box(centre, distance_squared.sqrt())
            })
        };
        // The slices outward from the centre's, where the nearest points
        // lie, so that the box narrows early.
        let (mut narrow_low, mut narrow_high) = (low, high);
        let middle = self.cell_box(centre, 0.0).0[2].clamp(low[2], high[2]);
        // middle, middle + 1, middle − 1, middle + 2, …: one call site, so
        // that `run` is inlined into each copy of this body.
        for step in 0..=2 * (high[2] - low[2]) {
            let offset = step.div_ceil(2);
            let z = if step % 2 == 1 {
                middle.checked_add(offset)
            } else {
                middle.checked_sub(offset)
            };
            let last = narrow_high[2].min(self.last_slice());
            if let Some(z) = z.filter(|z| (narrow_low[2]..=last).contains(z)) {
                self.visit_slice(z, &mut narrow_low, &mut narrow_high, &mut run);
            }
        }
        (best.get(), radius.max(self.box_reach(centre, &low, &high)))
    }

    /// How far the box of cells from `low` to `high` reaches around
    /// `centre`: the distance to its nearest face, not counting faces at
    /// the grid's edge (nothing lies beyond them: border cells hold the
    /// points clamped into them), less far more than the rounding of
    /// positions in fine cell units.
    #[inline(always)]
    fn box_reach(&self, centre: &Vector3<f64>, low: &[u32; 3], high: &[u32; 3]) -> f64 {
        let mut reach = f64::INFINITY;
        let mut largest = 0.0f64;
        for axis in 0..3 {
            let c = (centre[axis] - self.corner[axis]) / self.fine_size;
            largest = largest.max(c.abs());
            if low[axis] > 0 {
                reach = reach.min(c - f64::from(low[axis] << self.shift));
            }
            if high[axis] < self.last_cell[axis] {
                reach = reach.min(f64::from((high[axis] + 1) << self.shift) - c);
            }
        }
        if reach == f64::INFINITY {
            return reach;
        }
        let rounding = (largest + reach.abs() + 1.0) * f64::EPSILON * 64.0;
        (reach - rounding).max(0.0) * self.fine_size
    }

    /// Calls `run(points)` with the run of points of each occupied row in
    /// the box from `low` to `high` (cell coordinates), rows in order.
    #[inline(always)]
    fn visit_rows(
        &self,
        low: &[u32; 3],
        high: &[u32; 3],
        mut run: impl FnMut(std::ops::Range<usize>),
    ) {
        let (mut low, mut high) = (*low, *high);
        for z in low[2]..=high[2].min(self.last_slice()) {
            self.visit_slice(z, &mut low, &mut high, &mut |points| {
                run(points);
                None
            });
        }
    }

    /// The last `z` slice of cells.
    fn last_slice(&self) -> u32 {
        (self.slice_first_row.len() - 2) as u32
    }

    /// Calls `run(points)` with the run of points of each occupied row of
    /// slice `z` in the box from `low` to `high`, rows in order. `run` may
    /// return a smaller box that holds all that is left to find (a
    /// nearest-point search that found a point): the box narrows to it for
    /// the rows after, and for the caller's slices after.
    #[inline(always)]
    fn visit_slice(
        &self,
        z: u32,
        low: &mut [u32; 3],
        high: &mut [u32; 3],
        run: &mut impl FnMut(std::ops::Range<usize>) -> Option<([u32; 3], [u32; 3])>,
    ) {
        let z = z as usize;
        let rows = self.slice_first_row[z] as usize..self.slice_first_row[z + 1] as usize;
        for row in between(&self.row_y, rows, low[1], high[1]) {
            // The box may have narrowed since the slice's rows were found.
            let y = self.row_y[row];
            if y > high[1] {
                break;
            }
            if y < low[1] {
                continue;
            }
            let cells = self.row_first_cell[row] as usize..self.row_first_cell[row + 1] as usize;
            let cells = between(&self.cell_x, cells, low[0], high[0]);
            if cells.is_empty() {
                continue;
            }
            let narrower = run(self.cell_first_point[cells.start] as usize
                ..self.cell_first_point[cells.end] as usize);
            if let Some((narrow_low, narrow_high)) = narrower {
                for axis in 0..3 {
                    low[axis] = low[axis].max(narrow_low[axis]);
                    high[axis] = high[axis].min(narrow_high[axis]);
                }
            }
        }
    }

    /// Calls `candidate(place, limit)` for the points of `points` whose
    /// `f32` squared distance (cell units) to `centre` is at most `limit`,
    /// in order; a candidate may lower the limit for the points after it.
    #[inline(always)]
    fn scan(
        &self,
        points: std::ops::Range<usize>,
        centre: &[f32; 3],
        limit: &mut f32,
        candidate: &mut impl FnMut(usize, &mut f32),
    ) {
        #[cfg(target_arch = "x86_64")]
        if wide_lanes() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { scan_avx(&self.columns, points, centre, limit, candidate) };
        }
        scan_plain(&self.columns, points, centre, limit, candidate);
    }
}

/// A query's centre as the `f32` scan sees it: in cell units, with the
/// margin that makes the `f32` test pass every point the exact one keeps.
struct ScanCentre {
    in_cells: [f32; 3],
    /// Half-width of the margin per cell unit of radius, and its part that
    /// does not grow with the radius (the rounding of positions far from
    /// the grid's corner to `f32`).
    slack: f64,
    cell_size: f64,
}

impl ScanCentre {
    fn new(grid: &CellGrid, centre: &Vector3<f64>) -> Self {
        let in_cells = grid.in_cells(centre);
        let largest = in_cells.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        ScanCentre {
            in_cells: in_cells.map(|c| c.clamp(-COLUMN_LIMIT, COLUMN_LIMIT) as f32),
            slack: (largest + 1.0) * 1e-6,
            cell_size: grid.cell_size(),
        }
    }

    /// The `f32` squared distance (cell units) that passes every point
    /// within `radius` (the cloud's units): the radius is widened by far
    /// more than the rounding of positions near the centre to `f32`.
    /// Points it lets through in excess are few.
    fn limit(&self, radius: f64) -> f32 {
        let radius = radius / self.cell_size;
        let widened = radius + self.slack + radius * 1e-6;
        (widened * widened * (1.0 + 1e-6)) as f32
    }
}

/// [`CellGrid::scan`] by the plain definition.
fn scan_plain(
    columns: &[Vec<f32>; 3],
    points: std::ops::Range<usize>,
    centre: &[f32; 3],
    limit: &mut f32,
    candidate: &mut impl FnMut(usize, &mut f32),
) {
    for (start, [xs, ys, zs]) in groups(columns, points.clone()) {
        // One bit per point that passes: no branch per point.
        let mut passed = 0u32;
        for j in 0..GROUP {
            let (dx, dy, dz) = (xs[j] - centre[0], ys[j] - centre[1], zs[j] - centre[2]);
            passed |= u32::from(dx * dx + dy * dy + dz * dz <= *limit) << j;
        }
        visit_passed(passed, start, points.end, limit, candidate);
    }
}

/// The groups of [`GROUP`] points that cover `points`: the first point's
/// place and the group's columns (the last group reaches into the next
/// run's points or the padding).
#[inline(always)]
fn groups(
    columns: &[Vec<f32>; 3],
    points: std::ops::Range<usize>,
) -> impl Iterator<Item = (usize, [&[f32; GROUP]; 3])> {
    points.step_by(GROUP).map(move |start| {
        let group = columns.each_ref().map(|column| {
            <&[f32; GROUP]>::try_from(&column[start..start + GROUP]).expect("a group is GROUP long")
        });
        (start, group)
    })
}

/// Calls `candidate` for each point of the group at `start` whose bit is
/// set in `passed`, in order, leaving out those at or past `end` (the
/// padding, or the next run's points).
#[inline(always)]
fn visit_passed(
    mut passed: u32,
    start: usize,
    end: usize,
    limit: &mut f32,
    candidate: &mut impl FnMut(usize, &mut f32),
) {
    passed &= (1u32 << (end - start).min(GROUP)) - 1;
    while passed != 0 {
        candidate(start + passed.trailing_zeros() as usize, limit);
        passed &= passed - 1;
    }
}

/// [`CellGrid::scan`] with a group in one AVX register: eight `f32`
/// distances, one compare, one move of the sign bits. Left to the compiler
/// for the plain x86-64 target, the loop came out in SSE halves with the
/// bits gathered one by one (then a third of sphere_large's time, when the
/// gathers used this scan too). The fused multiply-adds round differently from the plain path;
/// the `f32` test is only a filter with a margin far above either rounding,
/// and the exact test decides, so the points found are the same.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_avx(
    columns: &[Vec<f32>; 3],
    points: std::ops::Range<usize>,
    centre: &[f32; 3],
    limit: &mut f32,
    candidate: &mut impl FnMut(usize, &mut f32),
) {
    use std::arch::x86_64::*;
    let [cx, cy, cz] = centre.map(|c| _mm256_set1_ps(c));
    for (start, [xs, ys, zs]) in groups(columns, points.clone()) {
        // SAFETY: each group is GROUP = 8 readable `f32`.
        let (x, y, z) = unsafe {
            (
                _mm256_loadu_ps(xs.as_ptr()),
                _mm256_loadu_ps(ys.as_ptr()),
                _mm256_loadu_ps(zs.as_ptr()),
            )
        };
        let (dx, dy, dz) = (
            _mm256_sub_ps(x, cx),
            _mm256_sub_ps(y, cy),
            _mm256_sub_ps(z, cz),
        );
        let squared = _mm256_fmadd_ps(dz, dz, _mm256_fmadd_ps(dy, dy, _mm256_mul_ps(dx, dx)));
        let within = _mm256_cmp_ps::<_CMP_LE_OQ>(squared, _mm256_set1_ps(*limit));
        let passed = _mm256_movemask_ps(within) as u32;
        visit_passed(passed, start, points.end, limit, candidate);
    }
}

/// A gather's ball, relative to the search's origin.
struct Ball {
    centre: Vector3<f64>,
    radius_squared: f64,
}

/// Appends the points at `places` (cell order) within `ball` to `out`, one
/// by one, each written and kept when it passes.
///
/// # Safety
/// `out` must have room for `places.len()` more neighbours.
unsafe fn gather_plain(
    grid: &CellGrid,
    places: std::ops::Range<usize>,
    ball: &Ball,
    out: &mut Neighbourhood,
) {
    let start = out.len();
    let mut kept = start;
    let [ox, oy, oz] = &mut out.offset;
    let index = out.index.as_mut_ptr();
    let (ox, oy, oz) = (ox.as_mut_ptr(), oy.as_mut_ptr(), oz.as_mut_ptr());
    let distance = out.distance_squared.as_mut_ptr();
    let centre = &ball.centre;
    for place in places {
        let offset = [0, 1, 2].map(|axis| grid.exact[axis][place] - centre[axis]);
        // As `Vector3::norm_squared` sums, and as the lanes do.
        let distance_squared =
            offset[0] * offset[0] + offset[1] * offset[1] + offset[2] * offset[2];
        // SAFETY: `kept` is below `start + places.len()`, within the room
        // the caller made.
        unsafe {
            index.add(kept).write(grid.original[place]);
            ox.add(kept).write(offset[0]);
            oy.add(kept).write(offset[1]);
            oz.add(kept).write(offset[2]);
            distance.add(kept).write(distance_squared);
        }
        kept += usize::from(distance_squared <= ball.radius_squared);
    }
    // SAFETY: every entry below `kept` was written, here or before.
    unsafe { out.set_len(kept) };
}

/// [`gather_plain`] four points at a time over the whole lanes of
/// `places`; returns where the lanes stopped (the rest, under four points,
/// is [`gather_plain`]'s). Each lane writes all four of its points' values,
/// the passing ones packed to the front, at the first place not yet kept,
/// and advances it by the number that passed: the same neighbours, values
/// and order as [`gather_plain`].
///
/// # Safety
/// The CPU must have AVX2; `out` must have room for `places.len()` + 4
/// more neighbours.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gather_lanes(
    grid: &CellGrid,
    places: std::ops::Range<usize>,
    ball: &Ball,
    out: &mut Neighbourhood,
) -> usize {
    use std::arch::x86_64::*;
    let mut kept = out.len();
    let [ox, oy, oz] = &mut out.offset;
    let index = out.index.as_mut_ptr();
    let (ox, oy, oz) = (ox.as_mut_ptr(), oy.as_mut_ptr(), oz.as_mut_ptr());
    let distance = out.distance_squared.as_mut_ptr();
    let [cx, cy, cz] = [0, 1, 2].map(|axis| _mm256_set1_pd(ball.centre[axis]));
    let radius_squared = _mm256_set1_pd(ball.radius_squared);
    let whole = places.start + (places.len() / LANES) * LANES;
    let [xs, ys, zs] = &grid.exact;
    for place in (places.start..whole).step_by(LANES) {
        // SAFETY: `place..place + 4` lies within `places`, hence within
        // every column and `original`; the writes go to
        // `kept..kept + 4`, within the room the caller made (`kept` is at
        // most `place - places.start` past the start).
        unsafe {
            let dx = _mm256_sub_pd(_mm256_loadu_pd(xs.as_ptr().add(place)), cx);
            let dy = _mm256_sub_pd(_mm256_loadu_pd(ys.as_ptr().add(place)), cy);
            let dz = _mm256_sub_pd(_mm256_loadu_pd(zs.as_ptr().add(place)), cz);
            // (x² + y²) + z², unfused, as `gather_plain` sums.
            let squared = _mm256_add_pd(
                _mm256_add_pd(_mm256_mul_pd(dx, dx), _mm256_mul_pd(dy, dy)),
                _mm256_mul_pd(dz, dz),
            );
            let passed = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(squared, radius_squared));
            let (wide, narrow) = packing(passed as usize);
            _mm256_storeu_pd(ox.add(kept), pack(dx, wide));
            _mm256_storeu_pd(oy.add(kept), pack(dy, wide));
            _mm256_storeu_pd(oz.add(kept), pack(dz, wide));
            _mm256_storeu_pd(distance.add(kept), pack(squared, wide));
            let indices =
                _mm256_castsi128_si256(_mm_loadu_si128(grid.original.as_ptr().add(place).cast()));
            let indices = _mm256_permutevar8x32_epi32(indices, narrow);
            _mm_storeu_si128(index.add(kept).cast(), _mm256_castsi256_si128(indices));
            kept += passed.count_ones() as usize;
        }
    }
    // SAFETY: every entry below `kept` was written, here or before.
    unsafe { out.set_len(kept) };
    whole
}

/// The part of `range` (indices into `coordinates`, sorted increasing
/// there) whose coordinates lie in `low..=high`. A run without gaps (rows
/// of a slice, cells of a row on a surface across it) is indexed directly;
/// the end is walked to, as a ball's box is a few cells wide.
///
/// Always inlined: returning a range (a pair), a call to it kept LLVM from
/// inlining its caller into the v3 copy of [`CellGrid::nearest_in_box`]
/// ("conflicting attributes", see [`crate::cpu::with_v3!`]).
#[inline(always)]
fn between(
    coordinates: &[u32],
    range: std::ops::Range<usize>,
    low: u32,
    high: u32,
) -> std::ops::Range<usize> {
    let run = &coordinates[range.clone()];
    let (Some(&first), Some(&last)) = (run.first(), run.last()) else {
        return range;
    };
    let start = if (last - first) as usize + 1 == run.len() {
        low.saturating_sub(first).min(run.len() as u32) as usize
    } else {
        run.partition_point(|&c| c < low)
    };
    let end = start + run[start..].iter().take_while(|&&c| c <= high).count();
    range.start + start..range.start + end
}

/// Key of the row of cells at `z`, `y`; rows sort by `z`, then `y`.
fn row_key(z: u32, y: u32) -> u64 {
    u64::from(z) << CELL_BITS | u64::from(y)
}

/// `(z, y)` of a row key.
fn split_row(key: u64) -> (u32, u32) {
    (
        (key >> CELL_BITS) as u32,
        (key & u64::from(MAX_CELL)) as u32,
    )
}

/// The fine cell coordinate of a position in fine cell units, clamped into
/// the grid. Monotone in its argument, which is all a ball's box needs.
fn fine_coordinate(in_fine_cells: f64) -> u32 {
    // Negative and NaN go to 0, past the grid to the edge.
    floor_i64(in_fine_cells).clamp(0, i64::from(MAX_CELL)) as u32
}

/// `coded` (sorted by code, then index) less each point at exactly the
/// position in `local` of another with a lower index: exact duplicates,
/// which add no shape to a fit (and under `Nearest(k)` would fill the k
/// nearest with one position). Equal positions have equal codes; a run of
/// equal codes (a stack of copies, or points closer than a fine cell) is
/// ordered by position, then index, so that copies sit side by side
/// however many points share the cell.
fn drop_coincident(coded: &mut Vec<(u64, u32)>, local: Local) {
    let position = |index: u32| position_bits(&local.at(index));
    for run in coded.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by_key(|&(_, index)| (position(index), index));
        }
    }
    // Equal positions have equal codes: copies now sit side by side. The
    // codes are compared first, so that only points sharing a fine cell
    // read their positions (a read per point, in random order, cost the
    // build of sphere_large's 2M points 45 ms).
    coded.dedup_by(|a, b| a.0 == b.0 && position(a.1) == position(b.1));
}

/// A position's coordinates as bits, equal exactly when the coordinates
/// are (−0 counted as 0).
fn position_bits(p: &Vector3<f64>) -> [u64; 3] {
    p.map(|v| (v + 0.0).to_bits()).into()
}

/// The grid's corner (relative to the search's origin) and fine cell size
/// for `local`: 2^21 fine cells on a side span the box that holds all but
/// the outermost points, so a far outlier does not stretch the cells.
fn fine_grid(local: Local) -> (Vector3<f64>, f64) {
    let fine = f64::from(1u32 << CELL_BITS);
    let (low, high) = robust_box(local);
    let fine_size = (high - low).max() / fine;
    if fine_size > 0.0 && fine_size.is_finite() {
        return (low, fine_size);
    }
    // All points (or all but a few) at one position: the level chosen will
    // put them in one cell. The corner is the lowest point, so that all are
    // in cell 0 or beyond.
    let lowest = local.iter().fold(low, |m, p| m.inf(&p));
    let extent = (local.iter().fold(high, |m, p| m.sup(&p)) - lowest).max() / fine;
    let fine_size = if extent > 0.0 && extent.is_finite() {
        extent
    } else {
        1.0
    };
    (lowest, fine_size)
}

/// The level (cells of 2^(21 − level) fine cells of `fine_size` on a
/// side) whose occupied cells hold closest to the points a cell aims at
/// on the mean, from the points' sorted Morton codes: [`POINTS_PER_CELL`],
/// or more for balls of `ball_radius` that hold more than [`TUNED_BALL`].
fn level(coded: &[(u64, u32)], fine_size: f64, ball_radius: Option<f64>) -> u32 {
    let points = coded.len() as f64;
    let occupied = occupancy(coded);
    let aim = ball_radius.map_or(POINTS_PER_CELL, |radius| {
        points_per_cell(points, &occupied, fine_size, radius)
    });
    let mut best = (0, f64::INFINITY);
    for (level, occupied) in (0..).zip(&occupied) {
        let miss = (points / occupied / aim).ln().abs();
        if miss < best.1 {
            best = (level, miss);
        }
    }
    best.0
}

/// The occupied cells at each level (0 to 21), from the points' sorted
/// Morton codes.
fn occupancy(coded: &[(u64, u32)]) -> Vec<f64> {
    // `first_split[l]`: pairs of neighbouring codes that first differ at
    // level l (level 1 halves the box, level 21 is a code's last 3 bits).
    let mut first_split = [0usize; CELL_BITS as usize + 1];
    for pair in coded.windows(2) {
        let differ = pair[0].0 ^ pair[1].0;
        if differ != 0 {
            let highest_bit = 63 - differ.leading_zeros();
            first_split[(CELL_BITS - highest_bit / 3) as usize] += 1;
        }
    }
    first_split
        .iter()
        .scan(1usize, |occupied, splits| {
            *occupied += splits;
            Some(*occupied as f64)
        })
        .collect()
}

/// The points a cell aims at for balls of `radius`: [`TUNED_BALL`]'s rule
/// on their count ([`ball_points`]), never fewer than
/// [`POINTS_PER_CELL`].
fn points_per_cell(points: f64, occupied: &[f64], fine_size: f64, radius: f64) -> f64 {
    let ball = ball_points(points, occupied, fine_size, radius);
    let aim = POINTS_PER_CELL * (ball / TUNED_BALL).sqrt();
    if aim.is_finite() {
        aim.max(POINTS_PER_CELL)
    } else {
        POINTS_PER_CELL
    }
}

/// The points in a ball of `radius` on the surface, read off the density
/// at the level whose cells are nearest the ball's radius (`occupied`
/// cells at each level, cells of `fine_size · 2^(21 − level)` on a side):
/// a cell of side c holds c² / [`CELLS_PER_AREA`] of the surface on the
/// mean. NaN for a radius that is not positive.
fn ball_points(points: f64, occupied: &[f64], fine_size: f64, radius: f64) -> f64 {
    let side = |level: usize| fine_size * f64::from(1u32 << (CELL_BITS as usize - level));
    let off = |level: usize| (side(level) / radius).ln().abs();
    let Some(level) = (0..occupied.len()).min_by(|&a, &b| off(a).total_cmp(&off(b))) else {
        return f64::NAN;
    };
    let per_cell = points / occupied[level];
    CELLS_PER_AREA * per_cell * std::f64::consts::PI * radius * radius / (side(level) * side(level))
}

/// The box holding all but the outermost [`BOX_TAIL`] of a sample of
/// `local` on each side of each axis, each position of the sample counted
/// once: a stack of copies far from the rest (a scanner's no-returns
/// written at the origin) is as much an outlier as one point there, and
/// [`CellGrid::distinct`] merges it into one; counted as many, it would hold
/// the box open and every cell wide. Cut to the cloud's body: where more
/// than a thousandth of the points are garbage (coordinates of 1e20 or
/// 3e38), the box held them and the whole scan fell in one fine cell
/// (200k points with 2% of them: every query scanned the cloud).
fn robust_box(local: Local) -> Bounds {
    let step = local.len().div_ceil(BOX_SAMPLE).max(1);
    let mut sample: Vec<[u64; 3]> = local
        .iter()
        .step_by(step)
        .map(|p| position_bits(&p))
        .collect();
    sample.sort_unstable();
    sample.dedup();
    let ends = [0, 1, 2].map(|axis| {
        let mut values: Vec<f64> = sample.iter().map(|p| f64::from_bits(p[axis])).collect();
        trimmed_range(&mut values, BOX_TAIL)
    });
    (
        Vector3::from(ends.map(|e| e.0)).sup(&local.body.0),
        Vector3::from(ends.map(|e| e.1)).inf(&local.body.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX scan passes exactly the points the plain one does, limits
    /// on either side of points' distances included.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx_scan_passes_what_the_plain_scan_passes() {
        if !wide_lanes() {
            return; // nothing to compare on this CPU
        }
        // A scrambled but fixed set of positions in cell units, and the
        // padding the grid's columns carry.
        let count = 1001;
        let coordinate =
            |i: usize, axis: usize| ((i * (7 + axis * 13) * 2654435761) % 10007) as f32 / 997.0;
        let columns: [Vec<f32>; 3] = [0, 1, 2].map(|axis| {
            (0..count)
                .map(|i| coordinate(i, axis))
                .chain([0.0; GROUP])
                .collect()
        });
        let collect = |avx: bool, points: std::ops::Range<usize>, centre: &[f32; 3], limit: f32| {
            let mut passed = Vec::new();
            let mut candidate = |place, _: &mut f32| passed.push(place);
            let mut limit = limit;
            if avx {
                // SAFETY: the CPU has AVX2 and FMA, checked above.
                unsafe { scan_avx(&columns, points, centre, &mut limit, &mut candidate) };
            } else {
                scan_plain(&columns, points, centre, &mut limit, &mut candidate);
            }
            passed
        };
        let mut compared = 0;
        for (first, end) in [(0, count), (3, 17), (8, 9), (500, 731)] {
            for centre in [
                [5.0, 5.0, 5.0],
                [0.1, 9.9, 3.3],
                [coordinate(40, 0), coordinate(40, 1), coordinate(40, 2)],
            ] {
                for limit in [0.0, 0.5, 4.0, 30.0, 1e9] {
                    let plain = collect(false, first..end, &centre, limit);
                    assert_eq!(collect(true, first..end, &centre, limit), plain);
                    assert!(plain.iter().all(|&p| (first..end).contains(&p)));
                    compared += plain.len();
                }
            }
        }
        assert!(compared > count, "the limits pass points: {compared}");
    }

    /// Cells aim at [`POINTS_PER_CELL`] points for small balls, and at
    /// `POINTS_PER_CELL · √(B / TUNED_BALL)` for balls of B points more.
    #[test]
    fn cells_grow_with_the_balls_of_a_radius_support() {
        // 40,000 points jittered on a tilted unit square: 40,000 per unit
        // area, seen at about 1.2 times in cells of the grid's axes.
        let side = 200;
        let positions: Vec<Point3<f64>> = (0..side * side)
            .map(|i| {
                let (u, v) = ((i % side) as f64, (i / side) as f64);
                let jitter = (i as f64 * 0.618_034).fract() * 0.5;
                let (u, v) = ((u + jitter) / side as f64, (v + 0.5 - jitter) / side as f64);
                Point3::new(u, v * 0.8, v * 0.6)
            })
            .collect();
        let origin = Point3::new(0.5, 0.4, 0.3);
        let body = crate::cloud::body_bounds(&positions).unwrap();
        let local = Local {
            positions: &positions,
            origin,
            body: (body.0 - origin, body.1 - origin),
        };
        let mean_per_cell = |ball_radius: Option<f64>| {
            let grid = CellGrid::build(local, true, ball_radius).0;
            grid.len() as f64 / grid.cell_count() as f64
        };
        // Levels are powers of two: on a surface a level holds four times
        // the points of the next finer one, so the mean lands within a
        // factor of two of the aim.
        let near = |mean: f64, aim: f64| (mean / aim).ln().abs() <= 2f64.ln() * 1.01;
        let small = mean_per_cell(None);
        assert!(near(small, POINTS_PER_CELL), "{small}");
        assert_eq!(mean_per_cell(Some(0.005)), small, "a ball of 3 points");
        // A ball of radius 0.05 holds about 314 points, 0.1 about 1,257.
        // The count read off the cells takes the mean crossing, 1.5 cells
        // per c²; a plane crosses from 1 (along the axes) to √3, so the
        // count is right within a factor 0.87..1.5, and a little more for
        // the plane's edge cells at these coarse levels.
        let grid = CellGrid::build(local, true, None).0;
        let mut coded: Vec<(u64, u32)> = (0..positions.len() as u32)
            .map(|i| (morton_code(grid.fine_cell(&local.at(i))), i))
            .collect();
        coded.sort_unstable();
        let occupied = occupancy(&coded);
        for radius in [0.05, 0.1] {
            let ball = ball_points(coded.len() as f64, &occupied, grid.fine_size, radius);
            let truth = 40_000.0 * std::f64::consts::PI * radius * radius;
            assert!(
                (0.8..1.6).contains(&(ball / truth)),
                "{ball} against {truth}"
            );
        }
        let aim = POINTS_PER_CELL * (40_000.0 * std::f64::consts::PI * 0.01 / TUNED_BALL).sqrt();
        let large = mean_per_cell(Some(0.1));
        assert!(
            near(large, aim),
            "{large} points a cell against an aim of {aim}"
        );
        assert!(large > 2.0 * small, "{large} against {small}");
    }
}
