//! Software bills of materials of an image: SPDX 2.3 and CycloneDX 1.6 JSON documents of its
//! exact closure, from the reference graph Nix exports (`exportReferencesGraph`), the same graph
//! the grouping reads: no second evaluation of the closure.
//!
//! - Every store path is one package, exactly once. Its name and version are split as Nix's
//!   `builtins.parseDrvName` splits the name after the hash (at the first `-` not followed by a
//!   letter: `python3.8-requests-2.25.0` is `python3.8-requests` version `2.25.0`; no such dash,
//!   no version).
//! - Its identifier is the store path itself. No package URL type for Nix is registered in the
//!   purl specification, so none is written: SPDX gets an external reference of category `OTHER`,
//!   type `nix-store-path`, and CycloneDX the store path as `bom-ref` and as the property
//!   `nix:store_path`. The checksum is the path's narHash (the sha256 of its NAR serialisation,
//!   not of any file), written in hex; the NAR size is a CycloneDX property and part of SPDX's
//!   package comment.
//! - What the documents describe are the image's roots (its contents, packages and the store
//!   paths its config names); the dependency edges are exactly the reference graph, self
//!   references left out.
//! - Licenses and package URLs come only from what evaluation knows (`meta.license` and nixpkgs'
//!   `meta.identifiers.purls` of the contents and packages, passed in as [`Known`]); everything
//!   else is `NOASSERTION` (SPDX) or absent (CycloneDX). Those package URLs name the package's
//!   source (`pkg:github/…`), not the store path, so they are written beside the store path.
//! - Deterministic: the creation time is the image's `created`; SPDX's document namespace and
//!   CycloneDX's serial number are derived from the documents' own content.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::graph::{Closure, Entry, name_of};

/// What the image's documents are called and dated.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The image name (`name` of build-image.nix).
    pub name: String,
    /// RFC 3339, already checked ([`crate::created`]).
    pub created: String,
}

/// A license as evaluation knows it (`meta.license`): an SPDX identifier, a name, or both.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct License {
    #[serde(default)]
    pub spdx_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// What evaluation knows of a store path (its derivation's `meta`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Known {
    #[serde(default)]
    pub licenses: Vec<License>,
    #[serde(default)]
    pub purls: Vec<String>,
}

/// One store path of the closure, ready for both documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub path: String,
    pub name: String,
    pub version: String,
    /// Lower-case hex sha256 of the NAR.
    pub nar_hash: String,
    pub nar_size: u64,
    /// Indices of referenced packages, sorted, without the package itself.
    pub references: Vec<usize>,
    pub licenses: Vec<License>,
    pub purls: Vec<String>,
}

/// The closure as the documents see it.
#[derive(Debug, Clone)]
pub struct Bom {
    /// Sorted by store path.
    pub packages: Vec<Package>,
    /// Indices of the roots, sorted.
    pub roots: Vec<usize>,
}

/// `builtins.parseDrvName`: (name, version).
pub fn parse_drv_name(name: &str) -> (&str, &str) {
    let b = name.as_bytes();
    match (0..b.len()).find(|&i| b[i] == b'-' && b.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic())) {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    }
}

/// A narHash (`sha256:` and Nix's base32 or hex, or SRI `sha256-` and base64) as hex.
pub fn nar_hash_hex(h: &str) -> Option<String> {
    if let Some(rest) = h.strip_prefix("sha256:") {
        if rest.len() == 64 && rest.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Some(rest.to_ascii_lowercase());
        }
        return nix32_decode(rest, 32).map(hex);
    }
    if let Some(rest) = h.strip_prefix("sha256-") {
        use base64::Engine as _;
        return base64::engine::general_purpose::STANDARD.decode(rest).ok().filter(|b| b.len() == 32).map(hex);
    }
    None
}

fn hex(bytes: Vec<u8>) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Nix's base32: its own alphabet, least significant digit last, bits packed little-endian.
fn nix32_decode(s: &str, size: usize) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
    if s.len() != (size * 8).div_ceil(5) {
        return None;
    }
    let mut out = vec![0u8; size];
    for (n, c) in s.bytes().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u16;
        let (i, j) = (n * 5 / 8, n * 5 % 8);
        out[i] |= (digit << j) as u8;
        let carry = digit >> (8 - j);
        if i + 1 < size {
            out[i + 1] |= carry as u8;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[derive(Deserialize)]
struct Attrs {
    #[serde(rename = "exportReferencesGraph")]
    export: Export,
    graph: Vec<GraphEntry>,
}

#[derive(Deserialize)]
struct Export {
    graph: Roots,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Roots {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphEntry {
    path: String,
    nar_hash: String,
    nar_size: u64,
    #[serde(default)]
    closure_size: u64,
    references: Vec<String>,
}

impl Bom {
    /// Reads a structured-attrs file with `exportReferencesGraph.graph` and Nix's `graph`;
    /// `known` maps store paths to what evaluation knows of them.
    pub fn read(origin: &Path, bytes: &[u8], known: &BTreeMap<String, Known>) -> Result<Bom> {
        let attrs: Attrs = serde_json::from_slice(bytes).map_err(|source| Error::Json { path: origin.to_path_buf(), source })?;
        let roots = match attrs.export.graph {
            Roots::One(r) => vec![r],
            Roots::Many(r) => r,
        };
        let mut hashes = HashMap::new();
        for e in &attrs.graph {
            let h = nar_hash_hex(&e.nar_hash).ok_or_else(|| Error::invalid(origin, format!("graph entry {}: narHash `{}` is not a sha256", e.path, e.nar_hash)))?;
            hashes.insert(e.path.as_str(), h);
        }
        // The graph's own checks: every reference and root known, no path twice.
        let entries = attrs
            .graph
            .iter()
            .map(|e| Entry {
                path: Some(Cow::Borrowed(e.path.as_str())),
                nar_size: Some(e.nar_size),
                closure_size: Some(e.closure_size),
                references: Some(e.references.iter().map(|r| Cow::Borrowed(r.as_str())).collect()),
            })
            .collect();
        let closure = Closure::from_entries(origin, roots, entries)?;
        for p in known.keys() {
            if !hashes.contains_key(p.as_str()) {
                return Err(Error::Usage(format!("meta: {p} is not in the image's closure")));
            }
        }
        let packages = closure
            .nodes
            .iter()
            .map(|n| {
                let (name, version) = parse_drv_name(name_of(&n.path));
                Package {
                    path: n.path.clone(),
                    name: name.to_string(),
                    version: version.to_string(),
                    nar_hash: hashes[n.path.as_str()].clone(),
                    nar_size: n.nar_size,
                    references: n.references.iter().map(|&r| r as usize).collect(),
                    licenses: known.get(&n.path).map(|k| k.licenses.clone()).unwrap_or_default(),
                    purls: known.get(&n.path).map(|k| k.purls.clone()).unwrap_or_default(),
                }
            })
            .collect();
        Ok(Bom { packages, roots: closure.roots.iter().map(|&r| r as usize).collect() })
    }

    /// The SPDX 2.3 document.
    pub fn spdx(&self, subject: &Subject) -> Result<Vec<u8>> {
        let created = crate::created::from_epoch(crate::created::to_epoch(&subject.created)?);
        let ids: Vec<String> = self.packages.iter().map(spdx_id).collect();
        let packages = self
            .packages
            .iter()
            .zip(&ids)
            .map(|(p, id)| {
                let declared = match p.licenses.as_slice() {
                    [License { spdx_id: Some(id), .. }] => id.clone(),
                    _ => "NOASSERTION".to_string(),
                };
                let mut comment = format!("Nix store path {}; NAR size {} bytes; the checksum is the NAR's (narHash)", p.path, p.nar_size);
                if p.licenses.len() > 1 || declared == "NOASSERTION" && !p.licenses.is_empty() {
                    let known: Vec<String> = p.licenses.iter().map(|l| l.spdx_id.clone().or_else(|| l.name.clone()).unwrap_or_default()).collect();
                    comment += &format!("; meta.license lists {}", known.join(", "));
                }
                SpdxPackage {
                    spdx_id: id,
                    checksums: [SpdxChecksum { algorithm: "SHA256", checksum_value: &p.nar_hash }],
                    comment,
                    copyright_text: "NOASSERTION",
                    download_location: "NOASSERTION",
                    external_refs: std::iter::once(SpdxRef { reference_category: "OTHER", reference_locator: &p.path, reference_type: "nix-store-path" })
                        .chain(p.purls.iter().map(|u| SpdxRef { reference_category: "PACKAGE-MANAGER", reference_locator: u, reference_type: "purl" }))
                        .collect(),
                    files_analyzed: false,
                    license_concluded: "NOASSERTION",
                    license_declared: declared,
                    name: &p.name,
                    version_info: (!p.version.is_empty()).then_some(p.version.as_str()),
                }
            })
            .collect();
        let mut relationships: Vec<SpdxRelationship> = self
            .roots
            .iter()
            .map(|&r| SpdxRelationship { related_spdx_element: &ids[r], relationship_type: "DESCRIBES", spdx_element_id: "SPDXRef-DOCUMENT" })
            .collect();
        for (p, id) in self.packages.iter().zip(&ids) {
            relationships.extend(p.references.iter().map(|&r| SpdxRelationship { related_spdx_element: &ids[r], relationship_type: "DEPENDS_ON", spdx_element_id: id }));
        }
        let mut doc = SpdxDocument {
            spdx_id: "SPDXRef-DOCUMENT",
            creation_info: SpdxCreationInfo { created, creators: [format!("Tool: nix-image-layers-{}", env!("CARGO_PKG_VERSION"))] },
            data_license: "CC0-1.0",
            document_describes: self.roots.iter().map(|&r| ids[r].as_str()).collect(),
            document_namespace: String::new(),
            name: &subject.name,
            packages,
            relationships,
            spdx_version: "SPDX-2.3",
        };
        // The namespace must be unique per document: the hash of everything else in it.
        let digest = hex(Sha256::digest(serde_json::to_vec(&doc).expect("serialises")).to_vec());
        doc.document_namespace = format!("https://nix-image-layers.invalid/spdx/{}-{digest}", subject.name.replace('/', "-"));
        Ok(pretty(&doc))
    }

    /// The CycloneDX 1.6 document.
    pub fn cyclonedx(&self, subject: &Subject) -> Result<Vec<u8>> {
        let created = crate::created::from_epoch(crate::created::to_epoch(&subject.created)?);
        let sizes: Vec<String> = self.packages.iter().map(|p| p.nar_size.to_string()).collect();
        let components = self
            .packages
            .iter()
            .zip(&sizes)
            .map(|(p, size)| CdxComponent {
                bom_ref: &p.path,
                hashes: [CdxHash { alg: "SHA-256", content: &p.nar_hash }],
                licenses: p
                    .licenses
                    .iter()
                    .map(|l| CdxLicenseChoice {
                        license: CdxLicense {
                            id: l.spdx_id.as_deref(),
                            name: if l.spdx_id.is_some() { None } else { Some(l.name.as_deref().unwrap_or("unknown")) },
                        },
                    })
                    .collect(),
                name: &p.name,
                properties: [CdxProperty { name: "nix:store_path", value: &p.path }, CdxProperty { name: "nix:nar_size", value: size }]
                    .into_iter()
                    .chain(p.purls.iter().skip(1).map(|u| CdxProperty { name: "nixpkgs:purl", value: u }))
                    .collect(),
                purl: p.purls.first().map(String::as_str),
                kind: "library",
                version: (!p.version.is_empty()).then_some(p.version.as_str()),
            })
            .collect();
        let image_ref = format!("image:{}", subject.name);
        let mut dependencies = vec![CdxDependency { depends_on: self.roots.iter().map(|&r| self.packages[r].path.as_str()).collect(), reference: &image_ref }];
        dependencies.extend(
            self.packages.iter().map(|p| CdxDependency { depends_on: p.references.iter().map(|&r| self.packages[r].path.as_str()).collect(), reference: &p.path }),
        );
        let version = env!("CARGO_PKG_VERSION");
        let mut doc = CdxDocument {
            bom_format: "CycloneDX",
            components,
            dependencies,
            metadata: CdxMetadata {
                component: CdxMetaComponent { bom_ref: &image_ref, name: &subject.name, kind: "container", version: None },
                timestamp: created,
                tools: CdxTools { components: [CdxMetaComponent { bom_ref: "", name: "nix-image-layers", kind: "application", version: Some(version) }] },
            },
            serial_number: String::new(),
            spec_version: "1.6",
            version: 1,
        };
        // A serial number from the content: the form of a version-5 UUID.
        let d = Sha256::digest(serde_json::to_vec(&doc).expect("serialises"));
        let mut u = [0u8; 16];
        u.copy_from_slice(&d[..16]);
        u[6] = (u[6] & 0x0f) | 0x50;
        u[8] = (u[8] & 0x3f) | 0x80;
        let h = hex(u.to_vec());
        doc.serial_number = format!("urn:uuid:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
        Ok(pretty(&doc))
    }
}


// The documents' shapes, fields in sorted order (as the rest of this project writes JSON).

#[derive(Serialize)]
struct SpdxDocument<'a> {
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    #[serde(rename = "creationInfo")]
    creation_info: SpdxCreationInfo,
    #[serde(rename = "dataLicense")]
    data_license: &'static str,
    #[serde(rename = "documentDescribes")]
    document_describes: Vec<&'a str>,
    #[serde(rename = "documentNamespace", skip_serializing_if = "String::is_empty")]
    document_namespace: String,
    name: &'a str,
    packages: Vec<SpdxPackage<'a>>,
    relationships: Vec<SpdxRelationship<'a>>,
    #[serde(rename = "spdxVersion")]
    spdx_version: &'static str,
}

#[derive(Serialize)]
struct SpdxCreationInfo {
    created: String,
    creators: [String; 1],
}

#[derive(Serialize)]
struct SpdxPackage<'a> {
    #[serde(rename = "SPDXID")]
    spdx_id: &'a str,
    checksums: [SpdxChecksum<'a>; 1],
    comment: String,
    #[serde(rename = "copyrightText")]
    copyright_text: &'static str,
    #[serde(rename = "downloadLocation")]
    download_location: &'static str,
    #[serde(rename = "externalRefs")]
    external_refs: Vec<SpdxRef<'a>>,
    #[serde(rename = "filesAnalyzed")]
    files_analyzed: bool,
    #[serde(rename = "licenseConcluded")]
    license_concluded: &'static str,
    #[serde(rename = "licenseDeclared")]
    license_declared: String,
    name: &'a str,
    #[serde(rename = "versionInfo", skip_serializing_if = "Option::is_none")]
    version_info: Option<&'a str>,
}

#[derive(Serialize)]
struct SpdxChecksum<'a> {
    algorithm: &'static str,
    #[serde(rename = "checksumValue")]
    checksum_value: &'a str,
}

#[derive(Serialize)]
struct SpdxRef<'a> {
    #[serde(rename = "referenceCategory")]
    reference_category: &'static str,
    #[serde(rename = "referenceLocator")]
    reference_locator: &'a str,
    #[serde(rename = "referenceType")]
    reference_type: &'static str,
}

#[derive(Serialize)]
struct SpdxRelationship<'a> {
    #[serde(rename = "relatedSpdxElement")]
    related_spdx_element: &'a str,
    #[serde(rename = "relationshipType")]
    relationship_type: &'static str,
    #[serde(rename = "spdxElementId")]
    spdx_element_id: &'a str,
}

#[derive(Serialize)]
struct CdxDocument<'a> {
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    components: Vec<CdxComponent<'a>>,
    dependencies: Vec<CdxDependency<'a>>,
    metadata: CdxMetadata<'a>,
    #[serde(rename = "serialNumber", skip_serializing_if = "String::is_empty")]
    serial_number: String,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    version: u32,
}

#[derive(Serialize)]
struct CdxComponent<'a> {
    #[serde(rename = "bom-ref")]
    bom_ref: &'a str,
    hashes: [CdxHash<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<CdxLicenseChoice<'a>>,
    name: &'a str,
    properties: Vec<CdxProperty<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct CdxHash<'a> {
    alg: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct CdxLicenseChoice<'a> {
    license: CdxLicense<'a>,
}

#[derive(Serialize)]
struct CdxLicense<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct CdxProperty<'a> {
    name: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct CdxDependency<'a> {
    #[serde(rename = "dependsOn")]
    depends_on: Vec<&'a str>,
    #[serde(rename = "ref")]
    reference: &'a str,
}

#[derive(Serialize)]
struct CdxMetadata<'a> {
    component: CdxMetaComponent<'a>,
    timestamp: String,
    tools: CdxTools<'a>,
}

#[derive(Serialize)]
struct CdxMetaComponent<'a> {
    #[serde(rename = "bom-ref", skip_serializing_if = "str::is_empty")]
    bom_ref: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct CdxTools<'a> {
    components: [CdxMetaComponent<'a>; 1],
}

/// SPDX identifiers allow letters, digits, `.` and `-`: the hash part keeps them unique.
fn spdx_id(p: &Package) -> String {
    let base = p.path.rsplit('/').next().unwrap_or(&p.path);
    let clean: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    format!("SPDXRef-{clean}")
}

fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("serialises");
    b.push(b'\n');
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_parse_drv_name() {
        assert_eq!(parse_drv_name("hello-2.10"), ("hello", "2.10"));
        assert_eq!(parse_drv_name("python3.8-requests-2.25.0"), ("python3.8-requests", "2.25.0"));
        assert_eq!(parse_drv_name("glibc-2.33-59"), ("glibc", "2.33-59"));
        assert_eq!(parse_drv_name("nss-cacert-3.60"), ("nss-cacert", "3.60"));
        assert_eq!(parse_drv_name("busybox-static"), ("busybox-static", ""));
        assert_eq!(parse_drv_name("gcc-10.2.0-lib"), ("gcc", "10.2.0-lib"));
    }

    #[test]
    fn nar_hashes_in_every_form_become_hex() {
        // Checked with `nix-hash --to-base16 --type sha256`.
        let hex = "bea1f23ca64736acf398b86f38a3db3d5081d4d2bb71575a434afafb9e796eb1";
        assert_eq!(nar_hash_hex("sha256:1cbfg6ggpyja8dd5fwdvsba82l1xvfikhvxqk3rsqdj7lqyg58dy").as_deref(), Some(hex));
        assert_eq!(nar_hash_hex(&format!("sha256:{hex}")).as_deref(), Some(hex));
        assert_eq!(nar_hash_hex("sha256-vqHyPKZHNqzzmLhvOKPbPVCB1NK7cVdaQ0r6+555brE=").as_deref(), Some(hex));
        assert_eq!(nar_hash_hex("sha256:0080000000000000000000000000000000000000000000000000").unwrap(), format!("{:064x}", 1));
        for bad in ["md5:abc", "sha256:xyz", "sha256:1cbfg6ggpyja8dd5fwdvsba82l1xvfikhvxqk3rsqdj7lqyg58de", "sha256-!!"] {
            assert_eq!(nar_hash_hex(bad), None, "{bad}");
        }
    }
}
