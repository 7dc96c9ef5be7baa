//! Named points where a run can be told to stop and wait, so that a test can
//! kill it (SIGKILL) at a moment it chooses: inside an epoch, or halfway
//! through writing a checkpoint. A kill from outside cannot be aimed that
//! precisely, and these are the moments where lost or corrupted work would
//! show. Off unless `CLAUSE_PAUSE_AT` is set; then each point costs a string
//! comparison.

use std::sync::OnceLock;

/// The environment variable that names the point to wait at.
pub const VARIABLE: &str = "CLAUSE_PAUSE_AT";

fn requested() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT.get_or_init(|| std::env::var(VARIABLE).ok().filter(|point| !point.is_empty())).as_deref()
}

/// Wait until killed if `CLAUSE_PAUSE_AT` names the point `name` builds.
/// Points: `epoch E batch B` (before batch B, 0-based, of epoch E, 1-based),
/// `checkpoint N staged` (files written and synced, not yet in place) and
/// `checkpoint N swapping` (the previous checkpoint moved aside, the new one
/// not yet renamed in), where N counts finished epochs.
pub(crate) fn here(name: impl FnOnce() -> String) {
    let Some(wanted) = requested() else { return };
    let point = name();
    if point == wanted {
        tracing::warn!("paused at {point} ({VARIABLE}); waiting to be killed");
        loop {
            std::thread::park();
        }
    }
}
