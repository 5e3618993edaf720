//! Signs for unsigned normals: one consistent orientation per connected
//! component of the neighbour graph, propagated along a minimum spanning
//! forest (Hoppe et al. 1992) under an edge cost that also weighs the
//! edge's direction against both normals, as König & Gumhold 2009 do, to
//! keep the propagation off the far face of a thin part, and the flatness
//! of both neighbourhoods, to reach doubtful normals last; then each
//! component's sign by a vote of its extreme points, the faces of thin
//! parts that point inward flipped by a ray test ([`super::thin`]), and
//! each point's sign by a vote of its neighbours. Or a rule per normal.

use nalgebra::Vector3;
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

/// An edge of the graph in 8 bytes, sortable as an integer: its cost in
/// the high `64 − SLOT_BITS` bits (the f32's bits without their lowest
/// eight: costs are ≥ 0, so the bits sort as the values do, to a relative
/// 2⁻¹⁵), and in the low bits its slot in the graph (for row i's s-th
/// neighbour `i · GRAPH_NEIGHBOURS + s`), which names both ends and breaks
/// ties.
/// At 20M points the edges are the largest array of the orientation (about
/// seven per point): 12 bytes with both ends spelt out, 1.7 GB.
type Edge = u64;

/// Bits of an edge's slot and its disagreement bit: room for 2³² points of
/// 10 neighbours and more.
const SLOT_BITS: u32 = 40;

/// The edge in `slot` (below 2^(SLOT_BITS − 1)) at `cost`, and whether its
/// ends' normals `disagree`, in the lowest bit: found while the edges are
/// made in parallel, so that the forest's sequential pass does not read
/// the two normals at scattered places (one cache miss each, per edge, on
/// clouds of millions of points).
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

/// Kruskal's minimum spanning forest of the graph under [`edge_cost`], with
/// the signs carried along: a union-find whose every node keeps its parity
/// (flip or not) relative to its parent, so uniting two trees across an
/// edge fixes the relative sign of the two whole trees, as a propagation
/// along the forest would. Returns the union-find (roots are components).
fn propagate(
    search: &NeighbourSearch,
    graph: &[[u32; GRAPH_NEIGHBOURS]],
    variation: &[f32],
    normals: &[Vector3<f32>],
) -> SignedUnionFind {
    let mut edges: Vec<Edge> = graph
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, row)| {
            let i = i as u32;
            row.iter()
                .copied()
                .enumerate()
                .filter(move |&(_, j)| j != NO_NEIGHBOUR && keeps_edge(graph, i, j))
                .map(move |(s, j)| {
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
                    edge(cost, slot, disagree)
                })
        })
        .collect();
    // Ties broken by the slots: the forest, hence the signs, do not depend
    // on the number of threads.
    edges.par_sort_unstable();
    let mut signs = SignedUnionFind::new(normals.len());
    // Edges in the order of their costs are at scattered places: each one
    // reads its graph row and both ends' nodes from memory, one cache miss
    // after another. Asking for them ahead lets the misses overlap: the
    // rows `ROW_AHEAD` edges on, the nodes `NODES_AHEAD` on (their rows
    // have arrived by then).
    const ROW_AHEAD: usize = 16;
    const NODES_AHEAD: usize = 8;
    for (at, &edge) in edges.iter().enumerate() {
        if let Some(&later) = edges.get(at + ROW_AHEAD) {
            prefetch(&graph[(edge_slot(later) / GRAPH_NEIGHBOURS as u64) as usize]);
        }
        if let Some(&soon) = edges.get(at + NODES_AHEAD) {
            let (from, to, _) = ends(graph, soon);
            signs.prefetch(from);
            signs.prefetch(to);
        }
        let (from, to, flip) = ends(graph, edge);
        signs.union(from, to, flip);
    }
    signs
}

/// Asks the CPU to bring the cache line holding `value` closer: a hint,
/// with no effect on what the program computes.
#[inline]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault;
    // SSE is part of every x86-64 CPU.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// One copy of each undirected edge: `i–j` from i's row when j is not
/// before i or when i is not in j's row (else j's row gives it).
fn keeps_edge(graph: &[[u32; GRAPH_NEIGHBOURS]], i: u32, j: u32) -> bool {
    i < j || !graph[j as usize].contains(&i)
}

/// Union-find over the points where each node keeps its parity relative to
/// its parent: the parity of a node relative to its root says whether its
/// normal flips against the root's.
struct SignedUnionFind {
    /// One entry per point, its fields together: the forest's pass visits
    /// points in the order of edge costs, at scattered places.
    nodes: Vec<Node>,
}

/// A point in [`SignedUnionFind`], in 8 bytes (at 20M points the forest
/// is built beside the edges, at the run's peak memory).
#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    /// For a root, the size of its tree; for any other node, its parity
    /// relative to its parent (0 or 1). A root has no parity, and only a
    /// root's size is ever read.
    size_or_parity: u32,
}

impl SignedUnionFind {
    fn new(len: usize) -> Self {
        SignedUnionFind {
            nodes: (0..len as u32)
                .map(|parent| Node {
                    parent,
                    size_or_parity: 1,
                })
                .collect(),
        }
    }

    /// Asks for `node`'s entry ahead of its use (see [`propagate`]).
    fn prefetch(&self, node: u32) {
        prefetch(&self.nodes[node as usize]);
    }

    /// The root of `node` and the node's parity relative to it; compresses
    /// the path.
    fn find(&mut self, node: u32) -> (u32, bool) {
        let mut root = node;
        let mut parity = false;
        while self.nodes[root as usize].parent != root {
            parity ^= self.nodes[root as usize].size_or_parity == 1;
            root = self.nodes[root as usize].parent;
        }
        let (mut at, mut at_parity) = (node, parity);
        while at != root {
            let here = &mut self.nodes[at as usize];
            let (next, next_parity) = (here.parent, at_parity ^ (here.size_or_parity == 1));
            (here.parent, here.size_or_parity) = (root, u32::from(at_parity));
            (at, at_parity) = (next, next_parity);
        }
        (root, parity)
    }

    /// Joins the trees of `a` and `b` so that b's sign is a's, flipped when
    /// `flip`; nothing when they are already one tree (a cycle's edge).
    fn union(&mut self, a: u32, b: u32, flip: bool) {
        let ((root_a, parity_a), (root_b, parity_b)) = (self.find(a), self.find(b));
        if root_a == root_b {
            return;
        }
        let size = |root: u32| self.nodes[root as usize].size_or_parity;
        let (big, small) = if size(root_a) >= size(root_b) {
            (root_a, root_b)
        } else {
            (root_b, root_a)
        };
        let small_size = size(small);
        let joined = &mut self.nodes[small as usize];
        (joined.parent, joined.size_or_parity) = (big, u32::from(parity_a ^ parity_b ^ flip));
        self.nodes[big as usize].size_or_parity += small_size;
    }
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
    fn of(mut signs: SignedUnionFind) -> Self {
        let len = signs.nodes.len();
        let mut label_of_root = vec![u32::MAX; len];
        let mut label = Vec::with_capacity(len);
        let mut parity = Vec::with_capacity(len);
        let mut count = 0;
        for node in 0..len as u32 {
            let (root, node_parity) = signs.find(node);
            let slot = &mut label_of_root[root as usize];
            if *slot == u32::MAX {
                *slot = count;
                count += 1;
            }
            label.push(*slot);
            parity.push(node_parity);
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
        // Per component and direction: the extreme point (height, index).
        let mut extremes = vec![(f64::NEG_INFINITY, u32::MAX); count * directions.len()];
        // Per component: Σ n·(toward viewpoint), Σ nz, Σ n·(p − centroid).
        let mut open_votes = vec![[0.0f64; 3]; count];
        for point in 0..search.len() {
            let p = search.local_point(point as u32);
            let component = self.label[point] as usize;
            let row = &mut extremes[component * directions.len()..][..directions.len()];
            for (extreme, direction) in row.iter_mut().zip(&directions) {
                let height = p.dot(direction);
                if height > extreme.0 {
                    *extreme = (height, point as u32);
                }
            }
            let n = self.propagated(normals, point);
            let votes = &mut open_votes[component];
            if let Some(v) = viewpoint {
                votes[0] += n.dot(&(v - p).try_normalize(0.0).unwrap_or_default());
            }
            votes[1] += n.z;
            votes[2] += n.dot(&(p - centroid).try_normalize(0.0).unwrap_or_default());
        }
        for component in 0..count {
            let row = &extremes[component * directions.len()..][..directions.len()];
            let (mut sum, mut total) = (0.0, 0.0);
            for (&(_, point), direction) in row.iter().zip(&directions) {
                let vote = self.propagated(normals, point as usize).dot(direction);
                sum += vote;
                total += vote.abs();
            }
            let votes = open_votes[component];
            let size = self.label.len() as f64;
            self.closed[component] = total > 0.0 && sum.abs() >= CLOSED_AGREEMENT * total;
            let outward = if self.closed[component] {
                sum
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

    #[test]
    fn parities_compose_along_unions() {
        let mut signs = SignedUnionFind::new(5);
        signs.union(0, 1, true);
        signs.union(2, 3, true);
        signs.union(1, 2, false);
        signs.union(3, 0, true); // a cycle's edge: ignored
        let (root, p0) = signs.find(0);
        for (node, flipped) in [(1, true), (2, true), (3, false)] {
            let (r, p) = signs.find(node);
            assert_eq!(r, root);
            assert_eq!(p ^ p0, flipped, "node {node}");
        }
        assert_ne!(signs.find(4).0, root);
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
