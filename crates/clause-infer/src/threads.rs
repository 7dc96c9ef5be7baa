//! Keep candle's element-wise ops on the thread that calls them.
//!
//! candle splits an element-wise op over 64k elements or more (an add, a
//! multiply, the sums autograd makes of every gradient) across a pool of its
//! own, which serves one caller at a time and whose workers spin while they
//! wait. Training and batch inference here run data-parallel instead: each
//! thread takes part of the batch through a whole forward and backward pass
//! ([`crate::ops::serially`]). With candle's pool in the way those threads
//! queued on it for every op and its spinning worker took a core: a
//! 16 x 128 training step on 2 threads ran at 6.2 sequences/s with the pool
//! and 9.3 without. This module's kernels use rayon's pool, as candle's
//! matrix products do, or none under `serially`.

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
