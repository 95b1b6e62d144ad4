//! `layer-hash`: the byte work of an image: layer tarballs hashed in one pass, the image config
//! and the registry manifest.
//!
//! Its input is one enum, [`Mode`]: a subcommand from a shell, or, run as a Nix builder with no
//! arguments, the structured attribute `mode` and that mode's attributes, read into the same
//! enum. All the work is in the library (`tarball`, `digest`, `manifest`); this file gathers
//! inputs and reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, CommandFactory, Parser, Subcommand};
use nix_image_layers::attrs::{self, Attrs};
use nix_image_layers::digest::digest_file;
use nix_image_layers::layering::human_size;
use nix_image_layers::accounts::{self, Group, User};
use nix_image_layers::compress::{Compression, LayerDigests};
use nix_image_layers::created::Created;
use nix_image_layers::customisation::{self, Declarations, DirSpec};
use nix_image_layers::index;
use nix_image_layers::manifest::{self, BlobRecord, Format, ImageMeta};
use nix_image_layers::perms::PermSpec;
use nix_image_layers::referrers::Attachment;
use nix_image_layers::sbom::{Bom, Known, Subject};
use nix_image_layers::output::{read_file, write_output};
use nix_image_layers::tarball::{self, DEFAULT_MTIME};
use nix_image_layers::{Error, Result};

/// Write deterministic image layers hashed in one pass, and the image's config and manifest.
///
/// Run with no arguments inside a Nix build with `__structuredAttrs = true`, the attribute `mode`
/// names the subcommand below, and each of its flags and arguments is the attribute of its name
/// in camelCase (`paths`, `storeDir`, `imageConfig`, ...); files it writes (`out`, `record`,
/// `config`) are the derivation's outputs of those names.
#[derive(Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

/// What layer-hash does: one subcommand on the command line, one `mode` as a builder; each
/// mode's inputs are one struct that both front ends fill.
#[derive(Subcommand)]
enum Mode {
    /// Write the layer of some store paths and print its {"sha256", "md5", "size"}
    Layer(LayerArgs),
    /// Write the customisation layer: the symlinkJoin of CONTENTS at / (first listed wins)
    Customisation(CustomisationArgs),
    /// Write the image config and manifest-output.json from layer records, bottom layer first
    Manifest(ManifestArgs),
    /// Lay an image out in skopeo's dir: format (manifest.json, version, blobs as symlinks)
    Layout(LayoutArgs),
    /// Lay an image out as an OCI image layout (oci-layout, index.json, blobs as symlinks)
    OciLayout(OciLayoutArgs),
    /// Write an executable that streams the image as a `docker load` archive (see load-archive)
    LoadScript(LoadScriptArgs),
    /// Write the `docker load` archive of the image a load-script names (run by the script)
    LoadArchive(LoadArchiveArgs),
    /// Write the index (or Docker manifest list) of images of several platforms, and its dir: layout
    Index(IndexArgs),
    /// Lay an index out as an OCI image layout (index.json naming the index, tagged)
    IndexOciLayout(IndexOciLayoutArgs),
    /// Write the image's SBOMs (SPDX 2.3 and CycloneDX 1.6) from its closure graph into a directory
    Sbom(SbomArgs),
    /// Write TEXT to a file (so that even an error result needs no stdenv)
    Text(TextArgs),
    /// Write [{size, sha256, md5, path}] of existing files
    Hash(HashArgs),
}

/// Where a layer's blob and record go, and how it is written: the same for both kinds of layer.
/// As a builder it is read from the same attributes as the rest of the mode's inputs, but on its
/// own (see [`Mode::from_attrs`]): serde's `flatten` would lose the attribute names in errors.
#[derive(Args, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BlobArgs {
    /// The tarball to write
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also write the layer's record {size, sha256, md5, path} to this file
    #[arg(long, value_name = "FILE")]
    #[serde(default)]
    record: Option<PathBuf>,
    /// How the layer is stored: none (the tar itself, as Nixery (2019)), gzip or zstd
    #[arg(long, default_value = "gzip")]
    #[serde(default)]
    compression: Compression,
    /// The mtime of every entry, in seconds since the epoch
    #[arg(long, default_value_t = DEFAULT_MTIME)]
    #[serde(default = "default_mtime")]
    mtime: u64,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerArgs {
    #[command(flatten)]
    #[serde(skip)]
    blob: BlobArgs,
    /// The store directory [default: $NIX_STORE_DIR, else /nix/store]
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    store_dir: Option<PathBuf>,
    /// Owner and mode for store contents, as JSON: [{"path", "regex", "mode", "uid", "gid"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    perms: Json<Vec<PermSpec>>,
    /// Store paths to pack (direct children of the store directory)
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomisationArgs {
    #[command(flatten)]
    #[serde(skip)]
    blob: BlobArgs,
    /// Accounts for /etc/passwd and /etc/shadow, as JSON: [{"name", "uid", "gid", "home", "shell", "description"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    users: Json<Vec<User>>,
    /// Groups for /etc/group, as JSON: [{"name", "gid", "members"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    groups: Json<Vec<Group>>,
    /// Directories to create, as JSON: [{"path", "mode", "uid", "gid"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    dirs: Json<Vec<DirSpec>>,
    /// Top-level contents of the image, in priority order
    #[serde(default)]
    contents: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestArgs {
    /// Where manifest-output.json goes; `-` is stdout
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Where the image config goes
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The config's path as layerLocations should name it [default: --config, made absolute]
    #[arg(long, value_name = "PATH")]
    #[serde(default)]
    config_path: Option<String>,
    /// The Nix system of the image (x86_64-linux, aarch64-linux, ...)
    #[arg(long, value_name = "SYSTEM")]
    image_system: String,
    /// The manifest format, which decides the media types: docker (Docker Image Manifest V2
    /// schema 2) or oci; zstd layers need oci
    #[arg(long, default_value = "docker")]
    #[serde(default)]
    format: Format,
    /// The image config's `config` object as JSON (Cmd, Env, ...)
    #[arg(long, value_name = "JSON", default_value = "{}")]
    #[serde(default)]
    image_config: ImageConfig,
    /// The config's `created`: RFC 3339, or seconds since the epoch [default: none, as Nixery (2019)]
    #[arg(long, value_name = "TIME")]
    #[serde(default)]
    created: Option<Created>,
    /// Each layer's history entry (`created_by`), bottom first: once per layer, or not at all
    #[arg(long = "history", value_name = "TEXT")]
    #[serde(default)]
    history: Vec<String>,
    /// OCI manifest annotations, as a JSON object of strings
    #[arg(long, value_name = "JSON", default_value = "{}")]
    #[serde(default)]
    annotations: Json<BTreeMap<String, String>>,
    /// Files holding a layer record {size, sha256, md5, path}, or a list of them
    #[arg(required = true)]
    layers: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutArgs {
    /// manifest-output.json of the image
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
    /// The directory to create
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayoutArgs {
    /// manifest-output.json of the image
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
    /// The tag, as index.json's org.opencontainers.image.ref.name
    #[arg(long)]
    tag: String,
    /// A directory of SBOMs (spdx.json, cyclonedx.json) to attach as artifacts whose subject is the image
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    sbom: Option<PathBuf>,
    /// The directory to create
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// What a load script holds after its `#!` line: the image and the name it loads as.
#[derive(Args, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadScriptArgs {
    /// manifest-output.json of the image
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
    /// The repository name the image loads as (`name` of build-image.nix)
    #[arg(long)]
    image_name: String,
    /// The tag it loads as
    #[arg(long)]
    tag: String,
    /// The script to write
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing)]
    out: PathBuf,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadArchiveArgs {
    /// Where the archive goes; `-` is stdout
    #[arg(long, value_name = "FILE", default_value = "-")]
    #[serde(default = "stdout")]
    out: PathBuf,
    /// A script load-script wrote (the kernel passes it when the script runs)
    script: PathBuf,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexArgs {
    /// Where the index goes
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also lay the index out in skopeo's dir: format in this new directory
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    layout: Option<PathBuf>,
    /// Each image's manifest-output.json (one format, distinct platforms)
    #[arg(required = true)]
    manifests: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexOciLayoutArgs {
    /// The tag, as index.json's org.opencontainers.image.ref.name
    #[arg(long)]
    tag: String,
    /// The directory to create
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Each image's manifest-output.json (OCI format, distinct platforms)
    #[arg(required = true)]
    manifests: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SbomArgs {
    /// Structured attributes with `exportReferencesGraph.graph` (the roots) and Nix's `graph`
    /// [builder: its own attributes file]
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    graph: PathBuf,
    /// The image name the documents describe
    #[arg(long)]
    image_name: String,
    /// The documents' creation time: RFC 3339, or seconds since the epoch
    #[arg(long, value_name = "TIME", default_value = "1")]
    #[serde(default = "epoch_start")]
    created: Created,
    /// What evaluation knows of store paths, as JSON: {"/nix/store/...": {"licenses": [{"spdxId", "name"}], "purls": [...]}}
    #[arg(long, value_name = "JSON", default_value = "{}")]
    #[serde(default)]
    meta: Json<BTreeMap<String, Known>>,
    /// The directory to create, with spdx.json and cyclonedx.json
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn epoch_start() -> Created {
    Created::Epoch(DEFAULT_MTIME)
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TextArgs {
    /// The file to write; `-` is stdout
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    text: String,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashArgs {
    /// Where the records go; `-` is stdout
    #[arg(long, value_name = "FILE", default_value = "-")]
    #[serde(default = "stdout")]
    out: PathBuf,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl Mode {
    /// The mode a builder's attribute `mode` names (a subcommand's name), with its inputs.
    fn from_attrs(a: &Attrs) -> Result<Mode> {
        #[derive(serde::Deserialize)]
        struct Tag {
            mode: String,
        }
        Ok(match a.input::<Tag>()?.mode.as_str() {
            "layer" => Mode::Layer(LayerArgs { blob: a.input()?, ..a.input()? }),
            "customisation" => Mode::Customisation(CustomisationArgs { blob: a.input()?, ..a.input()? }),
            "manifest" => Mode::Manifest(a.input()?),
            "layout" => Mode::Layout(a.input()?),
            "oci-layout" => Mode::OciLayout(a.input()?),
            "load-script" => Mode::LoadScript(a.input()?),
            "load-archive" => Mode::LoadArchive(a.input()?),
            "index" => Mode::Index(a.input()?),
            "index-oci-layout" => Mode::IndexOciLayout(a.input()?),
            "sbom" => Mode::Sbom(SbomArgs { graph: a.path().to_path_buf(), ..a.input()? }),
            "text" => Mode::Text(a.input()?),
            "hash" => Mode::Hash(a.input()?),
            other => {
                let known: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
                return Err(Error::Invalid { path: a.path().to_path_buf(), what: format!("attribute `mode` is `{other}`; expected one of {}", known.join(", ")) });
            }
        })
    }
}

fn default_mtime() -> u64 {
    DEFAULT_MTIME
}

fn stdout() -> PathBuf {
    PathBuf::from("-")
}

/// A structured input: JSON text on the command line, the attribute's value as a builder.
#[derive(Clone, Default)]
struct Json<T>(T);

impl<T: serde::de::DeserializeOwned> std::str::FromStr for Json<T> {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Json<T>, String> {
        serde_json::from_str(text).map(Json).map_err(|e| e.to_string())
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Json<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Json<T>, D::Error> {
        T::deserialize(d).map(Json)
    }
}

/// The image config's `config` object: JSON text on the command line, an attribute set as a
/// builder; an object either way.
#[derive(Clone, Default)]
struct ImageConfig(serde_json::Map<String, serde_json::Value>);

impl std::str::FromStr for ImageConfig {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<ImageConfig, String> {
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(m)) => Ok(ImageConfig(m)),
            _ => Err(format!("expected a JSON object, got {text}")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ImageConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<ImageConfig, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Object(m) => Ok(ImageConfig(m)),
            other => Err(serde::de::Error::custom(format!("should be an attribute set (a JSON object), not {other}"))),
        }
    }
}

fn main() -> ExitCode {
    let mode = if std::env::args_os().len() == 1 && attrs::present() {
        Attrs::load(&attrs::default_path()).and_then(|a| Mode::from_attrs(&a))
    } else {
        Ok(Cli::parse().mode)
    };
    match mode.and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layer-hash: error: {}", nix_image_layers::error::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn run(mode: Mode) -> Result<()> {
    match mode {
        Mode::Layer(LayerArgs { blob, store_dir, perms, paths }) => {
            if paths.is_empty() {
                return Err(Error::Usage("no store paths to pack (argument PATHS, attribute `paths`): a layer needs store paths".into()));
            }
            let store = tarball::store_dir(store_dir.as_deref());
            let d = store_layer(&blob, &store, &paths, &perms.0)?;
            finish_layer(&blob, d)
        }
        Mode::Customisation(CustomisationArgs { blob, users, groups, dirs, contents }) => {
            let declarations = Declarations { dirs: dirs.0, files: accounts::files(&users.0, &groups.0)? };
            let d = customisation_layer(&blob, &contents, &declarations)?;
            finish_layer(&blob, d)
        }
        Mode::Manifest(args) => write_manifest(args),
        Mode::Layout(LayoutArgs { manifest, out }) => layout(&manifest, &out),
        Mode::OciLayout(OciLayoutArgs { manifest, tag, sbom, out }) => {
            let output = read_manifest_output(&manifest)?;
            let attachments: Vec<Attachment> = sbom
                .iter()
                .flat_map(|dir| {
                    [("application/spdx+json", "spdx.json"), ("application/vnd.cyclonedx+json", "cyclonedx.json")]
                        .map(|(t, f)| Attachment { artifact_type: t.into(), file: dir.join(f), title: f.into() })
                })
                .collect();
            nix_image_layers::archive::write_oci_layout(&out, &output, &tag, &attachments)?;
            eprintln!(
                "laid out {} blobs in {} (OCI image layout, tag {tag}; {} documents attached)",
                output.manifest.layers.len() + 2,
                out.display(),
                attachments.len()
            );
            Ok(())
        }
        Mode::LoadScript(args) => load_script(&args),
        Mode::LoadArchive(LoadArchiveArgs { out, script }) => load_archive(&script, &out),
        Mode::Index(IndexArgs { out, layout, manifests }) => {
            let (format, images) = index::read_images(&manifests)?;
            let bytes = index::index_bytes(format, &images);
            if let Some(dir) = &layout {
                index::write_dir_layout(dir, &bytes, &images)?;
            }
            write_output(&out, &bytes)?;
            let platforms: Vec<String> = images.iter().map(|i| i.platform.to_string()).collect();
            eprintln!("wrote the {} of {} images ({})", index::index_media_type(format), images.len(), platforms.join(", "));
            Ok(())
        }
        Mode::IndexOciLayout(IndexOciLayoutArgs { tag, out, manifests }) => {
            let (format, images) = index::read_images(&manifests)?;
            if format != Format::Oci {
                return Err(Error::Usage("an OCI image layout of an index needs images of the OCI format (format = \"oci\")".into()));
            }
            index::write_oci_layout(&out, &index::index_bytes(format, &images), &images, &tag)?;
            eprintln!("laid out the index of {} images in {} (OCI image layout, tag {tag})", images.len(), out.display());
            Ok(())
        }
        Mode::Sbom(args) => sbom(args),
        Mode::Text(TextArgs { out, text }) => write_output(&out, text.as_bytes()),
        Mode::Hash(HashArgs { out, files }) => {
            let records = files
                .iter()
                .map(|f| Ok(BlobRecord::new(digest_file(f)?, f.display().to_string())))
                .collect::<Result<Vec<_>>>()?;
            write_output(&out, &json_line(&records))
        }
    }
}

fn store_layer(blob: &BlobArgs, store: &Path, paths: &[PathBuf], perms: &[PermSpec]) -> Result<LayerDigests> {
    let start = Instant::now();
    let rules = if perms.is_empty() { String::new() } else { format!(", {} perms rules", perms.len()) };
    eprintln!("packing {} store paths into {} ({}{rules})", paths.len(), blob.out.display(), blob.compression.name());
    let d = tarball::pack_store_layer(&blob.out, store, paths, perms, blob.mtime, blob.compression)?;
    log_done(&blob.out, &d, start);
    Ok(d)
}

fn customisation_layer(blob: &BlobArgs, contents: &[PathBuf], declarations: &Declarations) -> Result<LayerDigests> {
    let start = Instant::now();
    let (d, report) = customisation::pack_customisation_layer(&blob.out, contents, declarations, blob.mtime, blob.compression)?;
    for c in &report.conflicts {
        eprintln!("warning: customisation layer: {c}");
    }
    eprintln!(
        "linked {} packages at /: {} symlinks in {} directories, {} conflicts; {} declared files and directories",
        contents.len(),
        report.links,
        report.dirs,
        report.conflicts.len(),
        report.declared
    );
    log_done(&blob.out, &d, start);
    Ok(d)
}

fn log_done(out: &Path, d: &LayerDigests, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} ({}) sha256:{} in {:.2} s ({:.0} MB/s)",
        out.display(),
        human_size(d.blob.size),
        d.blob.sha256,
        secs,
        d.blob.size as f64 / secs.max(1e-9) / 1e6
    );
}

/// Writes the layer's record, if asked, and prints its {"sha256", "md5", "size"} (and, when
/// compressed, "diffId"): one line of JSON.
fn finish_layer(blob: &BlobArgs, d: LayerDigests) -> Result<()> {
    let record = BlobRecord::of_layer(d, blob.compression, absolute(&blob.out)?.display().to_string());
    if let Some(record_file) = &blob.record {
        write_output(record_file, &manifest::to_json(&record))?;
    }
    #[derive(serde::Serialize)]
    struct Printed<'a> {
        sha256: &'a str,
        md5: &'a str,
        size: u64,
        #[serde(rename = "diffId", skip_serializing_if = "Option::is_none")]
        diff_id: Option<&'a str>,
    }
    print_json(&Printed { sha256: &record.sha256, md5: &record.md5, size: record.size, diff_id: record.diff_id.as_deref() })
}

/// An output's absolute path, as records and layerLocations name files.
fn absolute(out: &Path) -> Result<PathBuf> {
    std::path::absolute(out).map_err(|source| Error::Write { path: out.to_path_buf(), source })
}

fn read_manifest_output(manifest_file: &Path) -> Result<manifest::ManifestOutput> {
    serde_json::from_slice(&read_file(manifest_file)?).map_err(|source| Error::Json { path: manifest_file.to_path_buf(), source })
}

/// The script is `#!<this program> load-archive` and, on the next line, the image and name as
/// JSON: run, the kernel starts this program with the script's path, and nothing else is needed
/// (no shell), nothing copied into the store.
fn load_script(args: &LoadScriptArgs) -> Result<()> {
    read_manifest_output(&args.manifest)?;
    let exe = std::env::current_exe().map_err(|source| Error::Read { path: "/proc/self/exe".into(), source })?;
    let mut text = format!("#!{} load-archive\n", exe.display()).into_bytes();
    text.extend(serde_json::to_vec(args).expect("serialises"));
    text.push(b'\n');
    write_output(&args.out, &text)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&args.out, std::fs::Permissions::from_mode(0o555)).map_err(|source| Error::Write { path: args.out.clone(), source })?;
    eprintln!("wrote {}: run it to stream {}:{} to docker load or podman load", args.out.display(), args.image_name, args.tag);
    Ok(())
}

fn load_archive(script: &Path, out: &Path) -> Result<()> {
    let text = read_file(script)?;
    let json = text.splitn(2, |&b| b == b'\n').nth(1).unwrap_or_default();
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Script {
        manifest: PathBuf,
        image_name: String,
        tag: String,
    }
    let s: Script = serde_json::from_slice(json).map_err(|source| Error::Json { path: script.to_path_buf(), source })?;
    let output = read_manifest_output(&s.manifest)?;
    let write = |file| nix_image_layers::archive::write_load_archive(file, &output, &s.image_name, &s.tag, &s.manifest);
    let bytes = if out == Path::new("-") {
        use std::os::fd::AsFd;
        let stdout = std::io::stdout().as_fd().try_clone_to_owned().map_err(|source| Error::Write { path: out.to_path_buf(), source })?;
        write(std::fs::File::from(stdout))?.0
    } else {
        // A file appears whole or not at all.
        let (staged, file) = nix_image_layers::output::Staged::create(out)?;
        let (bytes, file) = write(file)?;
        staged.commit(file)?;
        bytes
    };
    eprintln!("streamed {}:{} ({} layers, {})", s.image_name, s.tag, output.manifest.layers.len(), human_size(bytes));
    Ok(())
}

fn layout(manifest_file: &Path, out: &Path) -> Result<()> {
    let output = read_manifest_output(manifest_file)?;
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

fn write_manifest(args: ManifestArgs) -> Result<()> {
    let ManifestArgs { out, config, config_path, image_system, format, image_config, created, history, annotations, layers: record_files } = args;
    let config_path = match config_path {
        Some(p) => p,
        None => absolute(&config)?.display().to_string(),
    };
    let meta = ImageMeta { created: created.map(|c| c.rfc3339()).transpose()?, history, annotations: annotations.0 };
    let layers = read_records(&record_files)?;
    let config_bytes = manifest::image_config(&layers, &image_system, image_config.0, &meta)?;
    let output = manifest::manifest_output(&layers, &config_bytes, &config_path, format, &meta)?;
    write_output(&config, &config_bytes)?;
    write_output(&out, &manifest::to_json(&output))?;
    eprintln!("wrote the manifest of {} layers ({}) and the image config", layers.len(), human_size(layers.iter().map(|l| l.size).sum()));
    Ok(())
}

fn sbom(args: SbomArgs) -> Result<()> {
    let bom = Bom::read(&args.graph, &read_file(&args.graph)?, &args.meta.0)?;
    let subject = Subject { name: args.image_name, created: args.created.rfc3339()? };
    let (spdx, cyclonedx) = (bom.spdx(&subject)?, bom.cyclonedx(&subject)?);
    nix_image_layers::output::new_dir(&args.out, |werr| {
        let (s, c) = (args.out.join("spdx.json"), args.out.join("cyclonedx.json"));
        std::fs::write(&s, &spdx).map_err(werr(s.clone()))?;
        std::fs::write(&c, &cyclonedx).map_err(werr(c.clone()))
    })?;
    let edges: usize = bom.packages.iter().map(|p| p.references.len()).sum();
    eprintln!(
        "wrote the SBOMs of {} ({} packages, {} roots, {} dependency edges, {} with licenses) to {}",
        subject.name,
        bom.packages.len(),
        bom.roots.len(),
        edges,
        bom.packages.iter().filter(|p| !p.licenses.is_empty()).count(),
        args.out.display()
    );
    Ok(())
}

/// Prints a value as one line of JSON.
fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    write_output(Path::new("-"), &json_line(v))
}

fn json_line<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(v).expect("serialises");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand is a builder mode of the same name: no mode exists in one front end only.
    #[test]
    fn every_subcommand_is_a_builder_mode() {
        let d = tempfile::tempdir().unwrap();
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            let path = d.path().join("attrs.json");
            std::fs::write(&path, format!(r#"{{"mode": "{name}"}}"#)).unwrap();
            let a = Attrs::load(&path).unwrap();
            // Missing attributes, but a known mode: the error names an attribute, not the mode.
            let e = Mode::from_attrs(&a).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!e.contains("attribute `mode`"), "{name}: {e}");
        }
    }
}
