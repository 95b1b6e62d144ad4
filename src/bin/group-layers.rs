//! `group-layers`: groups the store paths of an image's closure into at most N layers.
//!
//! From a shell it takes the seed's flags; run as a Nix builder with no arguments it reads
//! everything from the derivation's structured attributes. All the work is in the library's
//! `layering` module; this file only gathers inputs and reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
/// (`exportReferencesGraph.graph`), and the attributes `budget`, `popularity` (optional path),
/// `strategy`, `popularThreshold` and `bigThreshold` (optional), from the structured attributes
/// and writes the layers to the `out` output, and the --explain table to `explain` if the
/// derivation has that output.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    /// Structured-attrs JSON holding `exportReferencesGraph.graph` (the roots) and `graph` (every
    /// path with narSize, closureSize and references) [default: $NIX_ATTRS_JSON_FILE, else ./.attrs.json]
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// Popularity data in Nixery's format: `{"name-without-hash": count}`. Without it every path counts 1
    #[arg(long, value_name = "FILE")]
    pop: Option<PathBuf>,
    /// Most layers to produce (at least 1; the seed passes maxLayers - 1)
    #[arg(long, value_name = "N")]
    budget: usize,
    /// Where to write the JSON list of layers, bottom layer first; `-` is stdout
    #[arg(long, value_name = "FILE", default_value = "-")]
    out: PathBuf,
    /// Layering strategy: `stable` keeps layers the same across updates and images; `nixery` is
    /// the seed's algorithm; `popularity-order` and `auto-layer` rewrite other tools', for comparison
    #[arg(long, value_enum, default_value = "stable")]
    strategy: Strategy,
    /// Popularity from which a path gets a layer of its own (nixery strategy)
    #[arg(long, value_name = "COUNT", default_value_t = layering::DEFAULT_POPULAR_THRESHOLD)]
    popular_threshold: u64,
    /// closureSize in bytes above which a path gets a layer of its own (nixery strategy; decimal:
    /// 100 MB = 100000000)
    #[arg(long, value_name = "BYTES", default_value_t = layering::DEFAULT_BIG_THRESHOLD)]
    big_threshold: u64,
    /// Print a table to stderr: per layer its paths, size, rating, top path and why it stands alone
    #[arg(long)]
    explain: bool,
}

struct Job {
    graph: PathBuf,
    /// The graph file's bytes, where the builder has read them already for its attributes.
    graph_bytes: Option<Vec<u8>>,
    pop: Option<PathBuf>,
    strategy: Strategy,
    opts: Options,
    out: PathBuf,
    explain_to: Option<PathBuf>,
    explain_stderr: bool,
}

fn main() -> ExitCode {
    let result = if std::env::args_os().len() == 1 && attrs::present() { builder_job() } else { cli_job() }.and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("group-layers: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cli_job() -> Result<Job> {
    let cli = Cli::parse();
    Ok(Job {
        graph: cli.graph.unwrap_or_else(attrs::default_path),
        graph_bytes: None,
        pop: cli.pop,
        strategy: cli.strategy,
        opts: Options { budget: cli.budget, popular_threshold: cli.popular_threshold, big_threshold: cli.big_threshold },
        out: cli.out,
        explain_to: None,
        explain_stderr: cli.explain,
    })
}

fn builder_job() -> Result<Job> {
    let path = attrs::default_path();
    // The reference graph is the bulk of the file: read once, and left out of the attributes.
    let bytes = read_file(&path)?;
    let a = Attrs::parse_without(&path, &bytes, &["graph"])?;
    let budget = a.u64("budget")?.ok_or_else(|| Error::Invalid {
        path: path.clone(),
        what: "attribute `budget` is missing (the most layers to produce)".into(),
    })?;
    let strategy = match a.string("strategy")? {
        Some(s) => Strategy::parse(&format!("{}: attribute `strategy`", path.display()), s)?,
        None => Strategy::Stable,
    };
    Ok(Job {
        pop: a.string("popularity")?.map(PathBuf::from),
        strategy,
        opts: Options {
            budget: usize::try_from(budget).unwrap_or(usize::MAX),
            popular_threshold: a.u64("popularThreshold")?.unwrap_or(layering::DEFAULT_POPULAR_THRESHOLD),
            big_threshold: a.u64("bigThreshold")?.unwrap_or(layering::DEFAULT_BIG_THRESHOLD),
        },
        out: a.required_output("out")?,
        explain_to: a.output("explain"),
        explain_stderr: false,
        graph: path,
        graph_bytes: Some(bytes),
    })
}

fn run(job: Job) -> Result<()> {
    if job.opts.budget < 1 {
        return Err(Error::Usage(format!("--budget must be at least 1, not {}", job.opts.budget)));
    }
    // Two independent files, read and parsed on two threads (a tenth of a 100k-path run).
    let (closure, pop) = std::thread::scope(|scope| {
        let pop = scope.spawn(|| match &job.pop {
            Some(p) => Popularity::load(p),
            None => Ok(Popularity::none()),
        });
        let closure = match &job.graph_bytes {
            Some(bytes) => Closure::parse(&job.graph, bytes),
            None => Closure::load(&job.graph),
        };
        (closure, pop.join().expect("popularity thread"))
    });
    let (closure, pop) = (closure?, pop?);
    eprintln!(
        "grouping {} paths ({}, {} roots) from {} into at most {} layers, strategy {}",
        closure.len(),
        layering::human_size(closure.total_size()),
        closure.roots.len(),
        job.graph.display(),
        job.opts.budget,
        job.strategy.name()
    );
    let layers = layering::group(&closure, &pop, job.strategy, &job.opts)?;
    let table = layering::explain(&closure, &layers);
    if job.explain_stderr {
        eprint!("{table}");
    }
    if let Some(p) = &job.explain_to {
        write_output(p, table.as_bytes())?;
    }
    write_output(&job.out, &layering::to_json(&closure, &layers))?;
    if job.out != Path::new("-") {
        eprintln!("wrote {} layers to {}", layers.len(), job.out.display());
    }
    // The process ends here: freeing a 100k-path graph string by string would cost a tenth of
    // the run, and the kernel reclaims it at once.
    std::mem::forget(closure);
    Ok(())
}
