//! The local fit of one neighbourhood, built as an accumulator in the
//! manner of Ponca: [`LocalFit::new`] takes the neighbourhood's frame (or
//! says why there is none), [`LocalFit::add_neighbours`] feeds the weighted
//! neighbours, and [`LocalFit::finish`] gives the normal equations of the
//! quadratic height field over that frame, which [`Fit::surfaces`] solves
//! from the configured degree down. The (N, 6) system of the seed question
//! is never formed.
//!
//! The pieces, one idea a file: the weights and normals beside the
//! neighbourhood's columns, summed in lanes ([`columns`], with the AVX2
//! sums in `avx`), the weight kernels ([`kernel`]), the PCA frame
//! ([`frame`], with its closed-form 3×3 eigen step in `eigen`), the
//! height field's moments and normal equations ([`height`]), the fitted
//! surface's jet, normal and curvatures ([`jet`]), the two faces of a thin
//! part told apart by their normals ([`faces`]), and the robust refits
//! ([`robust`]).

#[cfg(target_arch = "x86_64")]
mod avx;
pub mod columns;
pub(crate) mod eigen;
pub mod faces;
pub mod frame;
pub mod height;
pub mod jet;
pub mod kernel;
pub mod robust;

use crate::neighbours::Neighbourhood;
use crate::status::Status;

pub use frame::{Frame, Moments, Plane};
pub use height::{MONOMIALS, NormalEquations};
pub use jet::{HeightField, Jet};
pub use kernel::Kernel;

use columns::Columns;
use height::{HeightMoments, SlopeMoments, TangentMap, moments, supported_degree};

/// A fit being accumulated: the frame is fixed, the neighbours are added
/// with their weights ([`LocalFit::add_neighbours`]).
#[derive(Debug, Clone, Copy)]
pub struct LocalFit {
    frame: Frame,
    support_radius: f64,
    inverse_h: f64,
    heights: HeightMoments,
    /// The slope equations of the neighbours' normals, when they take part.
    slopes: SlopeMoments,
}

impl LocalFit {
    /// Starts the fit of a neighbourhood whose frame moments are
    /// `frame_moments` (see [`Kernel::frame_at`]), with support radius
    /// `support_radius` (the scale of the tangent coordinates). Fails with
    /// the status the particle then gets: `TooFewNeighbours` when the frame
    /// weights sum to zero, `Rejected` when the neighbourhood is a line (a
    /// scan line has no tangent plane to fit over).
    ///
    /// The frame's normal has no sign yet: orient it with [`Self::flip`]
    /// before feeding neighbours, since the heights are measured along it.
    ///
    /// Inlined into each copy of the projection's `local_fit`
    /// ([`crate::cpu::with_v3!`]).
    #[inline(always)]
    pub fn new(frame_moments: &Moments, support_radius: f64) -> Result<Self, Status> {
        let frame = frame_moments.frame().ok_or(Status::TooFewNeighbours)?;
        if frame.is_collinear() {
            return Err(Status::Rejected);
        }
        Ok(LocalFit {
            frame,
            support_radius,
            inverse_h: 1.0 / support_radius,
            heights: HeightMoments::default(),
            slopes: SlopeMoments::default(),
        })
    }

    /// The frame the heights are measured in.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// Flips the frame's normal (before any neighbour is added).
    pub fn flip(&mut self) {
        self.frame.flip();
    }

    /// The map from a neighbour's offset to its frame coordinates: scaled
    /// tangent coordinates `(u, v)` and height.
    fn tangent_map(&self) -> TangentMap {
        let frame = &self.frame;
        let rows = [
            frame.e1 * self.inverse_h,
            frame.e2 * self.inverse_h,
            frame.normal,
        ];
        TangentMap {
            rows,
            centroid: frame.centroid,
        }
    }

    /// Sums the height equations of `neighbours` under their weights in
    /// `columns`, and their slope equations when `with_normals` (then the
    /// columns must carry the neighbours' unit normals): a gather holds the
    /// whole neighbourhood, so this is done once per fit.
    ///
    /// Inlined into each copy of the projection's `local_fit`
    /// ([`crate::cpu::with_v3!`]).
    #[inline(always)]
    pub fn add_neighbours(
        &mut self,
        neighbours: &Neighbourhood,
        columns: &Columns,
        with_normals: bool,
    ) {
        let slopes_at = with_normals.then_some(self.support_radius);
        let (heights, slopes) = moments(&self.tangent_map(), neighbours, columns, slopes_at);
        self.heights = heights;
        self.slopes = slopes.unwrap_or_default();
    }

    /// The frame and normal equations; `normal_weight` is the weight of the
    /// slope equations against the heights, `None` when no neighbour's
    /// normal was added.
    ///
    /// Inlined into each copy of the projection's `local_fit`
    /// ([`crate::cpu::with_v3!`]).
    #[inline(always)]
    pub fn finish(self, normal_weight: Option<f64>) -> Fit {
        let mut equations = self.heights.equations();
        if let Some(weight) = normal_weight {
            equations.add_slopes(&self.slopes, weight, self.support_radius);
        }
        Fit {
            frame: self.frame,
            equations,
            support_radius: self.support_radius,
        }
    }
}

/// The frame and normal equations of one neighbourhood under its weights.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    /// The frame the height field is fitted over.
    pub frame: Frame,
    /// The height field's normal equations.
    pub equations: NormalEquations,
    /// The support radius the tangent coordinates are scaled by.
    pub support_radius: f64,
}

/// One solution of a fit: the height field of a degree and the weighted
/// RMS residual of the heights.
#[derive(Debug, Clone, Copy)]
pub struct Solution {
    /// The fitted height field.
    pub field: HeightField,
    /// Its degree: 0 plane, 1 linear, 2 quadratic.
    pub degree: u8,
    /// Weighted RMS residual of the heights, in the cloud's units.
    pub residual: f64,
}

impl Fit {
    /// The height fields this fit determines, from `degree` (capped at what
    /// `neighbour_count` neighbours determine) down to the plane: a degree
    /// whose equations are singular (collinear points, a scan line) is
    /// skipped. The caller takes the first it can use and reports a lower
    /// degree as such.
    pub fn surfaces(&self, degree: u8, neighbour_count: u32) -> impl Iterator<Item = Solution> {
        let start = degree.min(supported_degree(neighbour_count as usize));
        (0..=start).rev().filter_map(move |degree| {
            self.equations
                .solve(degree)
                .map(|(coefficients, residual)| Solution {
                    field: HeightField {
                        coefficients,
                        support_radius: self.support_radius,
                    },
                    degree,
                    residual,
                })
        })
    }
}

/// A neighbourhood of `count` points on a wavy patch about the centre
/// (tests of the fit's sums).
#[cfg(test)]
pub(crate) fn wavy_neighbourhood(count: usize) -> crate::neighbours::Neighbourhood {
    (0..count as u32)
        .map(|i| {
            let offset = nalgebra::Vector3::new(
                (f64::from(i) * 0.37).sin(),
                (f64::from(i) * 0.91).cos(),
                0.1 * (f64::from(i) * 1.3).sin(),
            );
            crate::neighbours::Neighbour {
                index: i,
                offset,
                distance_squared: offset.norm_squared(),
            }
        })
        .collect()
}
