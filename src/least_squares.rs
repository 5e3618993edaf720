//! The seed question's workload as a library call: many independent
//! weighted least-squares systems `min Σ w (A a − b)²` with six unknowns,
//! solved in parallel through their normal equations, each accumulated in
//! one pass over its rows in SIMD and solved by the MLS fit's packed LDLᵀ.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::fit::{MONOMIALS, NormalEquations};

/// Outcome of one system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum SystemStatus {
    /// Solved; the coefficients are the weighted least-squares solution.
    #[default]
    Solved = 0,
    /// `AᵀWA` is singular to working precision (fewer than six independent
    /// rows); the coefficients are zero.
    Singular = 1,
}

/// Systems stored back to back: system `s` owns rows
/// `offsets[s]..offsets[s + 1]` of `design`, `weights` and `targets`.
#[derive(Debug, Clone, Copy)]
pub struct RaggedSystems<'a> {
    /// Design matrix rows, six values each.
    pub design: &'a [[f64; MONOMIALS]],
    /// Row weights (non-negative).
    pub weights: &'a [f64],
    /// Right-hand sides.
    pub targets: &'a [f64],
    /// Row offsets, one more than the number of systems, non-decreasing,
    /// the last equal to the number of rows.
    pub offsets: &'a [usize],
}

impl RaggedSystems<'_> {
    /// Number of systems.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there is no system.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn validate(&self) -> Result<()> {
        let rows = self.design.len();
        if self.weights.len() != rows || self.targets.len() != rows {
            return Err(Error::Invalid(format!(
                "ragged systems: {rows} design rows but {} weights and {} targets",
                self.weights.len(),
                self.targets.len()
            )));
        }
        if self.offsets.first().is_some_and(|&o| o != 0)
            || self.offsets.last().is_some_and(|&o| o != rows)
            || self.offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(Error::Invalid(format!(
                "ragged systems: offsets must rise from 0 to the row count {rows}"
            )));
        }
        Ok(())
    }
}

/// Solves every system into `coefficients` and `status` (one entry per
/// system), in parallel on the current rayon pool.
pub fn solve_ragged(
    systems: &RaggedSystems,
    coefficients: &mut [[f64; MONOMIALS]],
    status: &mut [SystemStatus],
) -> Result<()> {
    systems.validate()?;
    check_outputs(systems.len(), coefficients.len(), status.len())?;
    coefficients
        .par_iter_mut()
        .zip(status.par_iter_mut())
        .enumerate()
        .with_min_len(16)
        .for_each(|(s, (a, st))| {
            let rows = systems.offsets[s]..systems.offsets[s + 1];
            (*a, *st) = solve_one(
                &systems.design[rows.clone()],
                &systems.weights[rows.clone()],
                &systems.targets[rows],
            );
        });
    Ok(())
}

/// Solves systems of equal height `rows_per_system` stored densely
/// (system-major), as the seed question's (10000, 1000, 6) arrays.
pub fn solve_dense(
    design: &[[f64; MONOMIALS]],
    weights: &[f64],
    targets: &[f64],
    rows_per_system: usize,
    coefficients: &mut [[f64; MONOMIALS]],
    status: &mut [SystemStatus],
) -> Result<()> {
    if rows_per_system == 0 || !design.len().is_multiple_of(rows_per_system) {
        return Err(Error::Invalid(format!(
            "dense systems: {} rows is not a multiple of {rows_per_system}",
            design.len()
        )));
    }
    let offsets: Vec<usize> = (0..=design.len() / rows_per_system)
        .map(|s| s * rows_per_system)
        .collect();
    let systems = RaggedSystems {
        design,
        weights,
        targets,
        offsets: &offsets,
    };
    solve_ragged(&systems, coefficients, status)
}

fn check_outputs(systems: usize, coefficients: usize, status: usize) -> Result<()> {
    if coefficients != systems || status != systems {
        return Err(Error::Invalid(format!(
            "{systems} systems but room for {coefficients} solutions and {status} statuses"
        )));
    }
    Ok(())
}

/// One system through its normal equations.
fn solve_one(
    design: &[[f64; MONOMIALS]],
    weights: &[f64],
    targets: &[f64],
) -> ([f64; MONOMIALS], SystemStatus) {
    match RowSums::of(design, weights, targets).equations().solve(2) {
        Some((a, _)) => (a, SystemStatus::Solved),
        None => ([0.0; MONOMIALS], SystemStatus::Singular),
    }
}

/// The sums of one system's rows, laid out for SIMD: a row
/// `a` of the design matrix splits into a head `a[0..4]` (one AVX2 vector)
/// and a tail `(a4, a5)`, and `M = Σ w a aᵀ` into the head's 4 × 4 block
/// (four vector multiply-adds per row), the head against `a4` and `a5`
/// (two more), and the tail's three products.
#[derive(Default)]
struct RowSums {
    head: [[f64; 4]; 4],
    head_a4: [f64; 4],
    head_a5: [f64; 4],
    /// `Σ w a4², Σ w a4 a5, Σ w a5²`.
    tail: [f64; 3],
    rhs_head: [f64; 4],
    rhs_tail: [f64; 2],
    weight_sum: f64,
    target_squares: f64,
}

impl RowSums {
    /// The sums over the rows, with fused multiply-adds where the CPU has
    /// them.
    fn of(design: &[[f64; MONOMIALS]], weights: &[f64], targets: &[f64]) -> Self {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::wide_lanes() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { Self::of_avx2(design, weights, targets) };
        }
        Self::sum::<false>(design, weights, targets)
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn of_avx2(design: &[[f64; MONOMIALS]], weights: &[f64], targets: &[f64]) -> Self {
        Self::sum::<true>(design, weights, targets)
    }

    /// The loop itself, inlined into each caller so that it is compiled
    /// for that caller's target features. `FUSED`: `mul_add` (one rounding,
    /// one instruction with FMA; a slow library call without it).
    #[inline(always)]
    fn sum<const FUSED: bool>(
        design: &[[f64; MONOMIALS]],
        weights: &[f64],
        targets: &[f64],
    ) -> Self {
        let multiply_add = |a: f64, b: f64, sum: f64| {
            if FUSED {
                a.mul_add(b, sum)
            } else {
                sum + a * b
            }
        };
        let add_scaled = |sum: &mut [f64; 4], scale: f64, x: &[f64; 4]| {
            for (s, &x) in sum.iter_mut().zip(x) {
                *s = multiply_add(scale, x, *s);
            }
        };
        let mut sums = RowSums::default();
        for ((a, &w), &f) in design.iter().zip(weights).zip(targets) {
            let head = [a[0], a[1], a[2], a[3]];
            let weighted = head.map(|x| w * x);
            for (row, &scale) in sums.head.iter_mut().zip(&weighted) {
                add_scaled(row, scale, &head);
            }
            add_scaled(&mut sums.head_a4, a[4], &weighted);
            add_scaled(&mut sums.head_a5, a[5], &weighted);
            let wf = w * f;
            add_scaled(&mut sums.rhs_head, wf, &head);
            let (wa4, wa5) = (w * a[4], w * a[5]);
            sums.tail[0] = multiply_add(wa4, a[4], sums.tail[0]);
            sums.tail[1] = multiply_add(wa4, a[5], sums.tail[1]);
            sums.tail[2] = multiply_add(wa5, a[5], sums.tail[2]);
            sums.rhs_tail[0] = multiply_add(wf, a[4], sums.rhs_tail[0]);
            sums.rhs_tail[1] = multiply_add(wf, a[5], sums.rhs_tail[1]);
            sums.weight_sum += w;
            sums.target_squares = multiply_add(wf, f, sums.target_squares);
        }
        sums
    }

    /// The normal equations these sums stand for.
    fn equations(&self) -> NormalEquations {
        NormalEquations::from_sums(
            |row, col| self.matrix(row, col),
            std::array::from_fn(|row| self.rhs(row)),
            self.weight_sum,
            self.target_squares,
        )
    }

    /// `M[row][col]` for `row ≤ col`.
    fn matrix(&self, row: usize, col: usize) -> f64 {
        match (row, col) {
            (r, c) if c < 4 => self.head[r][c],
            (r, 4) if r < 4 => self.head_a4[r],
            (r, 5) if r < 4 => self.head_a5[r],
            (4, 4) => self.tail[0],
            (4, 5) => self.tail[1],
            (5, 5) => self.tail[2],
            _ => unreachable!("({row}, {col}) is not in the upper triangle of a 6 × 6 matrix"),
        }
    }

    /// `r[row]`.
    fn rhs(&self, row: usize) -> f64 {
        if row < 4 {
            self.rhs_head[row]
        } else {
            self.rhs_tail[row - 4]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_summed_in_simd_layout_equal_their_definition() {
        let mut seed = 7u64;
        let rows: Vec<[f64; 6]> = (0..11)
            .map(|_| {
                std::array::from_fn(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                })
            })
            .collect();
        let weights: Vec<f64> = (0..11).map(|i| 1.0 + i as f64 * 0.1).collect();
        let targets: Vec<f64> = (0..11).map(|i| (i as f64).cos()).collect();
        let sum = |term: &dyn Fn(usize) -> f64| (0..rows.len()).map(term).sum::<f64>();
        let matrix = |row: usize, col: usize| sum(&|i| weights[i] * rows[i][row] * rows[i][col]);
        let rhs: [f64; MONOMIALS] =
            std::array::from_fn(|row| sum(&|i| weights[i] * rows[i][row] * targets[i]));
        let weight_sum = sum(&|i| weights[i]);
        let target_squares = sum(&|i| weights[i] * targets[i] * targets[i]);
        // Both loops, whichever one this CPU dispatches to.
        let fused = RowSums::sum::<true>(&rows, &weights, &targets);
        let unfused = RowSums::sum::<false>(&rows, &weights, &targets);
        for sums in [fused, unfused] {
            for (row, &expected) in rhs.iter().enumerate() {
                for col in row..MONOMIALS {
                    assert!((sums.matrix(row, col) - matrix(row, col)).abs() < 1e-12);
                }
                assert!((sums.rhs(row) - expected).abs() < 1e-12);
            }
            assert!((sums.weight_sum - weight_sum).abs() < 1e-12);
        }
        let definition = NormalEquations::from_sums(matrix, rhs, weight_sum, target_squares);
        let (a, ra) = RowSums::of(&rows, &weights, &targets)
            .equations()
            .solve(2)
            .unwrap();
        let (b, rb) = definition.solve(2).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
        }
        assert!((ra - rb).abs() < 1e-12);
    }

    #[test]
    fn ragged_systems_match_their_known_solutions() {
        let truth = [
            [1.0, -2.0, 0.5, 3.0, 0.25, -1.0],
            [0.0, 1.0, 0.0, 0.0, 0.0, 2.0],
        ];
        let mut design = Vec::new();
        let mut targets = Vec::new();
        let mut offsets = vec![0];
        let mut seed = 1u64;
        for (s, a) in truth.iter().enumerate() {
            for _ in 0..(20 + 7 * s) {
                let row: [f64; 6] = std::array::from_fn(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                });
                targets.push(row.iter().zip(a).map(|(x, y)| x * y).sum());
                design.push(row);
            }
            offsets.push(design.len());
        }
        let weights = vec![2.0; design.len()];
        let systems = RaggedSystems {
            design: &design,
            weights: &weights,
            targets: &targets,
            offsets: &offsets,
        };
        let mut coefficients = [[0.0; 6]; 2];
        let mut status = [SystemStatus::Singular; 2];
        solve_ragged(&systems, &mut coefficients, &mut status).unwrap();
        for (solved, expected) in coefficients.iter().zip(&truth) {
            for (s, e) in solved.iter().zip(expected) {
                assert!((s - e).abs() < 1e-9, "{solved:?}");
            }
        }
        assert_eq!(status, [SystemStatus::Solved; 2]);
    }

    #[test]
    fn too_few_rows_are_singular_and_bad_offsets_refused() {
        let design = [[1.0; 6]; 3];
        let weights = [1.0; 3];
        let targets = [1.0; 3];
        let mut coefficients = [[9.0; 6]];
        let mut status = [SystemStatus::Solved];
        let systems = RaggedSystems {
            design: &design,
            weights: &weights,
            targets: &targets,
            offsets: &[0, 3],
        };
        solve_ragged(&systems, &mut coefficients, &mut status).unwrap();
        assert_eq!(status[0], SystemStatus::Singular);
        assert_eq!(coefficients[0], [0.0; 6]);
        let bad = RaggedSystems {
            offsets: &[0, 2],
            ..systems
        };
        assert!(solve_ragged(&bad, &mut coefficients, &mut status).is_err());
    }
}
