//! What a reviewer reads, built from classified provisions: [`align`] matches
//! the provisions of two versions of a draft for `clause diff`, and
//! [`report`] renders one page (HTML or Markdown) of a classified draft for
//! `clause report`. Pure functions of their inputs: the commands in the
//! binary load models and files and hand the results here.

pub mod align;
pub mod report;
