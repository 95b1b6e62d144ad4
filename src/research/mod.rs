//! Research code: judging layerings, not building images.
//!
//! `layer-eval` uses these to measure what a layering makes clients re-pull and registries store
//! ([`evaluate`]), against the least any layering could reach ([`chain_floor`]), on real closures
//! or synthetic ones ([`synth`]), and against other tools' strategies rewritten here ([`peers`];
//! `group-layers --strategy` offers them for comparison). Nothing that builds an image depends
//! on this module except through those two comparison strategies.

pub mod chain_floor;
pub mod evaluate;
pub mod peers;
pub mod synth;
