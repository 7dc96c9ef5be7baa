//! Build labelled clause datasets from raw legal documents and the project's
//! own annotations.
//!
//! The pieces, in the order a build uses them: [`recipe`] reads
//! `datasets/<name>/dataset.toml`; [`sources`] reads the raw documents it
//! names ([`segment`] for drafts, [`claudette`] for the Terms of Service
//! corpus, [`table`] for CSV/JSONL/Parquet); [`annotations`] joins the
//! project's labels to segmented provisions; [`split`] assigns examples to
//! train/validation/test; [`leakage`] finds texts shared between splits;
//! [`build`] writes the Parquet files and the manifest; [`stats`] reads them
//! back.

pub mod annotations;
pub mod build;
pub mod claudette;
pub mod example;
pub mod recipe;
pub mod table;
pub mod error;
pub mod hash;
pub mod leakage;
pub mod segment;
pub mod split;
pub mod stats;
pub mod text;

pub use error::{Error, Result};
