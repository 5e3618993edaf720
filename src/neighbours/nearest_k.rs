//! Keeping the k nearest of a gathered ball ([`Neighbourhood::keep_nearest`]):
//! a `Nearest(k)` gather takes every point within a ball a little wider
//! than the last neighbourhood's (about 37 for k = 30 on a scanned
//! surface) and keeps the k closest, in the order they came.
//!
//! Two steps, each with a plain path and one in AVX2 lanes where the CPU
//! has it: the k-th distance, then the pass that keeps the neighbours no
//! farther. A general selection (`select_nth_unstable`) and a loop of one
//! neighbour at a time took 12% of sphere_large's CPU (perf, 2026-11-30);
//! the k-th distance is near the last neighbourhood's, so counting
//! around it in lanes finds it in a few passes, and the kept neighbours
//! move four at a time, packed by one permutation as the gather packs
//! them ([`super::packing`]).

use super::{LANES, Neighbourhood};
#[cfg(target_arch = "x86_64")]
use crate::cpu::wide_lanes;

/// The most values the lanes path steps over, from the last
/// neighbourhood's k-th distance to this one's, before it leaves the rest
/// to a general selection: a step costs two passes over the ball, and the
/// count within the last radius is usually a few off k.
#[cfg(target_arch = "x86_64")]
const MOST_STEPS: usize = 12;

impl Neighbourhood {
    /// Keeps the `k` nearest neighbours, in the order they came;
    /// `previous_kth` is the squared k-th distance of the last neighbourhood
    /// gathered with `self` (0 when none), where the search for this one's
    /// starts.
    ///
    /// The order matters: the fit sums over the neighbours in this order,
    /// and the grid hands out the points of any query in one global order
    /// (two points keep their relative order whatever the radius).
    /// Keeping that order, rather than the order a selection leaves behind,
    /// makes the result independent of the radius the search started from,
    /// hence of the particle a thread did before, hence of the number of
    /// threads. Of neighbours tied at the k-th distance, the first ones in
    /// order fill up to k.
    pub(super) fn keep_nearest(&mut self, k: usize, previous_kth: f64) {
        self.keep_nearest_in(k, previous_kth, true);
    }

    /// [`Self::keep_nearest`], in AVX2 lanes where `wide` and the CPU has
    /// them, else plainly (the tests run both).
    fn keep_nearest_in(&mut self, k: usize, previous_kth: f64, wide: bool) {
        if self.len() <= k || k == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        let wide = wide && wide_lanes();
        #[cfg(not(target_arch = "x86_64"))]
        let wide = {
            let _ = wide;
            false
        };
        let (kth, closer) = self.kth_distance(k, previous_kth, wide);
        let mut ties = k - closer;
        let (from, mut kept) = self.keep_whole_lanes(kth, &mut ties, wide);
        // Every neighbour is written at the next kept place and the place
        // advances past the kept ones: no branch per neighbour, whose
        // outcome is a coin toss (a quarter of the gathered go).
        for i in from..self.len() {
            let distance_squared = self.distance_squared[i];
            let tie = distance_squared == kth && ties > 0;
            ties -= usize::from(tie);
            self.index[kept] = self.index[i];
            for column in &mut self.offset {
                column[kept] = column[i];
            }
            self.distance_squared[kept] = distance_squared;
            kept += usize::from(distance_squared < kth || tie);
        }
        self.index.truncate(kept);
        for column in &mut self.offset {
            column.truncate(kept);
        }
        self.distance_squared.truncate(kept);
    }

    /// The `k`-th smallest squared distance (`k` ≥ 1, below the count),
    /// and how many are smaller.
    fn kth_distance(&mut self, k: usize, previous_kth: f64, wide: bool) -> (f64, usize) {
        #[cfg(target_arch = "x86_64")]
        if wide && previous_kth > 0.0 {
            // SAFETY: `wide` holds only where the CPU has AVX2.
            if let Some(found) = unsafe { kth_from(self, k, previous_kth) } {
                return found;
            }
        }
        let _ = (previous_kth, wide);
        // Squared distances are never negative nor NaN (they come from
        // finite offsets), and such floats order as their bits do: the
        // selection compares integers (with `f64::total_cmp` it took 4%
        // of sphere_large's time).
        self.distances.clear();
        let distances = &self.distance_squared[..self.len()];
        self.distances.extend(distances.iter().map(|d| d.to_bits()));
        let kth = f64::from_bits(*self.distances.select_nth_unstable(k - 1).1);
        (kth, distances.iter().filter(|&&d| d < kth).count())
    }

    /// The pass of [`Self::keep_nearest`] over the whole lanes when `wide`
    /// ([`keep_lanes`]): where it stopped and how many it kept; `(0, 0)`
    /// otherwise, for the plain loop to do all.
    fn keep_whole_lanes(&mut self, kth: f64, ties: &mut usize, wide: bool) -> (usize, usize) {
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: `wide` holds only where the CPU has AVX2.
            return unsafe { keep_lanes(self, kth, ties) };
        }
        let _ = (kth, ties, wide);
        (0, 0)
    }
}

/// The `k`-th smallest squared distance of `hood` and how many are
/// smaller, found by stepping from `start` over the distinct values
/// between it and the answer: below `start` down from the largest, else
/// up from the smallest at or above it, each step one pass for the next
/// value and one counting it. `None` after [`MOST_STEPS`] steps.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kth_from(hood: &mut Neighbourhood, k: usize, start: f64) -> Option<(f64, usize)> {
    use std::arch::x86_64::*;
    let len = hood.len();
    // A lane of +∞ past the last distance: never below a bound, nor the
    // least at or above one while a finite value is (a distance is finite
    // but for coordinates near 1e154, and then +∞ ties count it once more,
    // which only makes `below` reach k a step early at the same +∞).
    let column = &mut hood.distance_squared;
    column.truncate(len); // a padded neighbourhood's zeros are no distances
    column.reserve(LANES);
    column.spare_capacity_mut()[..LANES].fill(std::mem::MaybeUninit::new(f64::INFINITY));
    // SAFETY: the first `len` are the column's, the next `LANES` were
    // written just above, within its capacity.
    let padded =
        unsafe { std::slice::from_raw_parts(column.as_ptr(), len.div_ceil(LANES) * LANES) };
    let (lanes, _) = padded.as_chunks::<LANES>();
    let lane = |values: &[f64; LANES]| {
        // SAFETY: a lane is four readable `f64`.
        unsafe { _mm256_loadu_pd(values.as_ptr()) }
    };
    let below_bound = |bound: f64| {
        count_lanes(lanes, |value| {
            _mm256_cmp_pd::<_CMP_LT_OQ>(lane(value), _mm256_set1_pd(bound))
        })
    };
    let equal_to = |v: f64| {
        count_lanes(lanes, |value| {
            _mm256_cmp_pd::<_CMP_EQ_OQ>(lane(value), _mm256_set1_pd(v))
        })
    };
    // `below` counts the distances under `bound`.
    let mut bound = start;
    let mut below = below_bound(bound);
    for _ in 0..MOST_STEPS {
        if below < k {
            // The k-th is the least value at or above the bound, or above.
            let v = next_value::<true>(lanes, bound);
            let ties = equal_to(v);
            if below + ties >= k {
                return Some((v, below));
            }
            below += ties;
            bound = v.next_up();
        } else {
            // The k-th lies below the bound: the greatest there, or below.
            let v = next_value::<false>(lanes, bound);
            let ties = equal_to(v);
            if below - ties < k {
                return Some((v, below - ties));
            }
            below -= ties;
            bound = v;
        }
    }
    None
}

/// How many lanes of `lanes` pass `test` (a mask per lane).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn count_lanes(
    lanes: &[[f64; LANES]],
    test: impl Fn(&[f64; LANES]) -> std::arch::x86_64::__m256d,
) -> usize {
    use std::arch::x86_64::_mm256_movemask_pd;
    lanes
        .iter()
        .map(|values| _mm256_movemask_pd(test(values)).count_ones() as usize)
        .sum()
}

/// The value of `lanes` next to `bound`: with `UP` the least at or above
/// it (+∞ when none), else the greatest below it (−1 when none: distances
/// are never negative).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn next_value<const UP: bool>(lanes: &[[f64; LANES]], bound: f64) -> f64 {
    use std::arch::x86_64::*;
    let none = if UP { f64::INFINITY } else { -1.0 };
    let bound = _mm256_set1_pd(bound);
    let mut best = _mm256_set1_pd(none);
    for values in lanes {
        // SAFETY: a lane is four readable `f64`.
        let value = unsafe { _mm256_loadu_pd(values.as_ptr()) };
        best = if UP {
            let past = _mm256_cmp_pd::<_CMP_GE_OQ>(value, bound);
            _mm256_min_pd(best, _mm256_blendv_pd(best, value, past))
        } else {
            let past = _mm256_cmp_pd::<_CMP_LT_OQ>(value, bound);
            _mm256_max_pd(best, _mm256_blendv_pd(best, value, past))
        };
    }
    let mut values = [0.0; LANES];
    // SAFETY: `values` holds one register.
    unsafe { _mm256_storeu_pd(values.as_mut_ptr(), best) };
    values
        .into_iter()
        .fold(none, if UP { f64::min } else { f64::max })
}

/// [`Neighbourhood::keep_nearest`]'s pass over the whole lanes of `hood`,
/// four neighbours at a time: those closer than `kth`, and of those at
/// `kth` the first `ties`, packed to the front. Returns where the lanes
/// stopped and how many were kept (the rest, under four, is the plain
/// loop's).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn keep_lanes(hood: &mut Neighbourhood, kth: f64, ties: &mut usize) -> (usize, usize) {
    use std::arch::x86_64::*;
    let whole = hood.len() / LANES * LANES;
    let index = hood.index.as_mut_ptr();
    let [ox, oy, oz] = &mut hood.offset;
    let columns = [
        ox.as_mut_ptr(),
        oy.as_mut_ptr(),
        oz.as_mut_ptr(),
        hood.distance_squared.as_mut_ptr(),
    ];
    let bound = _mm256_set1_pd(kth);
    let mut kept = 0;
    for place in (0..whole).step_by(LANES) {
        // SAFETY: `place..place + 4` lies within every column, and the
        // writes go to `kept..kept + 4`, at or before it (`kept` ≤
        // `place`): a lane is read whole before any of it is written.
        unsafe {
            let distance = _mm256_loadu_pd(columns[3].add(place));
            let closer = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(distance, bound));
            let mut at_kth = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(distance, bound));
            let mut keep = closer;
            while at_kth != 0 && *ties > 0 {
                let first = at_kth & at_kth.wrapping_neg();
                keep |= first;
                at_kth ^= first;
                *ties -= 1;
            }
            let (wide, narrow) = super::packing::packing(keep as usize);
            for column in columns {
                let values = _mm256_loadu_pd(column.add(place));
                _mm256_storeu_pd(column.add(kept), super::packing::pack(values, wide));
            }
            let indices = _mm_loadu_si128(index.add(place).cast());
            let indices = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(indices), narrow);
            _mm_storeu_si128(index.add(kept).cast(), _mm256_castsi256_si128(indices));
            kept += keep.count_ones() as usize;
        }
    }
    (whole, kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbours::Neighbour;
    use nalgebra::Vector3;

    /// A ball of `count` neighbours whose squared distances take few
    /// values (many ties) or many, from a seed.
    fn ball(count: usize, values: u64, seed: u64) -> Neighbourhood {
        let mut state = seed;
        (0..count as u32)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let distance_squared = ((state >> 33) % values) as f64 * 0.125;
                Neighbour {
                    index: i * 7,
                    offset: Vector3::new(f64::from(i), -f64::from(i), distance_squared),
                    distance_squared,
                }
            })
            .collect()
    }

    /// The neighbours, kept by the definition: the `k` nearest, ties at
    /// the k-th taken first come, in order.
    fn expected(hood: &Neighbourhood, k: usize) -> Vec<Neighbour> {
        let mut sorted: Vec<f64> = hood.distances_squared()[..hood.len()].to_vec();
        sorted.sort_by(f64::total_cmp);
        let kth = sorted[k - 1];
        let mut ties = k - sorted.iter().filter(|&&d| d < kth).count();
        hood.iter()
            .filter(|n| {
                let tie = n.distance_squared == kth && ties > 0;
                ties -= usize::from(tie);
                n.distance_squared < kth || tie
            })
            .collect()
    }

    /// From a hint a few values off the answer the lanes find it in
    /// steps, not by falling back on the selection.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_kth_distance_is_stepped_to_from_a_near_hint() {
        if !wide_lanes() {
            return; // no lanes on this CPU
        }
        for seed in 0..20 {
            let mut hood = ball(37, 1000, seed);
            let mut sorted: Vec<f64> = hood.distances_squared()[..37].to_vec();
            sorted.sort_by(f64::total_cmp);
            let k = 30;
            for hint in [sorted[k - 4], sorted[k - 1], sorted[k + 2], sorted[k + 5]] {
                let closer = sorted.iter().filter(|&&d| d < sorted[k - 1]).count();
                // SAFETY: the CPU has AVX2, checked above.
                let found = unsafe { kth_from(&mut hood, k, hint) };
                assert_eq!(
                    found,
                    Some((sorted[k - 1], closer)),
                    "seed {seed}, hint {hint}"
                );
            }
        }
    }

    #[test]
    fn the_k_nearest_are_kept_in_order_from_any_previous_radius() {
        for (count, values) in [(37, 1000), (37, 5), (64, 3), (9, 2), (130, 100_000)] {
            for seed in 0..20 {
                for k in [1, 4, 8, 30, count - 1] {
                    if k == 0 || k >= count {
                        continue;
                    }
                    let whole = ball(count, values, seed);
                    let want = expected(&whole, k);
                    // No hint, a hint at every value, between values and
                    // beyond them all (a bad hint ends in the selection).
                    for previous in [0.0, 1e-9, 0.06, 0.125, 1.0, 3.3, 12.5, 1e9] {
                        for wide in [false, true] {
                            let mut hood = ball(count, values, seed);
                            hood.keep_nearest_in(k, previous, wide);
                            assert_eq!(
                                hood.iter().collect::<Vec<_>>(),
                                want,
                                "{count} balls of {values} values, seed {seed}, k {k}, \
                                 from {previous}, wide {wide}"
                            );
                        }
                    }
                }
            }
        }
    }
}
