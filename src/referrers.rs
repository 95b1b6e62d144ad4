//! Documents attached to an image: OCI 1.1 artifact manifests whose `subject` is the image
//! manifest (the SBOMs of [`crate::sbom`]), and the index that the referrers tag schema names.
//!
//! Registries with the OCI 1.1 referrers API list such manifests under
//! `/v2/<name>/referrers/<digest>`. Registries without it (Debian's distribution 2.8 is one) are
//! served by the tag schema: a tag `sha256-<hex of the image manifest's digest>` holding an OCI
//! image index of the referring manifests, so a client that knows the image's digest finds the
//! documents. Both forms are written here, into the OCI image layout; pushing the layout's tag
//! `sha256-<hex>` with `skopeo copy --all` puts the index, the manifests and the documents in the
//! registry.
//!
//! An artifact manifest is an image manifest with `artifactType`, the empty config `{}`
//! (`application/vnd.oci.empty.v1+json`) and one layer: the document, with its own media type.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::archive::{Index, IndexEntry};
use crate::digest::{Digests, digest_bytes, digest_file};
use crate::error::Result;
use crate::manifest::{Descriptor, OCI_MANIFEST_MEDIA_TYPE, to_json};

pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG: &[u8] = b"{}";
const TITLE: &str = "org.opencontainers.image.title";

/// A document to attach, stored in a file.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The artifact type, which is also the document's media type (`application/spdx+json`).
    pub artifact_type: String,
    pub file: PathBuf,
    /// The document's file name, as `org.opencontainers.image.title`.
    pub title: String,
}

#[derive(Serialize)]
struct ArtifactManifest<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "artifactType")]
    artifact_type: &'a str,
    config: Descriptor,
    layers: Vec<Layer<'a>>,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    subject: &'a Descriptor,
}

#[derive(Serialize)]
struct Layer<'a> {
    annotations: BTreeMap<&'static str, &'a str>,
    digest: String,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: u64,
}

/// What attaching writes: each artifact manifest's bytes, the referrers index's, and the blobs
/// (the empty config's bytes, the documents' files).
pub struct Referrers {
    /// (artifact type, manifest bytes, their digests), in the order of the attachments.
    pub manifests: Vec<(String, Vec<u8>, Digests)>,
    pub index: Vec<u8>,
    pub index_digests: Digests,
    /// The tag the referrers tag schema gives the index: `sha256-<hex>`.
    pub tag: String,
    /// (hex digest, file) of every document.
    pub documents: Vec<(String, PathBuf)>,
}

/// The artifact manifests of `attachments` for the image manifest `subject`, with `annotations`
/// (the image's creation time, so nothing here depends on the time of the build).
pub fn attach(subject: &Descriptor, attachments: &[Attachment], annotations: &BTreeMap<String, String>) -> Result<Referrers> {
    let empty = digest_bytes(EMPTY_CONFIG);
    let mut manifests = Vec::new();
    let mut documents = Vec::new();
    for a in attachments {
        let d = digest_file(&a.file)?;
        let m = ArtifactManifest {
            annotations,
            artifact_type: &a.artifact_type,
            config: Descriptor { digest: format!("sha256:{}", empty.sha256), media_type: EMPTY_MEDIA_TYPE.into(), size: empty.size },
            layers: vec![Layer { annotations: [(TITLE, a.title.as_str())].into(), digest: format!("sha256:{}", d.sha256), media_type: &a.artifact_type, size: d.size }],
            media_type: OCI_MANIFEST_MEDIA_TYPE,
            schema_version: 2,
            subject,
        };
        let bytes = to_json(&m);
        let digests = digest_bytes(&bytes);
        documents.push((d.sha256, a.file.clone()));
        manifests.push((a.artifact_type.clone(), bytes, digests));
    }
    let index = Index::new(
        manifests
            .iter()
            .map(|(t, _, d)| IndexEntry { annotations: annotations.clone(), artifact_type: Some(t.clone()), ..IndexEntry::of(d, OCI_MANIFEST_MEDIA_TYPE, None) })
            .collect(),
    );
    let index_bytes = to_json(&index);
    let index_digests = digest_bytes(&index_bytes);
    let tag = format!("sha256-{}", subject.digest.trim_start_matches("sha256:"));
    Ok(Referrers { manifests, index: index_bytes, index_digests, tag, documents })
}
