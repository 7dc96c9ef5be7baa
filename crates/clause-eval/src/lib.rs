//! How well a model's labels match the truth, and the one rule that makes
//! labels of probabilities.
//!
//! [`decision`] turns a probability and a threshold into a flag: training,
//! `clause eval`, `classify`, `diff`, `report` and `serve` all decide through
//! it, so a figure measured in one place is the behaviour seen in another.
//! [`metrics`] scores decisions (per-label, micro, macro and LexGLUE F1) and
//! tunes per-label thresholds; [`evaluation`] adds the figures that need no
//! threshold or that say how sure a figure is: ROC-AUC, average precision,
//! bootstrap intervals and calibration; [`calibration`] maps raw scores to
//! probabilities and measures them in the bands a reviewer reads.

pub mod calibration;
pub mod decision;
pub mod evaluation;
pub mod metrics;
