//! `layer-hash`: the byte work of an image: layer tarballs hashed in one pass, the image config
//! and the registry manifest.
//!
//! From a shell it has subcommands; run as a Nix builder with no arguments, it reads the
//! structured attribute `mode` (`layer`, `customisation` or `manifest`) and that mode's inputs.
//! All the work is in the library (`tarball`, `digest`, `manifest`); this file gathers inputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use nix_image_layers::attrs::{self, Attrs};
use nix_image_layers::digest::{Digests, digest_file};
use nix_image_layers::layering::human_size;
use nix_image_layers::manifest::{self, BlobRecord};
use nix_image_layers::output::{read_file, write_output};
use nix_image_layers::tarball::{self, DEFAULT_MTIME};
use nix_image_layers::{Error, Result};

/// Write deterministic image layers hashed in one pass, and the image's config and manifest.
///
/// Run with no arguments inside a Nix build with `__structuredAttrs = true`, the attribute `mode`
/// chooses the work: `layer` (attribute `paths`; outputs `out`, the tarball, and `record`),
/// `customisation` (attribute `contents`; outputs `out` and `record`) or `manifest` (attributes
/// `layers`, a list of record files, `imageSystem` and optional `imageConfig`; outputs `out`,
/// manifest-output.json, and `config`), `layout` (attribute `manifest`; output `out`, a directory
/// in skopeo's dir: format) or `text` (attribute `text`, written to `out`). `mtime` and
/// `storeDir` are optional.
#[derive(Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the layer of some store paths and print its {"sha256", "md5", "size"}
    Layer {
        /// The tarball to write
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also write the layer's record {size, sha256, md5, path} to this file
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// The store directory [default: $NIX_STORE_DIR, else /nix/store]
        #[arg(long, value_name = "DIR")]
        store_dir: Option<PathBuf>,
        /// The mtime of every entry, in seconds since the epoch
        #[arg(long, default_value_t = DEFAULT_MTIME)]
        mtime: u64,
        /// Store paths to pack (direct children of the store directory)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write the customisation layer: the symlinkJoin of PATHS at / (first listed wins)
    Customisation {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        #[arg(long, default_value_t = DEFAULT_MTIME)]
        mtime: u64,
        /// Top-level contents of the image, in priority order
        paths: Vec<PathBuf>,
    },
    /// Write the image config and manifest-output.json from layer records, bottom layer first
    Manifest {
        /// Where manifest-output.json goes; `-` is stdout
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Where the image config goes
        #[arg(long, value_name = "FILE")]
        config_out: PathBuf,
        /// The config's path as layerLocations should name it [default: --config-out, made absolute]
        #[arg(long, value_name = "PATH")]
        config_path: Option<String>,
        /// The Nix system of the image (x86_64-linux, aarch64-linux, ...)
        #[arg(long)]
        system: String,
        /// The image config's `config` object as JSON (Cmd, Env, ...)
        #[arg(long, value_name = "JSON", default_value = "{}")]
        image_config: String,
        /// Files holding a layer record {size, sha256, md5, path}, or a list of them
        #[arg(required = true)]
        records: Vec<PathBuf>,
    },
    /// Lay an image out in skopeo's dir: format (manifest.json, version, blobs as symlinks)
    Layout {
        /// manifest-output.json of the image
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// The directory to create
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print [{size, sha256, md5, path}] for existing files
    Hash {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let result = if std::env::args_os().len() == 1 && attrs::present() { builder() } else { cli(Cli::parse()) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layer-hash: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cli(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Layer { out, record, store_dir, mtime, paths } => {
            let store = tarball::store_dir(store_dir.as_deref());
            let d = store_layer(&out, &store, &paths, mtime)?;
            finish_layer(&out, record.as_deref(), &d)?;
            print_json(&d)
        }
        Command::Customisation { out, record, mtime, paths } => {
            let d = customisation_layer(&out, &paths, mtime)?;
            finish_layer(&out, record.as_deref(), &d)?;
            print_json(&d)
        }
        Command::Manifest { out, config_out, config_path, system, image_config, records } => {
            let config_path = match config_path {
                Some(p) => p,
                None => std::path::absolute(&config_out).map_err(|source| Error::Write { path: config_out.clone(), source })?.display().to_string(),
            };
            let image_config = parse_image_config("--image-config", &image_config)?;
            write_manifest(&records, &system, image_config, &out, &config_out, &config_path)
        }
        Command::Layout { manifest, out } => layout(&manifest, &out),
        Command::Hash { files } => {
            let records = files
                .iter()
                .map(|f| Ok(BlobRecord::new(digest_file(f)?, f.display().to_string())))
                .collect::<Result<Vec<_>>>()?;
            print_json(&records)
        }
    }
}

fn builder() -> Result<()> {
    let a = Attrs::load(&attrs::default_path())?;
    let mtime = a.u64("mtime")?.unwrap_or(DEFAULT_MTIME);
    match a.required_string("mode")? {
        "layer" => {
            let store = tarball::store_dir(a.string("storeDir")?.map(Path::new));
            let out = a.required_output("out")?;
            let paths: Vec<PathBuf> = a.strings("paths")?.into_iter().map(PathBuf::from).collect();
            if paths.is_empty() {
                return Err(Error::Invalid { path: a.path().to_path_buf(), what: "attribute `paths` is empty: a layer needs store paths".into() });
            }
            let d = store_layer(&out, &store, &paths, mtime)?;
            finish_layer(&out, Some(&a.required_output("record")?), &d)
        }
        "customisation" => {
            let out = a.required_output("out")?;
            let contents: Vec<PathBuf> = a.strings("contents")?.into_iter().map(PathBuf::from).collect();
            let d = customisation_layer(&out, &contents, mtime)?;
            finish_layer(&out, Some(&a.required_output("record")?), &d)
        }
        "manifest" => {
            let records: Vec<PathBuf> = a.strings("layers")?.into_iter().map(PathBuf::from).collect();
            let config_out = a.required_output("config")?;
            let image_config = match a.get("imageConfig") {
                None => serde_json::Map::new(),
                Some(serde_json::Value::Object(m)) => m.clone(),
                Some(_) => return Err(Error::Invalid { path: a.path().to_path_buf(), what: "attribute `imageConfig` should be an attribute set".into() }),
            };
            let config_path = config_out.display().to_string();
            write_manifest(&records, a.required_string("imageSystem")?, image_config, &a.required_output("out")?, &config_out, &config_path)
        }
        "layout" => layout(Path::new(a.required_string("manifest")?), &a.required_output("out")?),
        // A file with given contents, so that even an error result needs no stdenv.
        "text" => write_output(&a.required_output("out")?, a.required_string("text")?.as_bytes()),
        other => Err(Error::Invalid {
            path: a.path().to_path_buf(),
            what: format!("attribute `mode` is `{other}`; expected layer, customisation, manifest, layout or text"),
        }),
    }
}

fn store_layer(out: &Path, store: &Path, paths: &[PathBuf], mtime: u64) -> Result<Digests> {
    let start = Instant::now();
    eprintln!("packing {} store paths into {}", paths.len(), out.display());
    let d = tarball::pack_store_layer(out, store, paths, mtime)?;
    log_done(out, &d, start);
    Ok(d)
}

fn customisation_layer(out: &Path, contents: &[PathBuf], mtime: u64) -> Result<Digests> {
    let start = Instant::now();
    let (d, report) = tarball::pack_customisation_layer(out, contents, mtime)?;
    for c in &report.conflicts {
        eprintln!("warning: customisation layer: {c}");
    }
    eprintln!("linked {} packages at /: {} symlinks in {} directories, {} conflicts", contents.len(), report.links, report.dirs, report.conflicts.len());
    log_done(out, &d, start);
    Ok(d)
}

fn log_done(out: &Path, d: &Digests, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} ({}) sha256:{} in {:.2} s ({:.0} MB/s)",
        out.display(),
        human_size(d.size),
        d.sha256,
        secs,
        d.size as f64 / secs.max(1e-9) / 1e6
    );
}

fn finish_layer(out: &Path, record_file: Option<&Path>, d: &Digests) -> Result<()> {
    if let Some(record_file) = record_file {
        let path = std::path::absolute(out).map_err(|source| Error::Write { path: out.to_path_buf(), source })?;
        let record = BlobRecord::new(d.clone(), path.display().to_string());
        write_output(record_file, &manifest::to_json(&record))?;
    }
    Ok(())
}

fn parse_image_config(origin: &str, text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(Error::Usage(format!("{origin}: expected a JSON object, got {text}"))),
    }
}

fn layout(manifest_file: &Path, out: &Path) -> Result<()> {
    let output: manifest::ManifestOutput = serde_json::from_slice(&read_file(manifest_file)?)
        .map_err(|source| Error::Json { path: manifest_file.to_path_buf(), source })?;
    manifest::write_dir_layout(out, &output)?;
    eprintln!("laid out {} blobs in {} (skopeo dir: format)", output.manifest.layers.len() + 1, out.display());
    Ok(())
}

/// Reads layer records, in order, from files holding one record or a list of them.
fn read_records(files: &[PathBuf]) -> Result<Vec<BlobRecord>> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(BlobRecord),
        Many(Vec<BlobRecord>),
    }
    let mut all = Vec::new();
    for f in files {
        match serde_json::from_slice(&read_file(f)?) {
            Ok(OneOrMany::One(r)) => all.push(r),
            Ok(OneOrMany::Many(rs)) => all.extend(rs),
            Err(_) => {
                return Err(Error::Invalid { path: f.clone(), what: "not a layer record {size, sha256, md5, path} or a list of them".into() });
            }
        }
    }
    Ok(all)
}

fn write_manifest(
    record_files: &[PathBuf],
    system: &str,
    image_config: serde_json::Map<String, serde_json::Value>,
    out: &Path,
    config_out: &Path,
    config_path: &str,
) -> Result<()> {
    let layers = read_records(record_files)?;
    let config = manifest::image_config(&layers, system, image_config)?;
    let output = manifest::manifest_output(&layers, &config, config_path);
    write_output(config_out, &config)?;
    write_output(out, &manifest::to_json(&output))?;
    eprintln!("wrote the manifest of {} layers ({}) and the image config", layers.len(), human_size(layers.iter().map(|l| l.size).sum()));
    Ok(())
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec(v).expect("serialises");
    bytes.push(b'\n');
    write_output(Path::new("-"), &bytes)
}
