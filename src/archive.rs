//! The image for engines without a registry: an OCI image layout directory, and the
//! `docker load` archive streamed to stdout. Both read the blobs where `manifest-output.json`
//! says they are, in the store: nothing is copied into the store twice.
//!
//! - The OCI image layout (image-spec `image-layout.md`): `oci-layout`, `index.json` naming the
//!   manifest with the tag as `org.opencontainers.image.ref.name`, and `blobs/sha256/<hex>`: the
//!   manifest's exact bytes as a file, every other blob as a symlink into the store.
//! - The `docker load` archive (the format `docker save` writes, which `podman load` reads too): a
//!   tar of `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`), the config and each layer's
//!   blob as it is stored, compressed or not; the engines decompress while loading.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compress::{Compression, LayerSink};
use crate::error::{Error, Result};
use crate::manifest::{self, ManifestOutput};
use crate::referrers::{Attachment, EMPTY_CONFIG, attach};
use crate::tarball::{Meta, TarWriter, DEFAULT_MTIME};

pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation of an index entry that names its tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image index: the layout's `index.json`, and the referrers tag schema's index.
#[derive(Serialize)]
pub(crate) struct Index {
    pub manifests: Vec<IndexEntry>,
    #[serde(rename = "mediaType")]
    pub media_type: &'static str,
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
}

impl Index {
    pub fn new(manifests: Vec<IndexEntry>) -> Index {
        Index { manifests, media_type: OCI_INDEX_MEDIA_TYPE, schema_version: 2 }
    }
}

/// A descriptor in an index.
#[derive(Serialize)]
pub(crate) struct IndexEntry {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "artifactType", skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
}

impl IndexEntry {
    /// The entry of a blob of these digests, tagged `tag` if given.
    pub fn of(d: &crate::digest::Digests, media_type: &str, tag: Option<&str>) -> IndexEntry {
        IndexEntry {
            annotations: tag.map(|t| (REF_NAME.to_string(), t.to_string())).into_iter().collect(),
            artifact_type: None,
            digest: format!("sha256:{}", d.sha256),
            media_type: media_type.to_string(),
            size: d.size,
        }
    }
}

/// What a load script holds after its `#!` line, as one line of JSON: the image
/// (`manifest-output.json`) and the name it loads as. Run, the kernel passes the script to
/// `layer-hash load-archive`, which reads this back.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadScript {
    pub manifest: PathBuf,
    pub image_name: String,
    pub tag: String,
}

impl LoadScript {
    /// The script: `#!PROGRAM load-archive`, then this as JSON.
    pub fn text(&self, program: &Path) -> Vec<u8> {
        let mut text = format!("#!{} load-archive\n", program.display()).into_bytes();
        text.extend(serde_json::to_vec(self).expect("serialises"));
        text.push(b'\n');
        text
    }

    /// The load script `path` holds (`bytes`).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<LoadScript> {
        let newline = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
        let first = &bytes[..newline];
        if !(first.starts_with(b"#!") && first.ends_with(b" load-archive")) {
            return Err(Error::invalid(path, "not a load script: its first line should be `#!... load-archive`"));
        }
        let json = bytes.get(newline + 1..).unwrap_or_default();
        serde_json::from_slice(json).map_err(|source| Error::Json { path: path.to_path_buf(), source })
    }
}

/// Writes the OCI image layout of `output`, tagged `tag`, into the new directory `dir`, with
/// `attachments` (see [`crate::referrers`]) as artifact manifests whose subject is the image,
/// listed by the referrers index under the tag `sha256-<hex>`; whole or not at all.
pub fn write_oci_layout(dir: &Path, output: &ManifestOutput, tag: &str, attachments: &[Attachment]) -> Result<()> {
    let mut links = output.blobs(dir)?;
    let manifest_bytes = manifest::to_json(&output.manifest);
    let manifest_digest = crate::digest::digest_bytes(&manifest_bytes);
    let mut manifests = vec![IndexEntry::of(&manifest_digest, &output.manifest.media_type, Some(tag))];
    // Files written into the layout (manifests, the empty config), by hex digest.
    let mut files = vec![(manifest_digest.sha256.clone(), manifest_bytes)];
    let subject = manifest::Descriptor {
        digest: format!("sha256:{}", manifest_digest.sha256),
        media_type: output.manifest.media_type.clone(),
        size: manifest_digest.size,
    };
    // The artifacts carry the image's creation time, when its manifest has one.
    let created: std::collections::BTreeMap<String, String> =
        output.manifest.annotations.iter().filter(|(k, _)| *k == manifest::CREATED_ANNOTATION).map(|(k, v)| (k.clone(), v.clone())).collect();
    let referrers = if attachments.is_empty() { None } else { Some(attach(&subject, attachments, &created)?) };
    if let Some(r) = &referrers {
        files.push((crate::digest::digest_bytes(EMPTY_CONFIG).sha256, EMPTY_CONFIG.to_vec()));
        // The artifact manifests are reached through the referrers index, not listed in
        // index.json themselves: untagged entries there make tools that pick a manifest by its
        // ref.name (oci-image-tool) find the image ambiguous.
        for (_, bytes, d) in &r.manifests {
            files.push((d.sha256.clone(), bytes.clone()));
        }
        manifests.push(IndexEntry::of(&r.index_digests, OCI_INDEX_MEDIA_TYPE, Some(&r.tag)));
        files.push((r.index_digests.sha256.clone(), r.index.clone()));
        links.extend(r.documents.iter().map(|(hex, file)| (hex.clone(), file.display().to_string())));
    }
    write_oci_dir(dir, &links, &files, &Index::new(manifests))
}

/// Writes an OCI image layout into the new directory `dir`: under `blobs/sha256/`, `links` (hex
/// digest, store file) as symlinks and `files` (hex digest, bytes) as files; `oci-layout`; and
/// `index` as `index.json`. Should a write fail, `dir` is removed.
pub(crate) fn write_oci_dir(dir: &Path, links: &[(String, String)], files: &[(String, Vec<u8>)], index: &Index) -> Result<()> {
    crate::output::new_dir(dir, |werr| {
        let blob_dir = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blob_dir).map_err(werr(blob_dir.clone()))?;
        for (hex, target) in links {
            let link = blob_dir.join(hex);
            // A blob two layers share is linked once.
            if !link.exists() {
                std::os::unix::fs::symlink(target, &link).map_err(werr(link.clone()))?;
            }
        }
        for (hex, bytes) in files {
            let f = blob_dir.join(hex);
            std::fs::write(&f, bytes).map_err(werr(f))?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr(dir.join("oci-layout")))?;
        std::fs::write(dir.join("index.json"), manifest::to_json(index)).map_err(werr(dir.join("index.json")))
    })
}

#[derive(Serialize)]
struct LoadEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes the `docker load` archive of `output` as `name:tag` to `out` (stdout for a program).
/// Returns the bytes written, and the file.
pub fn write_load_archive(out: std::fs::File, output: &ManifestOutput, name: &str, tag: &str, context: &Path) -> Result<(u64, std::fs::File)> {
    let all = output.blobs(context)?;
    let (config_hex, config_path) = all.last().expect("the config is always there").clone();
    let layer_name = |hex: &str| format!("{hex}/layer.tar");
    let entry = LoadEntry {
        config: format!("{config_hex}.json"),
        repo_tags: vec![format!("{name}:{tag}")],
        layers: all[..all.len() - 1].iter().map(|(hex, _)| layer_name(hex)).collect(),
    };
    let manifest_json = manifest::to_json(&[entry]);
    let werr = |source| Error::Write { path: "standard output".into(), source };
    let mut sink = LayerSink::new(Compression::None, Some(out)).map_err(werr)?;
    let mut w = TarWriter::new(&mut sink, DEFAULT_MTIME, Path::new("standard output"));
    w.bytes(b"manifest.json", Meta::root(0o444), &manifest_json)?;
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).map_err(|source| Error::Read { path: p.into(), source });
    w.file(format!("{config_hex}.json").as_bytes(), Meta::root(0o444), size(&config_path)?, Path::new(&config_path))?;
    let mut seen = std::collections::BTreeSet::new();
    for (hex, path) in &all[..all.len() - 1] {
        // A layer listed twice (the same blob in two places) is stored once.
        if seen.insert(hex) {
            w.dir(hex.as_bytes(), Meta::root(0o755))?;
            w.file(layer_name(hex).as_bytes(), Meta::root(0o444), size(path)?, Path::new(path))?;
        }
    }
    w.finish()?;
    let (digests, file) = sink.finish().map_err(werr)?;
    Ok((digests.blob.size, file.expect("the sink was given a file")))
}
