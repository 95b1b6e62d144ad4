//! Nix closures to container image layers that a registry can serve straight from the store.
//!
//! Two programs share this library: `group-layers` reads a closure's reference graph
//! ([`graph`]), weighs it with [`popularity`] data and groups its store paths into layers
//! ([`layering`]); `layer-hash` writes each layer as a deterministic tarball ([`tarball`]) hashed
//! in the same pass ([`digest`]), and assembles the image config and registry manifest
//! ([`manifest`]). Both read one typed input ([`inputs`]) from a command line or, as Nix
//! builders, from structured attributes ([`attrs`]); they write their outputs whole or not at all
//! ([`output`]) and end with their time and peak memory ([`report`]). A third program, `layer-eval`, judges
//! layerings by the bytes they make clients re-pull and registries store ([`research`]).

pub mod accounts;
pub mod archive;
pub mod attrs;
pub mod compress;
pub mod created;
pub mod customisation;
pub mod digest;
pub mod error;
pub mod graph;
pub mod index;
pub mod inputs;
pub mod layering;
pub mod manifest;
pub mod output;
pub mod perms;
pub mod popularity;
pub mod referrers;
pub mod report;
pub mod research;
pub mod sbom;
pub mod tarball;

pub use error::{Error, Result};
