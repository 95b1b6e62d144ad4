//! What each program is asked to do, as one typed value that either front end fills: clap from a
//! command line, or serde from a Nix builder's structured attributes ([`crate::attrs`]). They
//! live here, not in the binaries, so that the fuzzer (`tests/fuzz.rs`) reaches the builder front
//! end as Nix drives it; the binaries only run what these say.

pub mod group_layers;
pub mod layer_hash;
