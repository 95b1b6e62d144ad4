//! `group-layers`: groups the store paths of an image's closure into at most N layers.
//!
//! Its input is one struct, [`Input`], filled either from the command line or, run as a Nix
//! builder with no arguments, from the derivation's structured attributes (each flag's attribute
//! is its name in camelCase; files it writes are the derivation's outputs of those names). All
//! the work is in the library's `layering` module; this file only gathers inputs and reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Parser;
use nix_image_layers::attrs::{self, Attrs};
use nix_image_layers::graph::Closure;
use nix_image_layers::layering::{self, Options, Strategy};
use nix_image_layers::output::{read_file, write_output};
use nix_image_layers::popularity::Popularity;
use nix_image_layers::{Error, Result};

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
struct Input {
    /// Structured-attrs JSON holding `exportReferencesGraph.graph` (the roots) and `graph` (every
    /// path with narSize, closureSize and references) [default: $NIX_ATTRS_JSON_FILE, else ./.attrs.json]
    #[arg(long, value_name = "FILE")]
    // As a builder, the graph is in the attributes file itself.
    #[serde(skip)]
    graph: Option<PathBuf>,
    /// Popularity data in Nixery's format: `{"name-without-hash": count}`. Without it every path counts 1
    #[arg(long, visible_alias = "pop", value_name = "FILE")]
    #[serde(default)]
    popularity: Option<PathBuf>,
    /// Most layers to produce, at least 1 (`build-image.nix` passes maxLayers - 1, keeping one for
    /// the customisation layer)
    #[arg(long, value_name = "N")]
    budget: usize,
    /// Where to write the JSON list of layers, bottom layer first; `-` is stdout
    #[arg(long, value_name = "FILE", default_value = "-")]
    out: PathBuf,
    /// Layering strategy: `stable` keeps layers the same across updates and images; `nixery` is
    /// the algorithm of Nixery (2019); `popularity-order` and `auto-layer` rewrite other tools',
    /// for comparison
    #[arg(long, default_value = "stable", value_parser = PossibleValuesParser::new(Strategy::ALL.map(Strategy::name)).map(|s| s.parse::<Strategy>().expect("a listed name")))]
    #[serde(default)]
    strategy: Strategy,
    /// Popularity from which a path gets a layer of its own (nixery strategy)
    #[arg(long, value_name = "COUNT", default_value_t = layering::DEFAULT_POPULAR_THRESHOLD)]
    #[serde(default = "default_popular_threshold")]
    popular_threshold: u64,
    /// closureSize in bytes above which a path gets a layer of its own (nixery strategy; decimal:
    /// 100 MB = 100000000)
    #[arg(long, value_name = "BYTES", default_value_t = layering::DEFAULT_BIG_THRESHOLD)]
    #[serde(default = "default_big_threshold")]
    big_threshold: u64,
    /// Write a table of the layers to FILE (to stderr without FILE): per layer its paths, size,
    /// rating, top path and why it stands alone
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    #[serde(default)]
    explain: Option<PathBuf>,
}

fn default_popular_threshold() -> u64 {
    layering::DEFAULT_POPULAR_THRESHOLD
}

fn default_big_threshold() -> u64 {
    layering::DEFAULT_BIG_THRESHOLD
}

fn main() -> ExitCode {
    let result = if std::env::args_os().len() == 1 && attrs::present() { from_builder() } else { Ok((Input::parse(), None)) }
        .and_then(|(input, graph_bytes)| run(input, graph_bytes));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("group-layers: error: {}", nix_image_layers::error::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// The input from the structured attributes, and the file's bytes, which also hold the graph.
fn from_builder() -> Result<(Input, Option<Vec<u8>>)> {
    let path = attrs::default_path();
    // The reference graph is the bulk of the file: read once, and left out of the attributes.
    let bytes = read_file(&path)?;
    let mut input: Input = Attrs::parse_without(&path, &bytes, &["graph"])?.input()?;
    input.graph = Some(path);
    Ok((input, Some(bytes)))
}

fn run(input: Input, graph_bytes: Option<Vec<u8>>) -> Result<()> {
    if input.budget < 1 {
        return Err(Error::Usage(format!("the budget (--budget, attribute `budget`) must be at least 1, not {}", input.budget)));
    }
    let graph = input.graph.clone().unwrap_or_else(attrs::default_path);
    let opts = Options { budget: input.budget, popular_threshold: input.popular_threshold, big_threshold: input.big_threshold };
    // Two independent files, read and parsed on two threads (on large closures each takes a good part of the run).
    let (closure, pop) = std::thread::scope(|scope| {
        let pop = scope.spawn(|| match &input.popularity {
            Some(p) => Popularity::load(p),
            None => Ok(Popularity::none()),
        });
        let closure = match &graph_bytes {
            Some(bytes) => Closure::parse(&graph, bytes),
            None => Closure::load(&graph),
        };
        (closure, pop.join().expect("popularity thread"))
    });
    let (closure, pop) = (closure?, pop?);
    eprintln!(
        "grouping {} paths ({}, {} roots) from {} into at most {} layers, strategy {}",
        closure.len(),
        layering::human_size(closure.total_size()),
        closure.roots.len(),
        graph.display(),
        opts.budget,
        input.strategy.name()
    );
    let layers = layering::group(&closure, &pop, input.strategy, &opts)?;
    if let Some(to) = input.explain.as_deref() {
        let table = layering::explain(&closure, &layers);
        if to == Path::new("-") { eprint!("{table}") } else { write_output(to, table.as_bytes())? }
    }
    write_output(&input.out, &layering::to_json(&closure, &layers))?;
    if input.out != Path::new("-") {
        eprintln!("wrote {} layers to {}", layers.len(), input.out.display());
    }
    // The process ends here: freeing a large graph string by string would cost a good part of
    // the run, and the kernel reclaims it at once.
    std::mem::forget(closure);
    Ok(())
}
