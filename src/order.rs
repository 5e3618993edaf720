//! Space-filling-curve order for the particles. Projecting particles in
//! Morton (Z-curve) order makes consecutive queries touch the same tree
//! nodes and cloud points, which stay in cache; the output is still written
//! in input order.

use nalgebra::Point3;

use crate::cloud::{finite_bounds, is_finite_point};
use rayon::prelude::*;

/// Bits per axis of the Morton code (3 × 21 = 63 bits).
const BITS: u32 = 21;

/// Indices of `points` sorted along a Z-curve over their bounding box;
/// non-finite points come last, in input order.
pub fn morton_order(points: &[Point3<f64>]) -> Vec<u32> {
    morton_keys(points)
        .into_par_iter()
        .map(|(_, i)| i)
        .collect()
}

/// Key given to non-finite points by [`morton_keys`]: larger than any
/// Morton code.
const NON_FINITE_KEY: u64 = u64::MAX;

/// `(Morton code, index)` of every point, sorted.
fn morton_keys(points: &[Point3<f64>]) -> Vec<(u64, u32)> {
    // Without a finite point every key is NON_FINITE_KEY: any box will do.
    let (lo, hi) = finite_bounds(points).unwrap_or((Point3::origin(), Point3::origin()));
    let cells = f64::from((1u32 << BITS) - 1);
    let extent = (hi - lo).max().max(f64::MIN_POSITIVE);
    let scale = cells / extent;
    let mut keyed: Vec<(u64, u32)> = points
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let key = if is_finite_point(p) {
                let cell = |axis: usize| ((p[axis] - lo[axis]) * scale).clamp(0.0, cells) as u32;
                morton_code([cell(0), cell(1), cell(2)])
            } else {
                NON_FINITE_KEY
            };
            (key, i as u32)
        })
        .collect();
    keyed.par_sort_unstable();
    keyed
}

/// The Morton code of a cell: the low 21 bits of its `x`, `y`, `z`
/// coordinates interleaved, `x` in the lowest bit.
pub fn morton_code(cell: [u32; 3]) -> u64 {
    let [x, y, z] = cell.map(|c| spread(u64::from(c)));
    x | y << 1 | z << 2
}

/// The cell whose Morton code is `code`: [`morton_code`]'s inverse.
pub fn morton_cell(code: u64) -> [u32; 3] {
    [0, 1, 2].map(|axis| gather(code >> axis) as u32)
}

/// Gathers every third bit of `x` (from the lowest) into its low 21 bits:
/// [`spread`]'s inverse.
fn gather(x: u64) -> u64 {
    let mut x = x & 0x1249_2492_4924_9249;
    x = (x | x >> 2) & 0x10c3_0c30_c30c_30c3;
    x = (x | x >> 4) & 0x100f_00f0_0f00_f00f;
    x = (x | x >> 8) & 0x1f_0000_ff00_00ff;
    x = (x | x >> 16) & 0x1f_0000_0000_ffff;
    x = (x | x >> 32) & 0x1f_ffff;
    x
}

/// Spreads the low 21 bits of `x` to every third bit.
fn spread(x: u64) -> u64 {
    let mut x = x & 0x1f_ffff;
    x = (x | x << 32) & 0x1f_0000_0000_ffff;
    x = (x | x << 16) & 0x1f_0000_ff00_00ff;
    x = (x | x << 8) & 0x100f_00f0_0f00_f00f;
    x = (x | x << 4) & 0x10c3_0c30_c30c_30c3;
    x = (x | x << 2) & 0x1249_2492_4924_9249;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_permutation_with_non_finite_last() {
        let points: Vec<Point3<f64>> = (0..100)
            .map(|i| Point3::new((i * 37 % 100) as f64, (i * 11 % 7) as f64, 0.5))
            .chain([Point3::new(f64::NAN, 0.0, 0.0)])
            .collect();
        let order = morton_order(&points);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..101).collect::<Vec<u32>>());
        assert_eq!(*order.last().unwrap(), 100);
    }

    #[test]
    fn spread_interleaves_bits() {
        assert_eq!(spread(0b111), 0b001_001_001);
        assert_eq!(spread(1 << 20), 1 << 60);
    }

    #[test]
    fn morton_cell_inverts_morton_code() {
        let last = (1 << BITS) - 1;
        for cell in [
            [0, 0, 0],
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [last; 3],
            [last, 0, 12_345],
        ]
        .into_iter()
        .chain((0..1000u32).map(|i| [i * 2_097, i * 1_999 % last, last - i * 77]))
        {
            assert_eq!(morton_cell(morton_code(cell)), cell);
        }
    }
}
