//! Weight kernels θ(r) of the MLS fit, r = distance / h. A kernel is a value
//! evaluated from the squared distance, so compact kernels need no sqrt.

use crate::config::Weight;

/// Points within this (relative, in r²) of the support's edge count as
/// outside. With `Nearest(k)` the k-th neighbour lies at r = 1 by
/// construction, and the last bit of a rounding (which depends on the order
/// the neighbours were summed in) must not decide whether it is in: it
/// would change the neighbour count and, for the Gaussian, the surface.
/// The smooth kernels weigh such a point below 1e-17 anyway.
const EDGE: f64 = 1e-9;

/// A weight kernel bound to a support radius.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    weight: Weight,
    support_radius: f64,
    inverse_h_squared: f64,
    /// `1 / s` for the Gaussian, `s = (gaussian_width·h)²`.
    inverse_gaussian_variance: f64,
}

impl Kernel {
    /// The kernel `weight` for support radius `h`.
    pub fn new(weight: Weight, support_radius: f64, gaussian_width: f64) -> Self {
        let h2 = support_radius * support_radius;
        Kernel {
            weight,
            support_radius,
            inverse_h_squared: 1.0 / h2,
            inverse_gaussian_variance: 1.0 / (h2 * gaussian_width * gaussian_width),
        }
    }

    /// The support radius `h` the kernel is bound to.
    pub fn support_radius(&self) -> f64 {
        self.support_radius
    }

    /// The weight of a neighbour in the fit's frame at squared distance
    /// `d²`, whatever the fit's kernel: `(1 − r¹²⁸)²`, flat to within 1% up
    /// to r = 0.96 and zero at the edge. The frame needs as many points as
    /// the support holds (see `Projector::local_fit`), like a box kernel,
    /// but continuously, so that the iteration has a fixed point (with a
    /// box a point crossing the edge tilts the frame at once, and the
    /// iterates cycle).
    #[inline]
    pub fn frame_at(&self, distance_squared: f64) -> f64 {
        let r2 = distance_squared * self.inverse_h_squared;
        if r2 >= 1.0 - EDGE {
            return 0.0;
        }
        let mut r128 = r2;
        for _ in 0..6 {
            r128 *= r128;
        }
        let t = 1.0 - r128;
        t * t
    }

    /// θ at squared distance `d²`; zero outside the support.
    #[inline]
    pub fn at(&self, distance_squared: f64) -> f64 {
        let r2 = distance_squared * self.inverse_h_squared;
        if r2 >= 1.0 - EDGE {
            return 0.0;
        }
        match self.weight {
            Weight::Gaussian => (-distance_squared * self.inverse_gaussian_variance).exp(),
            Weight::Wendland => {
                let t = 1.0 - r2;
                let t2 = t * t;
                t2 * t2
            }
            Weight::Biweight => {
                let t = 1.0 - r2;
                t * t
            }
            Weight::Plateau => {
                let t = 1.0 - r2 * r2;
                t * t
            }
            Weight::Broad => {
                let t = 1.0 - r2 * r2 * r2;
                t * t
            }
        }
    }
}

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
