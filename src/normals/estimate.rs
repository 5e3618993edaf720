//! Unsigned normals by PCA of each point's k nearest (refitted on the
//! point's own sheet where they span two), and the neighbour graph that
//! the orientation propagates over, in one parallel pass.

use std::num::NonZeroUsize;

use nalgebra::Vector3;
use rayon::prelude::*;

use crate::config::Support;
use crate::fit::{Moments, Plane};
use crate::neighbours::{Neighbour, NeighbourSearch, Neighbourhood};

/// Neighbours of each point in the orientation graph: the nearest few of
/// its PCA neighbourhood. Fewer edges than the PCA's k keep the graph off
/// the far face of a thin part (its points come last among the k) and the
/// sort of the edges short. Measured on the truth sets (wrong signs,
/// bunny / armadillo): 6 gives 0.0135% / 0.206%, 10 0.012% / 0.194%, 20
/// 0.0105% / 0.64% (more edges reach across the armadillo's fingers).
pub const GRAPH_NEIGHBOURS: usize = 10;

/// A neighbourhood whose middle eigenvalue is below this fraction of its
/// largest spans no plane (collinear points, or a strip a thousand times
/// longer than wide): its normal is undefined. Far above the error of the
/// closed-form eigenvalues at a double root (about 1e-8 of the largest).
const FLATNESS_FLOOR: f64 = 1e-6;

/// The nearest neighbours (the point among them) whose plane seeds the
/// refit on the point's own sheet ([`sheet_normal`]): few enough to lie on
/// one face of a part a few point spacings thick, enough for a plane
/// under noise as large as the spacing.
const SHEET_SEED: usize = 10;

// The seed is the point and the first of its graph neighbours.
const _: () = assert!(SHEET_SEED <= GRAPH_NEIGHBOURS + 1);

/// The seed is trusted only when its smallest eigenvalue is under this
/// share of its middle one: its points then spread over a plane at least
/// three noise widths wide. Where the noise is about the point spacing
/// (the truth sets of `benches/truth`) few seeds are, and those sets keep
/// their PCA normals; trusting every seed there cost 3-12% RMS with
/// estimated normals (bunny, armadillo, fandisk, fins 0.229, 0.360,
/// 0.250, 0.437σ against 0.206, 0.339, 0.229, 0.389σ), 0.25 about 1%.
const SEED_FLATNESS: f64 = 0.1;

/// The refit is made only where the whole neighbourhood's mean square
/// offset from its plane exceeds this many times the seed's: on one
/// noisy sheet the two are alike (about 1.4: the seed's plane, fitted to
/// fewer points, fits their noise closer), two sheets or a sharp bend
/// make the whole's larger. Against refitting wherever the seed is
/// trusted (at a cutoff of 5): the same accuracy (bunny scan seeds
/// 0.575σ against 0.574σ RMS), about 0.3 s less CPU on 2M points; at 3,
/// 0.579σ.
const TWO_SHEETS: f64 = 2.0;

/// A neighbour farther off the sheet than this many times the seed's RMS
/// offset from its plane has no weight in the refit (biweight kernel).
/// The seed's RMS offset, from ten points, runs under the noise, so a
/// narrow cutoff also thins the point's own face and adds noise to its
/// normal; a wide one keeps less of the other face out. Measured on the
/// bunny scan (seeds RMS, holes) and the shared sets with estimated
/// normals (sphere_seed, torus, saddle RMS; 0.0918, 0.1588, 0.1000σ
/// without the refit): 5: 0.575σ, 0.89%; 0.0965, 0.1619, 0.1008σ. 8:
/// 0.584σ, 0.94%; 0.0928, 0.1596, 0.1006σ. 10: 0.589σ, 0.97%; 0.0922,
/// 0.1592, 0.1005σ. 12: 0.595σ, 1.01%; 0.0920, 0.1590, 0.1004σ. The
/// other face of the bunny's ears lies 12-30σ behind.
const SHEET_CUTOFF: f64 = 10.0;

/// Refits of the sheet: the first takes the seed's plane to the whole
/// face, the second settles it.
const SHEET_ROUNDS: usize = 2;

/// Unsigned unit normals, how far each neighbourhood is from a plane, and
/// the k-nearest graph of a point set.
pub struct Estimate {
    /// One per point of the search: the eigenvector of the smallest
    /// eigenvalue of the covariance of its k nearest (itself included),
    /// or, where those span two sheets, of the sheet the point lies on
    /// ([`sheet_normal`]), with an arbitrary sign; zero where the
    /// neighbourhood spans no plane (a lone point, collinear points).
    pub normals: Vec<Vector3<f32>>,
    /// One per point: the surface variation λ0 / (λ0 + λ1 + λ2) of its
    /// neighbourhood (Pauly et al. 2002), 0 on a plane, ⅓ for points
    /// spread alike in every direction: high where the PCA normal is least
    /// trustworthy (two faces of a thin part, a sharp edge, noise larger
    /// than the spacing). ⅓ where the normal is zero.
    pub variation: Vec<f32>,
    /// Row `i` holds point i's nearest graph neighbours (itself excluded),
    /// `GRAPH_NEIGHBOURS` slots, padded with `NO_NEIGHBOUR` when the cloud
    /// has fewer points.
    pub graph: Vec<[u32; GRAPH_NEIGHBOURS]>,
}

/// Padding of a graph row.
pub const NO_NEIGHBOUR: u32 = u32::MAX;

/// Scratch of one thread: the neighbourhood buffers and the room to select
/// the graph neighbours in. Reused for every point.
#[derive(Default)]
struct Scratch {
    hood: Neighbourhood,
    /// The neighbourhood's neighbours, one row each, in its order.
    rows: Vec<Neighbour>,
    /// The neighbours' squared distances (as bits), indices and places in
    /// `rows`, to select the graph's row and the sheet's seed in.
    nearest: Vec<(u64, u32, u32)>,
    /// The sheet's seed: the point and its nearest neighbours.
    seed: Vec<Neighbour>,
}

/// Estimates the normal and the graph row of every point of `search`, in
/// parallel, from its `k` nearest (clamped to the cloud's size).
pub fn estimate(search: &NeighbourSearch, k: NonZeroUsize) -> Estimate {
    // Unzipped as they come: a vector of rows, then three, would hold
    // every row twice (1.1 GB at 20M points).
    let (normals, (variation, graph)) = (0..search.len() as u32)
        .into_par_iter()
        // Consecutive indices are neighbours (a distinct search numbers its
        // points in its cells' order): each gather
        // starts from the radius of the one before (see `gather`).
        .with_min_len(256)
        .map_init(Scratch::default, |scratch, index| {
            let (normal, variation, row) = point_estimate(search, k, index, scratch);
            (normal, (variation, row))
        })
        .unzip();
    Estimate {
        normals,
        variation,
        graph,
    }
}

/// The normal, the surface variation and the graph row of one point.
fn point_estimate(
    search: &NeighbourSearch,
    k: NonZeroUsize,
    index: u32,
    scratch: &mut Scratch,
) -> (Vector3<f32>, f32, [u32; GRAPH_NEIGHBOURS]) {
    let centre = search.local_point(index);
    search.gather(&centre, Support::Nearest(k.get()), 1.0, &mut scratch.hood);
    // As rows, which the frames read (summing from the columns instead
    // measured no faster, docs/normals.md).
    scratch.rows.clear();
    scratch.rows.extend(scratch.hood.iter());
    let neighbours = &scratch.rows;

    let whole = weighted_plane(neighbours, |_| 1.0);
    // The surface variation is the whole neighbourhood's, both sheets of a
    // thin part included: the orientation reads it as how doubtful the
    // normal is (see `Estimate::variation`). A frame's spreads are never
    // negative, and the middle one is positive.
    let variation = whole.map_or(1.0 / 3.0, |whole| {
        (whole.spread[0] / whole.spread.iter().sum::<f64>()) as f32
    });

    // The graph's row: the point's nearest others, ties at the last
    // distance broken by index. Squared distances are never negative nor
    // NaN, and such floats order as their bits do: the selection compares
    // integers. Each entry keeps its place in `rows` for the sheet's seed.
    let mut own = None;
    scratch.nearest.clear();
    for (place, n) in neighbours.iter().enumerate() {
        if n.index == index {
            own = Some(place);
        } else {
            scratch
                .nearest
                .push((n.distance_squared.to_bits(), n.index, place as u32));
        }
    }
    let keep = GRAPH_NEIGHBOURS.min(scratch.nearest.len());
    let selected = keep > 0 && keep < scratch.nearest.len();
    if selected {
        scratch.nearest.select_nth_unstable(keep - 1);
    }
    let mut row = [NO_NEIGHBOUR; GRAPH_NEIGHBOURS];
    for (slot, &(_, neighbour, _)) in row.iter_mut().zip(&scratch.nearest[..keep]) {
        *slot = neighbour;
    }
    // The sheet's seed: the point and its nearest others, SHEET_SEED in
    // all, taken from the graph's selection (one selection per point, not
    // two: the selections were a fifth of the estimate's time).
    let seed_others = SHEET_SEED.saturating_sub(usize::from(own.is_some()));
    let ready = seed_others >= keep || (selected && seed_others + 1 == keep);
    if !ready && seed_others > 0 {
        scratch.nearest[..keep].select_nth_unstable(seed_others - 1);
    }
    scratch.seed.clear();
    scratch.seed.extend(own.map(|place| neighbours[place]));
    scratch.seed.extend(
        scratch.nearest[..seed_others.min(keep)]
            .iter()
            .map(|&(_, _, place)| neighbours[place as usize]),
    );
    let normal = whole.map_or(Vector3::zeros(), |whole| {
        sheet_normal(neighbours, &scratch.seed, &whole).cast::<f32>()
    });
    (normal, variation, row)
}

/// The normal of the sheet a point lies on, from its neighbourhood
/// (offsets from the point, in any order), the PCA normal of the whole of
/// it, and its `seed`: the point and its nearest neighbours, `SHEET_SEED`
/// in all.
///
/// Where a part is thinner than the neighbourhood (an ear, a fin), the
/// neighbourhood holds both its faces, and their separation, not the
/// surface, sets the PCA's smallest axis: the normal tilts toward the
/// other face, or lies in the sheets. The point's nearest few lie on its
/// own face; their plane seeds a refit of the whole neighbourhood, each
/// neighbour weighted by its offset from that plane against the seed's
/// own spread (the local noise): the other face, many noise widths
/// behind, drops out, and the point's face keeps nearly all its weight,
/// so that on a plain surface the normal stays the average of the whole
/// neighbourhood. Measured on issue 13's bunny scan (30,000 points,
/// σ = 0.1% of the diagonal, spacing 3σ): where the ears are under 0.03
/// thick (468 points), the normals' median error 14.3° → 7.9°, mean
/// 17.1° → 13.4°; over the scan 4.78° → 4.57°.
fn sheet_normal(neighbours: &[Neighbour], seed: &[Neighbour], whole: &Plane) -> Vector3<f64> {
    if neighbours.len() <= SHEET_SEED {
        return whole.normal;
    }
    let Some(seed) = weighted_plane(seed, |_| 1.0) else {
        return whole.normal;
    };
    // The seed's spread off its plane: the local noise (and curvature).
    // Where it is not well under the seed's extent (noise as large as
    // the spacing), the seed's plane is noise, and a refit held to it
    // would only add that noise to the PCA's normal.
    if seed.spread[0] >= SEED_FLATNESS * seed.spread[1] {
        return whole.normal;
    }
    // An exact plane has none: a millionth of its extent stands in, so
    // that the refit still drops the other face.
    let spread = seed.spread[0].max(FLATNESS_FLOOR * seed.spread[1]);
    // One sheet: the whole neighbourhood spreads off its plane about as
    // its nearest do, and the refit would return the PCA's normal.
    if whole.spread[0] <= TWO_SHEETS * spread {
        return whole.normal;
    }
    let cutoff_squared = SHEET_CUTOFF * SHEET_CUTOFF * spread;
    let (mut centre, mut sheet) = (seed.centroid, seed.normal);
    for _ in 0..SHEET_ROUNDS {
        let weight = |n: &Neighbour| {
            let height = (n.offset - centre).dot(&sheet);
            let t = 1.0 - height * height / cutoff_squared;
            if t > 0.0 { t * t } else { 0.0 }
        };
        let Some(refit) = weighted_plane(neighbours, weight) else {
            break;
        };
        (centre, sheet) = (refit.centroid, refit.normal);
    }
    sheet
}

/// The weighted plane of `neighbours`' offsets (`fit::Moments::plane`: the
/// weighted centroid, and the least-variance axis and the eigenvalues of
/// the weighted covariance; the tangent axes, which no estimate reads, are
/// not solved for); `None` when the weights vanish or the points span no
/// plane (collinear, a lone point: the normal is undefined).
fn weighted_plane(neighbours: &[Neighbour], weight: impl Fn(&Neighbour) -> f64) -> Option<Plane> {
    let mut moments = Moments::default();
    for neighbour in neighbours {
        moments.add(&neighbour.offset, weight(neighbour));
    }
    let plane = moments.plane()?;
    let spans_a_plane = plane.spread[1] > FLATNESS_FLOOR * plane.spread[2];
    (spans_a_plane && plane.normal.iter().all(|c| c.is_finite())).then_some(plane)
}
