//! Robust refits in the manner of robust implicit MLS (Öztireli, Guennebaud,
//! Gross 2009): after the first fit, each neighbour's kernel weight is
//! multiplied by a Welsch term of its residual to the fit and, when the
//! cloud has normals, of the angle between its normal and the fit's, and
//! the neighbourhood is fitted again. A fit straddling a sharp edge locks
//! onto one face, outliers lose their pull, and the far face of a thin
//! sheet drops out.

use nalgebra::Vector3;

use crate::neighbours::Neighbourhood;
use crate::status::Status;

use super::columns::Columns;
use super::{Fit, HeightField, Kernel, Moments};

/// Reweighted fits after the first.
const REFITS: usize = 3;
/// `σ_r` in units of the robust (MAD) estimate of the residuals' σ.
const REFIT_RESIDUAL_SCALE: f64 = 2.5;
/// `σ_n`, as in MeshLab's RIMLS: a 90° edge's other face keeps e⁻³·⁶ of
/// its weight per refit, a neighbour whose normal is 10° off keeps 0.95.
/// Narrower (0.5) locks edges faster but follows the rough normals of real
/// scans onto wrong patches (measured on the bunny and armadillo meshes,
/// whose face normals scatter by 30°).
const REFIT_NORMAL_SCALE: f64 = 0.75;
/// How far (in standard deviations of the tangential spread of the refit's
/// data) the particle's foot may lie from their centroid for the refit to
/// be used; see [`refit`].
const EXTRAPOLATION_LIMIT: f64 = 2.0;

/// The refitting factor of robust implicit MLS (Öztireli, Guennebaud, Gross
/// 2009), multiplied into a neighbour's kernel weight between fits:
/// `exp(−(r/σ_r)²) · exp(−‖n_fit − n_i‖²/σ_n²)`, `r` the neighbour's
/// residual to the last fit, `n_fit` that fit's unit normal at the
/// neighbour and `n_i` the neighbour's own (unit) normal. Gaussian (Welsch)
/// terms redescend: a point far from the fit, or facing another way, ends
/// with no pull at all, which is what keeps an edge sharp (a Huber term
/// would only bound its pull).
#[derive(Debug, Clone, Copy)]
pub struct RefitWeight {
    inverse_residual_variance: f64,
    /// `2 / σ_n²`: `‖n_fit − n_i‖² = 2 (1 − cos)` for unit normals.
    normal_factor: f64,
}

impl RefitWeight {
    /// Residual scale `σ_r` (the cloud's units, > 0) and normal scale `σ_n`.
    pub fn new(residual_scale: f64, normal_scale: f64) -> Self {
        RefitWeight {
            inverse_residual_variance: 1.0 / (residual_scale * residual_scale),
            normal_factor: 2.0 / (normal_scale * normal_scale),
        }
    }

    /// The factor for residual `r` and, when the cloud has normals, the
    /// cosine of the angle between the fit's normal and the neighbour's.
    #[inline]
    pub fn at(&self, residual: f64, normal_cosine: Option<f64>) -> f64 {
        let misfit = residual * residual * self.inverse_residual_variance
            + normal_cosine.map_or(0.0, |c| (1.0 - c) * self.normal_factor);
        (-misfit).exp()
    }
}

/// Per-thread buffers of the refits: each neighbour's residual to the last
/// fit, the cosine between its normal and the fit's, room to find the
/// median, and the refit factors.
#[derive(Debug, Default)]
pub struct RefitScratch {
    residuals: Vec<f64>,
    normal_cosines: Vec<f64>,
    spread: Vec<f64>,
    /// Each neighbour's refit factor.
    factors: Vec<f64>,
}

/// The neighbourhood a fit was made of: its neighbours, their current
/// weights and frame moments, and the cloud's normals (indexed like the
/// search's points) when it has them.
pub struct Weighted<'a> {
    /// The neighbours, in the order the fit summed them.
    pub neighbours: &'a Neighbourhood,
    /// The neighbours as columns, with each one's weights in the fit;
    /// refits overwrite the weights.
    pub columns: &'a mut Columns,
    /// The moments under the frame's weights; refits overwrite them.
    pub frame_moments: &'a mut Moments,
    /// The cloud's unit normals, when it has them.
    pub normals: Option<&'a [Vector3<f32>]>,
    /// Each neighbour's share of its weight as a neighbour of the centre's
    /// face (`super::faces`), kept through the refits; empty when every
    /// one keeps it all.
    pub face_factors: &'a [f64],
}

/// The robust refits of `plain`: reweight, fit again with `fit_again`
/// (which reads the new weights and frame moments), `REFITS` times;
/// `foot` is the particle relative to the query centre, `degree` the
/// degree being fitted.
///
/// The refit is kept only where the particle's foot lies within the data
/// that carry it, at most `EXTRAPOLATION_LIMIT` standard deviations of
/// their tangential spread from their centroid. Beyond that, the refit
/// has locked onto a face the particle is not over (a particle off a
/// convex edge, a patch of rough normals on a curved surface) and
/// extrapolates it; the plain fit, rounded but centred on the particle,
/// is then the better surface (measured on the truth sets: the largest
/// errors on the CAD parts fall from 3.9σ to 1.5σ).
pub fn refit(
    plain: Fit,
    foot: &Vector3<f64>,
    degree: u8,
    kernel: &Kernel,
    weighted: &mut Weighted,
    scratch: &mut RefitScratch,
    mut fit_again: impl FnMut(&mut Columns, &Moments) -> Result<Fit, Status>,
) -> Fit {
    let mut fit = plain;
    for _ in 0..REFITS {
        if !reweight(&fit, degree, kernel, weighted, scratch) {
            break;
        }
        match fit_again(weighted.columns, weighted.frame_moments) {
            Ok(refit) => fit = refit,
            // The reweighted neighbourhood no longer spans a plane: keep
            // the last fit that did.
            Err(_) => break,
        }
    }
    let foot = fit.frame.local(&(foot - fit.frame.centroid));
    if fit.frame.tangential_deviations(&foot) > EXTRAPOLATION_LIMIT {
        plain
    } else {
        fit
    }
}

/// Sets each neighbour's weight (and frame weight, summing the frame's
/// moments anew) to its kernel weight times its face factor times the
/// refit factor of its agreement with the plane of `fit`: the residual to
/// the linear height field (degree ≤ 1), and the angle between the
/// neighbour's normal and that plane's. False, weights left alone, when no plane can be solved.
///
/// The reference is a plane, not the quadric, because a quadric bends
/// around an edge: both faces then fit it about as well, and the
/// reweighting stalls halfway (measured on a noisy 90° wedge). A plane
/// cannot bend, so the face that carries more weight wins and the other
/// drops out within a few refits; the final fit is still of the full
/// degree, under the refit weights.
///
/// The residual scale is robust: `σ_r = REFIT_RESIDUAL_SCALE · 1.4826 ·
/// median |r|` (the MAD, σ for Gaussian noise), so that it follows the
/// majority of the neighbourhood, not the misfit of an edge's other face
/// or of outliers, and needs no noise level from the user.
fn reweight(
    fit: &Fit,
    degree: u8,
    kernel: &Kernel,
    weighted: &mut Weighted,
    scratch: &mut RefitScratch,
) -> bool {
    let Some(coefficients) = (0..=degree.min(1))
        .rev()
        .find_map(|d| fit.equations.solve(d).map(|(c, _)| c))
    else {
        return false;
    };
    let plane = HeightField {
        coefficients,
        support_radius: kernel.support_radius(),
    };
    let frame = &fit.frame;
    // A linear height field has one normal everywhere.
    let plane_normal = frame.world_offset(&plane.jet(0.0, 0.0).normal());
    scratch.residuals.clear();
    scratch.normal_cosines.clear();
    let mut agreement = 0.0;
    for (neighbour, &w) in weighted.neighbours.iter().zip(weighted.columns.weights()) {
        let local = frame.local(&(neighbour.offset - frame.centroid));
        scratch
            .residuals
            .push(local.z - plane.jet(local.x, local.y).height);
        if let Some(normals) = weighted.normals {
            let own = normals[neighbour.index as usize].cast::<f64>();
            let length = own.norm();
            // A zero normal says nothing: no penalty.
            let cosine = if length > 0.0 {
                plane_normal.dot(&own) / length
            } else {
                1.0
            };
            agreement += w * cosine;
            scratch.normal_cosines.push(cosine);
        }
    }
    // The fit's normal has the sign of the output rule; compare with the
    // cloud's normals as the neighbourhood orients them.
    let sign = if agreement < 0.0 { -1.0 } else { 1.0 };

    scratch.spread.clear();
    scratch
        .spread
        .extend(scratch.residuals.iter().map(|r| r.abs()));
    let middle = scratch.spread.len() / 2;
    let (_, median, _) = scratch
        .spread
        .select_nth_unstable_by(middle, f64::total_cmp);
    // A floor keeps noise-free data (median 0) finite.
    let residual_scale =
        (REFIT_RESIDUAL_SCALE * 1.4826 * *median).max(1e-9 * kernel.support_radius());
    let refit = RefitWeight::new(residual_scale, REFIT_NORMAL_SCALE);
    scratch.factors.clear();
    scratch
        .factors
        .extend(scratch.residuals.iter().enumerate().map(|(i, &residual)| {
            let cosine = scratch.normal_cosines.get(i).map(|c| sign * c);
            refit.at(residual, cosine) * weighted.face_factors.get(i).unwrap_or(&1.0)
        }));
    (*weighted.frame_moments, _) = kernel.weigh(
        weighted.neighbours,
        weighted.columns,
        Some(&scratch.factors),
    );
    true
}
