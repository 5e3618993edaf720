//! What the CPU running us has, and what the plain target lacks. The
//! shipped binary targets plain x86-64 (no `target-cpu` flag), so the hot
//! loops that gain from AVX2 + FMA (the fit's sums, the grid's distance
//! scan, the batched least-squares sums) choose their code path at run
//! time through one check, and rounding down, which that target can only
//! do through a call into libm, is done with a cast.

/// True when the CPU has AVX2 and FMA (the check is cached by the standard
/// library). Elsewhere than on x86-64 the plain paths always run.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn wide_lanes() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// `x.floor() as i64`, without the call: the plain x86-64 target has no
/// rounding instruction (SSE4.1), so `f64::floor` is a call into libm, and
/// in the grid's cell boxes and the seeding's blocks it cost 1-3% of a job
/// (perf). The cast truncates toward zero; one less when that rounded up.
/// The same value as `x.floor() as i64` for every `x`: NaN gives 0, and
/// values beyond the range saturate.
#[inline]
pub(crate) fn floor_i64(x: f64) -> i64 {
    let truncated = x as i64;
    if truncated as f64 > x {
        truncated.saturating_sub(1)
    } else {
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_i64_is_floor_then_cast() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.999_999_999_999_999_6,
            -2.999_999_999_999_999_6,
            f64::EPSILON,
            -f64::EPSILON,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            9.3e18,
            -9.3e18,
            9_223_372_036_854_775_807.0,
            -9_223_372_036_854_775_808.0,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        values.extend((-2000..2000).map(|i| f64::from(i) * 0.37 + 1e-3));
        for x in values {
            assert_eq!(floor_i64(x), x.floor() as i64, "{x}");
        }
    }
}
