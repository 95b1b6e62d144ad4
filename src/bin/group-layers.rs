//! `group-layers`: groups the store paths of an image's closure into at most N layers.
//!
//! Its input is one struct, `inputs::group_layers::Input`, filled either from the command line or, run as a Nix
//! builder with no arguments, from the derivation's structured attributes (each flag's attribute
//! is its name in camelCase; files it writes are the derivation's outputs of those names). All
//! the work is in the library's `layering` module; this file only gathers inputs and reports.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use nix_image_layers::attrs;
use nix_image_layers::graph::Closure;
use nix_image_layers::inputs::group_layers::Input;
use nix_image_layers::layering::{self, Options};
use nix_image_layers::output::{read_file, write_output};
use nix_image_layers::popularity::Popularity;
use nix_image_layers::{Error, Result};

fn main() -> ExitCode {
    let start = std::time::Instant::now();
    let result = if std::env::args_os().len() == 1 && attrs::present() { from_builder() } else { Ok((Input::parse(), None)) }
        .and_then(|(input, graph_bytes)| run(input, graph_bytes));
    match result {
        Ok(()) => {
            nix_image_layers::report::finished("group-layers", start);
            ExitCode::SUCCESS
        }
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
    Ok((Input::from_attrs(&path, &bytes)?, Some(bytes)))
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
