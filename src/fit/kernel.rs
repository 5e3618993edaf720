//! Weight kernels θ(r) of the MLS fit, r = distance / h. A kernel is a value
//! evaluated from the squared distance, so compact kernels need no sqrt.

use crate::config::Weight;

use super::Moments;
use super::columns::Columns;
#[cfg(target_arch = "x86_64")]
use crate::cpu::wide_lanes;
use crate::neighbours::Neighbourhood;

/// Points within this (relative, in r²) of the support's edge count as
/// outside. With `Nearest(k)` the k-th neighbour lies at r = 1 by
/// construction, and the last bit of a rounding (which depends on the order
/// the neighbours were summed in) must not decide whether it is in: it
/// would change the neighbour count and, for the Gaussian, the surface.
/// The smooth kernels weigh such a point below 1e-17 anyway.
pub(super) const EDGE: f64 = 1e-9;

/// The exponent below which the Gaussian weighs zero: e^-700 (1e-304) is
/// nothing beside any weight near the centre, and the lanes' exponential
/// (`fit::avx`) is not defined much further down.
pub(crate) const GAUSSIAN_FLOOR: f64 = -700.0;

/// A weight kernel bound to a support radius.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    pub(super) weight: Weight,
    support_radius: f64,
    pub(super) inverse_h_squared: f64,
    /// `1 / s` for the Gaussian, `s = (gaussian_width·h)²`.
    pub(super) inverse_gaussian_variance: f64,
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

    /// θ of kernel `weight` at squared distance `d²`; zero outside the
    /// support. `weight` is a parameter so that a caller passing a
    /// constant gets the kernel's formula alone, with no branch on it.
    #[inline(always)]
    fn profile(&self, weight: Weight, distance_squared: f64) -> f64 {
        let r_squared = distance_squared * self.inverse_h_squared;
        if r_squared >= 1.0 - EDGE {
            return 0.0;
        }
        match weight {
            Weight::Gaussian => {
                let exponent = -distance_squared * self.inverse_gaussian_variance;
                // Zero below e^-700, as in the lanes (`fit::avx`): the same
                // neighbours count on every CPU.
                if exponent < GAUSSIAN_FLOOR {
                    0.0
                } else {
                    exponent.exp()
                }
            }
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

    /// Sets the weights in `columns` of the neighbours of `neighbours`
    /// (those loaded into `columns`) to each one's weight times its
    /// `factor` (one per neighbour; all 1 when `None`); returns their
    /// moments under their frame weights ([`Self::frame_at`] times the
    /// same factor) and the number of neighbours of positive weight.
    pub fn weigh(
        &self,
        neighbours: &Neighbourhood,
        columns: &mut Columns,
        factors: Option<&[f64]>,
    ) -> (Moments, u32) {
        debug_assert_eq!(neighbours.len(), columns.len(), "the neighbourhood loaded");
        #[cfg(target_arch = "x86_64")]
        if wide_lanes() {
            // SAFETY: the CPU has AVX2 and FMA.
            let (sums, count) = unsafe { super::avx::weigh(neighbours, columns, factors, self) };
            return (Moments::from_sums(sums), count);
        }
        self.weigh_plain(neighbours, columns, factors)
    }

    /// [`Self::weigh`] one neighbour at a time.
    fn weigh_plain(
        &self,
        neighbours: &Neighbourhood,
        columns: &mut Columns,
        factors: Option<&[f64]>,
    ) -> (Moments, u32) {
        let distances = neighbours.distances_squared();
        // One loop per kernel, each without a branch on the kernel.
        match self.weight {
            Weight::Gaussian => self.weigh_by(distances, columns, factors, Weight::Gaussian),
            Weight::Wendland => self.weigh_by(distances, columns, factors, Weight::Wendland),
            Weight::Biweight => self.weigh_by(distances, columns, factors, Weight::Biweight),
            Weight::Plateau => self.weigh_by(distances, columns, factors, Weight::Plateau),
            Weight::Broad => self.weigh_by(distances, columns, factors, Weight::Broad),
        }
        let count = columns.weight.iter().filter(|&&w| w > 0.0).count() as u32;
        let mut frame_moments = Moments::default();
        for (i, neighbour) in neighbours.iter().enumerate() {
            let frame_weight = self.frame_at(neighbour.distance_squared);
            let factor = factors.map_or(1.0, |factors| factors[i]);
            frame_moments.add(&neighbour.offset, frame_weight * factor);
        }
        (frame_moments, count)
    }

    /// [`Self::weigh`]'s weights of the neighbours at squared `distances`
    /// under the kernel `weight` (a constant at each call, so that each
    /// loop is the kernel's own; the padding is zeroed).
    #[inline(always)]
    fn weigh_by(
        &self,
        distances: &[f64],
        columns: &mut Columns,
        factors: Option<&[f64]>,
        weight: Weight,
    ) {
        let (len, padded) = (columns.len(), columns.padded_len());
        columns.weight.resize(padded, 0.0);
        for (w, &distance_squared) in columns.weight.iter_mut().zip(distances) {
            *w = self.profile(weight, distance_squared);
        }
        if let Some(factors) = factors {
            for (w, factor) in columns.weight.iter_mut().zip(factors) {
                *w *= factor;
            }
        }
        columns.weight[len..].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one pass in lanes gives the weights, frame moments and count of
    /// the plain loops: the weights bit for bit for the polynomial kernels,
    /// within the lanes' exponential's error for the Gaussian.
    #[test]
    fn weights_in_lanes_are_the_plain_weights() {
        if !crate::cpu::wide_lanes() {
            return; // nothing to compare on this CPU
        }
        // 23 neighbours (a padded last lane), some past the support.
        let hood = crate::fit::wavy_neighbourhood(23);
        let factors: Vec<f64> = (0..23).map(|i| f64::from(i % 3) * 0.5).collect();
        let weights = [
            Weight::Gaussian,
            Weight::Wendland,
            Weight::Biweight,
            Weight::Plateau,
            Weight::Broad,
        ];
        for weight in weights {
            for factors in [None, Some(&factors[..])] {
                let kernel = Kernel::new(weight, 1.2, 0.7);
                let (mut lanes, mut plain) = (Columns::default(), Columns::default());
                lanes.load(&hood, None);
                plain.load(&hood, None);
                let (lane_moments, lane_count) = kernel.weigh(&hood, &mut lanes, factors);
                let (plain_moments, plain_count) = kernel.weigh_plain(&hood, &mut plain, factors);
                assert_eq!(lane_count, plain_count, "{weight:?}");
                assert!(lane_count > 0 && (lane_count as usize) < hood.len());
                let close = |a: f64, b: f64| match weight {
                    Weight::Gaussian => (a - b).abs() <= super::super::avx::EXP_ERROR * b,
                    _ => a == b,
                };
                let mut pairs = lanes.weight.iter().zip(&plain.weight);
                assert_eq!(lanes.weight.len(), plain.weight.len());
                assert!(pairs.all(|(&a, &b)| close(a, b)), "{weight:?}");
                let (a, b) = (
                    lane_moments.frame().unwrap(),
                    plain_moments.frame().unwrap(),
                );
                // One neighbour at a time against lanes: the same frame to
                // the rounding of another order of sums.
                assert!((a.centroid - b.centroid).norm() <= 1e-14, "{weight:?}");
                assert!(
                    (a.normal.dot(&b.normal).abs() - 1.0).abs() < 1e-12,
                    "{weight:?}"
                );
                // The plain frame weights summed in lanes: bit for bit
                // (the frame's weight is one polynomial for every kernel).
                let mut frame = Columns::default();
                frame.load(&hood, None);
                frame.weight = (0..frame.padded_len())
                    .map(|i| match hood.distances_squared().get(i) {
                        Some(&d) => kernel.frame_at(d) * factors.map_or(1.0, |f| f[i]),
                        None => 0.0,
                    })
                    .collect();
                let summed = frame.moments(&hood).frame().unwrap();
                assert_eq!(a.centroid, summed.centroid, "{weight:?}");
                assert_eq!(a.normal, summed.normal, "{weight:?}");
            }
        }
    }
}
