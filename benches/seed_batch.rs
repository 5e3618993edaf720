//! The seed question's workload (10,000 systems of six unknowns, N rows
//! each) through [`mlsproj::least_squares`], measured the way
//! `../shared/peers/seed/seed_lstsq.py` measures numba, so that the two
//! sets of numbers can stand in one table (issue 3). Not byte for byte the
//! same systems: `least_squares` solves weighted ones (design, weights, targets:
//! 8 f64 per row) where the seed's are unweighted (`A`, `b`: 7 per row), so
//! its arrays and read floor are 14% larger; each side prints its `bytes`.
//!
//! - `solve_ragged`: 10,000 systems with N uniform in 200..1000 rows, flat
//!   ragged arrays with offsets;
//! - `solve_dense`: 10,000 systems of 1000 rows, as the seed's (10000, 1000, 6);
//! - `read_*`: one read (a sum) of exactly the arrays the call takes, design,
//!   weights and targets: the memory floor no solver fed pre-built systems
//!   can beat.
//!
//! Prints one JSON line per variant (name, median_s, min_s, max_s, …) and
//! one per solve/read ratio. Runs on rayon's global pool (every core).
//! `cargo bench --bench seed_batch`.

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;

use mlsproj::least_squares::{RaggedSystems, SystemStatus, solve_dense, solve_ragged};

/// Systems per batch, as in the seed question.
const SYSTEMS: usize = 10_000;
/// Rows of every system in the dense case.
const DENSE_ROWS: usize = 1000;
/// Row counts of the ragged case: uniform in this range, as the seed's.
const RAGGED_ROWS: std::ops::RangeInclusive<usize> = 200..=1000;
/// Timed runs per variant (after one untimed run); the median is reported.
const RUNS: usize = 7;

/// SplitMix64: a fixed seed gives the same systems on every run, with no
/// dependency for something this small.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), like numpy's `random()` that fills the seed's arrays.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn in_range(&mut self, range: &std::ops::RangeInclusive<usize>) -> usize {
        let span = (range.end() - range.start() + 1) as u64;
        range.start() + (self.next_u64() % span) as usize
    }
}

/// Systems stored back to back, owning what [`RaggedSystems`] borrows.
struct Batch {
    design: Vec<[f64; 6]>,
    weights: Vec<f64>,
    targets: Vec<f64>,
    offsets: Vec<usize>,
}

impl Batch {
    /// Random systems with the given row counts; every value uniform in [0, 1).
    fn random(rng: &mut Rng, rows: impl Iterator<Item = usize>) -> Batch {
        let mut offsets = vec![0];
        offsets.extend(rows.scan(0, |end, n| {
            *end += n;
            Some(*end)
        }));
        let total = *offsets.last().unwrap_or(&0);
        Batch {
            design: (0..total)
                .map(|_| std::array::from_fn(|_| rng.unit()))
                .collect(),
            weights: (0..total).map(|_| rng.unit()).collect(),
            targets: (0..total).map(|_| rng.unit()).collect(),
            offsets,
        }
    }

    fn rows(&self) -> usize {
        self.design.len()
    }

    /// Bytes of the arrays a solve reads: design, weights and targets.
    fn bytes(&self) -> usize {
        std::mem::size_of_val(self.design.as_slice())
            + std::mem::size_of_val(self.weights.as_slice())
            + std::mem::size_of_val(self.targets.as_slice())
    }

    fn systems(&self) -> RaggedSystems<'_> {
        RaggedSystems {
            design: &self.design,
            weights: &self.weights,
            targets: &self.targets,
            offsets: &self.offsets,
        }
    }

    /// One read of every value the solve takes, in parallel as the solve
    /// runs, with eight accumulators so that the sum is bound by memory,
    /// not by the latency of one chain of additions.
    fn read(&self) -> f64 {
        fn sum(values: &[f64]) -> f64 {
            values
                .par_chunks(1 << 16)
                .map(|chunk| {
                    let lanes = chunk.chunks_exact(8).fold([0.0; 8], |mut acc, eight| {
                        acc.iter_mut().zip(eight).for_each(|(a, v)| *a += v);
                        acc
                    });
                    lanes.iter().sum::<f64>()
                        + chunk.chunks_exact(8).remainder().iter().sum::<f64>()
                })
                .sum()
        }
        sum(self.design.as_flattened()) + sum(&self.weights) + sum(&self.targets)
    }
}

/// Median, min and max seconds of `RUNS` timed calls, after one untimed
/// call that faults in the pages and starts the pool's threads.
fn time(mut f: impl FnMut()) -> (f64, f64, f64) {
    f();
    let mut seconds: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    (seconds[RUNS / 2], seconds[0], seconds[RUNS - 1])
}

/// Prints one variant's line, `extra` being more `"key": value` pairs
/// (or nothing), and returns its median.
fn emit(name: &str, (median, min, max): (f64, f64, f64), batch: &Batch, extra: &str) -> f64 {
    println!(
        r#"{{"name": "{name}", "median_s": {median:.6}, "min_s": {min:.6}, "max_s": {max:.6}, "rows": {}, "bytes": {}, "threads": {}{extra}}}"#,
        batch.rows(),
        batch.bytes(),
        rayon::current_num_threads(),
    );
    median
}

/// Benchmarks `solve` and the read floor of `batch` under `name`, and
/// prints their ratio.
fn bench(name: &str, batch: &Batch, solve: impl Fn(&mut [[f64; 6]], &mut [SystemStatus])) {
    let mut coefficients = vec![[0.0; 6]; SYSTEMS];
    let mut status = vec![SystemStatus::Singular; SYSTEMS];
    let stats = time(|| solve(&mut coefficients, &mut status));
    black_box(&coefficients);
    let solved = status
        .iter()
        .filter(|s| **s == SystemStatus::Solved)
        .count();
    let solve_s = emit(
        &format!("solve_{name}"),
        stats,
        batch,
        &format!(r#", "solved": {solved}"#),
    );
    let read_s = emit(
        &format!("read_{name}"),
        time(|| {
            black_box(batch.read());
        }),
        batch,
        "",
    );
    println!(
        r#"{{"name": "ratio_solve_over_read_{name}", "value": {:.3}}}"#,
        solve_s / read_s
    );
}

fn main() {
    let mut rng = Rng(0);

    let rows: Vec<usize> = (0..SYSTEMS).map(|_| rng.in_range(&RAGGED_ROWS)).collect();
    let ragged = Batch::random(&mut rng, rows.into_iter());
    bench("ragged", &ragged, |coefficients, status| {
        solve_ragged(&ragged.systems(), coefficients, status).expect("ragged solve refused")
    });
    drop(ragged);

    let dense = Batch::random(&mut rng, std::iter::repeat_n(DENSE_ROWS, SYSTEMS));
    bench("dense", &dense, |coefficients, status| {
        solve_dense(
            &dense.design,
            &dense.weights,
            &dense.targets,
            DENSE_ROWS,
            coefficients,
            status,
        )
        .expect("dense solve refused")
    });
}
