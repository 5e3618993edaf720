//! Packing the passing lanes of an AVX2 register to its front: a gather
//! (the points of a row inside the ball) and the k nearest's selection
//! (the neighbours no farther than the k-th) each write four neighbours at
//! a time and advance by the number that pass, with no branch per
//! neighbour.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// For each mask of four passing lanes, the 32-bit lanes that move the
/// passing `f64` lanes to the front (`f64` lane i is 32-bit lanes 2i,
/// 2i + 1), and the lanes that move passing `u32` lanes to the front.
const fn compress_tables() -> ([[i32; 8]; 16], [[i32; 8]; 16]) {
    let mut wide = [[0; 8]; 16];
    let mut narrow = [[0; 8]; 16];
    let mut mask = 0;
    while mask < 16 {
        let (mut lane, mut to): (i32, usize) = (0, 0);
        while lane < 4 {
            if mask >> lane & 1 == 1 {
                wide[mask][2 * to] = 2 * lane;
                wide[mask][2 * to + 1] = 2 * lane + 1;
                narrow[mask][to] = lane;
                to += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    (wide, narrow)
}

/// [`compress_tables`], computed once.
const COMPRESS: ([[i32; 8]; 16], [[i32; 8]; 16]) = compress_tables();

/// The permutations that pack the lanes set in `mask` (four bits) to the
/// front: of `f64` lanes ([`pack`]) and of `u32` lanes.
#[target_feature(enable = "avx2")]
pub(super) fn packing(mask: usize) -> (__m256i, __m256i) {
    let (wide, narrow) = (&COMPRESS.0[mask & 15], &COMPRESS.1[mask & 15]);
    // SAFETY: each table row is eight `i32`, one register.
    unsafe {
        (
            _mm256_loadu_si256(wide.as_ptr().cast()),
            _mm256_loadu_si256(narrow.as_ptr().cast()),
        )
    }
}

/// `values` with the lanes of `wide` (from [`packing`]) moved to the front.
#[target_feature(enable = "avx2")]
pub(super) fn pack(values: __m256d, wide: __m256i) -> __m256d {
    _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(values), wide))
}
