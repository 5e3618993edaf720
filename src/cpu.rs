//! What the CPU running us has, and what the plain target lacks. The
//! shipped binary targets plain x86-64 (no `target-cpu` flag), so the hot
//! loops that gain from AVX2 + FMA (the fit's sums, the grid's distance
//! scan, the batched least-squares sums) choose their code path at run
//! time through one check, a few hot functions have a second copy
//! compiled for x86-64-v3 ([`with_v3!`]), and rounding down, which that
//! target can only do through a call into libm, is done with a cast.

/// True when the CPU has AVX2 and FMA (the check is cached by the standard
/// library). Elsewhere than on x86-64 the plain paths always run.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn wide_lanes() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// True when the CPU has the features [`call_v3`] is compiled for: AVX2,
/// FMA, BMI1, BMI2, LZCNT and POPCNT, the x86-64-v3 features LLVM uses for
/// scalar and vector code (MOVBE, F16C and XSAVE aside).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn level_v3() -> bool {
    wide_lanes()
        && is_x86_feature_detected!("bmi1")
        && is_x86_feature_detected!("bmi2")
        && is_x86_feature_detected!("lzcnt")
        && is_x86_feature_detected!("popcnt")
}

/// `$body::<true>(args…)` in a copy compiled for x86-64-v3 ([`call_v3`])
/// where the CPU has it, else `$body::<false>(args…)`, compiled for plain
/// x86-64: one body, two entry points. Building with `-C
/// target-cpu=x86-64-v3` took 6-8% less CPU on sphere_large; this gets a
/// part of it at run time, for the functions that gained most.
///
/// The body is `#[inline(always)]`, so that it is compiled into each copy,
/// and so must be whatever it calls that should run as v3 code: a function
/// LLVM leaves out of line is one baseline copy, shared (LLVM inlines a
/// function without target features into one with them only when it
/// chooses to). Its `const V3: bool` parameter is there for the closures
/// it makes: each copy's are then their own, called once, and inlined;
/// one closure type called from both copies stayed out of line, baseline.
///
/// The results are the same bit for bit: Rust lets LLVM fuse no multiply
/// and add unless asked (`mul_add`, the FMA intrinsics), and the
/// rounding instructions SSE4.1 adds round as the calls they replace.
macro_rules! with_v3 {
    ($($body:ident)::+ ($($arg:expr),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        let value = if $crate::cpu::level_v3() {
            // SAFETY: the CPU has every feature `call_v3` is compiled for,
            // checked just above.
            unsafe { $crate::cpu::call_v3(|| $($body)::+::<true>($($arg),*)) }
        } else {
            $($body)::+::<false>($($arg),*)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let value = $($body)::+::<false>($($arg),*);
        value
    }};
}
pub(crate) use with_v3;

/// `f()` compiled for x86-64-v3 ([`with_v3!`]).
///
/// # Safety
/// The CPU must have every feature enabled here ([`level_v3`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
pub(crate) unsafe fn call_v3<R>(f: impl FnOnce() -> R) -> R {
    f()
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
