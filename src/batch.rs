//! The seed question's workload as a library call: many independent
//! weighted least-squares systems `min Σ w (A a − b)²` with six unknowns,
//! solved in parallel through their normal equations, each accumulated in
//! one pass over its rows (the same accumulator the MLS fit uses).

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
    let mut equations = NormalEquations::default();
    equations.add_rows(design, weights, targets);
    match equations.solve(2) {
        Some((a, _)) => (a, SystemStatus::Solved),
        None => ([0.0; MONOMIALS], SystemStatus::Singular),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
