//! Weight kernels θ(r) of the MLS fit, r = distance / h. A kernel is a value
//! evaluated from the squared distance, so compact kernels need no sqrt.

use crate::config::Weight;
use crate::neighbours::Neighbour;

use super::Moments;

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
        let h_squared = support_radius * support_radius;
        Kernel {
            weight,
            support_radius,
            inverse_h_squared: 1.0 / h_squared,
            inverse_gaussian_variance: 1.0 / (h_squared * gaussian_width * gaussian_width),
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
        let r_squared = distance_squared * self.inverse_h_squared;
        if r_squared >= 1.0 - EDGE {
            return 0.0;
        }
        let mut r128 = r_squared;
        for _ in 0..6 {
            r128 *= r128;
        }
        let t = 1.0 - r128;
        t * t
    }

    /// θ at squared distance `d²`; zero outside the support.
    #[inline]
    pub fn at(&self, distance_squared: f64) -> f64 {
        let r_squared = distance_squared * self.inverse_h_squared;
        if r_squared >= 1.0 - EDGE {
            return 0.0;
        }
        match self.weight {
            Weight::Gaussian => (-distance_squared * self.inverse_gaussian_variance).exp(),
            Weight::Wendland => {
                let t = 1.0 - r_squared;
                let t2 = t * t;
                t2 * t2
            }
            Weight::Biweight => {
                let t = 1.0 - r_squared;
                t * t
            }
            Weight::Plateau => {
                let t = 1.0 - r_squared * r_squared;
                t * t
            }
            Weight::Broad => {
                let t = 1.0 - r_squared * r_squared * r_squared;
                t * t
            }
        }
    }

    /// Sets `weights` to each neighbour's weight times its `factor`, and
    /// returns the moments under the frame's weights ([`Self::frame_at`]
    /// times the same factor) and the number of neighbours of positive
    /// weight: summed as the weights are set, in one pass.
    pub fn weigh(
        &self,
        neighbours: &[Neighbour],
        factors: impl Iterator<Item = f64>,
        weights: &mut Vec<f64>,
    ) -> (Moments, u32) {
        weights.clear();
        let (mut frame_moments, mut count) = (Moments::default(), 0);
        for (neighbour, factor) in neighbours.iter().zip(factors) {
            let weight = self.at(neighbour.distance_squared) * factor;
            weights.push(weight);
            count += u32::from(weight > 0.0);
            let frame_weight = self.frame_at(neighbour.distance_squared) * factor;
            if frame_weight > 0.0 {
                frame_moments.add(&neighbour.offset, frame_weight);
            }
        }
        (frame_moments, count)
    }
}
