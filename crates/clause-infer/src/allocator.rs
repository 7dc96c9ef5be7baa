//! Keep freed memory in the process instead of handing it back to the OS.
//!
//! A training step allocates and frees hundreds of tensors of a few MiB.
//! glibc serves each of those above its mmap threshold with a fresh mapping
//! and unmaps it on free, so every step paid for page faults, zeroing by the
//! kernel and TLB shoot-downs across threads: about 30% of a 16 x 128 step's
//! time here (4.6 s before, 3.3 s after, measured before the fused kernels). Raising the thresholds once,
//! before any large allocation, makes freed blocks reusable; peak memory is
//! unchanged since the same blocks are reused.

/// Tune glibc malloc for many short-lived large blocks. Call it first thing
/// in `main`, before any other thread exists. Returns the settings glibc
/// refused, as (parameter, value) pairs; empty when all took effect.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn keep_freed_memory() -> Vec<(i32, i32)> {
    use std::ffi::c_int;
    // From <malloc.h>.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_TOP_PAD: c_int = -2;
    const M_MMAP_THRESHOLD: c_int = -3;
    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // The largest threshold glibc accepts on 64-bit targets is 32 MiB.
    let settings = [(M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20)];
    settings
        .into_iter()
        // SAFETY: mallopt only changes allocator tuning parameters; the
        // caller runs it before any other thread exists.
        .filter(|&(param, value)| unsafe { mallopt(param, value) } == 0)
        .collect()
}

/// Other allocators need no tuning.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() -> Vec<(i32, i32)> {
    Vec::new()
}
