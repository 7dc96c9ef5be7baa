//! The project's one seeded generator ([`clause_rng::SplitMix64`]), under the
//! path the model and training code know it by: initial weights and dropout
//! masks draw from it.

pub use clause_rng::SplitMix64;
