//! The faces of a thin part: neighbours whose oriented normal opposes the
//! fit's reference normal lie on the other face, and drop out of the fit.
//!
//! Where a part is thinner than the support (a bunny's ear, a fin), the
//! support of a centre on one face also holds the other face, a short way
//! behind it. Fitted together, the two faces give one surface between
//! them, inside the part. Oriented normals tell them apart: the two faces
//! of a thin part face away from each other, while the neighbours of one
//! face, over a support that the fit can bend through, turn by much less.
//! The reference is the oriented normal of the fit's centre: the sum of
//! the normals of its nearest neighbours (a ninth of the support's), the
//! nearer weighing more. The first step is centred on the particle's
//! nearest cloud point (or on the particle, or its foot), which lies on
//! the face the particle is nearest; later steps, on the surface the first
//! step found. A sum, not the nearest neighbour's normal alone, and over a
//! count, not a radius: a stray point with a normal of its own (an
//! outlier, a normal estimated wrong) as the centre would otherwise turn
//! the whole neighbourhood away (measured on the truth sets with 5%
//! outliers of random normals: RMS 0.31σ with the nearest neighbour's
//! normal as the reference, 0.30σ with the normals within h/3, each
//! leaving 10-35 times as many particles unprojected, against 0.18σ
//! without the rule). The guard [`MIN_KEPT_SHARE`] settles the rest.

use nalgebra::Vector3;

use super::columns::Columns;
use crate::neighbours::Neighbourhood;

/// The cosine (between a neighbour's normal and the reference) at and
/// above which a neighbour keeps its whole weight: up to 90° apart it may
/// be the same face turning (a rim, a noisy estimate), not the other one.
const SAME_FACE_COSINE: f64 = 0.0;
/// The cosine at and below which a neighbour has no weight: 120° apart,
/// the normals of a thin part's two faces (180° apart, blurred by the
/// estimates' 10-20°) sit well below it. Between the two, the weight falls
/// smoothly, so that a normal turning through the ramp as the centre moves
/// moves the surface continuously (the iteration keeps its fixed point).
const OTHER_FACE_COSINE: f64 = -0.5;
/// The share of the neighbourhood whose normals make the reference: its
/// `1 / REFERENCE_SHARE` nearest (on a plane, those within a third of the
/// support radius), enough that one stray normal does not decide, close
/// enough to stay on one face of all but the thinnest parts.
const REFERENCE_SHARE: usize = 9;
/// The least share of the neighbours (counted by their factors) that the
/// reference's face must keep for the rule to apply: the near face of a
/// thin part holds about half the support (more where the far face's disc
/// is cut short), a reference made by stray normals (an outlier amid
/// others) only a few. Below it the fit takes every neighbour. Measured
/// on the truth sets: with 5% outliers of random normals (bunny) RMS
/// 0.18σ and 7 particles unprojected, against 0.22σ and 18 without the
/// guard and 0.18σ and 6 without the rule; on the fins 0.27σ, against
/// 0.33σ with a half (a coin toss where the faces hold the support about
/// equally). A guard on the agreement of the reference's normals instead
/// did worse on both (0.20σ and 12; 0.38σ).
const MIN_KEPT_SHARE: f64 = 1.0 / 3.0;
/// The fewest neighbours that make the reference.
const REFERENCE_MIN: usize = 3;

/// Fills `factors` (empty on entry) with the share of its weight that
/// each neighbour of `neighbours` (their normals in `columns`) keeps as a
/// neighbour of the centre's face (see the module's doc): 1 for a normal
/// within 90° of the reference, 0 past 120°, smooth between; a zero normal
/// (which says nothing) keeps its weight. Leaves `factors` empty when
/// every neighbour keeps all its weight, when too few would keep it
/// ([`MIN_KEPT_SHARE`]), when the columns carry no normals, or when the
/// normals near the centre cancel.
pub fn face_factors(neighbours: &Neighbourhood, columns: &Columns, factors: &mut Vec<f64>) {
    debug_assert!(factors.is_empty());
    debug_assert_eq!(neighbours.len(), columns.len(), "the neighbourhood loaded");
    let len = columns.len();
    if !columns.has_normals() || len < 2 || within_one_face(columns) {
        return;
    }
    // The reference's radius: the distance of the first neighbour beyond
    // the reference's share (`factors` lends its room to find it).
    let share = (len / REFERENCE_SHARE).max(REFERENCE_MIN).min(len - 1);
    let distances = neighbours.distances_squared();
    factors.extend_from_slice(distances);
    let (_, &mut radius_squared, _) = factors.select_nth_unstable_by(share, f64::total_cmp);
    factors.clear();
    let mut reference = Vector3::zeros();
    for (i, distance_squared) in distances.iter().enumerate() {
        let t = 1.0 - distance_squared / radius_squared;
        if t > 0.0 {
            reference += t * columns.normal_of(i);
        }
    }
    let Some(reference) = reference.try_normalize(0.0) else {
        return;
    };
    let mut kept = 0.0;
    for i in 0..len {
        let factor = same_face(reference.dot(&columns.normal_of(i)));
        kept += factor;
        factors.push(factor);
    }
    // All kept: nothing to change. Too few kept: the reference is not
    // trusted with the fit.
    if kept == len as f64 || kept < MIN_KEPT_SHARE * len as f64 {
        factors.clear();
    }
}

/// True when every neighbour's normal lies within 45° of the first's:
/// then any two are within 90°, so every one is within 90° of the
/// reference (a positive sum of them) and keeps its whole weight. One
/// pass over the normals settles the common case (a surface with no thin
/// part in the support) without choosing the reference.
fn within_one_face(columns: &Columns) -> bool {
    let len = columns.len();
    let [xs, ys, zs] = &columns.normal;
    let (x0, y0, z0) = (xs[0], ys[0], zs[0]);
    // Counted, not `all`: without an exit per neighbour the loop runs in
    // vector lanes (the common case reads every normal anyway).
    let inside = xs[..len]
        .iter()
        .zip(&ys[..len])
        .zip(&zs[..len])
        .map(|((x, y), z)| usize::from(x * x0 + y * y0 + z * z0 >= std::f64::consts::FRAC_1_SQRT_2))
        .sum::<usize>();
    inside == len
}

/// The weight factor of a neighbour whose normal makes cosine `cosine`
/// with the reference: a smoothstep from [`OTHER_FACE_COSINE`] (0) to
/// [`SAME_FACE_COSINE`] (1).
#[inline]
fn same_face(cosine: f64) -> f64 {
    let t = ((cosine - OTHER_FACE_COSINE) / (SAME_FACE_COSINE - OTHER_FACE_COSINE)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbours::{Neighbour, Neighbourhood};

    #[test]
    fn the_ramp_keeps_one_face_and_drops_the_other() {
        assert_eq!(same_face(1.0), 1.0);
        assert_eq!(same_face(SAME_FACE_COSINE), 1.0);
        assert_eq!(same_face(OTHER_FACE_COSINE), 0.0);
        assert_eq!(same_face(-1.0), 0.0);
        let middle = same_face(0.5 * (SAME_FACE_COSINE + OTHER_FACE_COSINE));
        assert!((middle - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_sheet_behind_the_nearest_neighbour_with_opposed_normals_drops_out() {
        // Two sheets 0.5 apart: the near one faces +z, the far one −z, and
        // a neighbour with no normal, which keeps its weight.
        let offsets = [
            (0.0, 0.0),
            (0.1, 0.0),
            (0.15, 0.0),
            (0.2, 0.0),
            (0.3, 0.0),
            (0.0, -0.5),
            (0.3, -0.5),
        ];
        let neighbours: Vec<Neighbour> = offsets
            .iter()
            .enumerate()
            .map(|(i, &(x, z))| {
                let offset = Vector3::new(x, 0.0, z);
                Neighbour {
                    index: i as u32,
                    offset,
                    distance_squared: offset.norm_squared(),
                }
            })
            .collect();
        let up = Vector3::new(0.0f32, 0.0, 1.0);
        let normals = [up, up, Vector3::zeros(), up, up, -up, -up];
        let mut columns = Columns::default();
        let mut factors = Vec::new();
        let hood: Neighbourhood = neighbours.iter().copied().collect();
        columns.load(&hood, Some(&normals));
        face_factors(&hood, &columns, &mut factors);
        assert_eq!(factors, [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        // Without normals, or all on one face, nothing changes.
        for (count, normals) in [(2, Some(&normals[..])), (neighbours.len(), None)] {
            factors.clear();
            let hood: Neighbourhood = neighbours[..count].iter().copied().collect();
            columns.load(&hood, normals);
            face_factors(&hood, &columns, &mut factors);
            assert!(factors.is_empty());
        }
    }
}
