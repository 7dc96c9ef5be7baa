//! Provision segmenter for treaty and legislation text: the
//! `clause-segment` crate, re-exported here so that a build and the server
//! segment drafts with the same code.

pub use clause_segment::*;
