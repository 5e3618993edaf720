//! The fitted surface near one particle: the height field over its frame,
//! and its value, slope and second derivatives at a point (its jet), from
//! which the surface normal and curvatures follow.

use nalgebra::Vector3;

use super::height::MONOMIALS;

/// The fitted height field over a frame, in unscaled tangent coordinates:
/// `G(U, V) = g(U/h, V/h)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeightField {
    /// Coefficients of `g` over scaled coordinates.
    pub coefficients: [f64; MONOMIALS],
    /// The support radius the coordinates were scaled by.
    pub support_radius: f64,
}

/// `G` and its first and second derivatives at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jet {
    /// `G`.
    pub height: f64,
    /// `∂G/∂U`.
    pub du: f64,
    /// `∂G/∂V`.
    pub dv: f64,
    /// `∂²G/∂U²`.
    pub duu: f64,
    /// `∂²G/∂U∂V`.
    pub duv: f64,
    /// `∂²G/∂V²`.
    pub dvv: f64,
}

impl HeightField {
    /// `G` and its derivatives at `(U, V)`.
    #[inline]
    pub fn jet(&self, u_unscaled: f64, v_unscaled: f64) -> Jet {
        let [a0, a1, a2, a3, a4, a5] = self.coefficients;
        let inverse_h = 1.0 / self.support_radius;
        let (u, v) = (u_unscaled * inverse_h, v_unscaled * inverse_h);
        Jet {
            height: a0 + a1 * u + a2 * v + a3 * u * u + a4 * u * v + a5 * v * v,
            du: (a1 + 2.0 * a3 * u + a4 * v) * inverse_h,
            dv: (a2 + a4 * u + 2.0 * a5 * v) * inverse_h,
            duu: 2.0 * a3 * inverse_h * inverse_h,
            duv: a4 * inverse_h * inverse_h,
            dvv: 2.0 * a5 * inverse_h * inverse_h,
        }
    }
}

impl Jet {
    /// Unit normal of the graph in frame coordinates `(−G_U, −G_V, 1)/W`.
    pub fn normal(&self) -> Vector3<f64> {
        Vector3::new(-self.du, -self.dv, 1.0).normalize()
    }

    /// Mean and Gaussian curvature of the graph, signed relative to
    /// [`Jet::normal`] (a sphere with outward normals has H = −1/R).
    pub fn curvatures(&self) -> (f64, f64) {
        let w2 = 1.0 + self.du * self.du + self.dv * self.dv;
        let w = w2.sqrt();
        let gaussian = (self.duu * self.dvv - self.duv * self.duv) / (w2 * w2);
        let mean = ((1.0 + self.dv * self.dv) * self.duu - 2.0 * self.du * self.dv * self.duv
            + (1.0 + self.du * self.du) * self.dvv)
            / (2.0 * w2 * w);
        (mean, gaussian)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curvature_of_a_paraboloid_apex() {
        // z = (U² + V²) / (2R) has H = 1/R, K = 1/R² at the apex, normal up.
        let r = 2.0;
        let h = 0.5;
        let field = HeightField {
            coefficients: [0.0, 0.0, 0.0, h * h / (2.0 * r), 0.0, h * h / (2.0 * r)],
            support_radius: h,
        };
        let (mean, gaussian) = field.jet(0.0, 0.0).curvatures();
        assert!((mean - 1.0 / r).abs() < 1e-12);
        assert!((gaussian - 1.0 / (r * r)).abs() < 1e-12);
    }
}
