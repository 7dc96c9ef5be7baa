//! Build labelled clause datasets from raw legal documents and the project's
//! own annotations.
//!
//! The pieces, in the order a build uses them: [`recipe`] reads
//! `datasets/<name>/dataset.toml`; the raw documents it names are read by
//! [`segment`] (drafts), [`claudette`] (the Terms of Service corpus) and
//! [`table`] (CSV/JSONL/Parquet) into [`example::Example`]s; [`annotations`]
//! joins the project's labels to segmented provisions; [`split`] assigns
//! examples to train/validation/test; [`leakage`] finds texts shared between
//! splits; [`build`] writes the Parquet files and the manifest, pinned by
//! [`hash`]; [`stats`] reads them back.

pub mod annotations;
pub mod build;
pub mod claudette;
pub mod error;
pub mod example;
pub mod folds;
pub mod hash;
pub mod leakage;
mod parquet_footer;
pub mod probes;
pub mod rationales;
pub mod recipe;
pub mod records;
pub mod segment;
pub mod split;
pub mod stats;
pub mod table;
pub mod text;
pub mod written;

pub use error::{Error, Result};
