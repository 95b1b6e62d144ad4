//! `layer-hash`'s input: one [`Mode`] (a subcommand) and its arguments, one struct per mode that
//! both front ends fill. From a shell, clap parses [`Cli`]; as a Nix builder run with no
//! arguments, [`Mode::from_attrs`] reads the structured attribute `mode` and that mode's
//! attributes, each flag's attribute named in camelCase.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::accounts::{Group, User};
use crate::attrs::Attrs;
use crate::compress::Compression;
use crate::created::Created;
use crate::customisation::DirSpec;
use crate::error::{Error, Result};
use crate::manifest::Format;
use crate::perms::PermSpec;
use crate::sbom::Known;
use crate::tarball::DEFAULT_MTIME;

/// Write deterministic image layers hashed in one pass, and the image's config and manifest.
///
/// Run with no arguments inside a Nix build with `__structuredAttrs = true`, the attribute `mode`
/// names the subcommand below, and each of its flags and arguments is the attribute of its name
/// in camelCase (`paths`, `storeDir`, `imageConfig`, ...); files it writes (`out`, `record`,
/// `config`) are the derivation's outputs of those names.
#[derive(Parser)]
#[command(version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

/// What layer-hash does: one subcommand on the command line, one `mode` as a builder; each
/// mode's inputs are one struct that both front ends fill.
#[derive(Subcommand)]
pub enum Mode {
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
pub struct BlobArgs {
    /// The tarball to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the layer's record {size, sha256, md5, path} to this file
    #[arg(long, value_name = "FILE")]
    #[serde(default)]
    pub record: Option<PathBuf>,
    /// How the layer is stored: none (the tar itself, as Nixery (2019)), gzip or zstd
    #[arg(long, default_value = "gzip")]
    #[serde(default)]
    pub compression: Compression,
    /// The mtime of every entry, in seconds since the epoch
    #[arg(long, default_value_t = DEFAULT_MTIME)]
    #[serde(default = "default_mtime")]
    pub mtime: u64,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub blob: BlobArgs,
    /// The store directory [default: $NIX_STORE_DIR, else /nix/store]
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    pub store_dir: Option<PathBuf>,
    /// Owner and mode for store contents, as JSON: [{"path", "regex", "mode", "uid", "gid"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    pub perms: Json<Vec<PermSpec>>,
    /// Store paths to pack (direct children of the store directory)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomisationArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub blob: BlobArgs,
    /// Accounts for /etc/passwd and /etc/shadow, as JSON: [{"name", "uid", "gid", "home", "shell", "description"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    pub users: Json<Vec<User>>,
    /// Groups for /etc/group, as JSON: [{"name", "gid", "members"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    pub groups: Json<Vec<Group>>,
    /// Directories to create, as JSON: [{"path", "mode", "uid", "gid"}]
    #[arg(long, value_name = "JSON", default_value = "[]")]
    #[serde(default)]
    pub dirs: Json<Vec<DirSpec>>,
    /// Top-level contents of the image, in priority order
    #[serde(default)]
    pub contents: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestArgs {
    /// Where manifest-output.json goes; `-` is stdout
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where the image config goes
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The config's path as layerLocations should name it [default: --config, made absolute]
    #[arg(long, value_name = "PATH")]
    #[serde(default)]
    pub config_path: Option<String>,
    /// The Nix system of the image (x86_64-linux, aarch64-linux, ...)
    #[arg(long, value_name = "SYSTEM")]
    pub image_system: String,
    /// The manifest format, which decides the media types: docker (Docker Image Manifest V2
    /// schema 2) or oci; zstd layers need oci
    #[arg(long, default_value = "docker")]
    #[serde(default)]
    pub format: Format,
    /// The image config's `config` object as JSON (Cmd, Env, ...)
    #[arg(long, value_name = "JSON", default_value = "{}")]
    #[serde(default)]
    pub image_config: ImageConfig,
    /// The config's `created`: RFC 3339, or seconds since the epoch [default: none, as Nixery (2019)]
    #[arg(long, value_name = "TIME")]
    #[serde(default)]
    pub created: Option<Created>,
    /// Each layer's history entry (`created_by`), bottom first: once per layer, or not at all
    #[arg(long = "history", value_name = "TEXT")]
    #[serde(default)]
    pub history: Vec<String>,
    /// OCI manifest annotations, as a JSON object of strings
    #[arg(long, value_name = "JSON", default_value = "{}")]
    #[serde(default)]
    pub annotations: Json<BTreeMap<String, String>>,
    /// Files holding a layer record {size, sha256, md5, path}, or a list of them
    #[arg(required = true)]
    pub layers: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutArgs {
    /// manifest-output.json of the image
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// The directory to create
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciLayoutArgs {
    /// manifest-output.json of the image
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// The tag, as index.json's org.opencontainers.image.ref.name
    #[arg(long)]
    pub tag: String,
    /// A directory of SBOMs (spdx.json, cyclonedx.json) to attach as artifacts whose subject is the image
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    pub sbom: Option<PathBuf>,
    /// The directory to create
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// The image and the name a load script loads it as ([`crate::archive::LoadScript`]).
#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadScriptArgs {
    /// manifest-output.json of the image
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// The repository name the image loads as (`name` of build-image.nix)
    #[arg(long)]
    pub image_name: String,
    /// The tag it loads as
    #[arg(long)]
    pub tag: String,
    /// The script to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadArchiveArgs {
    /// Where the archive goes; `-` is stdout
    #[arg(long, value_name = "FILE", default_value = "-")]
    #[serde(default = "stdout")]
    pub out: PathBuf,
    /// A script load-script wrote (the kernel passes it when the script runs)
    pub script: PathBuf,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexArgs {
    /// Where the index goes
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also lay the index out in skopeo's dir: format in this new directory
    #[arg(long, value_name = "DIR")]
    #[serde(default)]
    pub layout: Option<PathBuf>,
    /// Each image's manifest-output.json (one format, distinct platforms)
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexOciLayoutArgs {
    /// The tag, as index.json's org.opencontainers.image.ref.name
    #[arg(long)]
    pub tag: String,
    /// The directory to create
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Each image's manifest-output.json (OCI format, distinct platforms)
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomArgs {
    /// Structured attributes with `exportReferencesGraph.graph` (the roots) and Nix's `graph`
    /// [builder: its own attributes file]
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub graph: PathBuf,
    /// The image name the documents describe
    #[arg(long)]
    pub image_name: String,
    /// The documents' creation time: RFC 3339, or seconds since the epoch
    #[arg(long, value_name = "TIME", default_value = "1")]
    #[serde(default = "epoch_start")]
    pub created: Created,
    /// What evaluation knows of store paths, as JSON: {"/nix/store/...": {"licenses": [{"spdxId", "name"}], "purls": [...]}}
    #[arg(long, value_name = "JSON", default_value = "{}")]
    #[serde(default)]
    pub meta: Json<BTreeMap<String, Known>>,
    /// The directory to create, with spdx.json and cyclonedx.json
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

fn epoch_start() -> Created {
    Created::Epoch(DEFAULT_MTIME)
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextArgs {
    /// The file to write; `-` is stdout
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    pub text: String,
}

#[derive(Args, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashArgs {
    /// Where the records go; `-` is stdout
    #[arg(long, value_name = "FILE", default_value = "-")]
    #[serde(default = "stdout")]
    pub out: PathBuf,
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

impl Mode {
    /// The mode a builder's attribute `mode` names (a subcommand's name), with its inputs.
    pub fn from_attrs(a: &Attrs) -> Result<Mode> {
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
pub struct Json<T>(pub T);

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
pub struct ImageConfig(pub serde_json::Map<String, serde_json::Value>);

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
