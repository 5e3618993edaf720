//! The weighted quadratic height field over a frame, accumulated one
//! neighbour at a time into its normal equations (15 + 6 + 1 moments of the
//! heights, and 12 of the slopes when the cloud's normals take part), never
//! forming the (N, 6) matrix of the seed question, and solved by a packed
//! LDLᵀ.

use nalgebra::Vector3;

use super::columns::Columns;
#[cfg(target_arch = "x86_64")]
use crate::cpu::wide_lanes;
use crate::neighbours::Neighbourhood;

/// Number of monomials `φ = (1, u, v, u², uv, v²)` of a degree-2 fit.
pub const MONOMIALS: usize = 6;
/// Packed size of the symmetric 6×6 normal matrix (upper triangle).
const PACKED: usize = MONOMIALS * (MONOMIALS + 1) / 2;

/// Number of unknowns of a fit of `degree` (0 plane, 1 linear, 2 quadratic).
pub const fn unknowns(degree: u8) -> usize {
    match degree {
        0 => 0,
        1 => 3,
        _ => MONOMIALS,
    }
}

/// Highest degree that `count` neighbours determine: 6 for a quadric, 3 for
/// a linear function; fewer give the plane alone.
pub fn supported_degree(count: usize) -> u8 {
    match count {
        c if c >= MONOMIALS => 2,
        c if c >= 3 => 1,
        _ => 0,
    }
}

/// The weighted least-squares system of the height field
/// `g(u, v) = a0 + a1 u + a2 v + a3 u² + a4 uv + a5 v²`, as its normal
/// equations `M a = r`: `M = Σ w φ φᵀ` (packed upper triangle, 21 sums),
/// `r = Σ w f φ` (6 sums), plus `Σ w f²` for the residual; and, when the
/// cloud's normals take part, the slope equations' share of `M` and `r`
/// ([`Self::add_slopes`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NormalEquations {
    matrix: [f64; PACKED],
    rhs: [f64; MONOMIALS],
    weight_sum: f64,
    height_squares: f64,
    /// The part of `matrix` and `rhs` from slope equations
    /// ([`Self::add_slopes`]), kept to report the residual of the heights
    /// alone; `None` without them, which [`Self::solve`] then skips.
    slopes: Option<SlopeShare>,
}

/// The slope equations' share of a [`NormalEquations`]: `M_s` (packed) and
/// `r_s`.
#[derive(Debug, Clone, Copy, Default)]
struct SlopeShare {
    matrix: [f64; PACKED],
    rhs: [f64; MONOMIALS],
}

/// Index of `(row, col)`, `row ≤ col`, in the packed upper triangle.
const fn packed(row: usize, col: usize) -> usize {
    row * MONOMIALS - row * (row + 1) / 2 + col
}

/// The normal equations of the quadratic height field, accumulated as
/// moments: every entry of `M = Σ w φ φᵀ` is one of the 15 moments
/// `Σ w uᵃ vᵇ` (a + b ≤ 4), so a neighbour costs 15 + 6 + 1 sums instead of
/// the 21 + 6 + 2 of a general row. This is the hot loop of the projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeightMoments {
    /// `Σ w uᵃ vᵇ` in the order of [`MOMENT_EXPONENTS`].
    moments: [f64; 15],
    /// `Σ w f φ`.
    rhs: [f64; MONOMIALS],
    /// `Σ w f²`.
    height_squares: f64,
}

/// `(a, b)` of each moment `Σ w uᵃ vᵇ` in [`HeightMoments`].
const MOMENT_EXPONENTS: [(u8, u8); 15] = [
    (0, 0),
    (1, 0),
    (0, 1),
    (2, 0),
    (1, 1),
    (0, 2),
    (3, 0),
    (2, 1),
    (1, 2),
    (0, 3),
    (4, 0),
    (3, 1),
    (2, 2),
    (1, 3),
    (0, 4),
];

/// `(a, b)` of each monomial of `φ = (1, u, v, u², uv, v²)`.
const MONOMIAL_EXPONENTS: [(u8, u8); MONOMIALS] = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)];

/// For each entry of the packed normal matrix, the index of its moment in
/// [`MOMENT_EXPONENTS`]: entry `(row, col)` is `Σ w φ_row φ_col`, the
/// moment of the summed exponents. Worked out once, at compile time.
const MATRIX_MOMENTS: [usize; PACKED] = {
    let mut table = [0; PACKED];
    let mut row = 0;
    while row < MONOMIALS {
        let mut col = row;
        while col < MONOMIALS {
            let a = MONOMIAL_EXPONENTS[row].0 + MONOMIAL_EXPONENTS[col].0;
            let b = MONOMIAL_EXPONENTS[row].1 + MONOMIAL_EXPONENTS[col].1;
            let mut k = 0;
            while MOMENT_EXPONENTS[k].0 != a || MOMENT_EXPONENTS[k].1 != b {
                k += 1; // past the end: a compile error, not a wrong table
            }
            table[packed(row, col)] = k;
            col += 1;
        }
        row += 1;
    }
    table
};

impl HeightMoments {
    /// Adds one sample: scaled tangent coordinates `(u, v)`, height `f`,
    /// weight `w`: the plain definition of the sums that
    /// [`moments`] takes in lanes where it can.
    pub fn add(&mut self, u: f64, v: f64, f: f64, w: f64) {
        let (wu, wv) = (w * u, w * v);
        let (wuu, wuv, wvv) = (wu * u, wu * v, wv * v);
        let m = &mut self.moments;
        m[0] += w;
        m[1] += wu;
        m[2] += wv;
        m[3] += wuu;
        m[4] += wuv;
        m[5] += wvv;
        m[6] += wuu * u;
        m[7] += wuu * v;
        m[8] += wvv * u;
        m[9] += wvv * v;
        m[10] += wuu * u * u;
        m[11] += wuu * u * v;
        m[12] += wuu * v * v;
        m[13] += wvv * u * v;
        m[14] += wvv * v * v;
        let r = &mut self.rhs;
        r[0] += w * f;
        r[1] += wu * f;
        r[2] += wv * f;
        r[3] += wuu * f;
        r[4] += wuv * f;
        r[5] += wvv * f;
        self.height_squares += w * f * f;
    }

    /// The moments of the sums `moments` (in the order of
    /// [`MOMENT_EXPONENTS`]), `rhs` (`Σ w f φ`) and `height_squares`.
    pub(crate) fn from_sums(
        moments: [f64; 15],
        rhs: [f64; MONOMIALS],
        height_squares: f64,
    ) -> Self {
        HeightMoments {
            moments,
            rhs,
            height_squares,
        }
    }

    /// The normal equations these moments stand for.
    pub fn equations(&self) -> NormalEquations {
        NormalEquations {
            matrix: MATRIX_MOMENTS.map(|k| self.moments[k]),
            rhs: self.rhs,
            weight_sum: self.moments[0],
            height_squares: self.height_squares,
            ..NormalEquations::default()
        }
    }
}

/// The affine map from a neighbour's offset (from the query centre) to its
/// frame coordinates `(u, v, f)`: scaled tangent coordinates and height.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TangentMap {
    /// Rows of the map: `e1 / h`, `e2 / h`, `normal`.
    pub rows: [Vector3<f64>; 3],
    /// The frame's centroid (from the query centre), subtracted from an
    /// offset before the rows apply: the frame coordinates are then
    /// rounded relative to the neighbour's distance from the centroid,
    /// not from the query centre (which may lie far off the surface).
    pub centroid: Vector3<f64>,
}

impl TangentMap {
    /// `(u, v, f)` of the offset `p`.
    #[inline]
    fn apply(&self, p: &Vector3<f64>) -> [f64; 3] {
        let from_centroid = p - self.centroid;
        std::array::from_fn(|row| self.rows[row].dot(&from_centroid))
    }
}

/// The height moments of `neighbours` under their weights in `columns`,
/// mapped into the frame by `map`: the sums of [`HeightMoments::add`]; and
/// when `slopes_at` gives the support radius (the map's tangent rows are
/// scaled by its inverse, and the columns carry the unit normals), their
/// slope moments, the sums of [`SlopeMoments::add`]. In `f32` AVX lanes
/// where the CPU has them (see `super::avx::moments`).
pub(crate) fn moments(
    map: &TangentMap,
    neighbours: &Neighbourhood,
    columns: &Columns,
    slopes_at: Option<f64>,
) -> (HeightMoments, Option<SlopeMoments>) {
    debug_assert_eq!(neighbours.len(), columns.len(), "the neighbourhood loaded");
    #[cfg(target_arch = "x86_64")]
    if wide_lanes() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { super::avx::moments(map, neighbours, columns, slopes_at) };
    }
    let slopes = slopes_at.map(|h| plain_slope_moments(map, neighbours, columns, h));
    (plain_height_moments(map, neighbours, columns), slopes)
}

/// [`moments`]' height moments one neighbour at a time.
fn plain_height_moments(
    map: &TangentMap,
    neighbours: &Neighbourhood,
    columns: &Columns,
) -> HeightMoments {
    let mut moments = HeightMoments::default();
    for (neighbour, &w) in neighbours.iter().zip(columns.weights()) {
        let [u, v, f] = map.apply(&neighbour.offset);
        moments.add(u, v, f, w);
    }
    moments
}

/// [`moments`]' slope moments one neighbour at a time.
fn plain_slope_moments(
    map: &TangentMap,
    neighbours: &Neighbourhood,
    columns: &Columns,
    support_radius: f64,
) -> SlopeMoments {
    let mut slopes = SlopeMoments::default();
    for (i, (neighbour, &w)) in neighbours.iter().zip(columns.weights()).enumerate() {
        let [u, v, _] = map.apply(&neighbour.offset);
        let normal = columns.normal_of(i);
        let local = Vector3::new(
            map.rows[0].dot(&normal) * support_radius,
            map.rows[1].dot(&normal) * support_radius,
            map.rows[2].dot(&normal),
        );
        slopes.add(u, v, &local, w);
    }
    slopes
}

/// The slope equations that the cloud's normals add to the height field's
/// fit ("Hermite data"): a neighbour at `(u, v)` whose normal is
/// `(n_u, n_v, n_n)` in the frame says `∂g/∂u = −h n_u / n_n` and
/// `∂g/∂v = −h n_v / n_n` there. Multiplied through by `n_n`, the
/// equations stay finite and fade out for a normal that lies in the
/// tangent plane (the far face of a thin part, the other side of an edge),
/// and they do not depend on the normal's sign. They pin the slope and
/// curvature terms, which otherwise take most of the fit's variance from
/// its constant term: for a uniform disc, knowing the quadric's curvature
/// divides the variance of the height at the centre by four.
///
/// Accumulated as 12 moments: `Σ w n_n² uᵃ vᵇ` (a + b ≤ 2), `Σ w n_n n_u
/// {1, u, v}` and `Σ w n_n n_v {1, u, v}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlopeMoments {
    /// `Σ w n_n² {1, u, v, u², uv, v²}`.
    square: [f64; MONOMIALS],
    /// `Σ w n_n n_u {1, u, v}`.
    along_u: [f64; 3],
    /// `Σ w n_n n_v {1, u, v}`.
    along_v: [f64; 3],
}

impl SlopeMoments {
    /// Adds one neighbour: scaled tangent coordinates `(u, v)`, its unit
    /// normal in frame coordinates, weight `w`: the plain definition of
    /// the sums that [`moments`] takes in lanes where it can.
    pub fn add(&mut self, u: f64, v: f64, normal: &Vector3<f64>, w: f64) {
        let wn = w * normal.z;
        let square = wn * normal.z;
        let s = &mut self.square;
        s[0] += square;
        s[1] += square * u;
        s[2] += square * v;
        s[3] += square * u * u;
        s[4] += square * u * v;
        s[5] += square * v * v;
        let (along_u, along_v) = (wn * normal.x, wn * normal.y);
        for (sums, along) in [(&mut self.along_u, along_u), (&mut self.along_v, along_v)] {
            sums[0] += along;
            sums[1] += along * u;
            sums[2] += along * v;
        }
    }

    /// The moments of the sums `square` (`Σ w n_n² {1, u, v, u², uv,
    /// v²}`), `along_u` and `along_v`.
    pub(crate) fn from_sums(
        square: [f64; MONOMIALS],
        along_u: [f64; 3],
        along_v: [f64; 3],
    ) -> Self {
        SlopeMoments {
            square,
            along_u,
            along_v,
        }
    }
}

impl NormalEquations {
    /// Adds one row `φ` of the design matrix with target `f` and weight `w`:
    /// the plain definition, which the tests hold the faster sums to.
    #[cfg(test)]
    fn add_row(&mut self, phi: &[f64; MONOMIALS], f: f64, w: f64) {
        for row in 0..MONOMIALS {
            let wp = w * phi[row];
            for (col, p) in phi.iter().enumerate().skip(row) {
                self.matrix[packed(row, col)] += wp * p;
            }
            self.rhs[row] += wp * f;
        }
        self.weight_sum += w;
        self.height_squares += w * f * f;
    }

    /// The equations of a system summed elsewhere (the seed question's
    /// pre-built rows, see `least_squares`): `M` by entry `(row, col)`, `row ≤ col`,
    /// `r`, `Σ w` and `Σ w f²`.
    pub fn from_sums(
        matrix: impl Fn(usize, usize) -> f64,
        rhs: [f64; MONOMIALS],
        weight_sum: f64,
        target_squares: f64,
    ) -> Self {
        let mut equations = NormalEquations {
            rhs,
            weight_sum,
            height_squares: target_squares,
            ..NormalEquations::default()
        };
        for row in 0..MONOMIALS {
            for col in row..MONOMIALS {
                equations.matrix[packed(row, col)] = matrix(row, col);
            }
        }
        equations
    }

    /// Adds the slope equations of `slopes`, each weighted `weight`
    /// relative to a height equation of the same kernel weight, for a fit
    /// with support radius `support_radius` (the scale of `u` and `v`).
    pub fn add_slopes(&mut self, slopes: &SlopeMoments, weight: f64, support_radius: f64) {
        let share = self.slopes.get_or_insert_default();
        let s = slopes.square.map(|m| weight * m);
        // φ_u = n_n (0, 1, 0, 2u, v, 0), φ_v = n_n (0, 0, 1, 0, u, 2v).
        let entries = [
            ((1, 1), s[0]),
            ((1, 3), 2.0 * s[1]),
            ((1, 4), s[2]),
            ((3, 3), 4.0 * s[3]),
            ((3, 4), 2.0 * s[4]),
            ((4, 4), s[5] + s[3]),
            ((2, 2), s[0]),
            ((2, 4), s[1]),
            ((2, 5), 2.0 * s[2]),
            ((4, 5), 2.0 * s[4]),
            ((5, 5), 4.0 * s[5]),
        ];
        for ((row, col), value) in entries {
            share.matrix[packed(row, col)] += value;
            self.matrix[packed(row, col)] += value;
        }
        // Targets −h n_u / n_n and −h n_v / n_n, times n_n.
        let scale = -weight * support_radius;
        let (u, v) = (
            slopes.along_u.map(|m| scale * m),
            slopes.along_v.map(|m| scale * m),
        );
        let entries = [
            (1, u[0]),
            (3, 2.0 * u[1]),
            (4, u[2] + v[1]),
            (2, v[0]),
            (5, 2.0 * v[2]),
        ];
        for (row, value) in entries {
            share.rhs[row] += value;
            self.rhs[row] += value;
        }
    }

    /// Solves the leading `unknowns(degree)` equations by a packed LDLᵀ
    /// (Cholesky without square roots). Returns the coefficients (zero
    /// beyond the degree) and the weighted RMS residual, or `None` when a
    /// pivot falls below `1e-10 · Σw`: the neighbourhood does not determine
    /// that degree (collinear points, a scan line), so the caller lowers it.
    pub fn solve(&self, degree: u8) -> Option<([f64; MONOMIALS], f64)> {
        let n = unknowns(degree);
        let mut coefficients = [0.0; MONOMIALS];
        if self.weight_sum <= 0.0 {
            return None;
        }
        // Each size its own copy, whose loops' bounds are known when it is
        // compiled (unrolled): the same operations in the same order.
        let solved = match n {
            0 => true,
            3 => self.solve_leading::<3>(&mut coefficients),
            _ => self.solve_leading::<MONOMIALS>(&mut coefficients),
        };
        if !solved {
            return None;
        }
        // At the optimum of the heights alone, Σw(g − f)² = Σwf² − aᵀr.
        // With slope equations (M_s, r_s; r = r_h + r_s), where
        // (M_h + M_s) a = r: Σw(g − f)² = Σwf² − aᵀr_h + aᵀr_s − aᵀM_s a.
        let dot =
            |x: &[f64; MONOMIALS], y: &[f64; MONOMIALS]| (0..n).map(|i| x[i] * y[i]).sum::<f64>();
        let mut explained = dot(&coefficients, &self.rhs);
        if let Some(share) = &self.slopes {
            let slope_product: [f64; MONOMIALS] = std::array::from_fn(|i| {
                (0..n)
                    .map(|j| share.matrix[packed(i.min(j), i.max(j))] * coefficients[j])
                    .sum()
            });
            explained = explained - 2.0 * dot(&coefficients, &share.rhs)
                + dot(&coefficients, &slope_product);
        }
        let residual = ((self.height_squares - explained).max(0.0) / self.weight_sum).sqrt();
        Some((coefficients, residual))
    }

    /// Solves the leading `N` × `N` block of the equations into the first
    /// `N` of `coefficients` by an LDLᵀ factorisation; false when a pivot is
    /// not clearly positive (or NaN).
    #[inline(always)]
    fn solve_leading<const N: usize>(&self, coefficients: &mut [f64; MONOMIALS]) -> bool {
        let threshold = 1e-10 * self.weight_sum;
        // L (unit lower, stored row-major) and D.
        let mut lower = [[0.0f64; N]; N];
        let mut diagonal = [0.0f64; N];
        for j in 0..N {
            let mut d = self.matrix[packed(j, j)];
            for k in 0..j {
                d -= lower[j][k] * lower[j][k] * diagonal[k];
            }
            // Also refuses NaN pivots.
            if d.is_nan() || d <= threshold {
                return false;
            }
            diagonal[j] = d;
            for i in j + 1..N {
                let mut s = self.matrix[packed(j, i)];
                for k in 0..j {
                    s -= lower[i][k] * lower[j][k] * diagonal[k];
                }
                lower[i][j] = s / d;
            }
        }
        // Forward, diagonal, backward substitution.
        let mut y = [0.0f64; N];
        for i in 0..N {
            let mut s = self.rhs[i];
            for k in 0..i {
                s -= lower[i][k] * y[k];
            }
            y[i] = s;
        }
        for i in 0..N {
            y[i] /= diagonal[i];
        }
        for i in (0..N).rev() {
            let mut s = y[i];
            for k in i + 1..N {
                s -= lower[k][i] * coefficients[k];
            }
            coefficients[i] = s;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic_is_reproduced_exactly() {
        let a = [0.1, -0.2, 0.3, 0.5, -0.7, 0.25];
        let mut eq = HeightMoments::default();
        for i in 0..7 {
            for j in 0..7 {
                let (u, v) = (i as f64 / 3.0 - 1.0, j as f64 / 3.0 - 1.0);
                let f = a[0] + a[1] * u + a[2] * v + a[3] * u * u + a[4] * u * v + a[5] * v * v;
                eq.add(u, v, f, 1.0 + 0.1 * i as f64);
            }
        }
        let (solved, residual) = eq.equations().solve(2).unwrap();
        for (s, t) in solved.iter().zip(a) {
            assert!((s - t).abs() < 1e-12, "{solved:?}");
        }
        assert!(residual < 1e-6);
    }

    /// Samples of `g` over a 7 × 7 grid of the unit square around 0 with
    /// weights, heights offset by `height_noise(i, j)`, and the normals of
    /// `g` itself (support radius `h`: `∂G/∂U = ∂g/∂u / h`).
    fn hermite_samples(
        a: &[f64; MONOMIALS],
        h: f64,
        height_noise: impl Fn(usize, usize) -> f64,
    ) -> Vec<(f64, f64, f64, Vector3<f64>, f64)> {
        let mut samples = Vec::new();
        for i in 0..7 {
            for j in 0..7 {
                let (u, v) = (i as f64 / 3.0 - 1.0, j as f64 / 3.0 - 1.0);
                let g = a[0] + a[1] * u + a[2] * v + a[3] * u * u + a[4] * u * v + a[5] * v * v;
                let (gu, gv) = (
                    a[1] + 2.0 * a[3] * u + a[4] * v,
                    a[2] + a[4] * u + 2.0 * a[5] * v,
                );
                let normal = Vector3::new(-gu / h, -gv / h, 1.0).normalize();
                let w = 1.0 + 0.1 * i as f64;
                samples.push((u, v, g + height_noise(i, j), normal, w));
            }
        }
        samples
    }

    fn hermite_equations(
        samples: &[(f64, f64, f64, Vector3<f64>, f64)],
        h: f64,
        weight: f64,
    ) -> NormalEquations {
        let (mut heights, mut slopes) = (HeightMoments::default(), SlopeMoments::default());
        for &(u, v, f, normal, w) in samples {
            heights.add(u, v, f, w);
            slopes.add(u, v, &normal, w);
        }
        let mut equations = heights.equations();
        equations.add_slopes(&slopes, weight, h);
        equations
    }

    #[test]
    fn heights_and_normals_of_a_quadric_give_it_back() {
        let a = [0.1, -0.2, 0.3, 0.5, -0.7, 0.25];
        let h = 0.4;
        let samples = hermite_samples(&a, h, |_, _| 0.0);
        let (solved, residual) = hermite_equations(&samples, h, 0.5).solve(2).unwrap();
        for (s, t) in solved.iter().zip(a) {
            assert!((s - t).abs() < 1e-12, "{solved:?}");
        }
        assert!(residual < 1e-6);
    }

    #[test]
    fn normals_determine_a_quadric_that_four_heights_cannot() {
        // Four heights leave a quadric's six coefficients undetermined; with
        // the normals at the same four points the slope equations pin them.
        let a = [0.1, -0.2, 0.3, 0.5, -0.7, 0.25];
        let h = 0.4;
        let four: Vec<_> = hermite_samples(&a, h, |_, _| 0.0)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| [0, 9, 24, 40].contains(i))
            .map(|(_, sample)| sample)
            .collect();
        let mut heights = HeightMoments::default();
        for &(u, v, f, _, w) in &four {
            heights.add(u, v, f, w);
        }
        assert!(heights.equations().solve(2).is_none(), "heights alone");
        let (solved, _) = hermite_equations(&four, h, 0.5).solve(2).unwrap();
        for (s, t) in solved.iter().zip(a) {
            assert!((s - t).abs() < 1e-9, "{solved:?}");
        }
    }

    #[test]
    fn slope_equations_leave_the_residual_of_the_heights_alone() {
        // Exact normals, noisy heights: the reported residual is that of
        // the heights against the fitted g, whatever the slope weight.
        let a = [0.1, -0.2, 0.3, 0.5, -0.7, 0.25];
        let h = 0.4;
        let samples = hermite_samples(&a, h, |i, j| 0.01 * ((3 * i + 5 * j) as f64).sin());
        for weight in [0.1, 0.5, 4.0] {
            let (c, residual) = hermite_equations(&samples, h, weight).solve(2).unwrap();
            let (mut squares, mut weights) = (0.0, 0.0);
            for &(u, v, f, _, w) in &samples {
                let g = c[0] + c[1] * u + c[2] * v + c[3] * u * u + c[4] * u * v + c[5] * v * v;
                squares += w * (g - f) * (g - f);
                weights += w;
            }
            let direct = (squares / weights).sqrt();
            assert!(
                (residual - direct).abs() < 1e-9,
                "{weight}: {residual} vs {direct}"
            );
        }
    }

    #[test]
    fn moments_and_general_rows_give_the_same_system() {
        let mut moments = HeightMoments::default();
        let mut rows = NormalEquations::default();
        for i in 0..30 {
            let (u, v, f, w) = (
                (i as f64 * 0.37).sin(),
                (i as f64 * 0.91).cos(),
                0.1 * i as f64,
                1.0 + (i % 3) as f64,
            );
            moments.add(u, v, f, w);
            rows.add_row(&[1.0, u, v, u * u, u * v, v * v], f, w);
        }
        let (a, ra) = moments.equations().solve(2).unwrap();
        let (b, rb) = rows.solve(2).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-9);
        }
        assert!((ra - rb).abs() < 1e-9);
    }

    #[test]
    fn collinear_samples_are_refused_above_degree_zero() {
        let mut moments = HeightMoments::default();
        for i in 0..20 {
            moments.add(i as f64 / 10.0 - 1.0, 0.0, 0.1, 1.0);
        }
        let eq = moments.equations();
        assert!(eq.solve(2).is_none());
        assert!(eq.solve(1).is_none());
        assert!(eq.solve(0).is_some());
    }

    /// The moments of `f32` lanes against the plain `f64` ones, each
    /// within the rounding of its terms' magnitudes (derived below): where
    /// the CPU has no lanes there is nothing to compare.
    #[test]
    fn sums_in_lanes_are_the_plain_sums() {
        if !wide_lanes() {
            return; // nothing to compare on this CPU
        }
        let ordinary = |i: usize| 1.0 + 0.1 * (i % 13) as f64;
        let near = Vector3::new(0.05, -0.02, 0.01);
        let far = Vector3::new(300.0, -200.0, 100.0);
        // 13 neighbours: three whole blocks of lanes and a padded one; 300:
        // blocks of 128 `f32` terms and a half lane. Weights of 1e-40
        // (about e^-92, below `f32`'s smallest normal: subnormal, few bits
        // left), and a set of them spanning 1 to 1e-40. A frame
        // far from the query centre (a particle off the surface), its
        // neighbours about it.
        type WeightOf<'a> = &'a dyn Fn(usize) -> f64;
        let cases: [(usize, WeightOf, Vector3<f64>); 5] = [
            (13, &ordinary, near),
            (300, &ordinary, near),
            (300, &|i| 1e-40 * ordinary(i), near),
            (300, &|i| 10f64.powf(-40.0 * i as f64 / 299.0), near),
            (300, &ordinary, far),
        ];
        for (count, weight, centroid) in cases {
            let neighbours: Neighbourhood = crate::fit::wavy_neighbourhood(count)
                .iter()
                .map(|neighbour| {
                    let offset = neighbour.offset + centroid - near;
                    crate::neighbours::Neighbour {
                        offset,
                        distance_squared: offset.norm_squared(),
                        ..neighbour
                    }
                })
                .collect();
            let normals: Vec<Vector3<f32>> = (0..count)
                .map(|i| Vector3::new(0.1 * i as f32, -0.2, 1.0).normalize())
                .collect();
            let mut columns = Columns::default();
            columns.load(&neighbours, Some(&normals));
            columns.set_weights(weight);
            let e1 = Vector3::new(1.0, 0.2, 0.1).normalize();
            let normal = e1.cross(&Vector3::new(0.0, 1.0, 0.0)).normalize();
            let e2 = normal.cross(&e1);
            let h = 1.5;
            let map = TangentMap {
                rows: [e1 / h, e2 / h, normal],
                centroid,
            };
            // Each sum within the rounding of its terms' magnitudes: the
            // same sums of the magnitudes `m` of each coordinate and
            // normal component (|row| · |p − c|, what its rounding is
            // relative to). A coordinate is within 5 units of `f32`
            // rounding (2⁻²⁴) of its `m` (two for a product's rounded
            // inputs, three for the FMAs), a term of four coordinates and
            // a weight within 4 · 5 + 1 and its four products' roundings,
            // 25, and a block's `f32` sum (16 terms a lane, then 8 lanes)
            // 19 more: under 64 units, 32 ε. The weights are scaled by a
            // power of two into `f32`'s range, exactly.
            let mut magnitudes = (HeightMoments::default(), SlopeMoments::default());
            for (i, (neighbour, &w)) in neighbours.iter().zip(columns.weights()).enumerate() {
                let offset = (neighbour.offset - centroid).abs();
                let [mu, mv, mf] = std::array::from_fn(|row| map.rows[row].abs().dot(&offset));
                magnitudes.0.add(mu, mv, mf, w);
                let normal = columns.normal_of(i).abs();
                let scales = [h, h, 1.0];
                let local =
                    Vector3::from_fn(|row, _| map.rows[row].abs().dot(&normal) * scales[row]);
                magnitudes.1.add(mu, mv, &local, w);
            }
            let within = |a: &[f64], b: &[f64], magnitude: &[f64]| {
                let mut triples = a.iter().zip(b).zip(magnitude);
                triples.all(|((x, y), m)| (x - y).abs() <= 32.0 * f64::from(f32::EPSILON) * m)
            };
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            let (heights, slopes) =
                unsafe { super::super::avx::moments(&map, &neighbours, &columns, Some(h)) };
            let plain = plain_height_moments(&map, &neighbours, &columns);
            let m = &magnitudes.0;
            let case = format!(
                "{count} neighbours, weight {:e}, centroid {centroid:?}",
                weight(0)
            );
            assert!(
                within(&heights.moments, &plain.moments, &m.moments),
                "{case}: {heights:?} {plain:?}"
            );
            assert!(within(&heights.rhs, &plain.rhs, &m.rhs), "{case}");
            let squares = [heights.height_squares, plain.height_squares];
            assert!(
                within(&squares[..1], &squares[1..], &[m.height_squares]),
                "{case}"
            );
            let (slopes, plain) = (
                slopes.unwrap(),
                plain_slope_moments(&map, &neighbours, &columns, h),
            );
            let m = &magnitudes.1;
            assert!(
                within(&slopes.square, &plain.square, &m.square),
                "{case}: {slopes:?} {plain:?}"
            );
            assert!(
                within(&slopes.along_u, &plain.along_u, &m.along_u),
                "{case}"
            );
            assert!(
                within(&slopes.along_v, &plain.along_v, &m.along_v),
                "{case}"
            );
            // Without slopes: the same height moments, no slope moments.
            // SAFETY: as above.
            let (alone, none) =
                unsafe { super::super::avx::moments(&map, &neighbours, &columns, None) };
            assert_eq!(alone.moments, heights.moments);
            assert_eq!(alone.rhs, heights.rhs);
            assert_eq!(alone.height_squares, heights.height_squares);
            assert!(none.is_none());
        }
    }

    /// On a noiseless quadric the residual of the `f32` sums is the
    /// rounding floor of `Σ w f² − aᵀ r`, not zero: each sum is within 32 ε
    /// of `f32` of its terms' magnitudes (see the test above), so the
    /// difference is within 32 ε (Σ w m_f² + Σ |a_i| m(r_i)), `m` the
    /// magnitudes; and each height itself is rounded by 5 ε of its `m_f`
    /// (which is of |p − c|, not of f), which a quadric fits no better
    /// than its RMS. A worst case: here that floor is 4.2e-5, the residual
    /// 1.2e-6 (2e-4 of the heights' RMS, 6e-3). The plain `f64` sums give
    /// the quadric back.
    #[test]
    fn residual_of_a_noiseless_quadric_is_its_rounding_floor() {
        let e1 = Vector3::new(1.0, 0.2, 0.1).normalize();
        let normal = e1.cross(&Vector3::new(0.0, 1.0, 0.0)).normalize();
        let e2 = normal.cross(&e1);
        let (h, centroid) = (0.11, Vector3::new(0.02, -0.01, 0.005));
        let a = [2e-4, 1e-3, -5e-4, 0.006, -0.002, 0.004];
        let g = |u: f64, v: f64| {
            a[0] + a[1] * u + a[2] * v + a[3] * u * u + a[4] * u * v + a[5] * v * v
        };
        let neighbours: Neighbourhood = (0..300u32)
            .map(|i| {
                let (u, v) = ((f64::from(i) * 0.37).sin(), (f64::from(i) * 0.91).cos());
                let offset = centroid + e1 * (h * u) + e2 * (h * v) + normal * g(u, v);
                crate::neighbours::Neighbour {
                    index: i,
                    offset,
                    distance_squared: offset.norm_squared(),
                }
            })
            .collect();
        let mut columns = Columns::default();
        columns.load(&neighbours, None);
        columns.set_weights(|i| 1.0 + 0.1 * (i % 13) as f64);
        let map = TangentMap {
            rows: [e1 / h, e2 / h, normal],
            centroid,
        };
        let (_, plain) = plain_height_moments(&map, &neighbours, &columns)
            .equations()
            .solve(2)
            .unwrap();
        assert!(plain < 1e-12, "{plain}");
        let (heights, _) = moments(&map, &neighbours, &columns, None);
        let (coefficients, residual) = heights.equations().solve(2).unwrap();
        let mut magnitudes = HeightMoments::default();
        for (neighbour, &w) in neighbours.iter().zip(columns.weights()) {
            let offset = (neighbour.offset - centroid).abs();
            let [mu, mv, mf] = std::array::from_fn(|row| map.rows[row].abs().dot(&offset));
            magnitudes.add(mu, mv, mf, w);
        }
        let epsilon = f64::from(f32::EPSILON) / 2.0;
        let weight_sum = magnitudes.moments[0];
        let explained: f64 = coefficients
            .iter()
            .zip(&magnitudes.rhs)
            .map(|(a, m)| a.abs() * m)
            .sum();
        let cancelled = 64.0 * epsilon * (magnitudes.height_squares + explained) / weight_sum;
        let rounded = 5.0 * epsilon * (magnitudes.height_squares / weight_sum).sqrt();
        let floor = (cancelled + rounded * rounded).sqrt();
        assert!(residual <= floor, "{residual} above {floor}");
    }
}
