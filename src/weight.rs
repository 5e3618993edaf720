//! Weight kernels θ(r) of the MLS fit, r = distance / h. A kernel is a value
//! evaluated from the squared distance, so compact kernels need no sqrt.

use crate::config::Weight;

/// A weight kernel bound to a support radius.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    weight: Weight,
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
            inverse_h_squared: 1.0 / h2,
            inverse_gaussian_variance: 1.0 / (h2 * gaussian_width * gaussian_width),
        }
    }

    /// θ at squared distance `d²`; zero outside the support.
    #[inline]
    pub fn at(&self, distance_squared: f64) -> f64 {
        let r2 = distance_squared * self.inverse_h_squared;
        if r2 >= 1.0 {
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
        }
    }
}
