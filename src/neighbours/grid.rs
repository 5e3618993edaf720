//! A uniform grid of cubic cells over the cloud, stored sparsely: only the
//! occupied cells exist, so memory follows the point count, not the volume
//! of the bounding box (a street scan is a thin shell in a 1 km box).
//!
//! The points are sorted by cell, cells by row (`z`, then `y`) and by `x`
//! within a row, so that every row of cells is one contiguous run of
//! points. A query walks the occupied rows that cross the box around its
//! ball (one binary search per `z` slice of the box), finds the run of each
//! row by two binary searches over the row's cells, and scans the run in
//! batches: squared distances for the whole batch in `f32` (no branch per
//! point, so the compiler vectorises it), then the exact `f64` test for the
//! few that pass a slightly widened radius.
//!
//! Every query visits points in one global order (rows by `z`, `y`, cells
//! by `x`, points within a cell in a fixed order), whatever the size of its
//! box: two points found by two queries of different radii come in the same
//! relative order. The fit sums neighbours in that order, so its result
//! does not depend on the radius a search started from.

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::order::morton_keys;

/// Mean number of points in an occupied cell that the cell size aims at: a
/// `Nearest(30)` ball on a surface then spans about 4 × 4 cells. Measured
/// on sphere_large: 2 and 8 are slower.
const POINTS_PER_CELL: f64 = 4.0;

/// Bits of a cell coordinate on each axis: a row key holds `z` and `y`, a
/// point's sort key `z`, `y` and `x`.
const CELL_BITS: u32 = 21;

/// Largest cell coordinate; points beyond the grid's box are clamped into
/// its border cells (still found: the mapping from position to cell only
/// has to be monotone for the box of a ball to hold the ball).
const MAX_CELL: u32 = (1 << CELL_BITS) - 1;

/// Points sampled per axis to find the box the cell size is chosen over.
const BOX_SAMPLE: usize = 8192;

/// Fraction of the sample left out at each end of each axis: a far outlier
/// does not stretch the box (and with it the cells) over empty space.
const BOX_TAIL: f64 = 0.001;

/// Points whose distances one pass of the scan computes at once.
const BATCH: usize = 64;

/// Largest magnitude of a position in cell units kept in the `f32`
/// columns: beyond it they would overflow the squared distance.
const COLUMN_LIMIT: f64 = (1u64 << 50) as f64;

/// The grid, its points in cell order.
pub(super) struct CellGrid {
    /// Corner of cell (0, 0, 0), relative to the search's origin.
    corner: Vector3<f64>,
    /// Edge of a cell, in the cloud's units.
    cell_size: f64,
    /// Largest occupied cell coordinate on each axis.
    last_cell: [u32; 3],
    /// Occupied rows in order: `z << CELL_BITS | y`.
    row_keys: Vec<u64>,
    /// First cell of each row, and one past the last row's last cell.
    row_first_cell: Vec<u32>,
    /// `x` coordinate of each occupied cell, rows in order.
    cell_x: Vec<u32>,
    /// First point of each cell, and one past the last cell's last point.
    cell_first_point: Vec<u32>,
    /// Positions relative to `corner` in cell units, one column per axis,
    /// in cell order: the scan reads these.
    columns: [Vec<f32>; 3],
    /// Positions relative to the search's origin, in cell order: the exact
    /// test and the offsets handed to the fit.
    local: Vec<Vector3<f64>>,
    /// For each point in cell order, its index in the slice built from.
    original: Vec<u32>,
    /// For each index of the slice built from, its place in cell order.
    place: Vec<u32>,
}

impl CellGrid {
    /// Sorts `local` (positions relative to the search's origin, finite,
    /// not empty) into cells.
    pub(super) fn new(local: &[Vector3<f64>]) -> Self {
        let (corner, cell_size) = layout(local);
        let mut grid = CellGrid {
            corner,
            cell_size,
            last_cell: [0; 3],
            row_keys: Vec::new(),
            row_first_cell: Vec::new(),
            cell_x: Vec::new(),
            cell_first_point: Vec::new(),
            columns: Default::default(),
            local: Vec::new(),
            original: Vec::new(),
            place: Vec::new(),
        };
        let mut keyed: Vec<(u64, u32)> = local
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let [x, y, z] = grid.cell_of(&grid.in_cells(p));
                (row_key(z, y) << CELL_BITS | u64::from(x), i as u32)
            })
            .collect();
        // Equal keys (one cell) keep the order of the input: a fixed order.
        keyed.par_sort_unstable();

        let mut last_key = u64::MAX;
        for (place, &(key, _)) in keyed.iter().enumerate() {
            if key == last_key {
                continue;
            }
            let (row, x) = (key >> CELL_BITS, (key & u64::from(MAX_CELL)) as u32);
            if grid.row_keys.last() != Some(&row) {
                grid.row_keys.push(row);
                grid.row_first_cell.push(grid.cell_x.len() as u32);
            }
            grid.cell_x.push(x);
            grid.cell_first_point.push(place as u32);
            let (z, y) = split_row(row);
            for (last, c) in grid.last_cell.iter_mut().zip([x, y, z]) {
                *last = (*last).max(c);
            }
            last_key = key;
        }
        grid.row_first_cell.push(grid.cell_x.len() as u32);
        grid.cell_first_point.push(keyed.len() as u32);

        grid.original = keyed.into_iter().map(|(_, i)| i).collect();
        grid.local = grid
            .original
            .par_iter()
            .map(|&i| local[i as usize])
            .collect();
        let columns: Vec<[f32; 3]> = grid
            .local
            .par_iter()
            .map(|p| {
                grid.in_cells(p)
                    .map(|c| c.clamp(-COLUMN_LIMIT, COLUMN_LIMIT) as f32)
            })
            .collect();
        grid.columns = [0, 1, 2].map(|axis| columns.iter().map(|c| c[axis]).collect());
        grid.place = vec![0; grid.original.len()];
        for (place, &i) in grid.original.iter().enumerate() {
            grid.place[i as usize] = place as u32;
        }
        grid
    }

    /// Number of points.
    pub(super) fn len(&self) -> usize {
        self.local.len()
    }

    /// Number of occupied cells: what the index's memory grows with, besides
    /// the points.
    pub(super) fn cell_count(&self) -> usize {
        self.cell_x.len()
    }

    /// Number of occupied rows of cells.
    pub(super) fn row_count(&self) -> usize {
        self.row_keys.len()
    }

    /// Edge of a cell, in the cloud's units.
    pub(super) fn cell_size(&self) -> f64 {
        self.cell_size
    }

    /// Point `index` of the slice built from, relative to the search's
    /// origin.
    pub(super) fn local_point(&self, index: u32) -> Vector3<f64> {
        self.local[self.place[index as usize] as usize]
    }

    /// Index in the slice built from of the point at `place` in cell order.
    pub(super) fn original(&self, place: u32) -> u32 {
        self.original[place as usize]
    }

    /// `p` relative to the grid's corner, in cell units.
    fn in_cells(&self, p: &Vector3<f64>) -> [f64; 3] {
        [0, 1, 2].map(|axis| (p[axis] - self.corner[axis]) / self.cell_size)
    }

    /// The cell holding a position in cell units (clamped into the grid).
    fn cell_of(&self, in_cells: &[f64; 3]) -> [u32; 3] {
        in_cells.map(cell_coordinate)
    }

    /// True when the box of cells around a ball of `radius` about `centre`
    /// holds every occupied cell: a larger ball scans every point.
    pub(super) fn covers_all(&self, centre: &Vector3<f64>, radius: f64) -> bool {
        let (low, high) = self.cell_box(&self.in_cells(centre), radius / self.cell_size);
        (0..3).all(|axis| low[axis] == 0 && high[axis] >= self.last_cell[axis])
    }

    /// The cells that a ball of `radius` (cell units) about `centre` (cell
    /// units) can touch, lowest and highest corner.
    fn cell_box(&self, centre: &[f64; 3], radius: f64) -> ([u32; 3], [u32; 3]) {
        // Widened by far more than the rounding of the positions in cell
        // units, so a point the exact test keeps is never in a cell left out.
        let reach = |c: f64| radius + (c.abs() + radius + 1.0) * f64::EPSILON * 64.0;
        let low = centre.map(|c| cell_coordinate(c - reach(c)));
        let high = centre.map(|c| cell_coordinate(c + reach(c)));
        (low, high)
    }

    /// Calls `visit(place, offset, distance_squared)` for every point within
    /// `sqrt(radius_squared)` of `centre` (relative to the search's origin),
    /// in the grid's global order; `offset` is `p − centre`.
    pub(super) fn visit_within(
        &self,
        centre: &Vector3<f64>,
        radius_squared: f64,
        mut visit: impl FnMut(u32, Vector3<f64>, f64),
    ) {
        if radius_squared.is_nan() || radius_squared < 0.0 || !centre.iter().all(|c| c.is_finite())
        {
            return;
        }
        let radius = radius_squared.sqrt() / self.cell_size;
        let in_cells = self.in_cells(centre);
        let (low, high) = self.cell_box(&in_cells, radius);
        // The `f32` test passes every point the exact one keeps: the radius
        // is widened by far more than the rounding of positions near the
        // centre to `f32`. Points it lets through in excess are few.
        let largest = in_cells.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        let slack = (largest + radius + 1.0) * 1e-6;
        let limit = ((radius + slack) * (radius + slack) * (1.0 + 1e-6)) as f32;
        let centre32 = in_cells.map(|c| c.clamp(-COLUMN_LIMIT, COLUMN_LIMIT) as f32);
        let mut candidate = |place: usize| {
            let offset = self.local[place] - centre;
            let distance_squared = offset.norm_squared();
            if distance_squared <= radius_squared {
                visit(place as u32, offset, distance_squared);
            }
        };
        self.visit_rows(&low, &high, |points| {
            self.scan(points, &centre32, limit, &mut candidate);
        });
    }

    /// Calls `run(points)` with the run of points of each occupied row in
    /// the box from `low` to `high` (cell coordinates), rows in order.
    fn visit_rows(
        &self,
        low: &[u32; 3],
        high: &[u32; 3],
        mut run: impl FnMut(std::ops::Range<usize>),
    ) {
        let first_at_or_after =
            |from: usize, key: u64| from + self.row_keys[from..].partition_point(|&k| k < key);
        let mut at = first_at_or_after(0, row_key(low[2], low[1]));
        while let Some(&key) = self.row_keys.get(at) {
            let (z, y) = split_row(key);
            if z > high[2] {
                break;
            }
            if y < low[1] {
                at = first_at_or_after(at, row_key(z, low[1]));
                continue;
            }
            if y > high[1] {
                at = first_at_or_after(at, row_key(z + 1, low[1]));
                continue;
            }
            let cells = self.row_first_cell[at] as usize..self.row_first_cell[at + 1] as usize;
            let xs = &self.cell_x[cells.clone()];
            let first = cells.start + xs.partition_point(|&x| x < low[0]);
            let last = cells.start + xs.partition_point(|&x| x <= high[0]);
            if first < last {
                run(self.cell_first_point[first] as usize..self.cell_first_point[last] as usize);
            }
            at += 1;
        }
    }

    /// Calls `candidate(place)` for the points of `points` whose `f32`
    /// squared distance (cell units) to `centre` is at most `limit`, in
    /// order.
    fn scan(
        &self,
        points: std::ops::Range<usize>,
        centre: &[f32; 3],
        limit: f32,
        candidate: &mut impl FnMut(usize),
    ) {
        let [xs, ys, zs] = &self.columns;
        let mut start = points.start;
        while start < points.end {
            let end = (start + BATCH).min(points.end);
            let mut distances = [0.0f32; BATCH];
            for (((d, x), y), z) in distances
                .iter_mut()
                .zip(&xs[start..end])
                .zip(&ys[start..end])
                .zip(&zs[start..end])
            {
                let (dx, dy, dz) = (x - centre[0], y - centre[1], z - centre[2]);
                *d = dx * dx + dy * dy + dz * dz;
            }
            // Compacted without a branch: every index is written, the count
            // only moves past those that pass.
            let mut passed = [0u8; BATCH];
            let mut count = 0;
            for (i, &d) in distances[..end - start].iter().enumerate() {
                passed[count] = i as u8;
                count += usize::from(d <= limit);
            }
            for &i in &passed[..count] {
                candidate(start + usize::from(i));
            }
            start = end;
        }
    }
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

/// The cell coordinate of a position in cell units, clamped into the grid.
/// Monotone in its argument, which is all a ball's box needs.
fn cell_coordinate(in_cells: f64) -> u32 {
    // `as` saturates: negative and NaN go to 0, past the grid to the edge.
    (in_cells.floor() as u32).min(MAX_CELL)
}

/// The grid's corner (relative to the search's origin) and cell size for
/// `local`: cells of a size that holds about [`POINTS_PER_CELL`] points on
/// the mean over occupied cells, a power-of-two fraction of the box that
/// holds all but the outermost points.
///
/// The count of occupied cells at every power-of-two size comes from one
/// sorted list of Morton codes (two points share a cell at a level exactly
/// when their codes share the prefix of that level), so the size fits the
/// cloud's own shape: a surface, a line, clusters, a thin shell in a big
/// box.
fn layout(local: &[Vector3<f64>]) -> (Vector3<f64>, f64) {
    let (low, high) = robust_box(local);
    let edge = (high - low).max();
    if edge.is_nan() || edge <= 0.0 || edge.is_infinite() {
        // All points (or all but a few) at one position: any cell holds
        // them. The corner is the lowest point, so that all are in cell 0
        // or beyond.
        let lowest = local.iter().fold(low, |m, p| m.inf(p));
        let extent = local.iter().fold(high, |m, p| m.sup(p)) - lowest;
        let size = extent.max();
        let size = if size > 0.0 && size.is_finite() {
            size
        } else {
            1.0
        };
        return (lowest, size);
    }
    let clamped: Vec<Point3<f64>> = local
        .par_iter()
        .map(|p| Point3::from(p.sup(&low).inf(&high)))
        .collect();
    let keys = morton_keys(&clamped);
    // `first_split[l]`: pairs of neighbouring codes that first differ at
    // level l (level 1 halves the box, level 21 is a code's last 3 bits).
    let mut first_split = [0usize; 22];
    for pair in keys.windows(2) {
        let differ = pair[0].0 ^ pair[1].0;
        if differ != 0 {
            let highest_bit = 63 - differ.leading_zeros() as usize;
            first_split[21 - highest_bit / 3] += 1;
        }
    }
    let points = local.len() as f64;
    let mut occupied = 1usize;
    let mut best = (0, f64::INFINITY);
    for (level, splits) in first_split.iter().enumerate() {
        occupied += splits;
        let miss = (points / occupied as f64 / POINTS_PER_CELL).ln().abs();
        if miss < best.1 {
            best = (level, miss);
        }
    }
    (low, edge / f64::from(1u32 << best.0))
}

/// The box holding all but the outermost [`BOX_TAIL`] of a sample of
/// `local` on each side of each axis.
fn robust_box(local: &[Vector3<f64>]) -> (Vector3<f64>, Vector3<f64>) {
    let step = local.len().div_ceil(BOX_SAMPLE).max(1);
    let ends = [0, 1, 2].map(|axis| {
        let mut values: Vec<f64> = local.iter().step_by(step).map(|p| p[axis]).collect();
        values.sort_unstable_by(f64::total_cmp);
        let cut = (values.len() as f64 * BOX_TAIL) as usize;
        (values[cut], values[values.len() - 1 - cut])
    });
    (
        Vector3::from(ends.map(|e| e.0)),
        Vector3::from(ends.map(|e| e.1)),
    )
}
