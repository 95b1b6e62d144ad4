//! Multi-architecture images: one tag for the same image built for several platforms, as an OCI
//! image index or, for Docker's format, a Docker manifest list.
//!
//! Each image is read from its `manifest-output.json`; its platform (`os`, `architecture`,
//! `variant`) comes from its own config, so the index cannot disagree with what it points to. The
//! images must share one format (the index's media type follows it) and have distinct platforms.
//! Entries are sorted by platform, so the index does not depend on the order images are given.
//!
//! Layouts for pushing, both linking blobs into the store: skopeo's `dir:` format (the index as
//! `manifest.json`, each image's manifest as `<hex>.manifest.json`, which `skopeo copy --all`
//! pushes), and, for the OCI format, an OCI image layout whose `index.json` names the index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digests, digest_bytes};
use crate::error::{Error, Result};
use crate::manifest::{self, Format, ManifestOutput};

pub const DOCKER_LIST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub use crate::archive::OCI_INDEX_MEDIA_TYPE;

/// Where an image runs, as its config says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One image of the index.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its manifest-output.json, for errors.
    pub file: PathBuf,
    pub output: ManifestOutput,
    pub manifest_bytes: Vec<u8>,
    pub digests: Digests,
    pub platform: Platform,
}

#[derive(Serialize)]
struct Entry<'a> {
    digest: String,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    platform: &'a Platform,
    size: u64,
}

#[derive(Serialize)]
struct Index<'a> {
    manifests: Vec<Entry<'a>>,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
}

/// Reads the images, sorted by platform; checks one format and distinct platforms.
pub fn read_images(files: &[PathBuf]) -> Result<(Format, Vec<Image>)> {
    let read = crate::output::read_file;
    let images = files.iter().map(|f| Image::read(f, &read(f)?, read)).collect::<Result<Vec<_>>>()?;
    check_images(images)
}

impl Image {
    /// The image whose manifest-output.json `file` holds (`bytes`); `read` reads the config it
    /// names, for the platform.
    pub fn read(file: &Path, bytes: &[u8], read: impl FnOnce(&Path) -> Result<Vec<u8>>) -> Result<Image> {
        let output: ManifestOutput = serde_json::from_slice(bytes).map_err(|source| Error::Json { path: file.to_path_buf(), source })?;
        let config_hex = output.manifest.config.digest.trim_start_matches("sha256:");
        let config_path = &output.layer_locations.get(config_hex).ok_or_else(|| Error::invalid(file, "no layerLocations entry for the config"))?.path;
        let platform: Platform = serde_json::from_slice(&read(Path::new(config_path))?).map_err(|source| Error::Json { path: config_path.into(), source })?;
        let manifest_bytes = manifest::to_json(&output.manifest);
        let digests = digest_bytes(&manifest_bytes);
        Ok(Image { file: file.to_path_buf(), output, manifest_bytes, digests, platform })
    }
}

/// The images of one index, sorted by platform: at least one, one format, distinct platforms.
pub fn check_images(mut images: Vec<Image>) -> Result<(Format, Vec<Image>)> {
    if images.is_empty() {
        return Err(Error::Usage("an index needs at least one image".into()));
    }
    let format_of = |i: &Image| Format::ALL.into_iter().find(|f| f.manifest_media_type() == i.output.manifest.media_type);
    let format = format_of(&images[0]).ok_or_else(|| Error::invalid(&images[0].file, "the manifest is neither Docker's nor OCI's"))?;
    for i in &images[1..] {
        if format_of(i) != Some(format) {
            return Err(Error::Usage(format!(
                "images of different formats in one index: {} is {}, {} is not (build them all with the same `format`)",
                images[0].file.display(),
                format.name(),
                i.file.display()
            )));
        }
    }
    images.sort_by(|a, b| (&a.platform, &a.digests.sha256).cmp(&(&b.platform, &b.digests.sha256)));
    if let Some(w) = images.windows(2).find(|w| w[0].platform == w[1].platform) {
        return Err(Error::Usage(format!("two images for {}: {} and {}", w[0].platform, w[0].file.display(), w[1].file.display())));
    }
    Ok((format, images))
}

/// The index's bytes.
pub fn index_bytes(format: Format, images: &[Image]) -> Vec<u8> {
    let index = Index {
        manifests: images
            .iter()
            .map(|i| Entry { digest: format!("sha256:{}", i.digests.sha256), media_type: &i.output.manifest.media_type, platform: &i.platform, size: i.digests.size })
            .collect(),
        media_type: index_media_type(format),
        schema_version: 2,
    };
    manifest::to_json(&index)
}

pub fn index_media_type(format: Format) -> &'static str {
    match format {
        Format::Docker => DOCKER_LIST_MEDIA_TYPE,
        Format::Oci => OCI_INDEX_MEDIA_TYPE,
    }
}

/// Every blob of every image, once: (hex, store file).
fn all_blobs(images: &[Image], context: &Path) -> Result<Vec<(String, String)>> {
    let mut all = BTreeMap::new();
    for i in images {
        all.extend(i.output.blobs(context)?);
    }
    Ok(all.into_iter().collect())
}

/// skopeo's `dir:` layout of the index, in the new directory `dir`.
pub fn write_dir_layout(dir: &Path, index: &[u8], images: &[Image]) -> Result<()> {
    let manifests: Vec<(String, Vec<u8>)> = images.iter().map(|i| (format!("{}.manifest.json", i.digests.sha256), i.manifest_bytes.clone())).collect();
    manifest::write_skopeo_dir(dir, &all_blobs(images, dir)?, &manifests, index)
}

/// The OCI image layout of the index, tagged `tag`, in the new directory `dir`.
pub fn write_oci_layout(dir: &Path, index: &[u8], images: &[Image], tag: &str) -> Result<()> {
    let index_digests = digest_bytes(index);
    let mut files: Vec<(String, Vec<u8>)> = images.iter().map(|i| (i.digests.sha256.clone(), i.manifest_bytes.clone())).collect();
    files.push((index_digests.sha256.clone(), index.to_vec()));
    let top = crate::archive::Index::new(vec![crate::archive::IndexEntry::of(&index_digests, OCI_INDEX_MEDIA_TYPE, Some(tag))]);
    crate::archive::write_oci_dir(dir, &all_blobs(images, dir)?, &files, &top)
}
