//! `layer-eval`: judge layering strategies on any closure, and make synthetic closures.
//!
//! `layer-eval measure --graph FILE [--pop FILE] --budget N` prints, for each strategy, the bytes
//! re-pulled after an update (blob and chain level), registry storage across a family of images,
//! and the floor (see the library's `research::evaluate` module). `layer-eval generate --paths N` writes a
//! nixpkgs-shaped closure graph in the `.attrs.json` shape, and `--pop FILE` a popularity file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use nix_image_layers::error::Error;
use nix_image_layers::graph::Closure;
use nix_image_layers::layering::{Options, Strategy};
use nix_image_layers::output::write_output;
use nix_image_layers::popularity::Popularity;
use nix_image_layers::research::evaluate::{self, Family, Plan};
use nix_image_layers::research::synth;

#[derive(Parser)]
#[command(version, about = "Generate synthetic closures and judge layerings")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Re-pull after updates, registry storage and the floor, for each strategy, as a Markdown table
    Measure {
        /// Closure graph in the `.attrs.json` shape (what group-layers reads)
        #[arg(long)]
        graph: PathBuf,
        /// Popularity data in Nixery's format
        #[arg(long, visible_alias = "pop")]
        popularity: Option<PathBuf>,
        /// Most layers (group-layers' --budget)
        #[arg(long, default_value_t = 95)]
        budget: usize,
        /// Strategies to compare (repeat the flag) [default: all]
        #[arg(long, value_parser = PossibleValuesParser::new(Strategy::ALL.map(Strategy::name)).map(|s| s.parse::<Strategy>().expect("a listed name")))]
        strategy: Vec<Strategy>,
        /// Packages whose update is simulated (sampled; all if the closure is smaller)
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Images in the family used to measure storage
        #[arg(long, default_value_t = 20)]
        images: usize,
        /// Seed for the sampling
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How the storage family's images choose their roots
        #[arg(long, default_value = "packages", value_parser = PossibleValuesParser::new(Family::ALL.map(Family::name)).map(|s| Family::ALL.into_iter().find(|f| f.name() == s).expect("a listed name")))]
        family: Family,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Write a synthetic nixpkgs-shaped closure graph (the `.attrs.json` shape)
    Generate {
        /// Number of store paths
        #[arg(long)]
        paths: usize,
        /// Seed: the same seed gives the same graph everywhere
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the graph; `-` is stdout
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// Also write popularity data (Nixery's format) counted over the graph to this file
        #[arg(long, visible_alias = "pop")]
        popularity: Option<PathBuf>,
        /// Share of popular names the popularity file keeps (real data is always partial)
        #[arg(long, default_value_t = 0.6)]
        coverage: f64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layer-eval: error: {}", nix_image_layers::error::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> nix_image_layers::Result<()> {
    match cli.command {
        Command::Measure { graph, popularity, budget, strategy, samples, images, seed, family, json } => {
            for (flag, value) in [("--budget", budget), ("--samples", samples), ("--images", images)] {
                if value == 0 {
                    return Err(Error::Usage(format!("{flag} must be at least 1, not 0")));
                }
            }
            let closure = Closure::load(&graph)?;
            let pop = match popularity {
                Some(p) => Popularity::load(&p)?,
                None => Popularity::none(),
            };
            let strategies = if strategy.is_empty() {
                Strategy::ALL.to_vec()
            } else {
                strategy
            };
            let plan = Plan { samples, images, seed, family };
            eprintln!("{}: {} paths, budget {budget}, {samples} updates, {images} images", graph.display(), closure.len());
            // The table is printed whole at the end: an error half-way leaves no table that looks done.
            let start = std::time::Instant::now();
            let reports = evaluate::evaluate(&closure, &pop, &strategies, &Options::with_budget(budget), &plan)?;
            eprintln!("measured {} strategies in {:.1} s", reports.len(), start.elapsed().as_secs_f64());
            if json {
                println!("{}", serde_json::to_string_pretty(&reports).expect("reports serialise"));
            } else {
                println!("{}", evaluate::MARKDOWN_HEADER);
                reports.iter().for_each(|r| println!("{}", evaluate::markdown_row(r)));
            }
            Ok(())
        }
        Command::Generate { paths, seed, out, popularity, coverage } => {
            if paths == 0 {
                return Err(Error::Usage("--paths must be at least 1, not 0".into()));
            }
            if !(0.0..=1.0).contains(&coverage) {
                return Err(Error::Usage(format!("--coverage is a share between 0 and 1, not {coverage}")));
            }
            let closure = synth::generate(&synth::Shape::nixpkgs(paths, seed));
            write_output(&out, &serde_json::to_vec(&closure.to_attrs_json()).expect("graph serialises"))?;
            if let Some(p) = popularity {
                let counts = synth::popularity(&closure, coverage, seed);
                write_output(&p, &serde_json::to_vec(&counts.to_json()).expect("popularity serialises"))?;
            }
            eprintln!("generated {} paths ({} roots), seed {seed}", closure.len(), closure.roots.len());
            Ok(())
        }
    }
}
