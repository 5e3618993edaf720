//! Signs for unsigned normals: one consistent orientation per connected
//! component of the neighbour graph, propagated along a minimum spanning
//! forest (Hoppe et al. 1992) under an edge cost that also weighs the
//! edge's direction against both normals, as König & Gumhold 2009 do, to
//! keep the propagation off the far face of a thin part, and the flatness
//! of both neighbourhoods, to reach doubtful normals last; then each
//! component's sign by a vote of its extreme points, the faces of thin
//! parts that point inward flipped by a ray test ([`super::thin`]), and
//! each point's sign by a vote of its neighbours. Or a rule per normal.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nalgebra::Vector3;
use rayon::iter::Either;
use rayon::prelude::*;

use super::estimate::{GRAPH_NEIGHBOURS, NO_NEIGHBOUR};
use super::thin::flip_inward_faces;
use crate::neighbours::NeighbourSearch;

/// How the normals of a point set get their signs. Points are relative to
/// the search's origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SignRule {
    /// Consistent over each connected component: a closed component's
    /// normals point outward; an open one (a sheet, a terrain) faces
    /// `viewpoint` when there is one, else up (mean nz ≥ 0), else (a
    /// vertical sheet) away from `centroid`.
    Consistent {
        /// The point open components face, when one is known.
        viewpoint: Option<Vector3<f64>>,
        /// The whole cloud's centroid (of which the search may hold a
        /// part: a tile's slab and halo), relative to the search's origin.
        centroid: Vector3<f64>,
    },
    /// Each normal away from a point (closed, roughly convex objects).
    AwayFrom(Vector3<f64>),
    /// Each normal toward a point (a scanner's position).
    Toward(Vector3<f64>),
    /// Each normal with nz ≥ 0 (terrain, aerial scans; PDAL's always_up).
    Up,
}

/// Orients `normals` (indexed like the points of `search`) by `rule`;
/// `graph` and `variation` are the neighbour graph and the surface
/// variations of [`super::estimate::estimate`], read by `Consistent` alone
/// (which, given a graph or variations of another length, signs each
/// normal as its own component would be: by the open-sheet rules). A zero
/// normal stays zero. `estimated` says the normals are the PCA's of
/// `estimate`: then a doubtful one may take its neighbours' direction
/// ([`mend_with_neighbours`]) and the inward faces of thin parts flip
/// ([`super::thin`]); a file's own keep their directions and only get the
/// signs of the forest, the components and the neighbours' vote.
pub fn orient(
    search: &NeighbourSearch,
    graph: &[[u32; GRAPH_NEIGHBOURS]],
    variation: &[f32],
    normals: &mut [Vector3<f32>],
    rule: SignRule,
    estimated: bool,
) {
    match rule {
        SignRule::Consistent {
            viewpoint,
            centroid,
        } => {
            let (graph, variation) =
                if graph.len() == normals.len() && variation.len() == normals.len() {
                    (graph, variation)
                } else {
                    (&[][..], &[][..])
                };
            let flips = propagate(search, graph, variation, normals);
            let mut components = Components::of(flips);
            components.choose_signs(search, normals, viewpoint, &centroid);
            components.apply(normals);
            // Nothing to test in open components (a terrain, most LiDAR
            // scans): the ray test's occupancy alone takes up to 256 MiB while built.
            if estimated && components.closed.contains(&true) {
                flip_inward_faces(search, graph, variation, normals, |point| {
                    components.closed[components.label[point] as usize]
                });
            }
            for _ in 0..MENDING_ROUNDS {
                mend_with_neighbours(graph, variation, normals, estimated);
            }
        }
        SignRule::AwayFrom(point) => per_normal(search, normals, |p| p - point),
        SignRule::Toward(point) => per_normal(search, normals, |p| point - p),
        SignRule::Up => per_normal(search, normals, |_| Vector3::z()),
    }
}

/// Flips each normal that points against `direction(point)`.
fn per_normal(
    search: &NeighbourSearch,
    normals: &mut [Vector3<f32>],
    direction: impl Fn(Vector3<f64>) -> Vector3<f64> + Sync,
) {
    normals.par_iter_mut().enumerate().for_each(|(i, n)| {
        let toward = direction(search.local_point(i as u32));
        if n.cast::<f64>().dot(&toward) < 0.0 {
            *n = -*n;
        }
    });
}

/// An edge of the graph in 8 bytes, ordered as an integer: its cost in
/// the high `64 − SLOT_BITS` bits (the f32's bits without their lowest
/// eight: costs are ≥ 0, so the bits sort as the values do, to a relative
/// 2⁻¹⁵), and in the low bits its slot in the graph (for row i's s-th
/// neighbour `i · GRAPH_NEIGHBOURS + s`), which names both ends and breaks
/// ties: no two edges are equal, so the minimum spanning forest under this
/// order is unique ([`propagate`]).
/// At 20M points the edges are the largest array of the orientation (about
/// seven per point): 12 bytes with both ends spelt out, 1.7 GB.
type Edge = u64;

/// Bits of an edge's slot and its disagreement bit: room for 2³² points of
/// 10 neighbours and more.
const SLOT_BITS: u32 = 40;

/// The edge in `slot` (below 2^(SLOT_BITS − 1)) at `cost`, and whether its
/// ends' normals `disagree`, in the lowest bit: found while the edges are
/// made, so that the forest's rounds do not read the two normals again.
fn edge(cost: f32, slot: u64, disagree: bool) -> Edge {
    u64::from(cost.to_bits() >> 8) << SLOT_BITS | slot << 1 | u64::from(disagree)
}

/// The graph slot of `edge`.
fn edge_slot(edge: Edge) -> u64 {
    (edge & ((1 << SLOT_BITS) - 1)) >> 1
}

/// The ends of `edge` and whether their normals disagree.
fn ends(graph: &[[u32; GRAPH_NEIGHBOURS]], edge: Edge) -> (u32, u32, bool) {
    let slot = edge_slot(edge);
    let from = slot / GRAPH_NEIGHBOURS as u64;
    let to = graph[from as usize][(slot % GRAPH_NEIGHBOURS as u64) as usize];
    (from as u32, to, edge & 1 == 1)
}

/// The cost of propagating a sign across the edge `i → j`, and whether
/// its ends' normals disagree in sign (`ni·nj < 0`, as Hoppe et al.):
/// crossing the edge then flips the sign.
///
/// Hoppe's cost `1 − |ni·nj|` is near 0 between the two faces of a thin
/// part too: their normals are parallel. What sets such an edge apart is
/// its direction: it leaves both tangent planes, running along both
/// normals, where a step along one surface lies in them. So the cost adds
/// `TANGENT_PENALTY · ((ni·e)² + (nj·e)²)` (`e` the unit edge), and the
/// forest reaches a thin part's far face round its rim when it can.
///
/// König & Gumhold's mirror rule (`ni·nj − 2 (ni·e)(nj·e)`, the normals at
/// both ends of a circular arc) decides a crossing between faces right when
/// the edge is steeper than 45°, but under scan noise as large as the point
/// spacing every short edge is steep: on the bunny truth set it signed
/// 0.094% of the normals wrong, against 0.012% with `ni·nj`.
///
/// A zero normal gives the highest cost, and agrees: it says nothing.
fn edge_cost(
    pi: &Vector3<f64>,
    pj: &Vector3<f64>,
    ni: &Vector3<f32>,
    nj: &Vector3<f32>,
) -> (f32, bool) {
    let (ni, nj) = (ni.cast::<f64>(), nj.cast::<f64>());
    if ni == Vector3::zeros() || nj == Vector3::zeros() {
        return (MAX_COST, false);
    }
    let e = (pj - pi).try_normalize(0.0).unwrap_or_else(Vector3::zeros);
    let (a, b) = (ni.dot(&e), nj.dot(&e));
    let agreement = ni.dot(&nj);
    let cost = 1.0 - agreement.abs() + TANGENT_PENALTY * (a * a + b * b);
    (cost.clamp(0.0, MAX_COST as f64) as f32, agreement < 0.0)
}

/// Weight of an edge's departure from the tangent planes in its cost.
/// Measured on the truth sets and the tests' plate: 0 (Hoppe's cost) lets
/// a plate 0.8 neighbourhood radius thick propagate across (one face
/// wrong) and signs 12.9% of the truth set `fins` wrong; 0.5 keeps the
/// plate's faces apart and halves that to 6.6%, at the cost of 0.0105% →
/// 0.012% wrong signs on the bunny, 0.179% → 0.194% on the armadillo; 2
/// gives 6.4% on `fins` but 0.236% on the armadillo, 8 no better.
const TANGENT_PENALTY: f64 = 0.5;

/// Weight of the surface variations of an edge's ends (each 0 to ⅓) in
/// its cost in the forest: `edge_cost + VARIATION_PENALTY · (vi + vj)`.
/// The forest then joins the points whose PCA found a clear plane first
/// and reaches a doubtful normal (a neighbourhood holding both faces of a
/// finger, a sharp edge) last, from its best neighbour, rather than
/// passing a sign on through it. Measured on the truth sets (wrong signs,
/// with the neighbours' vote; bunny / armadillo / fins): 0 gives 21 / 348 /
/// 12,980, 0.9 21 / 302 / 12,308, 3 20 / 301 / 11,478.
const VARIATION_PENALTY: f32 = 3.0;

/// Above every edge's cost (at most 1 + 2·`TANGENT_PENALTY` +
/// ⅔·`VARIATION_PENALTY`).
const MAX_COST: f32 = 5.0;

/// The minimum spanning forest of the graph under [`edge_cost`] (plus the
/// variations' doubt), with the signs carried along it: each point's
/// component and its sign relative to that component's representative, as a
/// propagation along the forest would give them (Hoppe et al.).
///
/// Edges are unique 64-bit keys (cost, then graph slot), so the forest is
/// the one minimum spanning forest under that order, whatever algorithm
/// finds it: Kruskal's (a sequential pass over the sorted edges, each one
/// at a random place: at 20M points the sort and the pass took 19 s of
/// the 32 s orientation) or Borůvka's, which [`spanning_forest`] runs on
/// both threads over the edges in graph order.
fn propagate(
    search: &NeighbourSearch,
    graph: &[[u32; GRAPH_NEIGHBOURS]],
    variation: &[f32],
    normals: &[Vector3<f32>],
) -> Forest {
    let edges = graph_edges(search, graph, variation, normals);
    spanning_forest(graph, edges, normals.len())
}

/// Rows of the graph per block of [`graph_edges`]' parallel passes.
const ROW_BLOCK: usize = 1 << 12;

// A row's kept slots fit a `u16` mask.
const _: () = assert!(GRAPH_NEIGHBOURS <= 16);

/// Every edge of the graph once, in graph order (by row, then slot), with
/// its cost and whether its ends disagree.
///
/// Counted first (a mask of each row's kept slots), then written in place
/// by blocks of rows: a parallel collect of a flattened iterator of
/// unknown length gathers its pieces in a list and copies them into one
/// vector (twice the edges' memory traffic and page faults: at 20M
/// points, 114M edges, it took 12.8 s wall, under load).
fn graph_edges(
    search: &NeighbourSearch,
    graph: &[[u32; GRAPH_NEIGHBOURS]],
    variation: &[f32],
    normals: &[Vector3<f32>],
) -> Vec<Edge> {
    let kept: Vec<u16> = graph
        .par_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut mask = 0;
            for (s, &j) in row.iter().enumerate() {
                if j != NO_NEIGHBOUR && keeps_edge(graph, i as u32, j) {
                    mask |= 1 << s;
                }
            }
            mask
        })
        .collect();
    let counts: Vec<usize> = kept
        .par_chunks(ROW_BLOCK)
        .map(|masks| masks.iter().map(|m| m.count_ones() as usize).sum())
        .collect();
    let mut edges = vec![0; counts.iter().sum()];
    let mut blocks = Vec::with_capacity(counts.len());
    let mut rest = edges.as_mut_slice();
    for &count in &counts {
        let (block, tail) = rest.split_at_mut(count);
        blocks.push(block);
        rest = tail;
    }
    blocks.into_par_iter().enumerate().for_each(|(b, block)| {
        let rows = b * ROW_BLOCK..((b + 1) * ROW_BLOCK).min(graph.len());
        let mut out = block.iter_mut();
        for (i, row) in rows.clone().zip(&graph[rows]) {
            let mut mask = kept[i];
            while mask != 0 {
                let s = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let (i, j) = (i as u32, row[s]);
                let (cost, disagree) = edge_cost(
                    &search.local_point(i),
                    &search.local_point(j),
                    &normals[i as usize],
                    &normals[j as usize],
                );
                let doubt = variation[i as usize] + variation[j as usize];
                // Non-negative, so that the cost's bits sort as it does.
                let cost = (cost + VARIATION_PENALTY * doubt).clamp(0.0, MAX_COST);
                let slot = u64::from(i) * GRAPH_NEIGHBOURS as u64 + s as u64;
                *out.next().expect("a block holds its rows' edges") = edge(cost, slot, disagree);
            }
        }
    });
    edges
}

/// One copy of each undirected edge: `i–j` from i's row when j is not
/// before i or when i is not in j's row (else j's row gives it).
fn keeps_edge(graph: &[[u32; GRAPH_NEIGHBOURS]], i: u32, j: u32) -> bool {
    i < j || !graph[j as usize].contains(&i)
}

/// The spanning forest's components and signs: point i lies in the
/// component of point `rep[i]` (a point of it), and its normal flips
/// against that point's when `parity[i]`.
struct Forest {
    rep: Vec<u32>,
    parity: Vec<bool>,
}

/// Edges per block of [`spanning_forest`]'s scans; a block keeps the edges
/// still between two components at its front.
const EDGE_BLOCK: usize = 1 << 16;

/// No edge out of a component (yet).
const NO_EDGE: u64 = u64::MAX;

/// Borůvka's minimum spanning forest of the graph's `edges` (unique keys,
/// any order) over `len` points, with the signs carried along it.
///
/// Each round, every component takes its lightest edge out (an atomic
/// minimum of the keys: the same edge whatever the threads' order) and
/// links to the component across it; the links form trees whose one
/// cycle is a pair that chose the same edge (its lower representative
/// becomes the root); pointer jumping finds each component's root and its
/// sign relative to it; then every point is relabelled, and the edges left
/// inside a component drop out. The edges are read in graph order, so a
/// point's neighbours and their labels are near it in memory, where
/// Kruskal's pass in cost order missed the cache at every edge. Every
/// step is a pure function of the edges' keys: the forest, hence the
/// signs, do not depend on the number of threads. The atomics are
/// `Relaxed`: a phase reads what another thread wrote only after the
/// parallel call that wrote it has returned, which orders it.
fn spanning_forest(graph: &[[u32; GRAPH_NEIGHBOURS]], mut edges: Vec<Edge>, len: usize) -> Forest {
    let mut rep: Vec<u32> = (0..len as u32).into_par_iter().collect();
    let mut parity = vec![false; len];
    // Per representative: during a scan its lightest edge out; then its
    // link, packed by `link`: the component it joins (finally, the root)
    // and its sign relative to it.
    let best: Vec<AtomicU64> = (0..len)
        .into_par_iter()
        .map(|_| AtomicU64::new(NO_EDGE))
        .collect();
    let mut lengths: Vec<usize> = edges.chunks(EDGE_BLOCK).map(<[Edge]>::len).collect();
    // The components that may still have an edge out: every point at
    // first (not listed: 80 MB at 20M points, at the orientation's peak).
    let mut active: Option<Vec<u32>> = None;
    loop {
        // Edges inside one component leave; each component's lightest
        // edge out.
        edges
            .par_chunks_mut(EDGE_BLOCK)
            .zip(lengths.par_iter_mut())
            .for_each(|(block, length)| {
                let mut kept = 0;
                for at in 0..*length {
                    let edge = block[at];
                    let (from, to, _) = ends(graph, edge);
                    let (a, b) = (rep[from as usize], rep[to as usize]);
                    if a != b {
                        block[kept] = edge;
                        kept += 1;
                        lighten(&best[a as usize], edge);
                        lighten(&best[b as usize], edge);
                    }
                }
                *length = kept;
            });
        if lengths.iter().all(|&length| length == 0) {
            break;
        }
        // Each component links to the one across its lightest edge, with
        // the sign between their representatives; one without an edge out
        // is its own root. Only a component's own entry is written.
        each(&active, len).for_each(|c| {
            let slot = &best[c as usize];
            let edge = slot.load(Relaxed);
            let joined = if edge == NO_EDGE {
                link(c, false)
            } else {
                let (from, to, disagree) = ends(graph, edge);
                let (a, b) = (rep[from as usize], rep[to as usize]);
                let other = if a == c { b } else { a };
                link(
                    other,
                    parity[from as usize] ^ parity[to as usize] ^ disagree,
                )
            };
            slot.store(joined, Relaxed);
        });
        // Two components that chose the same edge link to each other: the
        // lower becomes the root. Only that one's entry is written, and
        // the higher one's, read here, is not.
        each(&active, len).for_each(|c| {
            let (other, _) = unlink(best[c as usize].load(Relaxed));
            if other > c && unlink(best[other as usize].load(Relaxed)).0 == c {
                best[c as usize].store(link(c, false), Relaxed);
            }
        });
        // Pointer jumping: each link skips to its target's target, the
        // signs composed, until every link names a root. A link read while
        // its target jumps names an ancestor either way, with its sign.
        loop {
            let jumped = each(&active, len)
                .map(|c| {
                    let (up, sign) = unlink(best[c as usize].load(Relaxed));
                    let (above, further) = unlink(best[up as usize].load(Relaxed));
                    if above != up {
                        best[c as usize].store(link(above, sign ^ further), Relaxed);
                    }
                    above != up
                })
                .reduce(|| false, |a, b| a | b);
            if !jumped {
                break;
            }
        }
        // Every point to its new root.
        rep.par_iter_mut()
            .zip(parity.par_iter_mut())
            .for_each(|(r, p)| {
                let (root, sign) = unlink(best[*r as usize].load(Relaxed));
                *r = root;
                *p ^= sign;
            });
        let roots: Vec<u32> = each(&active, len)
            .filter(|&c| rep[c as usize] == c)
            .collect();
        roots
            .par_iter()
            .for_each(|&c| best[c as usize].store(NO_EDGE, Relaxed));
        active = Some(roots);
    }
    Forest { rep, parity }
}

/// The components listed in `active`, or with none, every point's.
fn each(active: &Option<Vec<u32>>, len: usize) -> impl ParallelIterator<Item = u32> + '_ {
    match active {
        Some(active) => Either::Left(active.par_iter().copied()),
        None => Either::Right((0..len as u32).into_par_iter()),
    }
}

/// Lowers `slot` to `edge` when it is the lighter (an atomic minimum that
/// writes only when it lowers).
fn lighten(slot: &AtomicU64, edge: Edge) {
    if edge < slot.load(Relaxed) {
        slot.fetch_min(edge, Relaxed);
    }
}

/// A component's link: the component it joins and whether its sign flips
/// against that one's.
fn link(to: u32, flip: bool) -> u64 {
    u64::from(to) << 1 | u64::from(flip)
}

/// The component and the flip of a [`link`].
fn unlink(link: u64) -> (u32, bool) {
    ((link >> 1) as u32, link & 1 == 1)
}

/// Each point takes the sign that agrees with its neighbours' consensus,
/// the sum of its graph neighbours' oriented normals each weighted by its
/// confidence `1 − 3v` (v its surface variation); and where the point's
/// own normal strays from a clear consensus, further than `DOUBTFUL_COSINE`
/// allows, it takes the consensus' direction too, when `redirect` (the
/// normals are estimated). All points at once.
///
/// The forest passes a sign along a single edge, so a point reached across
/// a doubtful edge can end up against all its neighbours; and a normal PCA
/// got nearly tangent (a neighbourhood of 30 round a finger holds both of
/// its faces) has no sign worth propagating, while its neighbours, nearer
/// and each in its own plane, agree on the surface's. A consensus that is
/// not clear (`|Σ wj nj| ≤ CLEAR_CONSENSUS · Σ wj`: the neighbours face
/// apart, on the two faces of a thin part) replaces nothing. A zero normal
/// stays zero.
fn mend_with_neighbours(
    graph: &[[u32; GRAPH_NEIGHBOURS]],
    variation: &[f32],
    normals: &mut [Vector3<f32>],
    redirect: bool,
) {
    // Only the changes are kept: few, against a copy of every normal.
    let changes: Vec<(usize, Vector3<f32>)> = graph
        .par_iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let own = normals[i];
            if own == Vector3::zeros() {
                return None;
            }
            let (mut consensus, mut weight) = (Vector3::zeros(), 0.0);
            for &j in row.iter().filter(|&&j| j != NO_NEIGHBOUR) {
                let confidence = 1.0 - 3.0 * variation[j as usize];
                consensus += normals[j as usize] * confidence;
                weight += confidence;
            }
            let signed = if own.dot(&consensus) < 0.0 { -own } else { own };
            let strength = consensus.norm();
            if redirect
                && strength > CLEAR_CONSENSUS * weight
                && signed.dot(&consensus) < DOUBTFUL_COSINE * strength
            {
                Some((i, consensus / strength))
            } else {
                (signed != own).then_some((i, signed))
            }
        })
        .collect();
    for (i, normal) in changes {
        normals[i] = normal;
    }
}

/// Rounds of [`mend_with_neighbours`]: the second reaches the points whose
/// neighbours the first mended. Measured on the truth sets (wrong signs,
/// bunny / armadillo / fandisk / fins / bracket): none 20 / 301 / 72 /
/// 11,478 / 19 (the forest's signs); one round 0 / 105 / 14 / 11,296 / 4,
/// two 0 / 76 / 11 / 11,315 / 4, four 0 / 75 / 11 / 11,370 / 4.
const MENDING_ROUNDS: usize = 2;

/// A normal further than this cosine (26°) from its neighbours' consensus
/// takes the consensus' direction. Measured as [`MENDING_ROUNDS`] (two
/// rounds; mean angle to the truth, bunny / armadillo / bracket): 0.8
/// (37°) gives 0 / 93 / 16 / 11,323 / 5 wrong, 10.67° / 16.94° / 9.62°;
/// 0.9 0 / 76 / 11 / 11,315 / 4, 10.54° / 16.63° / 9.65°; 0.95 (three
/// rounds) 0 / 66 / 9 / 11,369 / 3, 10.15° / 16.01° / 9.68°, a smoothing
/// that starts to round the bracket's sharp edges (PCA alone: 10.76° /
/// 17.28° / 9.62°).
const DOUBTFUL_COSINE: f32 = 0.9;

/// A consensus at least this strong (|Σ wj nj| / Σ wj) is clear. Measured
/// (one round, cosine 0.8; armadillo wrong signs): 0.3 gives 109, 0.5 118,
/// 0.7 181.
const CLEAR_CONSENSUS: f32 = 0.3;

/// Directions whose extreme points vote on a component's sign: the 26 of
/// the cube's faces, edges and corners. A closed surface's normal points
/// outward at its extreme along any direction, so on a closed component
/// they all agree, while a single extreme could sit on a wrongly
/// propagated patch or a badly estimated normal.
fn vote_directions() -> Vec<Vector3<f64>> {
    let mut directions = Vec::with_capacity(26);
    for x in -1..=1 {
        for y in -1..=1 {
            for z in -1..=1 {
                if (x, y, z) != (0, 0, 0) {
                    directions.push(Vector3::new(x as f64, y as f64, z as f64).normalize());
                }
            }
        }
    }
    directions
}

/// A vote this lopsided (|Σ n·d| ≥ this × Σ |n·d|) says the component is
/// closed, and its sign; a terrain's extremes (its highest point looks up,
/// its lowest looks down the −z direction's way) cancel out instead.
const CLOSED_AGREEMENT: f64 = 0.5;

/// Components at most whose extremes [`Components::extremes`] finds on
/// every thread: a table of them (16 bytes a component and direction, 1.7
/// MB at this count) per part of the points.
const PARALLEL_EXTREMES: usize = 1 << 12;

/// The components of the forest, each point's parity within its own, and
/// each component's sign.
struct Components {
    /// Component of each point, 0..count.
    label: Vec<u32>,
    /// Each point's flip relative to its component's root.
    parity: Vec<bool>,
    /// Per component: flip every normal of it.
    flip: Vec<bool>,
    /// Per component: its extremes agree, so it is a closed surface (set
    /// by `choose_signs`).
    closed: Vec<bool>,
}

impl Components {
    /// Labels the forest's components in the order of their first points.
    fn of(forest: Forest) -> Self {
        let Forest { rep, parity } = forest;
        let mut label_of_rep = vec![u32::MAX; rep.len()];
        let mut label = Vec::with_capacity(rep.len());
        let mut count = 0;
        for &r in &rep {
            let slot = &mut label_of_rep[r as usize];
            if *slot == u32::MAX {
                *slot = count;
                count += 1;
            }
            label.push(*slot);
        }
        Components {
            label,
            parity,
            flip: vec![false; count as usize],
            closed: vec![false; count as usize],
        }
    }

    /// The normal of `point` as propagated (before the component's sign).
    fn propagated(&self, normals: &[Vector3<f32>], point: usize) -> Vector3<f64> {
        let n = normals[point].cast::<f64>();
        if self.parity[point] { -n } else { n }
    }

    /// Picks each component's sign: outward when its extremes agree
    /// (closed), else toward `viewpoint`, else up, else away from
    /// `centroid`.
    fn choose_signs(
        &mut self,
        search: &NeighbourSearch,
        normals: &[Vector3<f32>],
        viewpoint: Option<Vector3<f64>>,
        centroid: &Vector3<f64>,
    ) {
        let directions = vote_directions();
        let count = self.flip.len();
        let extremes = self.extremes(search, &directions);
        // Per component: Σ n·d over its extremes, and Σ |n·d|.
        let agreement: Vec<(f64, f64)> = extremes
            .chunks(directions.len())
            .map(|row| {
                let (mut sum, mut total) = (0.0, 0.0);
                for (&(_, point), direction) in row.iter().zip(&directions) {
                    let vote = self.propagated(normals, point as usize).dot(direction);
                    sum += vote;
                    total += vote.abs();
                }
                (sum, total)
            })
            .collect();
        for (closed, &(sum, total)) in self.closed.iter_mut().zip(&agreement) {
            *closed = total > 0.0 && sum.abs() >= CLOSED_AGREEMENT * total;
        }
        // Per open component: Σ n·(toward viewpoint), Σ nz, Σ n·(p − centroid),
        // summed in the points' order (a closed surface, the usual object,
        // needs none of them).
        let mut open_votes = vec![[0.0f64; 3]; count];
        if self.closed.contains(&false) {
            for point in 0..search.len() {
                let component = self.label[point] as usize;
                if self.closed[component] {
                    continue;
                }
                let p = search.local_point(point as u32);
                let n = self.propagated(normals, point);
                let votes = &mut open_votes[component];
                if let Some(v) = viewpoint {
                    votes[0] += n.dot(&(v - p).try_normalize(0.0).unwrap_or_default());
                }
                votes[1] += n.z;
                votes[2] += n.dot(&(p - centroid).try_normalize(0.0).unwrap_or_default());
            }
        }
        for component in 0..count {
            let votes = open_votes[component];
            let size = self.label.len() as f64;
            let outward = if self.closed[component] {
                agreement[component].0
            } else if viewpoint.is_some() {
                votes[0]
            } else if votes[1].abs() > 1e-3 * size {
                votes[1]
            } else {
                votes[2]
            };
            self.flip[component] = outward < 0.0;
        }
    }

    /// Per component and direction (`directions.len()` entries a
    /// component): the extreme point, as (height along the direction,
    /// index): of the highest, the first.
    ///
    /// On both threads when the components are few (each thread's part
    /// keeps a table of them all; the sequential pass took 1.2 s of the
    /// 20M sphere's orientation, under load); the parts' extremes merged
    /// by the same rule (higher, else first), so the same points.
    fn extremes(&self, search: &NeighbourSearch, directions: &[Vector3<f64>]) -> Vec<(f64, u32)> {
        let width = directions.len();
        let none = vec![(f64::NEG_INFINITY, u32::MAX); self.flip.len() * width];
        // The directions come in opposite pairs, the k-th and the k-th from
        // the end (`vote_directions`: 26, none its own opposite): a height
        // along the second is the first's negated, exactly (negation
        // commutes with rounding), so half the products do.
        debug_assert!(
            width.is_multiple_of(2)
                && (0..width / 2).all(|k| directions[width - 1 - k] == -directions[k])
        );
        let raise = |mut extremes: Vec<(f64, u32)>, point: usize| {
            let p = search.local_point(point as u32);
            let component = self.label[point] as usize;
            let row = &mut extremes[component * width..][..width];
            let mut raise_to = |k: usize, height: f64| {
                if height > row[k].0 {
                    row[k] = (height, point as u32);
                }
            };
            for (k, direction) in directions[..width / 2].iter().enumerate() {
                let height = p.dot(direction);
                raise_to(k, height);
                raise_to(width - 1 - k, -height);
            }
            extremes
        };
        if self.flip.len() > PARALLEL_EXTREMES {
            return (0..search.len()).fold(none, raise);
        }
        (0..search.len())
            .into_par_iter()
            .with_min_len(1 << 16)
            .fold(|| none.clone(), raise)
            .reduce(
                || none.clone(),
                |mut a, b| {
                    for (a, b) in a.iter_mut().zip(b) {
                        // Equal heights: the first point, as one pass keeps.
                        if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
                            *a = b;
                        }
                    }
                    a
                },
            )
    }

    /// Gives every normal its sign.
    fn apply(&self, normals: &mut [Vector3<f32>]) {
        normals.par_iter_mut().enumerate().for_each(|(point, n)| {
            if self.parity[point] ^ self.flip[self.label[point] as usize] {
                *n = -*n;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kruskal's forest with a union-find that keeps each node's parity to
    /// its parent: the reference for [`spanning_forest`]. Each point's
    /// root and parity relative to it.
    fn kruskal(graph: &[[u32; GRAPH_NEIGHBOURS]], mut edges: Vec<Edge>) -> Vec<(u32, bool)> {
        fn find(nodes: &[(u32, bool)], mut node: u32) -> (u32, bool) {
            let mut parity = false;
            while nodes[node as usize].0 != node {
                parity ^= nodes[node as usize].1;
                node = nodes[node as usize].0;
            }
            (node, parity)
        }
        edges.sort_unstable();
        let mut nodes: Vec<(u32, bool)> = (0..graph.len() as u32).map(|i| (i, false)).collect();
        for edge in edges {
            let (from, to, flip) = ends(graph, edge);
            let ((a, pa), (b, pb)) = (find(&nodes, from), find(&nodes, to));
            if a != b {
                nodes[b as usize] = (a, pa ^ pb ^ flip);
            }
        }
        (0..graph.len() as u32).map(|i| find(&nodes, i)).collect()
    }

    /// Random graphs of a few components, costs drawn from a few values
    /// (ties broken by the slot), random disagreements: Borůvka's forest
    /// signs every point as Kruskal's does (relative to its component),
    /// on one thread and on three.
    #[test]
    fn the_parallel_forest_is_kruskals() {
        let mut seed = 99u64;
        let mut next = |bound: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % bound
        };
        for (points, block, costs) in [
            (2, 2, 1),
            (300, 300, 3),
            (5_000, 700, 4),
            (20_000, 20_000, 50),
        ] {
            let graph: Vec<[u32; GRAPH_NEIGHBOURS]> = (0..points)
                .map(|i| {
                    let first = i / block * block;
                    let size = block.min(points - first) as u64;
                    let mut row = [NO_NEIGHBOUR; GRAPH_NEIGHBOURS];
                    for slot in row
                        .iter_mut()
                        .take(next(GRAPH_NEIGHBOURS as u64 + 1) as usize)
                    {
                        let j = (first + next(size) as usize) as u32;
                        if j != i as u32 {
                            *slot = j;
                        }
                    }
                    row
                })
                .collect();
            let mut edges = Vec::new();
            for (i, row) in graph.iter().enumerate() {
                for (s, &j) in row.iter().enumerate() {
                    if j != NO_NEIGHBOUR && keeps_edge(&graph, i as u32, j) {
                        let cost = next(costs) as f32 * 0.25;
                        let slot = (i * GRAPH_NEIGHBOURS + s) as u64;
                        edges.push(edge(cost, slot, next(2) == 1));
                    }
                }
            }
            let reference = kruskal(&graph, edges.clone());
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let forest = pool.install(|| spanning_forest(&graph, edges.clone(), points));
                for (i, &(root, parity)) in reference.iter().enumerate() {
                    let first = forest.rep[root as usize] as usize;
                    // Same component, same sign relative to any point of it.
                    assert_eq!(forest.rep[i] as usize, first, "{points} points, point {i}");
                    assert_eq!(
                        forest.parity[i] ^ forest.parity[root as usize],
                        parity,
                        "{points} points, point {i}"
                    );
                }
                // No two of the reference's components merged.
                for (&(root, _), &rep) in reference.iter().zip(&forest.rep) {
                    let (other, _) = reference[rep as usize];
                    assert_eq!(root, other, "{points} points");
                }
            }
        }
    }

    #[test]
    fn an_edge_across_a_thin_part_costs_more_than_one_along_a_face() {
        let n = Vector3::new(0.0f32, 0.0, 1.0);
        let (along, disagree) = edge_cost(&Vector3::zeros(), &Vector3::x(), &n, &n);
        assert!(along < 1e-6 && !disagree);
        // Down to the far face, as deep as sideways: (ni·e)² = ½ each.
        let across = Vector3::new(1.0, 0.0, -1.0);
        let (cost, _) = edge_cost(&Vector3::zeros(), &across, &n, &n);
        assert!((cost as f64 - TANGENT_PENALTY).abs() < 1e-6, "{cost}");
        // Opposite normals along a face: a flip, as cheap as agreement.
        let (cost, disagree) = edge_cost(&Vector3::zeros(), &Vector3::x(), &n, &-n);
        assert!(cost < 1e-6 && disagree);
        // A zero normal: last of all.
        let (cost, _) = edge_cost(&Vector3::zeros(), &Vector3::x(), &n, &Vector3::zeros());
        assert_eq!(cost, MAX_COST);
    }

    #[test]
    fn edges_sort_by_cost_then_slot_and_name_their_ends() {
        let graph = [[NO_NEIGHBOUR; GRAPH_NEIGHBOURS], {
            let mut row = [NO_NEIGHBOUR; GRAPH_NEIGHBOURS];
            row[3] = 0;
            row
        }];
        let slot = GRAPH_NEIGHBOURS as u64 + 3;
        assert_eq!(ends(&graph, edge(0.25, slot, true)), (1, 0, true));
        assert_eq!(ends(&graph, edge(0.25, slot, false)), (1, 0, false));
        assert!(edge(0.25, slot, true) < edge(0.26, 0, false));
        assert!(edge(0.0, slot, true) < edge(MAX_COST, 0, false));
        assert!(edge(0.25, 0, true) < edge(0.25, slot, false));
        // The largest slot fits below the cost.
        let last = (1u64 << 32) * GRAPH_NEIGHBOURS as u64;
        assert!(last < 1 << (SLOT_BITS - 1));
        assert!(edge(0.0, last, true) < edge(1e-30, 0, false));
    }
}
