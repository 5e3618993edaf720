//! The local frame of a neighbourhood: its weighted centroid and the
//! principal axes of its weighted covariance (PCA), whose least-variance
//! axis is the fit's normal.

use nalgebra::{Matrix3, Vector3};

use super::eigen::{SmallestAxis, smallest_axis};

/// Weighted first and second moments of a neighbourhood, relative to the
/// query centre (small numbers, whatever the cloud's origin).
#[derive(Debug, Clone, Copy, Default)]
pub struct Moments {
    weight_sum: f64,
    first: Vector3<f64>,
    second: Matrix3<f64>,
}

impl Moments {
    /// Adds one neighbour at `offset` from the centre with weight `w`.
    #[inline]
    pub fn add(&mut self, offset: &Vector3<f64>, w: f64) {
        self.weight_sum += w;
        self.first += w * offset;
        // Only the upper triangle: `smallest_axis` reads no more.
        let wo = w * offset;
        self.second[(0, 0)] += wo.x * offset.x;
        self.second[(0, 1)] += wo.x * offset.y;
        self.second[(0, 2)] += wo.x * offset.z;
        self.second[(1, 1)] += wo.y * offset.y;
        self.second[(1, 2)] += wo.y * offset.z;
        self.second[(2, 2)] += wo.z * offset.z;
    }

    /// The moments of ten sums (the lanes' of
    /// [`super::columns::Columns::moments`]): `Σ w`, `Σ w p` and the upper
    /// triangle of `Σ w p pᵀ` by rows.
    pub(crate) fn from_sums(sums: [f64; 10]) -> Self {
        let [w, x, y, z, xx, xy, xz, yy, yz, zz] = sums;
        let mut second = Matrix3::zeros();
        for ((row, col), value) in [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
            .into_iter()
            .zip([xx, xy, xz, yy, yz, zz])
        {
            second[(row, col)] = value;
        }
        Moments {
            weight_sum: w,
            first: Vector3::new(x, y, z),
            second,
        }
    }

    /// The weighted mean offset, or `None` when the weights sum to zero.
    pub fn centroid(&self) -> Option<Vector3<f64>> {
        (self.weight_sum > 0.0 && self.weight_sum.is_finite()).then(|| self.first / self.weight_sum)
    }

    /// The weighted centroid and an orthonormal frame whose third axis is
    /// the eigenvector of the smallest eigenvalue of the weighted
    /// covariance. `None` when the weights sum to zero. The normal's sign is
    /// arbitrary here; the caller orients it. Inlined into each copy of
    /// the projection's `local_fit` ([`crate::cpu::with_v3!`]).
    #[inline(always)]
    pub fn frame(&self) -> Option<Frame> {
        let (centroid, axis) = self.axes()?;
        let e1 = axis.major();
        Some(Frame {
            centroid,
            e1,
            e2: axis.normal.cross(&e1),
            normal: axis.normal,
            spread: spread(&axis),
        })
    }

    /// The weighted centroid, the normal and the spreads of [`Self::frame`]
    /// (the same numbers), without its tangent axes: what a normal's
    /// estimate reads.
    pub fn plane(&self) -> Option<Plane> {
        let (centroid, axis) = self.axes()?;
        Some(Plane {
            centroid,
            normal: axis.normal,
            spread: spread(&axis),
        })
    }

    /// The weighted centroid and the covariance's eigen solution.
    fn axes(&self) -> Option<(Vector3<f64>, SmallestAxis)> {
        let (centroid, covariance) = self.covariance()?;
        Some((centroid, smallest_axis(&covariance)))
    }

    /// The weighted centroid and covariance (its upper triangle: only
    /// that is filled and read), or `None` when the weights sum to zero.
    fn covariance(&self) -> Option<(Vector3<f64>, Matrix3<f64>)> {
        let centroid = self.centroid()?;
        Some((
            centroid,
            self.second / self.weight_sum - centroid * centroid.transpose(),
        ))
    }
}

/// The covariance's eigenvalues, ascending, rounding below zero cut.
fn spread(axis: &SmallestAxis) -> [f64; 3] {
    axis.eigenvalues.map(|v| v.max(0.0))
}

/// The plane of a [`Frame`]: its centroid, normal and spreads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plane {
    /// Weighted centroid, relative to the query centre.
    pub centroid: Vector3<f64>,
    /// Unit normal of the PCA plane.
    pub normal: Vector3<f64>,
    /// Covariance eigenvalues, ascending (the first along the normal).
    pub spread: [f64; 3],
}

/// A local frame: origin at the weighted centroid, `e1, e2` spanning the
/// tangent plane, `normal` the least-variance direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Weighted centroid, relative to the query centre.
    pub centroid: Vector3<f64>,
    /// First tangent axis (largest variance).
    pub e1: Vector3<f64>,
    /// Second tangent axis, `normal × e1`.
    pub e2: Vector3<f64>,
    /// Unit normal of the PCA plane.
    pub normal: Vector3<f64>,
    /// Covariance eigenvalues, ascending: normal, e2, e1 directions.
    pub spread: [f64; 3],
}

impl Frame {
    /// Flips the normal (and `e2`, to stay right-handed).
    pub fn flip(&mut self) {
        self.normal = -self.normal;
        self.e2 = -self.e2;
    }

    /// True when the neighbourhood is (nearly) a line: the tangent plane is
    /// then undetermined and no fit can be trusted.
    pub fn is_collinear(&self) -> bool {
        self.spread[1] <= 1e-8 * self.spread[2]
    }

    /// Distance of the foot of `local` (frame coordinates) from the
    /// centroid, in standard deviations of the neighbourhood's spread along
    /// `e1` and `e2` (a Mahalanobis distance in the tangent plane). A
    /// uniform disc's rim lies at 2; farther out, a fit extrapolates.
    pub fn tangential_deviations(&self, local: &Vector3<f64>) -> f64 {
        (local.x * local.x / self.spread[2] + local.y * local.y / self.spread[1]).sqrt()
    }

    /// The world offset of frame coordinates `(U, V, W)`.
    pub fn world_offset(&self, local: &Vector3<f64>) -> Vector3<f64> {
        local.x * self.e1 + local.y * self.e2 + local.z * self.normal
    }

    /// Local coordinates `(e1·d, e2·d, n·d)` of an offset `d` from the centroid.
    #[inline]
    pub fn local(&self, from_centroid: &Vector3<f64>) -> Vector3<f64> {
        Vector3::new(
            self.e1.dot(from_centroid),
            self.e2.dot(from_centroid),
            self.normal.dot(from_centroid),
        )
    }
}
