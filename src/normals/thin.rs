//! Thin parts whose two faces got one sign. A fin or a plate a few noise
//! σ thick is one noisy slab: its rim is too narrow for a propagation to
//! turn round reliably, so one face may come out facing the same way as
//! the other, and no local rule can tell that slab from two sheets stacked
//! facing one way (a misregistered double scan). A global test can: the
//! face whose normals point at the other face (the back of the stack) is
//! wrong exactly when the way its normals call inside leads out of the
//! object. So each point at the back of such a stack casts a ray backward
//! and takes the other sign when the ray leaves the cloud's bounding box
//! without meeting a surface: ray parity cut to its first crossing, a
//! local cousin of the global inside/outside tests of Xu et al. 2023
//! (winding numbers) and Metzer et al. 2021 (dipoles), per point and
//! only where a stack is seen.
//! Behind a double scan the ray meets the far side of the object and
//! nothing changes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nalgebra::Vector3;
use rayon::prelude::*;

use super::estimate::{GRAPH_NEIGHBOURS, NO_NEIGHBOUR};
use crate::cloud::box_holds;
use crate::config::Support;
use crate::cpu::floor_i64;
use crate::neighbours::{NeighbourSearch, Neighbourhood};

/// Flips the normals of the points at the back of a stack of faces that
/// face one way whose backward ray escapes the cloud, among the points for
/// which `closed(point)` holds (an open sheet or a terrain has no inside:
/// it keeps its signs). `normals` are signed, indexed like the points of
/// `search`; `graph` and `variation` are those of
/// [`super::estimate::estimate`] (of other lengths: nothing is done).
pub(super) fn flip_inward_faces(
    search: &NeighbourSearch,
    graph: &[[u32; GRAPH_NEIGHBOURS]],
    variation: &[f32],
    normals: &mut [Vector3<f32>],
    closed: impl Fn(usize) -> bool + Sync,
) {
    if graph.len() != normals.len() || variation.len() != normals.len() {
        return;
    }
    let (Some(spread), Some(reach), Some(typical_variation)) = (
        median(sampled(normals.len(), |point| {
            face_spread(search, graph, normals, point)
        })),
        median(sampled(normals.len(), |point| {
            Some(graph_reach(search, graph, point))
        })),
        median(sampled(normals.len(), |point| {
            Some(f64::from(variation[point]))
        })),
    ) else {
        return;
    };
    let scene = Scene {
        search,
        normals,
        variation,
        graph,
        doubtful_variation: (DOUBTFUL_VARIATION * typical_variation) as f32,
        clearance: CLEARANCE * spread,
        occupancy: Occupancy::new(search, reach, &search.body_box()),
    };
    let flips: Vec<usize> = (0..normals.len())
        .into_par_iter()
        .with_min_len(256)
        .map_init(Neighbourhood::default, |hood, point| {
            (closed(point) && scene.faces_inward(point, hood)).then_some(point)
        })
        .flatten()
        .collect();
    for point in flips {
        normals[point] = -normals[point];
    }
}

/// A point is off its own face when it lies further than this many
/// [`face_spread`]s along the normal: the spread is that of a difference
/// of two noisy points (about √2 σ on a plane), so 2 leaves 2.3% of a
/// face's own points beyond it, while the far face of a slab 3.3σ thick
/// lies beyond it for most of its points. Measured on the truth set
/// `fins` (wrong signs before mending, every point tested, 5 stacked
/// points): 1.5 gives
/// 4,599, 2 4,479, 2.5 4,739.
const CLEARANCE: f64 = 2.0;

/// Points of a face further than the clearance in front of a point (along
/// its normal) and facing its way, less those as far behind it, that make
/// it the back of a stack. The difference cancels a point's own noise (a
/// point deep in its face sees its face's points on one side only).
/// Measured on `fins` (final wrong signs): 3 gives 3,817, 5 4,235.
const STACKED_POINTS: i32 = 3;

/// Points within the tube beyond the clearance that stop a ray: a face
/// crossed puts a handful there, a point or two of the ray's own face
/// thrown far by the noise does not stop it. Measured on `fins` (wrong
/// signs before mending, every point tested, 5 stacked points): 3 gives
/// 4,479, 5 4,413 but
/// 1,472 instead of 1,304 of them off the thinnest fin.
const BLOCKERS: usize = 3;

/// The stack is looked for within this many graph-neighbourhood radii: the
/// far face of a slab two spacings thick lies beyond the ten nearest.
const STACK_REACH: f64 = 2.0;

/// Only points whose surface variation exceeds this many times the
/// cloud's median are tested: a PCA neighbourhood that holds both faces of
/// a slab is far from planar. It bounds the cost (each test is a ball
/// search and perhaps a ray): on `fins`, testing every point signs 3,347
/// wrong for 0.4-1 s more CPU on the truth sets, 1.5 × the median 3,817
/// for 0.05-0.15 s, 2 × 6,558.
const DOUBTFUL_VARIATION: f64 = 1.5;

/// One point in this many measures the cloud's typical spread, reach and
/// variation.
const SAMPLE_STRIDE: usize = 97;

/// `measure` of one point in [`SAMPLE_STRIDE`], where it has one, in the
/// points' order (on every thread: 0.26 s for the three of 20M points,
/// under load, in one).
fn sampled(len: usize, measure: impl Fn(usize) -> Option<f64> + Sync + Send) -> Vec<f64> {
    (0..len)
        .into_par_iter()
        .step_by(SAMPLE_STRIDE)
        .filter_map(measure)
        .collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    let middle = values.len() / 2;
    (!values.is_empty()).then(|| *values.select_nth_unstable_by(middle, f64::total_cmp).1)
}

/// How far the graph neighbours of `point` stray from its tangent plane:
/// the RMS of `(q − p)·n_p`. The cloud's median is about √2 σ on a noisy
/// plane. `None` without a normal or neighbours.
fn face_spread(
    search: &NeighbourSearch,
    graph: &[[u32; GRAPH_NEIGHBOURS]],
    normals: &[Vector3<f32>],
    point: usize,
) -> Option<f64> {
    let n = normals[point].cast::<f64>();
    let p = search.local_point(point as u32);
    let (mut sum, mut count) = (0.0, 0);
    for &q in graph[point].iter().filter(|&&q| q != NO_NEIGHBOUR) {
        sum += (search.local_point(q) - p).dot(&n).powi(2);
        count += 1;
    }
    (n != Vector3::zeros() && count > 0).then(|| (sum / f64::from(count)).sqrt())
}

/// Distance from `point` to its farthest graph neighbour.
fn graph_reach(search: &NeighbourSearch, graph: &[[u32; GRAPH_NEIGHBOURS]], point: usize) -> f64 {
    let p = search.local_point(point as u32);
    graph[point]
        .iter()
        .filter(|&&q| q != NO_NEIGHBOUR)
        .map(|&q| (search.local_point(q) - p).norm())
        .fold(0.0, f64::max)
}

/// What the test of each point reads.
struct Scene<'a> {
    search: &'a NeighbourSearch,
    normals: &'a [Vector3<f32>],
    variation: &'a [f32],
    graph: &'a [[u32; GRAPH_NEIGHBOURS]],
    /// Points less varied than this are not tested.
    doubtful_variation: f32,
    /// Distance along a normal beyond which a point is off the face.
    clearance: f64,
    occupancy: Occupancy,
}

impl Scene<'_> {
    /// Whether `point` is the back of a stack of faces that face its way
    /// and its backward ray escapes: its normal points into the object.
    fn faces_inward(&self, point: usize, hood: &mut Neighbourhood) -> bool {
        let n = self.normals[point].cast::<f64>();
        if n == Vector3::zeros() || self.variation[point] <= self.doubtful_variation {
            return false;
        }
        let p = self.search.local_point(point as u32);
        if !self.occupancy.holds(&p) {
            // A far outlier: no ray of its is traced.
            return false;
        }
        let reach = graph_reach(self.search, self.graph, point);
        self.search
            .gather(&p, Support::Radius(STACK_REACH * reach), 1.0, hood);
        let mut stacked = 0;
        for q in hood.iter() {
            if self.normals[q.index as usize].cast::<f64>().dot(&n) > 0.0 {
                let ahead = q.offset.dot(&n);
                if ahead > self.clearance {
                    stacked += 1;
                } else if ahead < -self.clearance {
                    stacked -= 1;
                }
            }
        }
        stacked >= STACKED_POINTS && self.escapes(&p, &-n, reach, hood)
    }

    /// Whether the ray from `origin` along the unit `direction` leaves the
    /// bounding box of the cloud's body without passing within `tube` of
    /// [`BLOCKERS`] points further than the clearance along it (the
    /// points of the ray's own face, beside its origin, do not count). A
    /// tube as wide as the graph neighbourhood leaves no gap between the
    /// points of a face it crosses.
    ///
    /// Empty space is crossed a cell of [`Occupancy`] at a time; near
    /// points, those within `2 tube` are checked and the ray steps by
    /// `tube`, or, when there are none, by the nearest point's distance
    /// less a tube.
    fn escapes(
        &self,
        origin: &Vector3<f64>,
        direction: &Vector3<f64>,
        tube: f64,
        hood: &mut Neighbourhood,
    ) -> bool {
        if tube <= 0.0 {
            return false;
        }
        let exit = exit_distance(origin, direction, &self.occupancy.bounds);
        let mut along = self.clearance;
        while along <= exit {
            let at = origin + direction * along;
            let step = match self.occupancy.clear_reach(&at) {
                Some(clear) if clear > tube => clear - tube,
                _ => {
                    self.search
                        .gather(&at, Support::Radius(2.0 * tube), 1.0, hood);
                    let blockers = hood.iter().filter(|q| {
                        let offset = at + q.offset - origin;
                        let ahead = offset.dot(direction);
                        ahead > self.clearance
                            && offset.norm_squared() - ahead * ahead < tube * tube
                    });
                    if blockers.count() >= BLOCKERS {
                        return false;
                    }
                    if hood.is_empty() {
                        // No point within 2 tube: none within the tube of
                        // the ray until the nearest point's distance less a
                        // tube. Where the occupancy's cells are coarse (a
                        // far outlier widens the box, and with it every
                        // cell, a millionfold) steps of a tube took
                        // forever; these grow as the ray leaves the cloud.
                        let nearest = self.search.nearest(&at).1.sqrt();
                        (nearest - tube).max(tube)
                    } else {
                        tube
                    }
                }
            };
            // Where a step no longer moves the ray (far past an outlier,
            // a tube is below the floats' spacing; past 1e154 the squared
            // distances overflow) the test cannot decide: the sign stays.
            let next = along + step;
            if next.is_nan() || next <= along {
                return false;
            }
            along = next;
        }
        true
    }
}

/// Distance along the unit `direction` from `origin` (inside `bounds`) to
/// where the ray leaves the box.
fn exit_distance(
    origin: &Vector3<f64>,
    direction: &Vector3<f64>,
    (lo, hi): &(Vector3<f64>, Vector3<f64>),
) -> f64 {
    (0..3)
        .map(|axis| {
            let d = direction[axis];
            if d > 0.0 {
                (hi[axis] - origin[axis]) / d
            } else if d < 0.0 {
                (lo[axis] - origin[axis]) / d
            } else {
                f64::INFINITY
            }
        })
        .fold(f64::INFINITY, f64::min)
        .max(0.0)
}

/// Which cells of two grids over the points' bounding box hold a point, so
/// that a ray crosses empty space a cell at a time instead of searching
/// it: on the truth sets a ray through an object's inside cost 20-60 µs
/// with nearest-point steps, a few with these. Fine cells are
/// [`FINE_CELL`] typical tubes wide (wider where the box would need more
/// than [`MAX_FINE_CELLS`]), coarse ones [`COARSE`] fine cells.
struct Occupancy {
    /// The points' bounding box, relative to the search's origin.
    bounds: (Vector3<f64>, Vector3<f64>),
    fine: Bitmap,
    coarse: Bitmap,
}

/// A fine cell's width in typical tubes (graph neighbourhood radii).
const FINE_CELL: f64 = 2.0;

/// Fine cells at most: 2³⁰ bits, 128 MiB (twice that while the crowded
/// map is made from the occupied one).
const MAX_FINE_CELLS: f64 = (1u64 << 30) as f64;

/// Fine cells per coarse cell on a side.
const COARSE: f64 = 8.0;

impl Occupancy {
    /// The cells of the points within `body` (the search's body box),
    /// over their bounding box: points at 1e20 or 3e38 (a damaged file's
    /// garbage) are left out, where a box that reached them made every
    /// cell coarse and the rays crossed them one far nearest-point search
    /// at a time (200k points, 0.2% of them such: 88 s, the clean cloud's
    /// 1 s).
    fn new(search: &NeighbourSearch, tube: f64, body: &(Vector3<f64>, Vector3<f64>)) -> Self {
        let bounds = (0..search.len() as u32)
            .into_par_iter()
            .map(|i| search.local_point(i))
            .filter(|p| box_holds(&body.0, &body.1, p))
            .map(|p| (p, p))
            .reduce(
                || {
                    (
                        Vector3::repeat(f64::INFINITY),
                        Vector3::repeat(f64::NEG_INFINITY),
                    )
                },
                |(lo, hi), (a, b)| (lo.inf(&a), hi.sup(&b)),
            );
        let extent = bounds.1 - bounds.0;
        let cells = |cell: f64| extent.iter().map(|e| e / cell + 1.0).product::<f64>();
        let mut cell = (FINE_CELL * tube).max(extent.max() / MAX_FINE_CELLS.cbrt());
        while cells(cell) > MAX_FINE_CELLS {
            cell *= 1.25;
        }
        let mut fine = Bitmap::new(&extent, cell);
        let mut coarse = Bitmap::new(&extent, cell * COARSE);
        // Set on every thread (a bit's word is shared, hence atomic; the
        // sequential pass took 0.85 s of the 20M sphere's orientation,
        // under load). Most points share their cell with others: a word
        // is read first, and written only for a bit not yet set.
        let (fine_bits, coarse_bits) = (fine.shared_bits(), coarse.shared_bits());
        (0..search.len() as u32).into_par_iter().for_each(|i| {
            let p = search.local_point(i) - bounds.0;
            for (map, bits) in [(&fine, &fine_bits), (&coarse, &coarse_bits)] {
                if let Some(index) = map.index(map.cell_of(&p)) {
                    set_shared(bits, index);
                }
            }
        });
        fine.own_bits(fine_bits);
        coarse.own_bits(coarse_bits);
        Occupancy {
            bounds,
            fine: fine.crowded(),
            coarse: coarse.crowded(),
        }
    }

    /// True when `p` lies within the box the cells cover.
    fn holds(&self, p: &Vector3<f64>) -> bool {
        box_holds(&self.bounds.0, &self.bounds.1, p)
    }

    /// How far round `at` the cells say no point lies: a coarse or a fine
    /// cell's width when the cells round it are empty, else `None`.
    fn clear_reach(&self, at: &Vector3<f64>) -> Option<f64> {
        let p = at - self.bounds.0;
        [&self.coarse, &self.fine]
            .into_iter()
            .find(|grid| grid.empty_around(&p))
            .map(|grid| grid.cell)
    }
}

/// A grid's cells, a bit each, `x` fastest: those holding a point (as
/// built), or those with a point in them or in one of their 26 neighbours
/// ([`Bitmap::crowded`], what a ray asks).
struct Bitmap {
    cell: f64,
    /// The coordinates of the grid's first cell: 0, or −1 for a crowded
    /// map, which reaches a cell past the points' grid on every side.
    first: i64,
    size: [usize; 3],
    bits: Vec<u64>,
}

impl Bitmap {
    /// Empty cells `cell` wide over a box of `extent` from the origin.
    fn new(extent: &Vector3<f64>, cell: f64) -> Self {
        Bitmap::empty(
            cell,
            0,
            [0, 1, 2].map(|axis| (extent[axis] / cell) as usize + 1),
        )
    }

    fn empty(cell: f64, first: i64, size: [usize; 3]) -> Self {
        Bitmap {
            cell,
            first,
            size,
            bits: vec![0; size.iter().product::<usize>().div_ceil(64)],
        }
    }

    fn cell_of(&self, p: &Vector3<f64>) -> [i64; 3] {
        [0, 1, 2].map(|axis| floor_i64(p[axis] / self.cell))
    }

    /// The bit of `cell`, `None` outside the grid.
    fn index(&self, cell: [i64; 3]) -> Option<usize> {
        let mut index = 0;
        for axis in (0..3).rev() {
            let c = usize::try_from(cell[axis] - self.first)
                .ok()
                .filter(|&c| c < self.size[axis])?;
            index = index * self.size[axis] + c;
        }
        Some(index)
    }

    /// Takes the bits out, to be set on every thread ([`set_shared`]),
    /// then given back by [`Self::own_bits`].
    fn shared_bits(&mut self) -> Vec<AtomicU64> {
        std::mem::take(&mut self.bits)
            .into_iter()
            .map(AtomicU64::new)
            .collect()
    }

    fn own_bits(&mut self, bits: Vec<AtomicU64>) {
        self.bits = bits.into_iter().map(AtomicU64::into_inner).collect();
    }

    fn bit(&self, index: usize) -> bool {
        self.bits[index / 64] & (1 << (index % 64)) != 0
    }

    /// Sets the cell of `p` (the tests' maps; [`Occupancy::new`] sets its
    /// cells on every thread).
    #[cfg(test)]
    fn set(&mut self, p: &Vector3<f64>) {
        if let Some(index) = self.index(self.cell_of(p)) {
            self.bits[index / 64] |= 1 << (index % 64);
        }
    }

    /// The crowded map of this one (the occupied cells'): a cell's bit
    /// says whether it or one of its 26 neighbours holds a point, over the
    /// grid grown by a cell on every side (beyond, no cell has an occupied
    /// neighbour). A ray's step then reads one bit where it read 27 (the
    /// 27 reads were 4% of `normals`' CPU on a closed 2M-point sphere).
    ///
    /// On every thread, a word of occupied cells each (0.3 s of the 20M
    /// sphere's two maps in one).
    fn crowded(&self) -> Bitmap {
        let [width, depth, _] = self.size;
        let mut crowded = Bitmap::empty(self.cell, self.first - 1, self.size.map(|s| s + 2));
        let bits = crowded.shared_bits();
        let each_word = |(word_index, &word): (usize, &u64)| {
            let mut word = word;
            while word != 0 {
                let index = word_index * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let cell = [
                    index % width,
                    index / width % depth,
                    index / (width * depth),
                ]
                .map(|c| c as i64 + self.first);
                for dz in -1..=1 {
                    for dy in -1..=1 {
                        for dx in -1..=1 {
                            let near = [cell[0] + dx, cell[1] + dy, cell[2] + dz];
                            if let Some(near) = crowded.index(near) {
                                set_shared(&bits, near);
                            }
                        }
                    }
                }
            }
        };
        self.bits
            .par_iter()
            .enumerate()
            .with_min_len(1 << 10)
            .for_each(each_word);
        crowded.own_bits(bits);
        crowded
    }

    /// Whether the cell of `p` and its 26 neighbours hold no point (on a
    /// crowded map: one bit): then none lies within a cell's width of `p`.
    fn empty_around(&self, p: &Vector3<f64>) -> bool {
        debug_assert_eq!(self.first, -1, "asked of a map of occupied cells");
        self.index(self.cell_of(p))
            .is_none_or(|index| !self.bit(index))
    }
}

/// Sets bit `index` of `bits`, which other threads set too: read first,
/// written only when not yet set (most are, by a neighbour).
fn set_shared(bits: &[AtomicU64], index: usize) {
    let (word, bit) = (&bits[index / 64], 1 << (index % 64));
    if word.load(Relaxed) & bit == 0 {
        word.fetch_or(bit, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crowded map answers what the 27 cells of the occupied map say,
    /// inside the grid, at its rim and beyond it.
    #[test]
    fn a_crowded_cell_is_one_with_an_occupied_neighbour() {
        let extent = Vector3::new(10.0, 6.0, 4.0);
        let mut occupied = Bitmap::new(&extent, 1.0);
        let mut seed = 7u64;
        let mut next = |scale: f64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 * scale
        };
        for _ in 0..12 {
            occupied.set(&Vector3::new(next(10.0), next(6.0), next(4.0)));
        }
        let crowded = occupied.crowded();
        let mut empty = 0;
        for z in -3..8 {
            for y in -3..10 {
                for x in -3..14 {
                    let p = Vector3::new(x as f64 + 0.5, y as f64 + 0.5, z as f64 + 0.5);
                    let [cx, cy, cz] = occupied.cell_of(&p);
                    let by_neighbours = (-1..=1).all(|dz| {
                        (-1..=1).all(|dy| {
                            (-1..=1).all(|dx| {
                                occupied
                                    .index([cx + dx, cy + dy, cz + dz])
                                    .is_none_or(|index| !occupied.bit(index))
                            })
                        })
                    });
                    assert_eq!(crowded.empty_around(&p), by_neighbours, "cell {x} {y} {z}");
                    empty += usize::from(by_neighbours);
                }
            }
        }
        // Both answers occur.
        assert!(empty > 0 && empty < 17 * 13 * 11, "{empty} empty");
    }
}
