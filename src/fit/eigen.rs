//! Closed-form eigen decomposition of a symmetric 3×3 matrix, for the PCA
//! frame of every fit: the trigonometric solution of the characteristic
//! cubic (Smith 1961) and eigenvectors from cross products of the rows of
//! `A − λI`. (Newton's method on the cubic's separated root, with the
//! other two from a quadratic, measured no cheaper: its divisions cost
//! what `acos` and `cos` do.) An iterative solver (nalgebra's `SymmetricEigen`) costs about
//! as much as the whole fit of a 30-point neighbourhood; this is a few dozen
//! flops.

use nalgebra::{Matrix3, Vector3};

/// Eigenvalues in ascending order and the unit eigenvector of the
/// smallest; the largest's, orthogonal to it, on demand ([`Self::major`]):
/// a normal needs none (the major axis was about a fifth of the closed
/// form's flops).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmallestAxis {
    /// Eigenvalues, ascending.
    pub eigenvalues: [f64; 3],
    /// Eigenvector of the smallest eigenvalue.
    pub normal: Vector3<f64>,
    /// The matrix as scaled for the solution (its lower triangle filled),
    /// from which the major axis follows; `None` where any axis will do.
    scaled: Option<Matrix3<f64>>,
}

impl SmallestAxis {
    /// The unit eigenvector of the largest eigenvalue, orthogonal to
    /// `normal` (`x` where any axis will do).
    pub fn major(&self) -> Vector3<f64> {
        self.scaled
            .map_or_else(Vector3::x, |a| in_plane_major(&a, &self.normal))
    }
}

/// The eigenvalues of a symmetric matrix (its upper triangle is read) and
/// the eigenvector of the smallest.
pub fn smallest_axis(matrix: &Matrix3<f64>) -> SmallestAxis {
    let scale = matrix.upper_triangle().amax();
    if !(scale > 0.0 && scale.is_finite()) {
        return SmallestAxis {
            eigenvalues: [0.0; 3],
            normal: Vector3::z(),
            scaled: None,
        };
    }
    let mut a = matrix / scale;
    a.fill_lower_triangle_with_upper_triangle();
    let mean = a.trace() / 3.0;
    let shifted = a - Matrix3::from_diagonal_element(mean);
    let off = shifted[(0, 1)].powi(2) + shifted[(0, 2)].powi(2) + shifted[(1, 2)].powi(2);
    let p2 =
        (shifted[(0, 0)].powi(2) + shifted[(1, 1)].powi(2) + shifted[(2, 2)].powi(2) + 2.0 * off)
            / 6.0;
    let p = p2.sqrt();
    if p <= f64::EPSILON {
        // A multiple of the identity: every direction is an eigenvector.
        return SmallestAxis {
            eigenvalues: [mean * scale; 3],
            normal: Vector3::z(),
            scaled: None,
        };
    }
    let half_det = (shifted / p).determinant() / 2.0;
    let phi = half_det.clamp(-1.0, 1.0).acos() / 3.0;
    let largest = mean + 2.0 * p * phi.cos();
    let smallest = mean + 2.0 * p * (phi + 2.0 * std::f64::consts::FRAC_PI_3).cos();
    let middle = 3.0 * mean - largest - smallest;
    let normal = null_direction(&(a - Matrix3::from_diagonal_element(smallest)));
    SmallestAxis {
        eigenvalues: [smallest * scale, middle * scale, largest * scale],
        normal,
        scaled: Some(a),
    }
}

/// The unit vector most nearly annihilated by a (near) rank-2 symmetric
/// matrix: the largest cross product of two of its rows.
fn null_direction(m: &Matrix3<f64>) -> Vector3<f64> {
    let rows = [
        m.row(0).transpose(),
        m.row(1).transpose(),
        m.row(2).transpose(),
    ];
    let candidates = [
        rows[0].cross(&rows[1]),
        rows[0].cross(&rows[2]),
        rows[1].cross(&rows[2]),
    ];
    let best = candidates
        .into_iter()
        .max_by(|a, b| a.norm_squared().total_cmp(&b.norm_squared()))
        .unwrap_or_else(Vector3::z);
    best.try_normalize(0.0).unwrap_or_else(Vector3::z)
}

/// The direction of largest variance within the plane orthogonal to
/// `normal`: the principal direction of `a` restricted to that plane
/// (well defined even when the two largest eigenvalues are equal).
fn in_plane_major(a: &Matrix3<f64>, normal: &Vector3<f64>) -> Vector3<f64> {
    let helper = if normal.x.abs() < 0.9 {
        Vector3::x()
    } else {
        Vector3::y()
    };
    let t1 = normal.cross(&helper).normalize();
    let t2 = normal.cross(&t1);
    // `a` restricted to the plane (t1, t2): only its three distinct entries.
    let (a_t1, a_t2) = (a * t1, a * t2);
    let (a11, a12, a22) = (t1.dot(&a_t1), t1.dot(&a_t2), t2.dot(&a_t2));
    // The major eigenvector of [[a11, a12], [a12, a22]] without trigonometry
    // (atan2, cos and sin cost more than the rest of the frame): (λ − a22,
    // a12) with λ the larger eigenvalue, which points along t1 (c ≥ 0) and
    // is the better conditioned of the two null vectors of the matrix
    // minus λ when a11 ≥ a22; (a12, λ − a11) otherwise, turned to c ≥ 0.
    // The entries are of order 1 (the matrix is scaled by its largest):
    // plain square roots, not `hypot`, which guards against an overflow
    // that cannot happen here and costs more.
    let half_difference = 0.5 * (a11 - a22);
    let radius = (half_difference * half_difference + a12 * a12).sqrt();
    let (c, s) = if half_difference >= 0.0 {
        (half_difference + radius, a12)
    } else {
        let (c, s) = (a12, radius - half_difference);
        if c < 0.0 { (-c, -s) } else { (c, s) }
    };
    let length = (c * c + s * s).sqrt();
    if length > 0.0 {
        (c / length) * t1 + (s / length) * t2
    } else {
        // Equal spread in every in-plane direction: any will do.
        t1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::SymmetricEigen;

    fn matrices() -> Vec<Matrix3<f64>> {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut out = Vec::new();
        for scale in [1.0, 1e-6, 1e6] {
            for flatness in [1.0, 1e-3, 1e-8] {
                for _ in 0..50 {
                    // Covariance of a flattened random point set.
                    let mut m = Matrix3::zeros();
                    for _ in 0..20 {
                        let v = Vector3::new(next(), next(), flatness * next()) * scale;
                        m += v * v.transpose();
                    }
                    let rotation =
                        nalgebra::Rotation3::new(Vector3::new(next(), next(), next()) * 6.0);
                    out.push(rotation.matrix() * m * rotation.matrix().transpose());
                }
            }
        }
        out
    }

    #[test]
    fn axes_match_the_iterative_solver() {
        for m in matrices() {
            let axes = smallest_axis(&m);
            let major = axes.major();
            let reference = SymmetricEigen::new(m);
            let mut values: Vec<f64> = reference.eigenvalues.iter().copied().collect();
            values.sort_by(f64::total_cmp);
            let norm = m.norm();
            for (a, b) in axes.eigenvalues.iter().zip(&values) {
                assert!(
                    (a - b).abs() <= 1e-9 * norm,
                    "{:?} vs {values:?}",
                    axes.eigenvalues
                );
            }
            // A true eigenvector: residual small against the spread of the
            // eigenvalues.
            let residual = (m * axes.normal - axes.eigenvalues[0] * axes.normal).norm();
            assert!(
                residual <= 1e-7 * norm,
                "normal residual {residual} of {norm}"
            );
            assert!(axes.normal.dot(&major).abs() < 1e-9);
            assert!((major.norm() - 1.0).abs() < 1e-12);
            let gap = values[2] - values[1];
            if gap > 1e-6 * norm {
                let residual = (m * major - axes.eigenvalues[2] * major).norm();
                assert!(residual <= 1e-6 * norm, "major residual {residual}");
            }
        }
    }

    #[test]
    fn degenerate_matrices_give_orthonormal_axes() {
        for m in [
            Matrix3::zeros(),
            Matrix3::identity(),
            Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, 0.0)),
        ] {
            let axes = smallest_axis(&m);
            assert!((axes.normal.norm() - 1.0).abs() < 1e-12);
            assert!(axes.normal.dot(&axes.major()).abs() < 1e-12);
        }
    }
}
