//! `layer-eval`: synthetic closures for benchmarks and tests.
//!
//! `layer-eval generate --paths N --seed S --out FILE` writes a nixpkgs-shaped closure graph in
//! the `.attrs.json` shape, and `--pop FILE` a matching popularity file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nix_image_layers::output::write_output;
use nix_image_layers::synth;

#[derive(Parser)]
#[command(version, about = "Generate synthetic closures and judge layerings")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(long)]
        pop: Option<PathBuf>,
        /// Share of popular names the popularity file keeps (real data is always partial)
        #[arg(long, default_value_t = 0.6)]
        coverage: f64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layer-eval: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> nix_image_layers::Result<()> {
    match cli.command {
        Command::Generate { paths, seed, out, pop, coverage } => {
            let closure = synth::generate(&synth::Shape::nixpkgs(paths, seed));
            write_output(&out, &serde_json::to_vec(&closure.to_attrs_json()).expect("graph serialises"))?;
            if let Some(p) = pop {
                let popularity = synth::popularity(&closure, coverage, seed);
                write_output(&p, &serde_json::to_vec(&popularity.to_json()).expect("popularity serialises"))?;
            }
            eprintln!("generated {} paths ({} roots), seed {seed}", closure.len(), closure.roots.len());
            Ok(())
        }
    }
}
