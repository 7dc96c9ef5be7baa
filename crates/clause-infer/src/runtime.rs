//! Process settings that training and batch inference need, made once at
//! the start of `main` before any other thread exists.
//!
//! # Keep freed memory in the process ([`keep_freed_memory`])
//!
//! A training step allocates and frees hundreds of tensors of a few MiB.
//! glibc serves each of those above its mmap threshold with a fresh mapping
//! and unmaps it on free, so every step paid for page faults, zeroing by the
//! kernel and TLB shoot-downs across threads: about 30% of a 16 x 128 step's
//! time here (4.6 s before, 3.3 s after, measured before the fused kernels). Raising the thresholds once,
//! before any large allocation, makes freed blocks reusable; peak memory is
//! unchanged since the same blocks are reused.
//!
//! # Keep candle's element-wise ops on the calling thread ([`keep_candle_ops_on_calling_threads`])
//!
//! candle splits an element-wise op over 64k elements or more (an add, a
//! multiply, the sums autograd makes of every gradient) across a pool of its
//! own, which serves one caller at a time and whose workers spin while they
//! wait. Training and batch inference here run data-parallel instead: each
//! thread takes part of the batch through a whole forward and backward pass
//! ([`crate::ops::serially`]). With candle's pool in the way those threads
//! queued on it for every op and its spinning worker took a core: a
//! 16 x 128 training step on 2 threads ran at 6.2 sequences/s with the pool
//! and 9.3 without. The fused kernels of [`crate::ops`] use rayon's pool, as candle's
//! matrix products do, or none under `serially`.

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

/// candle's variable for the size of its element-wise pool.
const CANDLE_NUM_THREADS: &str = "CANDLE_NUM_THREADS";

/// Give candle's element-wise pool no worker threads (`CANDLE_NUM_THREADS=1`)
/// unless the user chose a size, so that its ops run on the calling thread.
/// Call it first thing in `main`, before any other thread exists: candle
/// reads the variable once, when its pool is first used. Returns the user's
/// setting when there was one.
#[allow(unsafe_code)]
pub fn keep_candle_ops_on_calling_threads() -> Option<String> {
    if let Some(chosen) = std::env::var_os(CANDLE_NUM_THREADS) {
        return Some(chosen.to_string_lossy().into_owned());
    }
    // SAFETY: the caller runs this before any other thread exists, so no
    // thread reads the environment while it changes.
    unsafe { std::env::set_var(CANDLE_NUM_THREADS, "1") };
    None
}
