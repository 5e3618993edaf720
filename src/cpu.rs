//! Which vector instructions the CPU running us has. The shipped binary
//! targets plain x86-64 (no `target-cpu` flag), so the hot loops that gain
//! from AVX2 + FMA (the fit's sums, the grid's distance scan, the batched
//! least-squares sums) choose their code path at run time through this one
//! check.

/// True when the CPU has AVX2 and FMA (the check is cached by the standard
/// library). Elsewhere than on x86-64 the plain paths always run.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn wide_lanes() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}
