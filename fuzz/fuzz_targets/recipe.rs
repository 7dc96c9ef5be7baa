//! The dataset recipe parser (`dataset.toml`) on any UTF-8 text: a clean
//! error or a validated recipe, never a panic.
#![no_main]

use std::path::Path;

use clause_data::recipe::Recipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Recipe::parse(Path::new("datasets/fuzz/dataset.toml"), text) {
        Ok(recipe) => {
            assert!(!recipe.labels.is_empty() && !recipe.sources.is_empty());
            let _ = recipe.label_names();
        }
        Err(err) => {
            // Messages quote the offending line; building one must not panic.
            let _ = err.to_string();
        }
    }
});
