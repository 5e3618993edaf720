//! The fit's sums over the columns of a neighbourhood in AVX2 + FMA lanes:
//! four neighbours at a time in `f64`, eight in `f32` for the height
//! moments, each lane its own partial sum, the lanes added at the end in a
//! fixed order (see [`super::columns`]).
//!
//! Written with the intrinsics, a few sums per pass so that each pass keeps
//! its sums in registers: left to the compiler, arrays of lanes came out as
//! shuffles and spills, slower than the scalar loop (measured), and a
//! generic lane type did not get its intrinsics inlined.
//!
//! Every function here requires AVX2 and FMA: callers check
//! [`crate::cpu::wide_lanes`] first.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use nalgebra::Vector3;

use super::columns::{Columns, LANES};
use super::height::{HeightMoments, MONOMIALS, SlopeMoments, TangentMap};
use super::kernel::{EDGE, GAUSSIAN_FLOOR, Kernel};
use crate::config::Weight;
use crate::neighbours::{Neighbourhood, lanes};

/// Loads four values of a column.
macro_rules! load {
    ($lanes:expr) => {
        // SAFETY: `$lanes` is a `[f64; 4]`: four readable values.
        unsafe { _mm256_loadu_pd($lanes.as_ptr()) }
    };
}

/// `lanes` as the values they hold.
///
/// # Safety
/// Every lane of `lanes` must be set.
unsafe fn set_lanes<T>(lanes: &[MaybeUninit<T>]) -> &[T] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the caller vouches
    // that each is set.
    unsafe { &*(std::ptr::from_ref(lanes) as *const [T]) }
}

/// The sum of the four lanes of `sum`, in a fixed order.
#[target_feature(enable = "avx2,fma")]
fn total(sum: __m256d) -> f64 {
    let mut values = [0.0; LANES];
    // SAFETY: room for four values.
    unsafe { _mm256_storeu_pd(values.as_mut_ptr(), sum) };
    (values[0] + values[2]) + (values[1] + values[3])
}

/// The rows of `map` as arrays, scaled by `scale` (the tangent rows only).
fn rows(map: &TangentMap, tangent_scale: f64) -> [[f64; 3]; 3] {
    std::array::from_fn(|row| {
        let scale = if row < 2 { tangent_scale } else { 1.0 };
        let r = map.rows[row] * scale;
        [r.x, r.y, r.z]
    })
}

/// `Σ w`, `Σ w p` and the upper triangle of `Σ w p pᵀ` (by rows) of the
/// offsets of `neighbours` under the weight column `weight`.
#[target_feature(enable = "avx2,fma")]
pub(super) fn weighted_moments(neighbours: &Neighbourhood, weight: &[f64]) -> [f64; 10] {
    let [xs, ys, zs] = neighbours.offset_lanes();
    let ws = lanes(weight);
    let blocks = |b: usize| [load!(xs[b]), load!(ys[b]), load!(zs[b]), load!(ws[b])];
    second_moments(ws.len(), blocks).map(|sum| total(sum))
}

/// The lanes of `Σ w`, `Σ w a`, `Σ w b`, `Σ w c` and `Σ w a a`, `Σ w a b`,
/// `Σ w a c`, `Σ w b b`, `Σ w b c`, `Σ w c c` over the blocks `[a, b, c,
/// w]` of the iterator `$blocks` (each product formed as `(w a) b`), in
/// lanes of the type whose zero, `add`, `mul` and `fmadd` are given: the
/// frame's moments of the offsets in `f64`, and the first pass of the
/// height moments in `f32` (with `a` the height).
macro_rules! moment_sums {
    ($blocks:expr, $zero:expr, $add:ident, $mul:ident, $fmadd:ident) => {{
        let zero = $zero;
        let [mut w, mut wa, mut wb, mut wc, mut waa] = [zero; 5];
        let [mut wab, mut wac, mut wbb, mut wbc, mut wcc] = [zero; 5];
        for [a, b, c, weight] in $blocks {
            let (pa, pb, pc) = ($mul(weight, a), $mul(weight, b), $mul(weight, c));
            w = $add(w, weight);
            wa = $add(wa, pa);
            wb = $add(wb, pb);
            wc = $add(wc, pc);
            waa = $fmadd(pa, a, waa);
            wab = $fmadd(pa, b, wab);
            wac = $fmadd(pa, c, wac);
            wbb = $fmadd(pb, b, wbb);
            wbc = $fmadd(pb, c, wbc);
            wcc = $fmadd(pc, c, wcc);
        }
        [w, wa, wb, wc, waa, wab, wac, wbb, wbc, wcc]
    }};
}

/// [`moment_sums!`] in `f64` lanes over `blocks(i)`, i < `count`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn second_moments(count: usize, blocks: impl FnMut(usize) -> [__m256d; 4]) -> [__m256d; 10] {
    moment_sums!(
        (0..count).map(blocks),
        _mm256_setzero_pd(),
        _mm256_add_pd,
        _mm256_mul_pd,
        _mm256_fmadd_pd
    )
}

/// `Σ w n` of the neighbours' weights and normals (the columns carry
/// normals).
#[target_feature(enable = "avx2,fma")]
pub(super) fn weighted_normal_sum(columns: &Columns) -> [f64; 3] {
    let normal = [0, 1, 2].map(|axis| lanes(&columns.normal[axis]));
    let weight = lanes(&columns.weight);
    let mut sums = [_mm256_setzero_pd(); 3];
    for b in 0..weight.len() {
        let w = load!(weight[b]);
        for (sum, column) in sums.iter_mut().zip(normal) {
            *sum = _mm256_fmadd_pd(w, load!(column[b]), *sum);
        }
    }
    sums.map(|sum| total(sum))
}

/// The normals at `indices` (into `normals`) into `columns`, four at a
/// time over the whole lanes of `indices`; returns how many were written
/// (the rest, under four, is the caller's): a quarter of the stores of one
/// normal at a time, whose loop waited on its scattered reads.
#[target_feature(enable = "avx2,fma")]
pub(super) fn gather_normals(
    indices: &[u32],
    normals: &[Vector3<f32>],
    columns: [&mut Vec<f64>; 3],
) -> usize {
    let (blocks, _) = indices.as_chunks::<LANES>();
    let [xs, ys, zs] = columns.map(|column| column.as_chunks_mut::<LANES>().0);
    for (b, block) in blocks.iter().enumerate() {
        let [x, y, z] = normals_at(normals, block);
        // SAFETY: each is a `[f64; 4]`: room for four values.
        unsafe {
            _mm256_storeu_pd(xs[b].as_mut_ptr(), x);
            _mm256_storeu_pd(ys[b].as_mut_ptr(), y);
            _mm256_storeu_pd(zs[b].as_mut_ptr(), z);
        }
    }
    blocks.len() * LANES
}

/// `Σ w n` of the normals at `indices` (into `normals`) under the padded
/// `weight` column, read by index (for columns that do not carry them):
/// the sign rule's sum, which one normal at a time took 6% of a job. The
/// last block's missing indices read the first normal, under weight zero.
#[target_feature(enable = "avx2,fma")]
pub(super) fn weighted_normal_sum_at(
    indices: &[u32],
    normals: &[Vector3<f32>],
    weight: &[f64],
) -> [f64; 3] {
    let (blocks, rest) = indices.as_chunks::<LANES>();
    let mut last = [indices.first().copied().unwrap_or(0); LANES];
    last[..rest.len()].copy_from_slice(rest);
    let tail = (!rest.is_empty()).then_some(&last);
    let mut sums = [_mm256_setzero_pd(); 3];
    for (block, w) in blocks.iter().chain(tail).zip(lanes(weight)) {
        let w = load!(w);
        for (sum, n) in sums.iter_mut().zip(normals_at(normals, block)) {
            *sum = _mm256_fmadd_pd(w, n, *sum);
        }
    }
    sums.map(|sum| total(sum))
}

/// The normals at the four `indices` (into `normals`), transposed: their
/// x, y and z each in the four lanes, widened (exactly). Each normal is
/// read as its `x, y` and its `z` (not 16 bytes, which would read past the
/// last normal).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn normals_at(normals: &[Vector3<f32>], indices: &[u32; LANES]) -> [__m256d; 3] {
    let [p, q, r, s] = indices.map(|n| normals[n as usize].as_ptr());
    // SAFETY: each pointer is a normal's: three readable `f32`.
    let ([pq, rs], [zp, zq, zr, zs]) = unsafe {
        let xy = |p: *const f32| _mm_castsi128_ps(_mm_loadu_si64(p.cast()));
        let z = |p: *const f32| _mm_load_ss(p.add(2));
        (
            [_mm_unpacklo_ps(xy(p), xy(q)), _mm_unpacklo_ps(xy(r), xy(s))],
            [z(p), z(q), z(r), z(s)],
        )
    };
    let x = _mm_movelh_ps(pq, rs);
    let y = _mm_movehl_ps(rs, pq);
    let z = _mm_movelh_ps(_mm_unpacklo_ps(zp, zq), _mm_unpacklo_ps(zr, zs));
    [x, y, z].map(|column| _mm256_cvtps_pd(column))
}

/// How many lanes of eight neighbours have their moments summed in `f32`
/// before the sums join their `f64` totals: each lane's partial sum holds
/// at most this many terms, whatever the neighbourhood's size, and the
/// frame coordinates of so many lanes (2 KB) stay in L1 between the
/// passes.
const NARROW_BLOCKS: usize = 16;

/// Number of the height moments' sums: the 15 `Σ w uᵃ vᵇ`, the 6
/// `Σ w f φ` and `Σ w f²`.
const HEIGHT_SUMS: usize = 22;

/// Number of the slope moments' sums (see [`SlopeMoments`]).
const SLOPE_SUMS: usize = 12;

/// How many sums [`lane_sums`] reduces at once: one per `f32` lane.
const REDUCED: usize = 8;

/// A column of a neighbourhood, in lanes.
type Column<'a> = &'a [[f64; LANES]];

/// The rows of a 3 × 3 map, each in `f32` lanes.
type NarrowRows = [[__m256; 3]; 3];

/// The `f64` columns of a neighbourhood as the `f32` lanes [`moments`]
/// sums, eight neighbours to a lane.
struct Narrowing<'a> {
    offsets: [Column<'a>; 3],
    weights: Column<'a>,
    /// The frame's centroid, subtracted from the offsets in `f64`: the
    /// frame coordinates are then O(1) whatever the distance from the
    /// query centre to the surface, and `f32` keeps 7 digits of each.
    centroid: [__m256d; 3],
    /// 2⁻ᵏ, k the exponent of the largest weight: the weights are scaled
    /// into [`f32`]'s range by it, exactly (a Gaussian's go down to
    /// e⁻⁷⁰⁰, and `f32` has no normal number below e⁻⁸⁷).
    weight_scale: __m256d,
    /// The map's rows, the tangent ones scaled by 1 / h.
    frame_rows: NarrowRows,
    /// The normals' columns and the rows that rotate a normal into the
    /// frame (the map's, the tangent ones times h: a normal is rotated,
    /// not scaled), for the slope moments.
    normals: Option<([Column<'a>; 3], NarrowRows)>,
}

impl Narrowing<'_> {
    /// The `f32` lanes of `[u, v, f, w]` of the `f64` lanes `b` and `b + 1`
    /// (zeros for a lane at `end` or past it).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn frame_lanes(&self, b: usize, end: usize) -> [__m256; 4] {
        let offset = std::array::from_fn(|axis| {
            let centroid = self.centroid[axis];
            narrow(self.offsets[axis], b, end, |x| _mm256_sub_pd(x, centroid))
        });
        let [u, v, f] = rotate(&self.frame_rows, offset);
        let scale = self.weight_scale;
        [
            u,
            v,
            f,
            narrow(self.weights, b, end, |w| _mm256_mul_pd(w, scale)),
        ]
    }

    /// The `f32` lanes of the normals `[n_u, n_v, n_n]` in the frame of
    /// the `f64` lanes `b` and `b + 1` (the columns carry normals).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn normal_lanes(&self, b: usize, end: usize) -> Option<[__m256; 3]> {
        let (columns, rows) = self.normals.as_ref()?;
        let normal = columns.map(|column| narrow(column, b, end, |n| n));
        Some(rotate(rows, normal))
    }
}

/// The `f32` lanes of the `f64` lanes `b` and `b + 1` of `column`, each
/// through `exact` first (zeros for a lane at `end` or past it).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn narrow(column: Column, b: usize, end: usize, exact: impl Fn(__m256d) -> __m256d) -> __m256 {
    let low = _mm256_cvtpd_ps(exact(load!(column[b])));
    let high = if b + 1 < end {
        _mm256_cvtpd_ps(exact(load!(column[b + 1])))
    } else {
        _mm_setzero_ps()
    };
    _mm256_set_m128(high, low)
}

/// `rows` times the vector `[x, y, z]` of lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn rotate(rows: &NarrowRows, [x, y, z]: [__m256; 3]) -> [__m256; 3] {
    rows.map(|[rx, ry, rz]| _mm256_fmadd_ps(rx, x, _mm256_fmadd_ps(ry, y, _mm256_mul_ps(rz, z))))
}

/// The exponent k of the power of two 2ᵏ ≤ `largest` < 2ᵏ⁺¹ (zero for
/// zero), within the range of a normal `f64` and of its inverse.
fn exponent(largest: f64) -> i32 {
    if !largest.is_normal() {
        return 0;
    }
    let biased = (largest.to_bits() >> 52) & 0x7ff;
    (biased as i32 - 1023).clamp(-1022, 1022)
}

/// The largest of `weights`, in four lanes of maxima so that no chain of
/// dependent maxima holds the pass back.
#[target_feature(enable = "avx2,fma")]
fn largest(weights: Column) -> f64 {
    let mut maxima = [_mm256_setzero_pd(); 4];
    let (groups, rest) = weights.as_chunks::<4>();
    for group in groups {
        for (maximum, w) in maxima.iter_mut().zip(group) {
            *maximum = _mm256_max_pd(*maximum, load!(w));
        }
    }
    for w in rest {
        maxima[0] = _mm256_max_pd(maxima[0], load!(w));
    }
    let [a, b, c, d] = maxima;
    let mut values = [0.0; LANES];
    let maximum = _mm256_max_pd(_mm256_max_pd(a, b), _mm256_max_pd(c, d));
    // SAFETY: room for four values.
    unsafe { _mm256_storeu_pd(values.as_mut_ptr(), maximum) };
    values.into_iter().fold(0.0, f64::max)
}

/// 2ᵏ, |k| ≤ 1022.
fn power_of_two(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// The sums of the eight lanes of each of the eight `sums`, in their
/// order: pairs, then fours, then the two halves added. Reduced eight at a
/// time, a block's 22 to 34 sums cost a few shuffles, where each widened
/// into its own `f64` total cost as much as a small neighbourhood's terms.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn lane_sums(sums: &[__m256; REDUCED]) -> __m256 {
    let pairs = [0, 2, 4, 6].map(|i| _mm256_hadd_ps(sums[i], sums[i + 1]));
    let fours = [
        _mm256_hadd_ps(pairs[0], pairs[1]),
        _mm256_hadd_ps(pairs[2], pairs[3]),
    ];
    let low = _mm256_permute2f128_ps::<0x20>(fours[0], fours[1]);
    let high = _mm256_permute2f128_ps::<0x31>(fours[0], fours[1]);
    _mm256_add_ps(low, high)
}

/// The height moments of `neighbours` under their weights in `columns` in
/// the frame of `map` (see [`HeightMoments::add`]), and their slope
/// moments when `slopes_at` gives the support radius the map's tangent
/// rows are scaled by (the columns then carry the unit normals; see
/// [`SlopeMoments::add`]), in `f32` lanes of eight: twice the neighbours
/// of an `f64` lane per instruction.
///
/// The offsets are taken from the frame's centroid in `f64`, so the frame
/// coordinates are O(1) (the tangent ones scaled by 1 / h), and so are the
/// normals; the weights are scaled by a power of two so that the largest
/// is in [1, 2). `f32` then keeps 7 digits of each term, and a block's
/// sums (at most [`NARROW_BLOCKS`] terms a lane, then its eight lanes
/// added) are added into `f64` totals, so that rounding does not grow with
/// the neighbourhood. The sums agree with the plain `f64` ones to `f32`
/// rounding of each term (tested); on the truth sets and `check.sh` every
/// accuracy figure is unchanged.
#[target_feature(enable = "avx2,fma")]
pub(super) fn moments(
    map: &TangentMap,
    neighbours: &Neighbourhood,
    columns: &Columns,
    slopes_at: Option<f64>,
) -> (HeightMoments, Option<SlopeMoments>) {
    let weights = lanes(&columns.weight);
    let narrow_rows = |scale| rows(map, scale).map(|row| row.map(|x| _mm256_set1_ps(x as f32)));
    let weight_exponent = exponent(largest(weights));
    let narrowing = Narrowing {
        offsets: neighbours.offset_lanes(),
        weights,
        centroid: [0, 1, 2].map(|axis| _mm256_set1_pd(map.centroid[axis])),
        weight_scale: _mm256_set1_pd(power_of_two(-weight_exponent)),
        frame_rows: narrow_rows(1.0),
        normals: slopes_at.map(|h| {
            let columns = [0, 1, 2].map(|axis| lanes(&columns.normal[axis]));
            (columns, narrow_rows(h))
        }),
    };
    let zero = _mm256_setzero_ps();
    // The height sums, then the slope sums: each block's, reduced over its
    // lanes in `f32` eight at a time, added into `f64` totals four to a
    // lane.
    const ALL_SUMS: usize = HEIGHT_SUMS + SLOPE_SUMS;
    let mut sums = [zero; ALL_SUMS.div_ceil(REDUCED) * REDUCED];
    let reductions = if slopes_at.is_some() {
        ALL_SUMS
    } else {
        HEIGHT_SUMS
    }
    .div_ceil(REDUCED);
    let mut totals = [_mm256_setzero_pd(); ALL_SUMS.div_ceil(REDUCED) * REDUCED / LANES];
    // `[u, v, f, w]` and the normal in the frame of each `f32` lane of the
    // block. Left unset: only the lanes a block sets are read (zeroed, the
    // two arrays' 3.5 KB were a `memset` per fit, 1.5% of sphere_large's
    // samples, whose neighbourhoods fill five lanes of sixteen).
    let mut block = [const { MaybeUninit::<[__m256; 4]>::uninit() }; NARROW_BLOCKS];
    let mut block_normals = [const { MaybeUninit::<[__m256; 3]>::uninit() }; NARROW_BLOCKS];
    for start in (0..weights.len()).step_by(2 * NARROW_BLOCKS) {
        let end = weights.len().min(start + 2 * NARROW_BLOCKS);
        let lane_count = (end - start).div_ceil(2);
        let lanes_of_block = block.iter_mut().zip(&mut block_normals).take(lane_count);
        for (i, (lane, normal)) in lanes_of_block.enumerate() {
            let b = start + 2 * i;
            lane.write(narrowing.frame_lanes(b, end));
            if let Some(normal_lanes) = narrowing.normal_lanes(b, end) {
                normal.write(normal_lanes);
            }
        }
        // SAFETY: the loop above set the first `lane_count` lanes (at most
        // NARROW_BLOCKS: a block spans 2 · NARROW_BLOCKS columns' lanes).
        let block = unsafe { set_lanes(&block[..lane_count]) };
        sums[..HEIGHT_SUMS].copy_from_slice(&height_sums(block));
        if slopes_at.is_some() {
            // SAFETY: with `slopes_at`, `narrowing.normals` is set, so
            // `normal_lanes` set each lane that `block` holds.
            let normals = unsafe { set_lanes(&block_normals[..lane_count]) };
            sums[HEIGHT_SUMS..ALL_SUMS].copy_from_slice(&slope_sums(block.iter().zip(normals)));
        }
        let (reduced, _) = sums.as_chunks::<REDUCED>();
        let (pairs, _) = totals.as_chunks_mut::<2>();
        for (group, [low, high]) in reduced.iter().zip(pairs).take(reductions) {
            let lane_totals = lane_sums(group);
            let widened = [
                _mm256_cvtps_pd(_mm256_castps256_ps128(lane_totals)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(lane_totals)),
            ];
            *low = _mm256_add_pd(*low, widened[0]);
            *high = _mm256_add_pd(*high, widened[1]);
        }
    }
    // Every sum has one weight in each term: scaled back by 2ᵏ, exactly.
    let unscale = _mm256_set1_pd(power_of_two(weight_exponent));
    let mut all = [0.0; ALL_SUMS.div_ceil(REDUCED) * REDUCED];
    for (values, sum) in all.as_chunks_mut::<LANES>().0.iter_mut().zip(totals) {
        // SAFETY: room for four values.
        unsafe { _mm256_storeu_pd(values.as_mut_ptr(), _mm256_mul_pd(sum, unscale)) };
    }
    let (height_totals, rest) = all.split_first_chunk::<HEIGHT_SUMS>().unwrap();
    let slope_totals = rest.first_chunk::<SLOPE_SUMS>().unwrap();
    let [w, wf, wu, wv, wff, wfu, wfv, wuu, wuv, wvv, higher @ ..] = *height_totals;
    let [
        wuuu,
        wuuv,
        wuvv,
        wvvv,
        wuuuu,
        wuuuv,
        wuuvv,
        wuvvv,
        wvvvv,
        wfuu,
        wfuv,
        wfvv,
    ] = higher;
    let moments = [
        w, wu, wv, wuu, wuv, wvv, wuuu, wuuv, wuvv, wvvv, wuuuu, wuuuv, wuuvv, wuvvv, wvvvv,
    ];
    let heights = HeightMoments::from_sums(moments, [wf, wfu, wfv, wfuu, wfuv, wfvv], wff);
    // The slope sums come in `SlopeMoments`' own order.
    let slopes = slopes_at.map(|_| {
        let (square, along) = slope_totals.split_first_chunk::<MONOMIALS>().unwrap();
        let (along_u, along_v) = along.split_first_chunk::<3>().unwrap();
        SlopeMoments::from_sums(*square, *along_u, along_v.try_into().unwrap())
    });
    (heights, slopes)
}

/// The `f32` lanes of the height moments' sums over the lanes
/// `[u, v, f, w]` of `block`, in the order `Σ w`, `Σ w f`, `Σ w u`,
/// `Σ w v`, `Σ w f²`, `Σ w f u`, `Σ w f v`, `Σ w u²`, `Σ w u v`, `Σ w v²`
/// (one pass of [`moment_sums!`], f in the place of its `a`), then
/// `Σ w uᵃ vᵇ`, a + b = 3 and 4, and `Σ w f uᵃ vᵇ`, a + b = 2 (a second
/// pass, so that each keeps its sums in registers).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn height_sums(block: &[[__m256; 4]]) -> [__m256; HEIGHT_SUMS] {
    let zero = _mm256_setzero_ps();
    let first = moment_sums!(
        block.iter().map(|&[u, v, f, w]| [f, u, v, w]),
        zero,
        _mm256_add_ps,
        _mm256_mul_ps,
        _mm256_fmadd_ps
    );
    // Pass 2: a + b = 3 and 4, and Σ w f uᵃ vᵇ, a + b = 2.
    let [mut wuuu, mut wuuv, mut wuvv, mut wvvv] = [zero; 4];
    let [mut wuuuu, mut wuuuv, mut wuuvv, mut wuvvv, mut wvvvv] = [zero; 5];
    let [mut wfuu, mut wfuv, mut wfvv] = [zero; 3];
    for &[u, v, f, weight] in block {
        let (puu, pvv) = (
            _mm256_mul_ps(_mm256_mul_ps(weight, u), u),
            _mm256_mul_ps(_mm256_mul_ps(weight, v), v),
        );
        let (puuu, pvvv) = (_mm256_mul_ps(puu, u), _mm256_mul_ps(pvv, v));
        wuuu = _mm256_add_ps(wuuu, puuu);
        wuuv = _mm256_fmadd_ps(puu, v, wuuv);
        wuvv = _mm256_fmadd_ps(pvv, u, wuvv);
        wvvv = _mm256_add_ps(wvvv, pvvv);
        wuuuu = _mm256_fmadd_ps(puuu, u, wuuuu);
        wuuuv = _mm256_fmadd_ps(puuu, v, wuuuv);
        wuuvv = _mm256_fmadd_ps(puu, _mm256_mul_ps(v, v), wuuvv);
        wuvvv = _mm256_fmadd_ps(pvvv, u, wuvvv);
        wvvvv = _mm256_fmadd_ps(pvvv, v, wvvvv);
        let pf = _mm256_mul_ps(weight, f);
        let pfu = _mm256_mul_ps(pf, u);
        wfuu = _mm256_fmadd_ps(pfu, u, wfuu);
        wfuv = _mm256_fmadd_ps(pfu, v, wfuv);
        wfvv = _mm256_fmadd_ps(_mm256_mul_ps(pf, v), v, wfvv);
    }
    let second = [
        wuuu, wuuv, wuvv, wvvv, wuuuu, wuuuv, wuuvv, wuvvv, wvvvv, wfuu, wfuv, wfvv,
    ];
    let mut sums = [zero; HEIGHT_SUMS];
    sums[..first.len()].copy_from_slice(&first);
    sums[first.len()..].copy_from_slice(&second);
    sums
}

/// The `f32` lanes of the slope moments' sums `Σ w n_n² {1, u, v, u², uv,
/// v²}`, `Σ w n_n n_u {1, u, v}` and `Σ w n_n n_v {1, u, v}` over the
/// lanes `([u, v, f, w], [n_u, n_v, n_n])` of `block`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn slope_sums<'a>(
    block: impl Iterator<Item = (&'a [__m256; 4], &'a [__m256; 3])>,
) -> [__m256; SLOPE_SUMS] {
    let zero = _mm256_setzero_ps();
    let [mut s, mut s_u, mut s_v, mut s_uu, mut s_uv, mut s_vv] = [zero; 6];
    let [mut a_u, mut a_uu, mut a_uv, mut a_v, mut a_vu, mut a_vv] = [zero; 6];
    for (&[u, v, _, weight], &[nu, nv, nn]) in block {
        let wn = _mm256_mul_ps(weight, nn);
        let square = _mm256_mul_ps(wn, nn);
        let (square_u, square_v) = (_mm256_mul_ps(square, u), _mm256_mul_ps(square, v));
        s = _mm256_add_ps(s, square);
        s_u = _mm256_add_ps(s_u, square_u);
        s_v = _mm256_add_ps(s_v, square_v);
        s_uu = _mm256_fmadd_ps(square_u, u, s_uu);
        s_uv = _mm256_fmadd_ps(square_u, v, s_uv);
        s_vv = _mm256_fmadd_ps(square_v, v, s_vv);
        let (along_u, along_v) = (_mm256_mul_ps(wn, nu), _mm256_mul_ps(wn, nv));
        a_u = _mm256_add_ps(a_u, along_u);
        a_uu = _mm256_fmadd_ps(along_u, u, a_uu);
        a_uv = _mm256_fmadd_ps(along_u, v, a_uv);
        a_v = _mm256_add_ps(a_v, along_v);
        a_vu = _mm256_fmadd_ps(along_v, u, a_vu);
        a_vv = _mm256_fmadd_ps(along_v, v, a_vv);
    }
    [
        s, s_u, s_v, s_uu, s_uv, s_vv, a_u, a_uu, a_uv, a_v, a_vu, a_vv,
    ]
}

/// [`super::Kernel::weigh`] in lanes, in one pass over the neighbourhood:
/// each neighbour's weight under `kernel` and its frame weight (zero from
/// the support's edge on; times its factor, when `factors` has one per
/// neighbour), the moments of the offsets under the frame weights, and the
/// number of neighbours of positive weight. Sets the columns' weights,
/// padding included (zero); the frame weights are summed, not stored. The
/// profiles are the kernel's formulas, operation for operation, so that
/// both give the same weights bit for bit (the Gaussian's exponential
/// aside).
#[target_feature(enable = "avx2,fma")]
pub(super) fn weigh(
    neighbours: &Neighbourhood,
    columns: &mut Columns,
    factors: Option<&[f64]>,
    kernel: &Kernel,
) -> ([f64; 10], u32) {
    let one = _mm256_set1_pd(1.0);
    let squared = |t: __m256d| _mm256_mul_pd(t, t);
    let inverse_h_squared = kernel.inverse_h_squared;
    match kernel.weight {
        Weight::Gaussian => {
            let minus_inverse_variance = _mm256_set1_pd(-kernel.inverse_gaussian_variance);
            let floor = _mm256_set1_pd(GAUSSIAN_FLOOR);
            weigh_with(neighbours, columns, factors, inverse_h_squared, |d2, _| {
                let exponent = _mm256_mul_pd(d2, minus_inverse_variance);
                let above_floor = _mm256_cmp_pd::<_CMP_GE_OQ>(exponent, floor);
                _mm256_and_pd(exp(exponent), above_floor)
            })
        }
        Weight::Wendland => weigh_with(neighbours, columns, factors, inverse_h_squared, |_, r2| {
            squared(squared(_mm256_sub_pd(one, r2)))
        }),
        Weight::Biweight => weigh_with(neighbours, columns, factors, inverse_h_squared, |_, r2| {
            squared(_mm256_sub_pd(one, r2))
        }),
        Weight::Plateau => weigh_with(neighbours, columns, factors, inverse_h_squared, |_, r2| {
            squared(_mm256_sub_pd(one, _mm256_mul_pd(r2, r2)))
        }),
        Weight::Broad => weigh_with(neighbours, columns, factors, inverse_h_squared, |_, r2| {
            squared(_mm256_sub_pd(one, _mm256_mul_pd(_mm256_mul_pd(r2, r2), r2)))
        }),
    }
}

/// [`weigh`] with the kernel's profile `theta(d², r²)`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn weigh_with(
    neighbours: &Neighbourhood,
    columns: &mut Columns,
    factors: Option<&[f64]>,
    inverse_h_squared: f64,
    theta: impl Fn(__m256d, __m256d) -> __m256d,
) -> ([f64; 10], u32) {
    let (len, padded) = (columns.len(), columns.padded_len());
    columns.weight.resize(padded, 0.0);
    let [xs, ys, zs] = neighbours.offset_lanes();
    let distances = neighbours.distance_lanes();
    let (weights, _) = columns.weight.as_chunks_mut::<LANES>();
    let inverse_h_squared = _mm256_set1_pd(inverse_h_squared);
    let edge = _mm256_set1_pd(1.0 - EDGE);
    let (one, lane) = (_mm256_set1_pd(1.0), _mm256_setr_epi64x(0, 1, 2, 3));
    // Each lane counts its neighbours of positive weight (minus the
    // comparison's all-ones): a count per block through the mask's bits
    // took a table lookup (no `popcnt` in this target) in the loop.
    let mut counts = _mm256_setzero_si256();
    let sums = second_moments(distances.len(), |b| {
        let d2 = load!(distances[b]);
        let r2 = _mm256_mul_pd(d2, inverse_h_squared);
        // Inside the support, and a neighbour (not the padding).
        let neighbour = _mm256_cmpgt_epi64(_mm256_set1_epi64x((len - b * LANES) as i64), lane);
        let inside = _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_LT_OQ>(r2, edge),
            _mm256_castsi256_pd(neighbour),
        );
        let mut weight = _mm256_and_pd(theta(d2, r2), inside);
        // The frame's (1 − r¹²⁸)².
        let mut r128 = r2;
        for _ in 0..6 {
            r128 = _mm256_mul_pd(r128, r128);
        }
        let t = _mm256_sub_pd(one, r128);
        let mut frame_weight = _mm256_and_pd(_mm256_mul_pd(t, t), inside);
        if let Some(factors) = factors {
            let mut block = [0.0; LANES];
            let from = b * LANES;
            let to = len.min(from + LANES);
            block[..to - from].copy_from_slice(&factors[from..to]);
            let factor = load!(block);
            weight = _mm256_mul_pd(weight, factor);
            frame_weight = _mm256_mul_pd(frame_weight, factor);
        }
        // SAFETY: a `[f64; 4]`: room for four values.
        unsafe { _mm256_storeu_pd(weights[b].as_mut_ptr(), weight) };
        let positive = _mm256_cmp_pd::<_CMP_GT_OQ>(weight, _mm256_setzero_pd());
        counts = _mm256_sub_epi64(counts, _mm256_castpd_si256(positive));
        [load!(xs[b]), load!(ys[b]), load!(zs[b]), frame_weight]
    });
    let mut lanes = [0u64; LANES];
    // SAFETY: room for four values.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), counts) };
    (sums.map(|sum| total(sum)), lanes.iter().sum::<u64>() as u32)
}

/// Degree of [`exp`]'s polynomial. Its remainder on |r| ≤ ln 2 / 2, at
/// most 7.3e-9 of the value ([`EXP_ERROR`]), is below `f32`'s rounding
/// (6e-8): a weight's relative error moves the fit by that fraction of
/// its residual, far below what the output's `f32` keeps, and the degree
/// 13 that `f64` rounding asks for cost the Gaussian job more than a
/// tenth of its time (measured).
const EXP_DEGREE: usize = 7;

/// `1 / k!`, k = 0..=[`EXP_DEGREE`]: the Taylor coefficients of [`exp`].
const EXP_TAYLOR: [f64; EXP_DEGREE + 1] = {
    let mut coefficients = [1.0; EXP_DEGREE + 1];
    let mut factorial = 1.0;
    let mut k = 1;
    while k <= EXP_DEGREE {
        factorial *= k as f64;
        coefficients[k] = 1.0 / factorial;
        k += 1;
    }
    coefficients
};

/// The relative error [`exp`] is held to: its polynomial's remainder,
/// at most (ln 2 / 2)⁸ / 8! · e^(ln 2 / 2) = 7.3e-9 of the value (at
/// r = −ln 2 / 2), and the rounding of its few steps.
#[cfg(test)]
pub(super) const EXP_ERROR: f64 = 7.5e-9;

/// The least argument of [`exp`]: from there up 2ⁿ stays a normal number.
const EXP_LEAST: f64 = -708.0;

/// `e^x` in lanes for `x` ≤ 0 (`e^`[`EXP_LEAST`] below [`EXP_LEAST`]): the
/// usual reduction `e^x = 2ⁿ e^r`, |r| ≤ ln 2 / 2, and a Taylor polynomial
/// of degree [`EXP_DEGREE`] (within [`EXP_ERROR`] of the value, tested).
#[target_feature(enable = "avx2,fma")]
fn exp(x: __m256d) -> __m256d {
    let x = _mm256_max_pd(x, _mm256_set1_pd(EXP_LEAST));
    // 1.5 · 2⁵² + 1023: added to x · log₂ e, it rounds that to the
    // nearest integer n and leaves n + 1023 in the low bits, where 2ⁿ's
    // exponent field is one shift away.
    let magic = _mm256_set1_pd(6_755_399_441_056_767.0);
    let shifted = _mm256_fmadd_pd(x, _mm256_set1_pd(std::f64::consts::LOG2_E), magic);
    let n = _mm256_sub_pd(shifted, magic);
    // LN_2 is 2.32e-17 off ln 2, so n · LN_2 is off n ln 2 by at most
    // 2.34e-14 for the weights' |n| ≤ 1010 (exponents from −700 up), 2.4e-14
    // for |n| ≤ 1022: far inside the polynomial's error.
    let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(std::f64::consts::LN_2), x);
    let mut p = _mm256_set1_pd(EXP_TAYLOR[EXP_DEGREE]);
    for k in (0..EXP_DEGREE).rev() {
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(EXP_TAYLOR[k]));
    }
    let two_to_n = _mm256_slli_epi64::<52>(_mm256_castpd_si256(shifted));
    _mm256_mul_pd(p, _mm256_castsi256_pd(two_to_n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbours::{Neighbour, Neighbourhood};
    use nalgebra::Vector3;

    #[test]
    fn gaussian_weights_are_the_exponential() {
        if !crate::cpu::wide_lanes() {
            return; // nothing to compare on this CPU
        }
        // Exponents from 0 past the floor (−700) inside the support, and
        // squared distances past the support's edge.
        let hood: Neighbourhood = (0..4000)
            .map(|i| Neighbour {
                index: i,
                offset: Vector3::zeros(),
                distance_squared: (i as f64 * 0.37).powi(2) * 1e-3,
            })
            .collect();
        let mut columns = Columns::default();
        columns.load(&hood, None);
        // h² about 20, s = (width · h)² about 1 / 370.
        let kernel = Kernel::new(
            Weight::Gaussian,
            20f64.sqrt(),
            (20.0f64 * 370.0).recip().sqrt(),
        );
        let inverse_variance = kernel.inverse_gaussian_variance;
        let inverse_h_squared = kernel.inverse_h_squared;
        let (edge, floor) = (1.0 - EDGE, GAUSSIAN_FLOOR);
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        unsafe { weigh(&hood, &mut columns, None, &kernel) };
        let mut below_floor = 0;
        let mut inside = 0;
        for (&d2, &w) in hood.distances_squared().iter().zip(columns.weights()) {
            if d2 * inverse_h_squared >= edge {
                assert_eq!(w, 0.0, "{d2}");
                continue;
            }
            inside += 1;
            if -d2 * inverse_variance < floor {
                below_floor += 1;
                assert_eq!(w, 0.0, "{d2}: below the floor");
                continue;
            }
            let exact = (-d2 * inverse_variance).exp();
            assert!(
                (w - exact).abs() <= EXP_ERROR * exact,
                "{d2}: {w} vs {exact}"
            );
        }
        assert!(inside > 100 && inside < columns.len());
        assert!(below_floor > 10 && below_floor < inside - 100);
    }
}
