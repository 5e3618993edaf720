//! Particles seeded on the surface (`particles: Seed(spacing: d)` or
//! `Seed(count: n)`): blue noise at spacing d over the part of the surface
//! the cloud covers, projected as they are made and handed on slab by slab.
//!
//! Four steps, each chosen for a reason:
//!
//! 1. **A disc per cloud point.** The PCA of its [`FRAME_NEIGHBOURS`]
//!    nearest gives a tangent plane through their centroid (so the noise
//!    of one point does not lift its disc), and the distance r to the
//!    farthest of them the area the point covers, π r² / k. Candidates are
//!    drawn uniformly on a disc around the point's foot on that plane, of
//!    radius r / 2 inside the cloud (about four discs overlap anywhere
//!    there), growing to r where the neighbours lean to one side (a gap in
//!    the cloud beside the point, or its edge: [`disc_scale`]), so that no
//!    gap the surface spans is left between points, while a hole wider
//!    than the discs stays empty.
//! 2. **Poisson-disk selection** at spacing d, greedy in the order of a hash
//!    of each candidate (and `seed`): a candidate is kept when no kept one
//!    lies within d. Space is cut into cubic blocks, done slab by slab
//!    (one coordinate of blocks along the cloud's longest side at a time):
//!    an even slab alone, an odd slab after the even slabs on both sides,
//!    against their seeds. Within a slab, blocks are done in four phases
//!    of a 2×2 colouring in the other two coordinates, so that the blocks
//!    of one phase never touch and run in parallel, each against the
//!    seeds already kept in its neighbours (of the slabs beside it made
//!    before, and of earlier phases). A slab is made in parts, groups of
//!    its rows of blocks (one second coordinate) in a wavefront that keeps
//!    each block's earlier-phase neighbours done before it and its
//!    later-phase ones after ([`Seeder::make`]). The result depends on the
//!    blocks, never on the threads nor the groups, and a slab's seeds on
//!    its two neighbours at most, so that a tile of the job (`--tile`)
//!    makes a whole run's seeds over its slabs.
//! 3. **The edge.** Discs overhang the cloud's edge (and a hole's) by up
//!    to their radius. At an edge a point's neighbours sit on one side:
//!    their centroid's offset tells how far the edge is (the centroid of a
//!    disc cut by a chord, [`EDGE_OFFSET`]). Seeds of discs that see an
//!    edge are measured so at their own position, and those beyond the
//!    edge go.
//! 4. **Projection** of each group's seeds onto the MLS surface, once, as
//!    every particle is projected ([`seed_surface`]), dropping those that
//!    land within 0.8 d of one kept before (in an even slab beside an odd
//!    one, or earlier in the slab); the survivors' projections are what
//!    the job writes.
//!
//! Memory: the discs (about 110 bytes per cloud point, and 4 to sort them
//! by block); the candidates (32 bytes each, about 20 per seed) of the
//! few groups of rows of the slab being made that are in the wavefront
//! or within a disc's reach of it, each block's dropped once it is
//! selected, and the seeds kept of the five groups the wavefront still
//! reads (32 bytes each); of the even slabs beside an odd one, the seeds
//! kept within a few spacings of their faces ([`lent_reach`]: all of a
//! flat part lying along a face within that reach); and where
//! the settled projections of the slab being made and of those two
//! landed (24 bytes a seed: the one term that follows a slab, 84 MB for
//! the 3.5M seeds of a facade of the street of docs/seeding.md). A group
//! is a few rows of blocks [`BLOCK_SPACINGS`] wide, a line across the
//! slab, so the candidates and kept seeds in memory follow the widest
//! line of blocks, never a whole slab (until 2026-11-30 a slab's
//! candidates, kept seeds and projections were held whole: 4.0 GB on that
//! street, 1.87 GB now, against 1.81 GB for the same cloud projecting 1M
//! particles; 50M seeds on sphere_large 1.14 GB then, 0.56 GB now). The
//! projections go to a spool on disk until the count is known
//! ([`super::spool`]), and those of an even slab made before the odd one
//! beside it, which come after that one's, to an unnamed temporary file
//! in the output's folder meanwhile.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::num::NonZeroUsize;
use std::ops::{Range, RangeInclusive};
use std::path::Path;

use nalgebra::{Matrix3, Point3, SymmetricEigen, Vector3};
use rayon::prelude::*;

use crate::cloud::finite_bounds;
use crate::config::Support;
use crate::cpu::floor_i64;
use crate::neighbours::{NeighbourSearch, Neighbourhood};
use crate::projection::{Projected, Projector};

use super::inspect::{Spread, kth_distances_squared, radius_for};
use super::spool::Spool;
use super::tiles::Tile;
use crate::error::Result;

/// Neighbours (besides the point itself) from which each cloud point's
/// tangent plane, covered area and distance to the cloud's edge are
/// measured: enough to average a scan's noise out of the plane, few enough
/// to stay local.
pub const FRAME_NEIGHBOURS: usize = 16;

/// Seeds per d² of surface that the greedy Poisson-disk selection leaves
/// with [`CANDIDATES_PER_SEED`] candidates (random sequential packing
/// saturates at 0.70 in the plane, slowly; [`conflict`] also rules out
/// seeds stacked across a disc). Measured on the unit sphere and a torus
/// in `tests/seeding.rs`: 0.593.
pub const PACKING: f64 = 0.595;

/// Candidates drawn per seed expected. Random sequential packing fills
/// slowly: with 5 the selection left 0.51 seeds per d², with 20 it leaves
/// 0.59 and no spot of the sphere farther than 1.5 d from a seed but 0.03%
/// (tests/seeding.rs).
const CANDIDATES_PER_SEED: f64 = 20.0;

/// Radius of a point's candidate disc inside the cloud, relative to the
/// distance to its [`FRAME_NEIGHBOURS`]-th neighbour: the discs then
/// overlap about four deep ([`disc_scale`] grows it at gaps).
const DISC_SCALE: f64 = 0.5;

/// The offset of its neighbours' centroid (see [`EDGE_OFFSET`]) that a
/// point inside a random cloud sees from its [`FRAME_NEIGHBOURS`] nearest.
const INTERIOR_OFFSET: f64 = 0.16;

/// Radius of the candidate disc of a point whose neighbours' centroid lies
/// `offset` from it (in units of r, the distance to its
/// [`FRAME_NEIGHBOURS`]-th neighbour): [`DISC_SCALE`] inside the cloud,
/// growing with the lean to r at an edge's offset. A random cloud has gaps
/// a few spacings wide that the MLS surface spans; discs of
/// [`DISC_SCALE`] r alone left them without candidates (on a sphere of
/// 20,000 points, a spot 4.4 d from the nearest point left a hole 2.1-2.4 d
/// wide in every draw), and the points around such a gap lean away from
/// it. Seeds of grown discs beyond a true edge are dropped as any (step 3
/// of docs/seeding.md). With it (and [`SETTLED_SPACING`] at 0.8 d) the
/// widest gap on that sphere is 1.48-1.83 d over six draws (`seed`), on
/// the torus 1.50-1.82 d in eight of nine and 2.2 d in one; on the bunny
/// scan of docs/seeding.md holes 0.955% → 0.874%, CoV 0.103 → 0.102, CPU
/// the same. Every disc grown to r instead cost the bunny scan 45% more
/// CPU and a CoV of 0.138 (on a noisy scan wide tangent discs draw seeds
/// that land together); every disc 0.75 r, 17% and 0.124.
fn disc_scale(offset: f64) -> f64 {
    let lean = ((offset - INTERIOR_OFFSET) / (EDGE_OFFSET - INTERIOR_OFFSET)).clamp(0.0, 1.0);
    DISC_SCALE + (1.0 - DISC_SCALE) * lean
}

/// Block edge, in spacings: a slab is one block thick, so it holds the
/// seeds of a slice 32 d thick, whose area shrinks with d. Blocks were at
/// least four median disc radii wide until 2026-11-30, so that a disc
/// reached only the blocks beside its foot's;
/// finer than about 30 seeds per cloud point the slabs then stayed as
/// thick in space while their seeds grew with the count (1,003 MB at
/// 8.0M seeds on the bunny scan of docs/seeding.md, 433 MB now). A disc
/// is drawn once per slab it reaches, so slabs much thicker than the discs
/// waste few draws (at 8 spacings, two discs' radii, drawing took 80% of
/// the time), while the blocks of one phase still keep every thread busy.
const BLOCK_SPACINGS: f64 = 32.0;

/// The widest disc, in median disc radii: a rare outlier's wider disc is
/// cut to this, or to a block's edge when that is wider (an outlier far
/// off the cloud reached a count of billions).
const WIDEST_DISC_RADII: f64 = 4.0;

/// The most blocks a disc reaches beyond its foot's, each way: its
/// candidates are drawn in every slab it reaches, and each block of a slab
/// gathers them from the (2 · reach + 1)² blocks of feet around it in
/// each slab within reach. A spacing finer than the cloud's discs by more
/// than this (about 300 seeds or more per cloud point) is refused.
const MAX_REACH: i64 = 3;

/// What a `Seed` job will make: the estimated area of the surface the
/// cloud covers, the spacing, and the predicted number of seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedPlan {
    /// Estimated area, in the cloud's units squared.
    pub area: f64,
    /// Spacing d between seeds.
    pub spacing: f64,
    /// Seeds expected: [`PACKING`] · area / d².
    pub predicted: u64,
    /// The finest spacing the cloud allows ([`MAX_REACH`]).
    pub finest: f64,
}

/// The spacing or the count a `Seed` job asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeedRequest {
    /// Seeds d apart.
    Spacing(f64),
    /// About this many seeds.
    Count(u64),
}

impl SeedRequest {
    /// What to change for fewer seeds, in a refusal's words.
    pub fn for_fewer(&self) -> &'static str {
        match self {
            SeedRequest::Spacing(_) => "raise the spacing",
            SeedRequest::Count(_) => "lower the count",
        }
    }
}

/// The request as the config writes it (`Seed(spacing: 2.5000e-3)`,
/// `Seed(count: 100000)`): refusals name what the user asked.
impl std::fmt::Display for SeedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeedRequest::Spacing(d) => write!(f, "Seed(spacing: {d:.4e})"),
            SeedRequest::Count(n) => write!(f, "Seed(count: {n})"),
        }
    }
}

/// The area the cloud covers, estimated on a sample of at most
/// [`super::inspect::SAMPLE_SIZE`] points: each covers π r² / k, r the
/// distance to its k-th nearest (unbiased for a random sample of a
/// surface; a regular grid's ties bias it by up to 20%), but for a point
/// whose k-th nearest lies over [`ISOLATED_REACH`] times the median's
/// distance (the rule the seeding's discs follow): an isolated point
/// (an outlier far off the cloud) is no sample of a surface, and the
/// seeding puts no seeds around it (its neighbours all lie to one side),
/// while the area its far neighbours span would swamp the sum (100 points
/// scattered over a box 10⁴ times a sphere's size took `Seed(count)`'s
/// spacing from 0.06 to 625).
pub fn estimated_area(search: &NeighbourSearch) -> f64 {
    let len = search.len();
    // The FRAME_NEIGHBOURS + 1 nearest, the point itself included (fewer
    // in a smaller cloud).
    let Some(k) = NonZeroUsize::new((FRAME_NEIGHBOURS + 1).min(len)) else {
        return 0.0;
    };
    let neighbours = (k.get() - 1).max(1) as f64;
    let reaches_squared: Vec<f64> = kth_distances_squared(search, k).collect();
    let Some(median) = Spread::of(&mut reaches_squared.clone()).map(|s| s.median) else {
        return 0.0;
    };
    let sum: f64 = reaches_squared
        .iter()
        .filter(|&&reach_squared| reach_squared <= ISOLATED_REACH * ISOLATED_REACH * median)
        .map(|reach_squared| PI * reach_squared / neighbours)
        .sum();
    sum / reaches_squared.len() as f64 * len as f64
}

/// How many times farther than the median point's its [`FRAME_NEIGHBOURS`]-th
/// neighbour may lie for a point to count as a sample of the surface
/// ([`estimated_area`], [`disc`]): 100, ten thousand times the median's
/// area. A random sample's largest share is about 3 times the median
/// area, but a scan's density may fall with the square of the range (a
/// terrestrial scanner 2 to 100 m from the surface samples it 2,500 times
/// more thinly far off), and its far parts are surface: only a point far
/// beyond any such spread is left out (at 5, the far end of
/// tests/seeding.rs's thinning strip went unseeded).
const ISOLATED_REACH: f64 = 100.0;

impl SeedPlan {
    /// The plan for `request` on the surface of `search`.
    pub fn new(search: &NeighbourSearch, request: SeedRequest) -> SeedPlan {
        let area = estimated_area(search);
        let spacing = match request {
            SeedRequest::Spacing(d) => d,
            SeedRequest::Count(n) => (PACKING * area / n.max(1) as f64).sqrt(),
        };
        SeedPlan {
            area,
            spacing,
            predicted: seeds_at(area, spacing),
            finest: WIDEST_DISC_RADII * disc_radius_median(search)
                / (MAX_REACH as f64 * BLOCK_SPACINGS),
        }
    }

    /// Why the plan is refused, if it is: a spacing finer than
    /// [`SeedPlan::finest`], whose discs would reach more than
    /// [`MAX_REACH`] blocks. Says the spacing or the count asked
    /// (`request`, the plan's), and the finest spacing or the largest count
    /// allowed on a cloud of `cloud_points`.
    pub fn refusal(&self, request: SeedRequest, cloud_points: usize) -> Option<String> {
        if self.spacing >= self.finest {
            return None;
        }
        let most = seeds_at(self.area, self.finest);
        let per_point = |seeds: u64| seeds as f64 / cloud_points.max(1) as f64;
        let (asked, most_per_point) = (per_point(self.predicted), per_point(most));
        let finest = self.finest;
        Some(match request {
            SeedRequest::Spacing(_) => format!(
                "particles: {request} is too fine for the cloud, about {asked:.0} seeds per cloud point: at most about {most_per_point:.0} here (spacing {finest:.4e}, about {most} seeds)"
            ),
            SeedRequest::Count(_) => format!(
                "particles: {request} is too many for the cloud (spacing {:.4e}, about {asked:.0} seeds per cloud point): at most about {most} seeds (spacing {finest:.4e}, about {most_per_point:.0} per cloud point)",
                self.spacing
            ),
        })
    }
}

/// Seeds expected at `spacing` on `area`: [`PACKING`] · area / d², or
/// `u64::MAX` past it.
fn seeds_at(area: f64, spacing: f64) -> u64 {
    let seeds = (PACKING * area / (spacing * spacing)).round();
    if seeds.is_finite() {
        seeds as u64
    } else {
        u64::MAX
    }
}

/// A cloud point's candidate disc, relative to the search's origin.
#[derive(Debug, Clone, Copy)]
struct Disc {
    /// The point's foot on the tangent plane of its neighbours.
    foot: Vector3<f64>,
    /// Two orthonormal tangent directions.
    tangents: [Vector3<f64>; 2],
    /// The plane's normal.
    normal: Vector3<f64>,
    /// Radius of the disc.
    radius: f64,
    /// True when the disc's point may lie near the cloud's edge: its
    /// seeds are checked once kept.
    near_edge: bool,
    /// Candidates drawn on this disc.
    candidates: u32,
}

/// The offset (in units of r) of the centroid of the cloud points within r
/// of a point on the cloud's straight edge: they fill a half disc, whose
/// centroid lies 4 r / 3π from its centre. Inside the edge, at t r from
/// it, they fill the disc less the segment beyond a chord at t, whose
/// centroid comes closer, (2/3)(1 − t²)^{3/2} / (π − segment(t)), falling
/// to 0 at t = 1; outside, at τ r, the segment beyond a chord at τ, whose
/// centroid lies farther, (2/3)(1 − τ²)^{3/2} / segment(τ), rising to 1.
/// So a point is inside when its neighbours' centroid lies within this.
const EDGE_OFFSET: f64 = 4.0 / (3.0 * PI);

/// The mean offset from `centre` of its [`FRAME_NEIGHBOURS`] nearest cloud
/// points (gathered into `hood`), and the distance r to the farthest.
fn centroid(
    search: &NeighbourSearch,
    centre: &Vector3<f64>,
    hood: &mut Neighbourhood,
) -> (Vector3<f64>, f64) {
    let r = search.gather(centre, Support::Nearest(FRAME_NEIGHBOURS + 1), 1.0, hood);
    let count = hood.len().max(1) as f64;
    (
        hood.iter().map(|n| n.offset).sum::<Vector3<f64>>() / count,
        r,
    )
}

/// The tangent plane of the [`FRAME_NEIGHBOURS`] nearest cloud points to
/// `centre` (gathered into `hood`): their mean offset from `centre`, the
/// plane's normal and two tangents, and the distance r to the farthest.
fn frame(
    search: &NeighbourSearch,
    centre: &Vector3<f64>,
    hood: &mut Neighbourhood,
) -> (Vector3<f64>, Vector3<f64>, [Vector3<f64>; 2], f64) {
    let (mean, r) = centroid(search, centre, hood);
    let mut covariance = Matrix3::zeros();
    for n in hood.iter() {
        let d = n.offset - mean;
        covariance += d * d.transpose();
    }
    let eigen = SymmetricEigen::new(covariance);
    let smallest = eigen.eigenvalues.imin();
    let normal = eigen.eigenvectors.column(smallest).into_owned();
    let tangents = [
        eigen.eigenvectors.column((smallest + 1) % 3).into_owned(),
        eigen.eigenvectors.column((smallest + 2) % 3).into_owned(),
    ];
    (mean, normal, tangents, r)
}

/// True when `centre` lies inside the cloud's edge, from the centroid of
/// its [`FRAME_NEIGHBOURS`] nearest (see [`EDGE_OFFSET`]) along the plane
/// of `normal`, the normal of the disc that drew it.
fn inside_edge(
    search: &NeighbourSearch,
    centre: &Vector3<f64>,
    normal: &Vector3<f64>,
    hood: &mut Neighbourhood,
) -> bool {
    let (mean, r) = centroid(search, centre, hood);
    edge_offset(&mean, normal, r) <= EDGE_OFFSET
}

/// How far the centroid `mean` of a neighbourhood of radius `r` lies from
/// its centre within the tangent plane of `normal`, in units of r: about
/// 0.16 inside a random cloud, 4 / 3π (0.42) at its edge.
fn edge_offset(mean: &Vector3<f64>, normal: &Vector3<f64>, r: f64) -> f64 {
    let inward = mean - normal * mean.dot(normal);
    inward.norm() / r.max(f64::MIN_POSITIVE)
}

/// The centroid offset (in units of r, [`EDGE_OFFSET`]) above which a
/// disc's seeds are checked against the cloud's edge once kept: 0.1, an
/// edge within about two thirds of r, where a disc may overhang it. A
/// point inside a random cloud sees offsets around 0.16 from its 16
/// neighbours alone, so three seeds in four are tested (on the bunny scan
/// of docs/seeding.md 193,227 tests, 17% of the CPU, which drop 988
/// seeds). At 0.2 (45% of the tests, −4.6% CPU) seeds reached farther past
/// an edge: over ten random clouds of the plane with a hole of
/// tests/seeding.rs the farthest beyond the outer edge 0.73-1.09 d →
/// 0.80-1.32 d, the deepest in the hole 0.51-1.11 d → 0.51-1.31 d; not
/// kept, as "about d beyond the edge" is what the seeding promises.
const NEAR_EDGE: f64 = 0.1;

/// The disc of cloud point `index` for spacing `spacing`.
/// A point whose [`FRAME_NEIGHBOURS`]-th neighbour lies farther than
/// `isolated_reach` draws no candidates: an outlier off the cloud, whose
/// disc would span the gap to the points it sees (100 points scattered
/// over a box 10⁴ times a sphere's size grew 166,248 seeds around them,
/// against the sphere's 2,000).
fn disc(
    search: &NeighbourSearch,
    index: u32,
    spacing: f64,
    seed: u64,
    isolated_reach: f64,
    hood: &mut Neighbourhood,
) -> Disc {
    let centre = search.local_point(index);
    let (mean, normal, tangents, r) = frame(search, &centre, hood);
    let offset = edge_offset(&mean, &normal, r);
    let radius = disc_scale(offset) * r;
    let neighbours = (hood.len().max(2) - 1) as f64;
    // Drawn on the disc's square, of which the disc keeps π / 4.
    let expected = if r > isolated_reach {
        0.0
    } else {
        CANDIDATES_PER_SEED * PACKING * 4.0 * r * r / neighbours / (spacing * spacing)
    };
    let rounding = unit(hash(seed, index, u32::MAX));
    Disc {
        foot: centre + normal * mean.dot(&normal),
        tangents,
        normal,
        radius,
        near_edge: offset > NEAR_EDGE,
        candidates: (expected + rounding).floor().min(f64::from(u32::MAX)) as u32,
    }
}

/// The most candidates worth drawing on a disc of `radius` at `spacing`:
/// [`CANDIDATES_PER_SEED`] for each seed its square could hold at the
/// densest packing (2 / √3 per d²). A disc inside the cloud draws a sixth
/// of that or less; an isolated point (an outlier), whose 16 neighbours lie
/// far off, would draw by the area they span.
fn most_candidates(radius: f64, spacing: f64) -> u32 {
    let densest = 2.0 / 3f64.sqrt();
    let most = CANDIDATES_PER_SEED * densest * 4.0 * radius * radius / (spacing * spacing);
    most.ceil().min(f64::from(u32::MAX)) as u32
}

/// A well-mixed 64-bit hash of a candidate (point, number) under `seed`
/// (SplitMix64's finaliser applied twice).
fn hash(seed: u64, point: u32, number: u32) -> u64 {
    mix(mix(seed ^ u64::from(point)) ^ u64::from(number))
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from the top 53 bits of `h`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Block coordinates.
type Key = [i64; 3];

/// A kept seed (relative to the search's origin) and the cloud point whose
/// disc drew it.
type Kept = (Vector3<f64>, u32);

/// Cubic blocks of edge `edge` from `lo`, keyed with the coordinate along
/// `axes[0]` first: slabs (blocks of one first coordinate) cut the longest
/// side of the cloud, so that each holds as small a share of the seeds as
/// the shape allows (a long terrain strip along y is cut across y).
#[derive(Debug, Clone, Copy)]
struct Blocks {
    lo: Vector3<f64>,
    edge: f64,
    axes: [usize; 3],
}

impl Blocks {
    /// Blocks of edge `edge` over points from `lo` to `hi`.
    fn new(lo: Vector3<f64>, hi: Vector3<f64>, edge: f64) -> Blocks {
        let extent = hi - lo;
        let longest = extent.imax();
        Blocks {
            lo,
            edge,
            axes: [longest, (longest + 1) % 3, (longest + 2) % 3],
        }
    }

    fn key(&self, p: &Vector3<f64>) -> Key {
        self.axes.map(|a| self.coordinate(p[a], a))
    }

    /// The block coordinate of `x` along axis `axis`: [`Blocks::key`]'s,
    /// and the one [`Blocks::bounds`] inverts.
    fn coordinate(&self, x: f64, axis: usize) -> i64 {
        floor_i64((x - self.lo[axis]) / self.edge)
    }

    /// The positions [`Blocks::key`] puts in block `key`, as bounds per
    /// axis: a candidate of a disc that crosses the block's faces (three
    /// in four that reach a block, on the bunny scan) is then placed by
    /// six comparisons instead of three divisions and roundings.
    fn bounds(&self, key: Key) -> Bounds {
        let mut lo = Vector3::zeros();
        let mut hi = Vector3::zeros();
        for (&k, &a) in key.iter().zip(&self.axes) {
            let block = |x: f64| self.coordinate(x, a);
            lo[a] = first_reaching(k, block);
            hi[a] = first_reaching(k.saturating_add(1), block);
        }
        Bounds { lo, hi }
    }

    fn corner(&self, key: Key) -> Vector3<f64> {
        let mut c = Vector3::zeros();
        for (k, &a) in key.iter().zip(&self.axes) {
            c[a] = *k as f64;
        }
        self.lo + c * self.edge
    }
}

/// The positions that [`Blocks::key`] puts in one block: `lo` up to but
/// not including `hi`, per axis (for finite positions, as every
/// candidate's is: the cloud's points are).
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lo: Vector3<f64>,
    hi: Vector3<f64>,
}

impl Bounds {
    fn contains(&self, p: &Vector3<f64>) -> bool {
        (0..3).all(|a| self.lo[a] <= p[a] && p[a] < self.hi[a])
    }
}

/// The least finite x with `block(x) >= k`, or infinity when there is
/// none, for `block` non-decreasing (a subtraction, a division by a
/// positive number and a rounding down are, in floating point too): by
/// bisection over the f64 values in order, so that the bound is exact to
/// the last bit.
fn first_reaching(k: i64, block: impl Fn(f64) -> i64) -> f64 {
    // The f64 values in order, as integers (`f64::total_cmp`'s key); the
    // same map turns them back.
    let order = |bits: i64| bits ^ (((bits >> 63) as u64) >> 1) as i64;
    let value = |at: i128| f64::from_bits(order(at as i64) as u64);
    let (mut below, mut at) = (
        i128::from(order(f64::MIN.to_bits() as i64)),
        i128::from(order(f64::MAX.to_bits() as i64)),
    );
    if block(value(below)) >= k {
        return value(below);
    }
    if block(value(at)) < k {
        return f64::INFINITY;
    }
    // block(value(below)) < k <= block(value(at)).
    while at - below > 1 {
        let middle = below + (at - below) / 2;
        if block(value(middle)) >= k {
            at = middle;
        } else {
            below = middle;
        }
    }
    value(at)
}

/// The keys within `reach` blocks of `key` each way, itself included, in
/// key order (27 for a reach of 1).
fn around(key: Key, reach: i64) -> impl Iterator<Item = Key> {
    (-reach..=reach).flat_map(move |x| {
        (-reach..=reach)
            .flat_map(move |y| (-reach..=reach).map(move |z| [key[0] + x, key[1] + y, key[2] + z]))
    })
}

/// The median radius of a candidate disc inside the cloud, on a sample:
/// [`DISC_SCALE`] times the median distance to the [`FRAME_NEIGHBOURS`]-th
/// neighbour (discs grow at gaps and edges, [`disc_scale`], which the
/// median hardly sees).
fn disc_radius_median(search: &NeighbourSearch) -> f64 {
    DISC_SCALE * median_reach(search).unwrap_or(0.0)
}

/// The median distance from a point to its [`FRAME_NEIGHBOURS`]-th
/// neighbour, on a sample: the scale of the discs and of the isolation
/// rule ([`ISOLATED_REACH`]); `None` for an empty cloud.
fn median_reach(search: &NeighbourSearch) -> Option<f64> {
    radius_for(search, FRAME_NEIGHBOURS + 1)
}

/// A candidate: its position, the cloud point whose disc drew it, and
/// the leading [`ORDER_BITS`] of its hash.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    p: Vector3<f64>,
    point: u32,
    class: u16,
}

/// The candidates that the discs whose foot lies in one block drew, for
/// each block of the group being made that they reach, in drawing order
/// (each run no longer than it holds: spare capacity was a third of a
/// slab's memory).
type Drawn = Vec<(Key, Vec<Candidate>)>;

/// The scratch of one thread: one block's candidates in order, its
/// conflict grid and the seeds in it.
#[derive(Default)]
struct Scratch {
    /// The block's candidates in the greedy's order
    /// ([`Scratch::order_by_hash`]).
    ordered: Vec<Candidate>,
    /// Candidates per leading bits of the hash.
    counts: Vec<usize>,
    grid: Vec<u32>,
    /// The cells of `grid` written for the last block (reset for the
    /// next one rather than the whole grid).
    written: Vec<usize>,
    near: Vec<Vector3<f64>>,
}

const EMPTY: u32 = u32::MAX;

/// Leading bits of a candidate's hash that order the greedy selection.
/// A block holds some 10⁴ candidates: 2¹⁰ classes hold about ten each,
/// spread over the block and so far apart that their order among
/// themselves (the drawing order) hardly matters.
const ORDER_BITS: u32 = 10;

// A candidate keeps its class in 16 bits.
const _: () = assert!(ORDER_BITS <= 16);

impl Scratch {
    /// `candidates` (runs of them, one after another) into `ordered` by
    /// the leading [`ORDER_BITS`] of their hash, in drawing order within a
    /// class: as random an order as a full sort by hash, in two linear
    /// passes (the sort took 9% of a job).
    fn order_by_hash(&mut self, candidates: &[&[Candidate]]) {
        let all = || candidates.iter().flat_map(|run| run.iter());
        self.counts.clear();
        self.counts.resize((1 << ORDER_BITS) + 1, 0);
        for c in all() {
            self.counts[usize::from(c.class) + 1] += 1;
        }
        for c in 1..self.counts.len() {
            self.counts[c] += self.counts[c - 1];
        }
        self.ordered.clear();
        let unset = Candidate {
            p: Vector3::zeros(),
            point: 0,
            class: 0,
        };
        self.ordered.resize(self.counts[1 << ORDER_BITS], unset);
        for &c in all() {
            let at = &mut self.counts[usize::from(c.class)];
            self.ordered[*at] = c;
            *at += 1;
        }
    }
}

/// The cloud points sorted by the block of their disc's foot, then by
/// point, for `discs` whose feet lie from `blocks.lo` to `hi`. Sorted
/// with their blocks' keys beside them (32 bytes a point for a moment,
/// 320 MB on the street of docs/seeding.md, the peak of its whole job),
/// or packed into 64 bits (16 bytes a point) where the blocks span fewer
/// than 2²¹ along each axis: on any cloud but one with outliers far off.
fn by_block(discs: &[Disc], blocks: &Blocks, hi: &Vector3<f64>) -> Vec<u32> {
    const BITS: u32 = 21;
    if blocks.key(hi).iter().all(|&k| (0..1 << BITS).contains(&k)) {
        // The keys are at least 0 (`blocks.lo` is the least foot), and
        // packed in their order.
        let pack = |key: Key| {
            key.iter()
                .fold(0u64, |packed, &k| packed << BITS | k as u64)
        };
        sorted_points(discs, |d| pack(blocks.key(&d.foot)))
    } else {
        sorted_points(discs, |d| blocks.key(&d.foot))
    }
}

/// The numbers of `discs` sorted by `key`, then by number.
fn sorted_points<K: Ord + Send>(discs: &[Disc], key: impl Fn(&Disc) -> K) -> Vec<u32> {
    let mut keyed: Vec<(K, u32)> = discs
        .iter()
        .enumerate()
        .map(|(i, d)| (key(d), i as u32))
        .collect();
    keyed.par_sort_unstable();
    let mut points: Vec<u32> = keyed.into_iter().map(|(_, point)| point).collect();
    points.shrink_to_fit();
    points
}

/// The seeds of a cloud at one spacing, made slab by slab: the blocks of
/// one coordinate along the longest side at a time, so that a slab's
/// seeds can be projected and written before the slabs after the next are
/// made ([`seed_surface`]).
struct Seeder<'a> {
    search: &'a NeighbourSearch,
    spacing: f64,
    seed: u64,
    discs: Vec<Disc>,
    blocks: Blocks,
    /// The cloud points sorted by the block of their disc's foot
    /// ([`Seeder::foot`]), then by point: 4 bytes a point, where the keys
    /// beside them took 32 (320 MB of the street of docs/seeding.md).
    feet: Vec<u32>,
    /// Every block a disc reaches, in key order (the longest side first: slab by slab).
    keys: Vec<Key>,
    /// The most blocks a disc reaches beyond its foot's, each way (at
    /// most [`MAX_REACH`]).
    reach: i64,
    /// The fewest blocks in a group of rows ([`row_groups`]), a few groups
    /// of which are in memory at a time: [`GROUP_BLOCKS`], whatever the
    /// threads.
    group_blocks: usize,
}

impl<'a> Seeder<'a> {
    /// The discs and blocks of the cloud of `search` for seeds at
    /// `spacing` under `seed`.
    fn new(search: &'a NeighbourSearch, spacing: f64, seed: u64) -> Seeder<'a> {
        // As `estimated_area` counts isolated points out.
        let isolated_reach =
            median_reach(search).map_or(f64::INFINITY, |median| ISOLATED_REACH * median);
        let discs: Vec<Disc> = (0..search.len() as u32)
            .into_par_iter()
            .map_init(Neighbourhood::default, |hood, i| {
                disc(search, i, spacing, seed, isolated_reach, hood)
            })
            .collect();
        let mut radii: Vec<f64> = discs.iter().map(|d| d.radius).collect();
        let middle = radii.len() / 2;
        let median = radii
            .select_nth_unstable_by(middle, f64::total_cmp)
            .1
            .to_owned();
        drop(radii);
        let edge = BLOCK_SPACINGS * spacing;
        // At most the reach `SeedPlan::refusal` allows, which it measures on
        // discs inside the cloud: the median here counts the discs grown
        // at gaps and edges too.
        let widest = (WIDEST_DISC_RADII * median)
            .max(edge)
            .min(MAX_REACH as f64 * edge);
        let reach = ((widest / edge).ceil() as i64).clamp(1, MAX_REACH);
        let (lo, hi) = discs.iter().fold(
            (
                Vector3::repeat(f64::INFINITY),
                Vector3::repeat(f64::NEG_INFINITY),
            ),
            |(lo, hi), d| (lo.inf(&d.foot), hi.sup(&d.foot)),
        );
        let blocks = Blocks::new(lo, hi, edge);
        // Every disc within `reach` blocks of its foot's: a rare outlier's
        // wider disc is cut down, and its candidates to what the cut disc
        // holds.
        let discs: Vec<Disc> = discs
            .into_iter()
            .map(|d| {
                let radius = d.radius.min(widest);
                Disc {
                    radius,
                    candidates: d.candidates.min(most_candidates(radius, spacing)),
                    ..d
                }
            })
            .collect();
        let feet = by_block(&discs, &blocks, &hi);
        let foot = |point: &u32| foot_block(&blocks, &discs, *point);
        // Every block a disc reaches, whether or not a foot lies in it: a
        // block that a curved surface only grazes still holds candidates.
        // Those of the discs of one foot's block are mostly the same few:
        // gathered block by block, they never make a list of one or more
        // per disc (290 MB on the street).
        let by_foot: Vec<&[u32]> = feet.chunk_by(|a, b| foot(a) == foot(b)).collect();
        let mut keys: Vec<Key> = by_foot
            .par_iter()
            .flat_map_iter(|points| {
                let mut reached: Vec<Key> = points
                    .iter()
                    .flat_map(|&point| {
                        let d = &discs[point as usize];
                        let lo = blocks.key(&(d.foot - Vector3::repeat(d.radius)));
                        let hi = blocks.key(&(d.foot + Vector3::repeat(d.radius)));
                        (lo[0]..=hi[0]).flat_map(move |x| {
                            (lo[1]..=hi[1])
                                .flat_map(move |y| (lo[2]..=hi[2]).map(move |z| [x, y, z]))
                        })
                    })
                    .collect();
                reached.sort_unstable();
                reached.dedup();
                reached
            })
            .collect();
        keys.par_sort_unstable();
        keys.dedup();
        keys.shrink_to_fit();
        Seeder {
            search,
            spacing,
            seed,
            discs,
            blocks,
            feet,
            keys,
            reach,
            group_blocks: GROUP_BLOCKS,
        }
    }

    /// The block of the foot of cloud point `point`'s disc.
    fn foot(&self, point: u32) -> Key {
        foot_block(&self.blocks, &self.discs, point)
    }

    /// The slabs (first block coordinates) from the first that holds a
    /// block to the last.
    fn span(&self) -> Range<i64> {
        match (self.keys.first(), self.keys.last()) {
            (Some(first), Some(last)) => first[0]..last[0] + 1,
            _ => 0..0,
        }
    }

    /// The slabs of `range` that hold a block, in order: a slab without one
    /// has no seeds, and an outlier far off the cloud puts billions of
    /// such slabs between it and the rest.
    fn occupied(&self, range: Range<i64>) -> Vec<i64> {
        let mut slabs: Vec<i64> = self
            .keys
            .iter()
            .map(|key| key[0])
            .filter(|slab| range.contains(slab))
            .collect();
        slabs.dedup();
        slabs
    }

    /// The slabs of `tile`: the `tile.index`-th of `tile.count` runs of
    /// consecutive slabs, cut where the candidates of the discs whose foot
    /// lies in the slabs before reach the next `1/count` of all, so that
    /// tiles hold about as many seeds. Every tile of a job computes the
    /// same discs from the same cloud, hence the same cuts.
    fn tile_slabs(&self, tile: Tile) -> Range<i64> {
        let span = self.span();
        // Candidates per slab, in slab order (`feet` is sorted by key).
        let mut weights: Vec<(i64, u128)> = Vec::new();
        for &point in &self.feet {
            let candidates = u128::from(self.discs[point as usize].candidates);
            let slab = self.foot(point)[0];
            match weights.last_mut() {
                Some((at, weight)) if *at == slab => *weight += candidates,
                _ => weights.push((slab, candidates)),
            }
        }
        let total: u128 = weights.iter().map(|(_, weight)| weight).sum();
        let tiles = tile.count as u128;
        // The first slab with at least `share / count` of all the
        // candidates before it.
        let cut = |share: usize| -> i64 {
            if share == 0 {
                return span.start;
            }
            if share == tile.count {
                return span.end;
            }
            let mut before = 0;
            for &(slab, weight) in &weights {
                if before * tiles >= share as u128 * total {
                    return slab;
                }
                before += weight;
            }
            span.end
        };
        cut(tile.index)..cut(tile.index + 1)
    }

    /// The seeds of slab `slab` (one first coordinate of blocks), made
    /// against `neighbours`, the slabs beside it made before (none for an
    /// even slab, both for an odd one), in parts: its blocks in groups of
    /// rows ([`row_groups`]) in a wavefront, so that the candidates of a
    /// few groups are in memory at a time, never the slab's. At step t
    /// phase p selects the blocks of group t − p ([`Seeder::select_phase`];
    /// the discs whose feet lie within reach of a group's rows, and not
    /// of an earlier group's, are drawn just before its first phase,
    /// [`Seeder::draw`], and each block's candidates dropped once it is
    /// selected):
    /// a block of phase p so sees exactly the blocks beside it of earlier
    /// phases done, as when the slab's four phases ran whole (a row
    /// touches the rows beside it only, and of two touching blocks the
    /// one of the earlier phase comes first, in an earlier step or
    /// earlier in the same one), and its seeds are those. Once a group's
    /// last phase is done its seeds go on, in key order
    /// ([`Seeder::settle_group`]), and `out` receives each group's
    /// projections in turn: the slab's, in the order of the slab made
    /// whole. The seeds of the group before are then lent no more: an
    /// even slab keeps those by its faces, for the odd slabs beside it
    /// ([`lent_reach`]).
    fn make(
        &self,
        projector: &Projector,
        slab: i64,
        neighbours: &[&Slab],
        mut out: impl FnMut(&[Projected]) -> Result<()>,
    ) -> Result<Slab> {
        let from = self.keys.partition_point(|k| k[0] < slab);
        let to = self.keys.partition_point(|k| k[0] <= slab);
        let keys = &self.keys[from..to];
        let groups = row_groups(keys, self.group_blocks);
        let axis = self.blocks.axes[0];
        let low_face = self.blocks.corner([slab, 0, 0])[axis];
        let faces = even(slab).then_some((low_face, low_face + self.blocks.edge));
        // The candidates drawn and not yet selected, and the last row of
        // feet drawn.
        let mut drawn: HashMap<Key, Drawn> = HashMap::new();
        let mut drawn_to: Option<i64> = None;
        let rows = |group: &[Key]| group[0][1]..=group[group.len() - 1][1];
        let mut current: HashMap<Key, Vec<Kept>> = HashMap::new();
        let mut made = Slab {
            kept: HashMap::new(),
            settled: Landed::default(),
        };
        for step in 0..groups.len() + 3 {
            // The feet within reach of the group's rows, not drawn before.
            if let Some(group) = groups.get(step) {
                let first = drawn_to
                    .map_or(rows(group).start().saturating_sub(self.reach), |row| {
                        row.saturating_add(1)
                    });
                let last = rows(group).end().saturating_add(self.reach);
                drawn.extend(self.draw(keys, first..=last));
                drawn_to = Some(last);
            }
            for phase in 0..4 {
                let Some(g) = step.checked_sub(phase).filter(|&g| g < groups.len()) else {
                    continue;
                };
                let done = self.select_phase(groups[g], phase, &drawn, neighbours, &current);
                // The candidates of the blocks just selected go.
                let selected = rows(groups[g]);
                drawn.retain(|_, targets| {
                    targets.retain(|(key, _)| colour(key) != phase || !selected.contains(&key[1]));
                    !targets.is_empty()
                });
                current.extend(done);
            }
            if let Some(g) = step.checked_sub(3).filter(|&g| g < groups.len()) {
                self.settle_group(
                    projector,
                    groups[g],
                    &current,
                    neighbours,
                    &mut made.settled,
                    &mut out,
                )?;
                if let Some(before) = g.checked_sub(1) {
                    self.retire(groups[before], &mut current, &mut made.kept, faces);
                }
            }
        }
        if let Some(last) = groups.last() {
            self.retire(last, &mut current, &mut made.kept, faces);
        }
        Ok(made)
    }

    /// Takes the seeds of the blocks `group` out of `current`, keeping in
    /// `kept` those within [`lent_reach`] of `faces` (the two faces of an
    /// even slab along the slabs' axis; `None` for an odd slab, whose
    /// seeds are lent to no other).
    fn retire(
        &self,
        group: &[Key],
        current: &mut HashMap<Key, Vec<Kept>>,
        kept: &mut HashMap<Key, Vec<Kept>>,
        faces: Option<(f64, f64)>,
    ) {
        let axis = self.blocks.axes[0];
        let reach = lent_reach(self.spacing);
        for key in group {
            let Some(seeds) = current.remove(key) else {
                continue;
            };
            let Some((low, high)) = faces else { continue };
            let mut border: Vec<Kept> = seeds
                .into_iter()
                .filter(|(p, _)| p[axis] < low + reach || p[axis] > high - reach)
                .collect();
            // The collect reuses the block's allocation: trimmed, or the
            // even slabs would hold every seed's room after all.
            border.shrink_to_fit();
            if !border.is_empty() {
                kept.insert(*key, border);
            }
        }
    }

    /// The seeds of the blocks `group`, all selected (in `current`), in
    /// key order: those beyond the cloud's edge dropped, projected with
    /// `projector`, settled ([`settle`]) against the projections settled
    /// before that land within reach (in `landed`, this slab's earlier
    /// groups, and in the `neighbours`), added to `landed` and handed to
    /// `out`.
    fn settle_group(
        &self,
        projector: &Projector,
        group: &[Key],
        current: &HashMap<Key, Vec<Kept>>,
        neighbours: &[&Slab],
        landed: &mut Landed,
        out: &mut impl FnMut(&[Projected]) -> Result<()>,
    ) -> Result<()> {
        // Seeds of discs by the cloud's edge that lie more than half a
        // spacing beyond it go. Cutting the discs at the edge they show
        // instead left gaps inside the cloud, where a gap between points
        // looks like an edge to a disc's 16 neighbours; a seed's own
        // neighbours see past it.
        let origin = self.search.origin();
        let kept: Vec<Kept> = group
            .iter()
            .filter_map(|k| current.get(k))
            .flatten()
            .copied()
            .collect();
        let seeds: Vec<Point3<f64>> = kept
            .par_iter()
            .map_init(Neighbourhood::default, |hood, &(p, point)| {
                let disc = &self.discs[point as usize];
                (!disc.near_edge || inside_edge(self.search, &p, &disc.normal, hood))
                    .then(|| origin + p)
            })
            .flatten_iter()
            .collect();
        let projected = super::project_all(projector, &seeds);
        let positions: Vec<Point3<f64>> = projected.iter().map(|p| p.position).collect();
        let Some((low, high)) = finite_bounds(&positions) else {
            return Ok(());
        };
        let radius = SETTLED_SPACING * self.spacing;
        // A little wider than the settling's radius: a position gathered
        // by a rounding at its edge is in it too.
        let reach = Vector3::repeat(radius * (1.0 + 1e-6));
        let (low, high) = (low - reach, high + reach);
        let mut before = Vec::new();
        for made in std::iter::once(&*landed).chain(neighbours.iter().map(|made| &made.settled)) {
            made.within(&low, &high, &mut before);
        }
        let settled = settle(projected, before, radius);
        landed.push(settled.iter().map(|p| p.position).collect());
        out(&settled)
    }

    /// The seeds of the blocks of phase `phase` (of the 2×2 colouring in
    /// the other two coordinates, [`colour`]) in `group`, each chosen
    /// against the seeds already kept in its neighbours: those of the
    /// slabs beside it made before (`neighbours`) and of the blocks of
    /// this slab done in an earlier phase (`current`), from its
    /// candidates in `drawn`. The blocks of one phase never touch and run
    /// in parallel: the result depends on the blocks, never on the
    /// threads.
    fn select_phase(
        &self,
        group: &[Key],
        phase: usize,
        drawn: &HashMap<Key, Drawn>,
        neighbours: &[&Slab],
        current: &HashMap<Key, Vec<Kept>>,
    ) -> Vec<(Key, Vec<Kept>)> {
        group
            .par_iter()
            .filter(|key| colour(key) == phase)
            .map_init(Scratch::default, |scratch, &key| {
                let block = Block {
                    key,
                    blocks: self.blocks,
                    spacing: self.spacing,
                };
                // In the order of `feet`, as drawn.
                let candidates: Vec<&[Candidate]> = around(key, self.reach)
                    .filter_map(|foot| drawn.get(&foot))
                    .filter_map(|targets| targets.iter().find(|(target, _)| *target == key))
                    .map(|(_, run)| run.as_slice())
                    .collect();
                // A seed within reach of a conflict lies in a block beside.
                let lent = around(key, 1)
                    .filter_map(|k| {
                        neighbours
                            .iter()
                            .find_map(|made| made.kept.get(&k))
                            .or_else(|| current.get(&k))
                    })
                    .flat_map(|seeds| seeds.iter().map(|(p, _)| p));
                (key, block.select(&self.discs, &candidates, lent, scratch))
            })
            .collect()
    }

    /// The candidates that the discs whose feet lie in rows `rows` (of
    /// the second block coordinate, in the slabs within reach of `slab`'s)
    /// draw for the blocks `slab` (one slab's, in key order), by the block
    /// of the discs' feet: every disc of those feet that reaches one of
    /// the blocks is drawn once, and each of its candidates goes to the
    /// block it falls in. Drawn for each block instead, a disc crossing a
    /// face between two blocks of the slab was drawn twice (11.2M draws
    /// for 4.57M candidates on the bunny scan). [`Seeder::make`] draws the
    /// feet of each group's rows once, so each disc once per slab as when
    /// a slab was drawn whole (drawn for each group of rows instead, a
    /// disc reaching two groups was drawn for each: 16% more draws on the
    /// bunny scan at 6.2e-4, whose discs reach two blocks, and 8% more CPU
    /// at 4.4e-4). Which blocks a disc gives candidates to, and in what
    /// order, is as when each block drew the discs of the blocks within
    /// reach of it: the discs it reaches, a disc inside its faces by a
    /// margin without a check of each candidate, in the order of `feet`.
    fn draw(&self, slab: &[Key], rows: RangeInclusive<i64>) -> HashMap<Key, Drawn> {
        let Some(&[at, ..]) = slab.first() else {
            return HashMap::new();
        };
        let reach = self.reach;
        let (first, last) = (*rows.start(), *rows.end());
        // The blocks those feet reach.
        let from = slab.partition_point(|k| k[1] < first.saturating_sub(reach));
        let to = slab.partition_point(|k| k[1] <= last.saturating_add(reach));
        let blocks = &slab[from..to];
        // The feet: in each slab within reach, one run of `feet`.
        let row = |point: &u32| {
            let key = self.foot(*point);
            (key[0], key[1])
        };
        let feet: Vec<&[u32]> = (at.saturating_sub(reach)..=at.saturating_add(reach))
            .flat_map(|slab| {
                let from = self.feet.partition_point(|p| row(p) < (slab, first));
                let to = self.feet.partition_point(|p| row(p) <= (slab, last));
                self.feet[from..to].chunk_by(|a, b| self.foot(*a) == self.foot(*b))
            })
            .collect();
        let edge = self.blocks.edge;
        // Each block's corner and bounds, once.
        let places: Vec<(Vector3<f64>, Bounds)> = blocks
            .iter()
            .map(|&key| (self.blocks.corner(key), self.blocks.bounds(key)))
            .collect();
        feet.par_iter()
            .map(|points| {
                let foot = self.foot(points[0]);
                let targets: Vec<(Key, &(Vector3<f64>, Bounds))> = around(foot, reach)
                    .filter(|key| key[0] == at)
                    .filter_map(|key| Some((key, &places[blocks.binary_search(&key).ok()?])))
                    .collect();
                let mut drawn: Drawn = targets.iter().map(|t| (t.0, Vec::new())).collect();
                // The targets a disc reaches, each with whether it lies
                // within it.
                let mut reached: Vec<(usize, bool)> = Vec::with_capacity(targets.len());
                for &point in *points {
                    let disc = &self.discs[point as usize];
                    reached.clear();
                    for (t, (_, (corner, _))) in targets.iter().enumerate() {
                        let centre = disc.foot - corner;
                        let gap =
                            Vector3::from_fn(|a, _| (-centre[a]).max(centre[a] - edge).max(0.0));
                        if gap.norm() > disc.radius {
                            continue;
                        }
                        // Most discs lie well inside one block: their
                        // candidates need no check of the block they fall
                        // in (the margin keeps rounding from deciding
                        // otherwise than `Blocks::key`).
                        let within = (0..3)
                            .map(|a| centre[a].min(edge - centre[a]))
                            .fold(f64::INFINITY, f64::min)
                            > disc.radius + 1e-9 * edge;
                        reached.push((t, within));
                    }
                    if reached.is_empty() {
                        continue;
                    }
                    for number in 0..disc.candidates {
                        let h = hash(self.seed, point, number);
                        // Uniform on the disc by rejection from its square:
                        // no square root or sine per draw.
                        // (From another hash than the order's, which must
                        // not follow the position.)
                        let place = mix(h);
                        let x = 2.0 * unit(place << 32) - 1.0;
                        let y = 2.0 * unit(place & !0xffff_ffff) - 1.0;
                        if x * x + y * y > 1.0 {
                            continue;
                        }
                        let offset = (disc.tangents[0] * x + disc.tangents[1] * y) * disc.radius;
                        let p = disc.foot + offset;
                        for &(t, within) in &reached {
                            if within || targets[t].1.1.contains(&p) {
                                drawn[t].1.push(Candidate {
                                    p,
                                    point,
                                    class: (h >> (64 - ORDER_BITS)) as u16,
                                });
                            }
                        }
                    }
                }
                for (_, run) in &mut drawn {
                    run.shrink_to_fit();
                }
                (foot, drawn)
            })
            .collect()
    }
}

/// A slab's seeds once made, as far as the odd slabs beside it need them:
/// those the selection kept within [`lent_reach`] of its faces along the
/// slabs' axis, per block (lent to the selection of those slabs), and
/// where the settling's projections landed (which they settle against).
struct Slab {
    kept: HashMap<Key, Vec<Kept>>,
    settled: Landed,
}

/// How far from a block the selection's grid reaches ([`Grid`]): 3 cells
/// (d / √3 each) below it and under 5 above (its extra cell and the
/// rounding up of the block's cells), so 6 cover both. A seed of an even
/// slab farther than this from its faces never enters the grid of a
/// block of the odd slabs beside it, and is not kept for them.
fn lent_reach(spacing: f64) -> f64 {
    (2.0 * MARGIN_CELLS) * spacing / 3f64.sqrt()
}

/// Where the settled projections of a slab landed, in chunks (one per
/// group of rows, [`row_groups`]) each with its bounding box, so that
/// the settling of a group gathers only those of the chunks that come
/// near it.
#[derive(Default)]
struct Landed {
    chunks: Vec<(Extent, Vec<Point3<f64>>)>,
}

/// A bounding box: its least and its greatest corner.
type Extent = (Point3<f64>, Point3<f64>);

impl Landed {
    fn push(&mut self, positions: Vec<Point3<f64>>) {
        if let Some(extent) = finite_bounds(&positions) {
            self.chunks.push((extent, positions));
        }
    }

    /// Appends to `into` the positions within the box from `low` to
    /// `high`.
    fn within(&self, low: &Point3<f64>, high: &Point3<f64>, into: &mut Vec<Point3<f64>>) {
        let inside = |p: &&Point3<f64>| (0..3).all(|a| low[a] <= p[a] && p[a] <= high[a]);
        for ((chunk_low, chunk_high), positions) in &self.chunks {
            let apart = (0..3).any(|a| chunk_high[a] < low[a] || high[a] < chunk_low[a]);
            if !apart {
                into.extend(positions.iter().filter(inside));
            }
        }
    }
}

/// The phase of block `key` within its slab: a 2×2 colouring of its other
/// two coordinates, so that two blocks of one phase never touch.
fn colour(key: &Key) -> usize {
    (key[1] & 1 | (key[2] & 1) << 1) as usize
}

/// Blocks of a slab per group of rows ([`Seeder::make`]): a phase of a
/// group (a quarter of it) gives each of two threads 8 blocks. Each step
/// of the wavefront waits for its four phases in turn, and the threads
/// idle at each wait: on the bunny scan at 4.4e-4 (3 alternated runs
/// against slabs made whole, 55.9 s CPU, two threads) 57.4 s at 64 blocks,
/// 56.2 s at 128, 55.8 s at 256; but a group's candidates are in memory a
/// few at a time, and the street of docs/seeding.md peaked at 1.87 GB at
/// 64, 1.97 GB at 128. Memory first: 64. The same whatever the threads:
/// the settling's search is built over a group's landing places, and its
/// rounding must not follow the machine's cores.
const GROUP_BLOCKS: usize = 64;

/// The blocks `keys` of one slab (in key order) in groups of whole rows
/// (blocks of one second coordinate), each of at least `fewest_blocks`
/// blocks but the last.
fn row_groups(keys: &[Key], fewest_blocks: usize) -> Vec<&[Key]> {
    let mut groups = Vec::new();
    let (mut start, mut end) = (0, 0);
    for row in keys.chunk_by(|a, b| a[1] == b[1]) {
        end += row.len();
        if end - start >= fewest_blocks {
            groups.push(&keys[start..end]);
            start = end;
        }
    }
    if start < end {
        groups.push(&keys[start..end]);
    }
    groups
}

/// The block of the foot of cloud point `point`'s disc among `discs`.
fn foot_block(blocks: &Blocks, discs: &[Disc], point: u32) -> Key {
    blocks.key(&discs[point as usize].foot)
}

/// True for a slab made alone, before the odd slabs beside it.
fn even(slab: i64) -> bool {
    slab.rem_euclid(2) == 0
}

/// Makes the seeds at `spacing` over the surface the cloud of `search`
/// covers (or, for `Some(tile)`, over the slabs of that tile,
/// [`Seeder::tile_slabs`]), projects them with `projector` (over the same
/// search) and hands the projections to `sink` with their slab's
/// coordinate, slab by slab in spatial order and each slab in parts
/// (groups of its rows of blocks, [`Seeder::make`]): the order, and so
/// the rows written, of slabs made whole. Memory holds the discs of the
/// cloud, the candidates and seeds of a few groups of rows, and what the
/// odd slabs need of the even slabs beside them (their seeds by their
/// faces and where their projections landed); the projections of an
/// even slab made before the odd one that comes first wait in an unnamed
/// file in the folder of `beside` (the output's).
///
/// Slabs come in two colours: an even slab is made alone, an odd one
/// against the even slabs on both sides (its selection is lent their
/// seeds, its settling checks against their projections). A slab so
/// depends on its two neighbours at most, never on a chain of slabs
/// before it: a tile makes its own slabs and the even slabs beside them,
/// and its seeds are those a whole run makes there, exactly. The same
/// `seed` gives the same projections, in the same order, whatever the
/// threads (the groups are a fixed number of blocks, not the threads').
pub fn seed_surface(
    search: &NeighbourSearch,
    projector: &Projector,
    spacing: f64,
    seed: u64,
    tile: Option<Tile>,
    beside: &Path,
    sink: impl FnMut(i64, &[Projected]) -> Result<()>,
) -> Result<()> {
    let seeder = Seeder::new(search, spacing, seed);
    let slabs = tile.map_or_else(|| seeder.span(), |tile| seeder.tile_slabs(tile));
    seeder.hand_on(projector, slabs, beside, sink)
}

impl Seeder<'_> {
    /// The seeds of `slabs`, projected with `projector`, handed to `sink`
    /// slab by slab ([`seed_surface`]), an even slab made before the odd
    /// one beside it parked in a file beside `beside` meanwhile.
    fn hand_on(
        &self,
        projector: &Projector,
        slabs: Range<i64>,
        beside: &Path,
        mut sink: impl FnMut(i64, &[Projected]) -> Result<()>,
    ) -> Result<()> {
        let discard = |_: &[Projected]| Ok(());
        // The even slab made last, with its coordinate and its projections
        // not yet handed on (made before the odd slab that comes first).
        let mut last: Option<(i64, Slab, Option<Spool>)> = None;
        for slab in self.occupied(slabs.clone()) {
            if even(slab) {
                let made = match last.take() {
                    Some((at, made, parked)) if at == slab => {
                        if let Some(parked) = parked {
                            let mut parked = parked.into_reader()?;
                            while !parked.is_empty() {
                                sink(slab, &parked.read_chunk(PARKED_CHUNK)?)?;
                            }
                        }
                        made
                    }
                    _ => self.make(projector, slab, &[], |part| sink(slab, part))?,
                };
                last = Some((slab, made, None));
            } else {
                let before = match last.take() {
                    Some((at, made, _)) if at == slab - 1 => made,
                    _ => self.make(projector, slab - 1, &[], discard)?,
                };
                // Handed on after this slab's, if it is one of `slabs`: on
                // disk meanwhile, since the even slab's projections are as
                // many as its seeds (about 110 bytes each in memory; a
                // facade of the street of docs/seeding.md, 3.5M of them).
                let mut parked = if slabs.contains(&(slab + 1)) {
                    Some(Spool::beside(beside)?)
                } else {
                    None
                };
                let after = self.make(projector, slab + 1, &[], |part| match &mut parked {
                    Some(spool) => spool.push(part),
                    None => Ok(()),
                })?;
                self.make(projector, slab, &[&before, &after], |part| sink(slab, part))?;
                last = Some((slab + 1, after, parked));
            }
        }
        Ok(())
    }
}

/// Projections read back at a time from a parked even slab: 7 MB.
const PARKED_CHUNK: usize = 1 << 16;

/// `projected`, seeds in seed order, less those that land within `radius`
/// of one kept before them: in `before` (settled already) or earlier in
/// `projected`. A seed that lands so close to another goes: where the
/// surface bends faster than a disc's radius, or where it merges two close
/// sheets (a part thinner than the support), seeds drawn d apart on
/// different discs land together (on a sparse bunny scan, 0.1% of them
/// within 0.1 d).
fn settle(projected: Vec<Projected>, before: Vec<Point3<f64>>, radius: f64) -> Vec<Projected> {
    let mut positions = before;
    let before = positions.len();
    positions.extend(projected.iter().map(|p| p.position));
    let Ok(search) = NeighbourSearch::new(&positions) else {
        return projected;
    };
    let near = |i: usize, hood: &mut Neighbourhood| {
        search.gather(
            &(positions[i] - search.origin()),
            Support::Radius(radius),
            1.0,
            hood,
        );
    };
    // Only a seed with one before it within `radius` can go: found in
    // parallel (the gathers are the cost), so that the greedy pass in seed
    // order, which must run one seed after another, looks again at those
    // alone (about a third on the bunny scan of docs/seeding.md).
    let crowded: Vec<bool> = (before..positions.len())
        .into_par_iter()
        .map_init(Neighbourhood::default, |hood, i| {
            near(i, hood);
            hood.indices().iter().any(|&n| (n as usize) < i)
        })
        .collect();
    let mut keep = vec![true; before];
    keep.resize(positions.len(), false);
    let mut hood = Neighbourhood::default();
    for (i, crowded) in (before..positions.len()).zip(crowded) {
        keep[i] = !crowded || {
            near(i, &mut hood);
            !hood.indices().iter().any(|&n| keep[n as usize])
        };
    }
    projected
        .into_iter()
        .zip(&keep[before..])
        .filter_map(|(p, &keep)| keep.then_some(p))
        .collect()
}

/// How close (in spacings) two projected seeds may come before the later
/// one goes: the 0.8 d the tests hold the output to. A seed so dropped
/// leaves no gap (the one it landed by covers its spot). It was 0.75 d
/// until the discs grew at gaps ([`disc_scale`]), whose wider discs land
/// more seeds between 0.75 and 0.8 d of one another (on the torus of
/// tests/seeding.rs the closest pair was then 0.75 d in most draws).
pub const SETTLED_SPACING: f64 = 0.8;

/// One block's selection.
struct Block {
    key: Key,
    blocks: Blocks,
    spacing: f64,
}

impl Block {
    /// The seeds kept in this block: its `candidates` (runs of them, in
    /// drawing order, [`Seeder::draw`]) in hash order, each kept when
    /// no seed (of this block, or `lent` by its neighbours) lies within
    /// the spacing.
    fn select<'a>(
        &self,
        discs: &[Disc],
        candidates: &[&[Candidate]],
        lent: impl Iterator<Item = &'a Vector3<f64>>,
        scratch: &mut Scratch,
    ) -> Vec<Kept> {
        let corner = self.blocks.corner(self.key);
        let edge = self.blocks.edge;
        scratch.order_by_hash(candidates);
        let grid = Grid::new(corner, edge, self.spacing);
        if scratch.grid.len() == grid.cells() {
            for &cell in &scratch.written {
                scratch.grid[cell] = EMPTY;
            }
        } else {
            scratch.grid.clear();
            scratch.grid.resize(grid.cells(), EMPTY);
        }
        scratch.written.clear();
        scratch.near.clear();
        for p in lent {
            if let Some(cell) = grid.cell(p) {
                scratch.written.push(cell);
                scratch.grid[cell] = scratch.near.len() as u32;
                scratch.near.push(*p);
            }
        }
        let d2 = self.spacing * self.spacing;
        let mut own = Vec::new();
        // Each candidate's cell is found [`AHEAD`] candidates before its
        // test and asked into the cache meanwhile: in the hash's order the
        // first read of a candidate's cell missed it (a tenth of the
        // greedy's samples, perf).
        let ordered = &scratch.ordered;
        let ask = |c: &Candidate, slots: &[u32]| {
            let cell = grid.cell(&c.p);
            if let Some(cell) = cell {
                prefetch(slots, cell);
            }
            cell
        };
        let mut cells = [None; AHEAD];
        for (slot, c) in cells.iter_mut().zip(ordered) {
            *slot = ask(c, &scratch.grid);
        }
        for (i, &Candidate { p, point, .. }) in ordered.iter().enumerate() {
            let slot = i % AHEAD;
            let this = cells[slot];
            cells[slot] = ordered.get(i + AHEAD).and_then(|c| ask(c, &scratch.grid));
            let normal = discs[point as usize].normal;
            let Some(cell) = this else { continue };
            if scratch.grid[cell] != EMPTY {
                continue;
            }
            let free = grid.around(cell).all(|c| {
                let at = scratch.grid[c];
                at == EMPTY || !conflict(&(scratch.near[at as usize] - p), &normal, d2)
            });
            if free {
                scratch.written.push(cell);
                scratch.grid[cell] = scratch.near.len() as u32;
                scratch.near.push(p);
                own.push((p, point));
            }
        }
        own
    }
}

/// Candidates whose cell [`Block::select`] asks into the cache ahead of
/// their test. On the bunny scan of docs/seeding.md (CPU, medians of 7
/// alternating runs, [`NEAR_EDGE`] at 0.2): none 1.303 s, 8 ahead
/// 1.240 s, 16 ahead 1.216 s; at 0.1 (11 runs) 1.339 → 1.318 s; the same
/// seeds. Asking for each candidate's disc (its normal) as well: 1.279 s
/// against 1.224 s, not kept.
const AHEAD: usize = 16;

/// Asks for `cells[at]` to be brought into the cache: a hint, which
/// changes no result.
#[inline(always)]
fn prefetch(cells: &[u32], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cell) = cells.get(at) {
        // SAFETY: a prefetch reads nothing, and the address is an element
        // of `cells`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (cell as *const u32).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (cells, at);
}

/// True when a kept seed at `offset` from a candidate on a disc of normal
/// `normal` rules it out at spacing² `d2`: within d, or within d along the
/// disc and half a spacing across it. Discs of neighbouring points lie at
/// heights that differ by their noise and curvature; two seeds one above
/// the other, more than d apart in space, would land on one spot once
/// projected. Within 1.12 d either way, so the 5×5×5 cells still hold it.
fn conflict(offset: &Vector3<f64>, normal: &Vector3<f64>, d2: f64) -> bool {
    let distance2 = offset.norm_squared();
    if distance2 < d2 {
        return true;
    }
    let across = offset.dot(normal);
    across * across < 0.25 * d2 && distance2 - across * across < d2
}

/// A dense grid over a block and a margin of [`MARGIN_CELLS`] around it,
/// of cells d / √3 wide: a cell holds at most one seed, and every seed
/// within [`conflict`]'s reach of a point in the block lies in the 5×5×5
/// cells around the point's, which the margin keeps inside the grid.
struct Grid {
    lo: Vector3<f64>,
    cell: f64,
    side: usize,
    /// Index offsets of the 5×5×5 cells around a cell, nearest first: a
    /// candidate in conflict is most often ruled out by the first few.
    around: Vec<isize>,
}

/// Cells of margin around a block: two for the 5×5×5 reach, and one
/// more for a point on the block's far face.
const MARGIN_CELLS: f64 = 3.0;

impl Grid {
    fn new(corner: Vector3<f64>, edge: f64, spacing: f64) -> Grid {
        let cell = spacing / 3f64.sqrt();
        let side = (edge / cell).ceil() as usize + 2 * MARGIN_CELLS as usize + 1;
        let stride = [(side * side) as isize, side as isize, 1];
        let mut around: Vec<([isize; 3], isize)> = (-2..=2isize)
            .flat_map(|x| (-2..=2isize).flat_map(move |y| (-2..=2isize).map(move |z| [x, y, z])))
            .map(|c| (c, c[0] * stride[0] + c[1] * stride[1] + c[2] * stride[2]))
            .collect();
        around.sort_by_key(|(c, _)| c.iter().map(|v| v * v).sum::<isize>());
        Grid {
            lo: corner - Vector3::repeat(MARGIN_CELLS * cell),
            cell,
            side,
            around: around.into_iter().map(|(_, offset)| offset).collect(),
        }
    }

    fn cells(&self) -> usize {
        self.side * self.side * self.side
    }

    fn cell(&self, p: &Vector3<f64>) -> Option<usize> {
        let c = (p - self.lo) / self.cell;
        let side = self.side as f64;
        c.iter()
            .all(|&v| (0.0..side).contains(&v))
            .then(|| (c.x as usize * self.side + c.y as usize) * self.side + c.z as usize)
    }

    /// The 5×5×5 cells around `cell`, the cell of a point in the block
    /// (so at least [`MARGIN_CELLS`] from the grid's faces), nearest first.
    fn around(&self, cell: usize) -> impl Iterator<Item = usize> + '_ {
        self.around
            .iter()
            .map(move |&offset| cell.wrapping_add_signed(offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slab made in parts, one row of blocks a group (a wavefront of
    /// many steps, discs drawn once per row they reach), gives the seeds
    /// of the slabs made whole, projected and settled, in the same order,
    /// to the bit.
    #[test]
    fn a_slab_made_in_rows_gives_the_seeds_of_the_slab_made_whole() {
        // 2,000 points on the unit sphere (σ = 0.002), seeded at 0.01:
        // blocks of 0.32, so a slab across the middle holds seven rows,
        // and discs of 0.09 to 0.18 reach two blocks.
        let mut h = 11u64;
        let mut next = || {
            h = mix(h);
            2.0 * unit(h) - 1.0
        };
        let positions: Vec<Point3<f64>> = (0..2_000)
            .map(|_| {
                let direction = Vector3::new(next(), next(), next()).normalize();
                Point3::from(direction * (1.0 + 0.002 * next()))
            })
            .collect();
        let cloud = crate::PointCloud::from_positions(positions);
        let surface = crate::MlsSurface::new(&cloud).unwrap();
        let config =
            crate::Config::parse(r#"(cloud: "c.ply", particles: Cloud, output: "o.ply")"#).unwrap();
        let projector = surface.projector(
            crate::Method::from(&config),
            crate::config::Orientation::Auto,
            false,
        );
        let beside = std::env::temp_dir().join("seeds.ply");
        let seeds = |group_blocks: usize| {
            let mut seeder = Seeder::new(surface.search(), 0.01, 0);
            seeder.group_blocks = group_blocks;
            let rows = seeder.keys.chunk_by(|a, b| a[..2] == b[..2]).count();
            let mut seeds = Vec::new();
            seeder
                .hand_on(&projector, seeder.span(), &beside, |slab, part| {
                    seeds.extend(part.iter().map(|p| (slab, p.position)));
                    Ok(())
                })
                .unwrap();
            (seeds, rows, seeder.span().count(), seeder.reach)
        };
        let (whole, rows, slabs, reach) = seeds(usize::MAX);
        println!(
            "{} seeds, {slabs} slabs, {rows} rows in all, reach {reach}",
            whole.len()
        );
        assert!(whole.len() > 50_000 && rows >= 5 * slabs && reach >= 2);
        // One row a group, and groups of two or three rows (uneven).
        for group_blocks in [0, 10] {
            let (parts, ..) = seeds(group_blocks);
            assert!(
                whole == parts,
                "the slabs made in groups of {group_blocks} blocks differ"
            );
        }
    }

    /// A block's bounds hold exactly the positions `Blocks::key` puts in
    /// it, down to the last bit at its faces.
    #[test]
    fn seed_block_bounds_agree_with_keys() {
        let blocks = Blocks::new(
            Vector3::new(-0.137, 0.021, -3.3),
            Vector3::new(0.2, 0.9, 1.7),
            0.079_367_475_922_867_73,
        );
        let mut h = 7u64;
        for _ in 0..2000 {
            h = mix(h);
            let p = Vector3::new(
                blocks.lo.x + 5.0 * unit(h) - 1.0,
                blocks.lo.y + 5.0 * unit(mix(h ^ 1)) - 1.0,
                blocks.lo.z + 5.0 * unit(mix(h ^ 2)) - 1.0,
            );
            let key = blocks.key(&p);
            let bounds = blocks.bounds(key);
            // The point itself, and a few ulps either side of each face of
            // its block.
            let corner = blocks.corner(key);
            let mut probes = vec![p];
            for a in 0..3 {
                for face in [corner[a], corner[a] + blocks.edge] {
                    let mut x = face;
                    for _ in 0..4 {
                        x = x.next_down();
                    }
                    for _ in 0..8 {
                        let mut q = p;
                        q[a] = x;
                        probes.push(q);
                        x = x.next_up();
                    }
                }
            }
            for q in probes {
                assert_eq!(bounds.contains(&q), blocks.key(&q) == key, "{q:?}");
            }
        }
    }
}
