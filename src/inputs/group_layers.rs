//! `group-layers`' input: one [`Input`], filled by clap from a command line or, as a Nix builder
//! run with no arguments, from the structured attributes ([`Input::from_attrs`]), each flag's
//! attribute named in camelCase.

use std::path::{Path, PathBuf};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Parser;

use crate::attrs::Attrs;
use crate::error::Result;
use crate::layering::{self, Strategy};

/// Group the store paths of a Nix closure into at most N container image layers.
///
/// Run with no arguments inside a Nix build with `__structuredAttrs = true`, it reads the graph
/// Nix exported (`exportReferencesGraph.graph`) from the structured attributes, and every flag
/// below from the attribute of its name in camelCase (`budget`, `popularity`, `strategy`,
/// `popularThreshold`, `bigThreshold`); it writes the layers to the output `out`, and the
/// --explain table to the output `explain` if the derivation has one.
#[derive(Parser, serde::Deserialize, Debug)]
#[command(version, verbatim_doc_comment)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// Structured-attrs JSON holding `exportReferencesGraph.graph` (the roots) and `graph` (every
    /// path with narSize, closureSize and references) [default: $NIX_ATTRS_JSON_FILE, else ./.attrs.json]
    #[arg(long, value_name = "FILE")]
    // As a builder, the graph is in the attributes file itself.
    #[serde(skip)]
    pub graph: Option<PathBuf>,
    /// Popularity data in Nixery's format: `{"name-without-hash": count}`. Without it every path counts 1
    #[arg(long, visible_alias = "pop", value_name = "FILE")]
    #[serde(default)]
    pub popularity: Option<PathBuf>,
    /// Most layers to produce, at least 1 (`build-image.nix` passes maxLayers - 1, keeping one for
    /// the customisation layer)
    #[arg(long, value_name = "N")]
    pub budget: usize,
    /// Where to write the JSON list of layers, bottom layer first; `-` is stdout
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub out: PathBuf,
    /// Layering strategy: `stable` keeps layers the same across updates and images; `nixery` is
    /// the algorithm of Nixery (2019); `popularity-order` and `auto-layer` rewrite other tools',
    /// for comparison
    #[arg(long, default_value = "stable", value_parser = PossibleValuesParser::new(Strategy::ALL.map(Strategy::name)).map(|s| s.parse::<Strategy>().expect("a listed name")))]
    #[serde(default)]
    pub strategy: Strategy,
    /// Popularity from which a path gets a layer of its own (nixery strategy)
    #[arg(long, value_name = "COUNT", default_value_t = layering::DEFAULT_POPULAR_THRESHOLD)]
    #[serde(default = "default_popular_threshold")]
    pub popular_threshold: u64,
    /// closureSize in bytes above which a path gets a layer of its own (nixery strategy; decimal:
    /// 100 MB = 100000000)
    #[arg(long, value_name = "BYTES", default_value_t = layering::DEFAULT_BIG_THRESHOLD)]
    #[serde(default = "default_big_threshold")]
    pub big_threshold: u64,
    /// Write a table of the layers to FILE (to stderr without FILE): per layer its paths, size,
    /// rating, top path and why it stands alone
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    #[serde(default)]
    pub explain: Option<PathBuf>,
}

fn default_popular_threshold() -> u64 {
    layering::DEFAULT_POPULAR_THRESHOLD
}

fn default_big_threshold() -> u64 {
    layering::DEFAULT_BIG_THRESHOLD
}

impl Input {
    /// The input of a builder from its structured attributes file (`path`, read as `bytes`),
    /// which also holds the graph: the graph is left out of the attributes (it is the bulk of
    /// the file, read by [`crate::graph::Closure`] from the same bytes) and `graph` names the file.
    pub fn from_attrs(path: &Path, bytes: &[u8]) -> Result<Input> {
        let mut input: Input = Attrs::parse_without(path, bytes, &["graph"])?.input()?;
        input.graph = Some(path.to_path_buf());
        Ok(input)
    }
}
