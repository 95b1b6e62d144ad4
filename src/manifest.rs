//! The image config and the registry manifest; without a creation time, history or annotations,
//! with uncompressed layers and Docker's format, in the exact format of Nixery (2019).
//!
//! Nixery (2019) built both with Nix's `builtins.toJSON`, which sorts object keys and writes no
//! whitespace; registries and Nixery-style servers hash these bytes, so ours are the same bytes:
//! every object below declares its fields in sorted order and is written compactly.
//!
//! - The config has `architecture` (from the Nix system), `config` (empty unless given:
//!   Kubernetes needs it present), `created` and `history` (one entry per layer) when
//!   [`ImageMeta`] gives them (build-image.nix always does), `os` `linux`, `rootfs` with the
//!   layers' `diff_ids` (the sha256 of each layer's tar stream: for uncompressed layers, their
//!   digests) and, for 32-bit ARM, `variant`.
//! - `manifest-output.json` is `{"layerLocations": {...}, "manifest": {...}}`: the manifest in
//!   the [`Format`] asked for (Docker Image Manifest V2 schema 2, or the OCI image manifest,
//!   which differ in media types and OCI's annotations), and for every blob (the config too) the
//!   store file that holds it and its base64 md5, keyed by bare hex digest, so a server can serve
//!   blobs straight from the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compress::{Compression, LayerDigests};
use crate::digest::{Digests, digest_bytes};
use crate::error::{Error, Result};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// The manifest format, which decides the media types: Docker Image Manifest V2 schema 2, or the
/// OCI image manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Docker,
    Oci,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Docker, Format::Oci];

    pub fn name(self) -> &'static str {
        match self {
            Format::Docker => "docker",
            Format::Oci => "oci",
        }
    }

    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Docker => MANIFEST_MEDIA_TYPE,
            Format::Oci => OCI_MANIFEST_MEDIA_TYPE,
        }
    }

    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Docker => CONFIG_MEDIA_TYPE,
            Format::Oci => OCI_CONFIG_MEDIA_TYPE,
        }
    }

    /// The media type of a layer stored with `compression`; Docker's types cannot name zstd.
    pub fn layer_media_type(self, compression: Compression) -> Result<String> {
        Ok(match (self, compression) {
            (Format::Docker, Compression::None) => LAYER_MEDIA_TYPE.to_string(),
            (Format::Docker, Compression::Gzip) => format!("{LAYER_MEDIA_TYPE}.gzip"),
            (Format::Docker, Compression::Zstd) => {
                return Err(Error::Usage(
                    "Docker's manifest format has no media type for zstd layers: use the OCI format (format = \"oci\") for zstd".into(),
                ));
            }
            (Format::Oci, Compression::None) => OCI_LAYER_MEDIA_TYPE.to_string(),
            (Format::Oci, c) => format!("{OCI_LAYER_MEDIA_TYPE}+{}", c.name()),
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Format, String> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| format!("unknown format `{s}`; expected docker or oci"))
    }
}

/// A blob in the store with its digests: what `layer-hash hash` prints and what each layer
/// derivation records next to its blob. Field order is that of Nixery (2019) (`jq` kept insertion
/// order); a compressed layer's record adds its compression and the digest of its tar stream, and
/// an uncompressed one's is exactly the record of Nixery (2019).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    pub sha256: String,
    pub md5: String,
    pub path: String,
    #[serde(skip_serializing_if = "is_none", default = "uncompressed")]
    pub compression: Compression,
    /// Hex sha256 of the uncompressed tar stream, when it differs from the blob's.
    #[serde(rename = "diffId", skip_serializing_if = "Option::is_none", default)]
    pub diff_id: Option<String>,
}

fn is_none(c: &Compression) -> bool {
    *c == Compression::None
}

/// A record without `compression` (Nixery's, or `layer-hash hash`'s) is of a file stored as it is.
fn uncompressed() -> Compression {
    Compression::None
}

impl BlobRecord {
    /// The record of a file stored as it is.
    pub fn new(d: Digests, path: String) -> BlobRecord {
        BlobRecord { size: d.size, sha256: d.sha256, md5: d.md5, path, compression: Compression::None, diff_id: None }
    }

    /// The record of a layer's blob.
    pub fn of_layer(d: LayerDigests, compression: Compression, path: String) -> BlobRecord {
        let diff_id = (compression != Compression::None).then_some(d.diff_id);
        BlobRecord { compression, diff_id, ..BlobRecord::new(d.blob, path) }
    }

    /// The layer's `diff_id`: the sha256 of its tar stream.
    pub fn diff_id(&self) -> &str {
        self.diff_id.as_deref().unwrap_or(&self.sha256)
    }
}

/// Docker architecture (and variant) for a Nix system double.
pub fn architecture(system: &str) -> Result<(&'static str, Option<&'static str>)> {
    Ok(match system {
        "x86_64-linux" => ("amd64", None),
        "aarch64-linux" => ("arm64", None),
        "i686-linux" => ("386", None),
        "armv7l-linux" => ("arm", Some("v7")),
        "powerpc64le-linux" => ("ppc64le", None),
        "riscv64-linux" => ("riscv64", None),
        "s390x-linux" => ("s390x", None),
        other => {
            return Err(Error::Usage(format!(
                "no container architecture for Nix system `{other}` (known: x86_64-linux, aarch64-linux, i686-linux, \
                 armv7l-linux, powerpc64le-linux, riscv64-linux, s390x-linux)"
            )));
        }
    })
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct ImageConfig {
    pub architecture: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub history: Vec<History>,
    pub os: String,
    pub rootfs: RootFs,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
}

/// One entry of the config's `history`, one per layer: what `docker history` shows.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct History {
    pub created: String,
    pub created_by: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct RootFs {
    pub diff_ids: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Descriptor {
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Manifest {
    /// OCI manifests only: Docker's format has no annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Location {
    pub md5: String,
    pub path: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct ManifestOutput {
    #[serde(rename = "layerLocations")]
    pub layer_locations: BTreeMap<String, Location>,
    pub manifest: Manifest,
}

impl ManifestOutput {
    /// Every blob of the image, layers bottom first and the config last, as (hex digest, store
    /// file), each checked to exist; `context` is what an error names.
    pub fn blobs(&self, context: &std::path::Path) -> Result<Vec<(String, String)>> {
        let mut all = Vec::new();
        for d in self.manifest.layers.iter().chain(std::iter::once(&self.manifest.config)) {
            let hex = d.digest.strip_prefix("sha256:").unwrap_or(&d.digest);
            let loc = self.layer_locations.get(hex).ok_or_else(|| Error::invalid(context, format!("no layerLocations entry for {}", d.digest)))?;
            std::fs::metadata(&loc.path).map_err(|source| Error::Read { path: loc.path.clone().into(), source })?;
            all.push((hex.to_string(), loc.path.clone()));
        }
        Ok(all)
    }
}

/// Compact JSON with the field order of the types above (sorted, as Nix's `toJSON`).
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("manifest types serialise")
}

/// What the config and manifest say about the image beyond its layers.
#[derive(Debug, Clone, Default)]
pub struct ImageMeta {
    /// RFC 3339 (see [`crate::created`]); none leaves `created` out, as Nixery (2019) did.
    pub created: Option<String>,
    /// Each layer's `created_by`, bottom first: one per layer, or none for no history.
    pub history: Vec<String>,
    /// OCI manifest annotations; `org.opencontainers.image.created` is added from `created`.
    pub annotations: BTreeMap<String, String>,
}

/// The OCI annotation for the creation time.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The config's bytes for these layers, bottom first.
pub fn image_config(layers: &[BlobRecord], system: &str, config: serde_json::Map<String, serde_json::Value>, meta: &ImageMeta) -> Result<Vec<u8>> {
    let (arch, variant) = architecture(system)?;
    if !meta.history.is_empty() && meta.history.len() != layers.len() {
        return Err(Error::Usage(format!("history has {} entries for {} layers: give one per layer, or none", meta.history.len(), layers.len())));
    }
    // History entries need a time; without `created`, the epoch's first second, as the mtimes.
    let when = meta.created.clone().unwrap_or_else(|| crate::created::from_epoch(crate::tarball::DEFAULT_MTIME));
    let cfg = ImageConfig {
        architecture: arch.to_string(),
        config,
        created: meta.created.clone(),
        history: meta.history.iter().map(|by| History { created: when.clone(), created_by: by.clone() }).collect(),
        os: "linux".to_string(),
        rootfs: RootFs { diff_ids: layers.iter().map(|l| format!("sha256:{}", l.diff_id())).collect(), kind: "layers".to_string() },
        variant: variant.map(str::to_string),
    };
    Ok(to_json(&cfg))
}

/// `manifest-output.json` for the layers (in the order given) and the config stored at
/// `config_path`, in `format`.
pub fn manifest_output(layers: &[BlobRecord], config_bytes: &[u8], config_path: &str, format: Format, meta: &ImageMeta) -> Result<ManifestOutput> {
    let mut annotations = meta.annotations.clone();
    if format == Format::Oci {
        if let Some(created) = &meta.created {
            annotations.entry(CREATED_ANNOTATION.to_string()).or_insert_with(|| created.clone());
        }
    } else if !annotations.is_empty() {
        return Err(Error::Usage("annotations need the OCI format (format = \"oci\"): Docker's manifest format has none".into()));
    }
    let c = digest_bytes(config_bytes);
    let mut locations = BTreeMap::new();
    locations.insert(c.sha256.clone(), Location { md5: c.md5.clone(), path: config_path.to_string() });
    for l in layers {
        locations.insert(l.sha256.clone(), Location { md5: l.md5.clone(), path: l.path.clone() });
    }
    Ok(ManifestOutput {
        layer_locations: locations,
        manifest: Manifest {
            annotations,
            config: Descriptor { digest: format!("sha256:{}", c.sha256), media_type: format.config_media_type().to_string(), size: c.size },
            layers: layers
                .iter()
                .map(|l| Ok(Descriptor { digest: format!("sha256:{}", l.sha256), media_type: format.layer_media_type(l.compression)?, size: l.size }))
                .collect::<Result<_>>()?,
            media_type: format.manifest_media_type().to_string(),
            schema_version: 2,
        },
    })
}

/// What skopeo's `dir:` transport expects in its `version` file.
pub const DIR_LAYOUT_VERSION: &str = "Directory Transport Version: 1.1\n";

/// Lays an image out in skopeo's `dir:` format in the new directory `dir`: `manifest.json` (the
/// manifest's exact bytes), `version`, and every blob as a symlink, named by its bare hex digest,
/// to the store file that holds it. `skopeo copy --preserve-digests dir:DIR docker://...` then
/// pushes exactly these bytes.
///
/// Every blob must have a location that exists, checked before `dir` is created; should a write
/// fail after that, `dir` is removed: a layout is whole or absent.
pub fn write_dir_layout(dir: &std::path::Path, output: &ManifestOutput) -> Result<()> {
    let links = output.blobs(dir)?;
    write_skopeo_dir(dir, &links, &[], &to_json(&output.manifest))
}

/// Writes a `dir:` layout into the new directory `dir`: `links` (hex digest, store file) as
/// symlinks, `files` (name, bytes) as they are, `manifest` as `manifest.json`, and `version`.
/// Should a write fail, `dir` is removed.
pub(crate) fn write_skopeo_dir(dir: &std::path::Path, links: &[(String, String)], files: &[(String, Vec<u8>)], manifest: &[u8]) -> Result<()> {
    crate::output::new_dir(dir, |werr| {
        for (hex, target) in links {
            let link = dir.join(hex);
            // A blob two layers share is linked once.
            if !link.exists() {
                std::os::unix::fs::symlink(target, &link).map_err(werr(link.clone()))?;
            }
        }
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).map_err(werr(dir.join(name)))?;
        }
        std::fs::write(dir.join("manifest.json"), manifest).map_err(werr(dir.join("manifest.json")))?;
        std::fs::write(dir.join("version"), DIR_LAYOUT_VERSION).map_err(werr(dir.join("version")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sha: &str) -> BlobRecord {
        BlobRecord::new(Digests { size: 10, sha256: sha.repeat(64), md5: "bWQ1".into() }, format!("/nix/store/{sha}-layer.tar"))
    }

    #[test]
    fn config_bytes_are_what_nix_to_json_writes() {
        let cfg = image_config(&[rec("b"), rec("a")], "x86_64-linux", Default::default(), &ImageMeta::default()).unwrap();
        let expected = format!(
            r#"{{"architecture":"amd64","config":{{}},"os":"linux","rootfs":{{"diff_ids":["sha256:{}","sha256:{}"],"type":"layers"}}}}"#,
            "b".repeat(64),
            "a".repeat(64)
        );
        assert_eq!(String::from_utf8(cfg).unwrap(), expected);
        let arm = String::from_utf8(image_config(&[], "armv7l-linux", Default::default(), &ImageMeta::default()).unwrap()).unwrap();
        assert!(arm.starts_with(r#"{"architecture":"arm","# ) && arm.ends_with(r#""variant":"v7"}"#), "{arm}");
        assert!(image_config(&[], "x86_64-darwin", Default::default(), &ImageMeta::default()).unwrap_err().to_string().contains("x86_64-darwin"));
    }

    #[test]
    fn manifest_keeps_the_given_layer_order_and_locates_every_blob() {
        let out = manifest_output(&[rec("b"), rec("a")], b"{}", "/nix/store/c-config.json", Format::Docker, &ImageMeta::default()).unwrap();
        assert_eq!(out.manifest.layers[0].digest, format!("sha256:{}", "b".repeat(64)));
        assert_eq!(out.layer_locations.len(), 3);
        let json = String::from_utf8(to_json(&out)).unwrap();
        assert!(json.starts_with(r#"{"layerLocations":{"#), "{json}");
        assert!(json.contains(r#""manifest":{"config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","mediaType":"application/vnd.docker.container.image.v1+json","size":2},"layers":["#), "{json}");
        assert!(json.ends_with(r#""mediaType":"application/vnd.docker.distribution.manifest.v2+json","schemaVersion":2}}"#), "{json}");
    }

    #[test]
    fn created_and_history_sit_in_sorted_place_and_oci_manifests_get_the_created_annotation() {
        let meta = ImageMeta { created: Some("2024-05-01T12:00:00Z".into()), history: vec!["b layer".into(), "a layer".into()], annotations: BTreeMap::new() };
        let cfg = String::from_utf8(image_config(&[rec("b"), rec("a")], "x86_64-linux", Default::default(), &meta).unwrap()).unwrap();
        assert!(
            cfg.starts_with(r#"{"architecture":"amd64","config":{},"created":"2024-05-01T12:00:00Z","history":[{"created":"2024-05-01T12:00:00Z","created_by":"b layer"},{"created":"2024-05-01T12:00:00Z","created_by":"a layer"}],"os":"linux","rootfs":"#),
            "{cfg}"
        );
        let short = ImageMeta { history: vec!["one".into()], ..meta.clone() };
        assert!(image_config(&[rec("b"), rec("a")], "x86_64-linux", Default::default(), &short).unwrap_err().to_string().contains("1 entries for 2 layers"));
        let oci = manifest_output(&[rec("b")], b"{}", "/c", Format::Oci, &meta).unwrap();
        assert_eq!(oci.manifest.annotations[CREATED_ANNOTATION], "2024-05-01T12:00:00Z");
        assert!(String::from_utf8(to_json(&oci.manifest)).unwrap().starts_with(r#"{"annotations":{"org.opencontainers.image.created":"2024-05-01T12:00:00Z"},"config":"#));
        let docker = manifest_output(&[rec("b")], b"{}", "/c", Format::Docker, &meta).unwrap();
        assert!(docker.manifest.annotations.is_empty(), "Docker's format has no annotations");
        let asked = ImageMeta { annotations: BTreeMap::from([("a".to_string(), "b".to_string())]), ..meta };
        assert!(manifest_output(&[rec("b")], b"{}", "/c", Format::Docker, &asked).unwrap_err().to_string().contains("need the OCI format"));
    }
}
