//! The customisation layer: the top layer of every image, holding what is not a store path.
//!
//! Its base is the symlink forest at `/` that nixpkgs' `symlinkJoin` would build from the image's
//! top-level contents, made here without building it: as `lndir` does, directories are merged
//! into real directories (mode 0755), a regular file becomes an absolute symlink to its place in
//! the store, and a symlink is copied with its target unchanged. When two packages provide the
//! same name, the first listed keeps it and the conflict is reported.
//!
//! Onto the forest go the image's declarations, each with its owner and mode: directories (`/tmp`,
//! `dirs`, users' homes) and files (the accounts of [`crate::accounts`]). A declaration that meets
//! a symlink of the forest, on its path or at its place, is an error naming both: writing a
//! directory over a package's link would silently hide the package's file.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::accounts::DeclaredFile;
use crate::compress::{Compression, LayerDigests};
use crate::error::{Error, Result};
use crate::perms::parse_mode;
use crate::tarball::{Meta, TarWriter, pack, sorted_dir};

/// A directory the image declares, with its owner resolved to numbers by build-image.nix.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DirSpec {
    /// Absolute path in the image.
    pub path: String,
    /// Octal permission bits; default "0755".
    #[serde(default = "default_dir_mode")]
    pub mode: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
}

fn default_dir_mode() -> String {
    "0755".into()
}

/// What the customisation layer holds besides the forest.
#[derive(Debug, Default)]
pub struct Declarations {
    pub dirs: Vec<DirSpec>,
    pub files: Vec<DeclaredFile>,
}

/// One node of the tree the layer is written from.
enum Node {
    /// `declared` tells a directory named by a declaration from one made for the forest.
    Dir { children: BTreeMap<Vec<u8>, Node>, meta: Meta, declared: bool },
    Link(Vec<u8>),
    File { data: Vec<u8>, meta: Meta },
}

impl Node {
    fn dir() -> Node {
        Node::Dir { children: BTreeMap::new(), meta: Meta::root(0o755), declared: false }
    }
}

/// What happened while building the layer: names two packages both provide (the first listed
/// wins), and counts.
#[derive(Debug, Default)]
pub struct ForestReport {
    pub conflicts: Vec<String>,
    pub links: usize,
    pub dirs: usize,
    /// Declared files and directories written.
    pub declared: usize,
}

/// Writes the customisation layer of `contents` (in priority order; each a directory) and
/// `declarations`.
pub fn write_customisation_layer(w: &mut TarWriter, contents: &[PathBuf], declarations: &Declarations) -> Result<ForestReport> {
    let mut root = BTreeMap::new();
    let mut report = ForestReport::default();
    for pkg in contents {
        let md = fs::metadata(pkg).map_err(|source| Error::Read { path: pkg.clone(), source })?;
        if !md.is_dir() {
            return Err(Error::store(pkg, "is not a directory, so it cannot be merged into the image root"));
        }
        merge(&mut root, pkg, pkg, &mut report)?;
    }
    for d in &declarations.dirs {
        let what = format!("dirs entry {}", d.path);
        let mode = parse_mode(&d.mode).ok_or_else(|| Error::Usage(format!("{what}: mode `{}` is not octal permission bits such as \"0755\"", d.mode)))?;
        declare(&mut root, &d.path, &what, Declared::Dir(Meta { mode, uid: d.uid, gid: d.gid }))?;
    }
    for f in &declarations.files {
        declare(&mut root, &f.path, &format!("{} (from users and groups)", f.path), Declared::File(f.data.clone(), f.meta))?;
    }
    report.declared = declarations.dirs.len() + declarations.files.len();
    let mut name = Vec::new();
    emit(w, &root, &mut name, &mut report)?;
    w.finish()?;
    Ok(report)
}

/// Packs the customisation layer into `out`.
pub fn pack_customisation_layer(
    out: &Path,
    contents: &[PathBuf],
    declarations: &Declarations,
    mtime: u64,
    compression: Compression,
) -> Result<(LayerDigests, ForestReport)> {
    pack(out, mtime, compression, |w| write_customisation_layer(w, contents, declarations))
}

fn merge(into: &mut BTreeMap<Vec<u8>, Node>, dir: &Path, pkg: &Path, report: &mut ForestReport) -> Result<()> {
    for child in sorted_dir(dir)? {
        let path = dir.join(&child);
        let md = fs::symlink_metadata(&path).map_err(|source| Error::Read { path: path.clone(), source })?;
        let key = child.into_vec();
        let shown = || path.strip_prefix(pkg).map(|p| p.display().to_string()).unwrap_or_default();
        if md.is_dir() {
            match into.entry(key).or_insert_with(Node::dir) {
                Node::Dir { children, .. } => merge(children, &path, pkg, report)?,
                _ => report.conflicts.push(format!("/{}: a file from an earlier package is kept over the directory in {}", shown(), pkg.display())),
            }
        } else {
            let target = if md.file_type().is_symlink() {
                fs::read_link(&path).map_err(|source| Error::Read { path: path.clone(), source })?.into_os_string().into_vec()
            } else {
                path.as_os_str().as_bytes().to_vec()
            };
            match into.entry(key) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Node::Link(target));
                }
                std::collections::btree_map::Entry::Occupied(_) => {
                    report.conflicts.push(format!("/{}: provided by an earlier package, {}'s is left out", shown(), pkg.display()));
                }
            }
        }
    }
    Ok(())
}

enum Declared {
    Dir(Meta),
    File(Vec<u8>, Meta),
}

/// Puts a declared directory or file at `path`, making missing parents (root's, 0755).
fn declare(root: &mut BTreeMap<Vec<u8>, Node>, path: &str, what: &str, node: Declared) -> Result<()> {
    let components: Vec<&str> = match path.strip_prefix('/') {
        Some(rest) => rest.split('/').collect(),
        None => return Err(Error::Usage(format!("{what}: not an absolute path"))),
    };
    if components.iter().any(|c| c.is_empty() || *c == "." || *c == "..") {
        return Err(Error::Usage(format!("{what}: a path in the image is `/` and names without `.`, `..` or empty parts")));
    }
    let (last, parents) = components.split_last().expect("split gives one part at least");
    let mut dir = root;
    let mut at = String::new();
    for c in parents {
        at.push('/');
        at.push_str(c);
        dir = match dir.entry(c.as_bytes().to_vec()).or_insert_with(Node::dir) {
            Node::Dir { children, .. } => children,
            other => return Err(clash(what, &at, other)),
        };
    }
    let key = last.as_bytes().to_vec();
    match (dir.get_mut(&key), node) {
        (None, Declared::Dir(meta)) => {
            dir.insert(key, Node::Dir { children: BTreeMap::new(), meta, declared: true });
        }
        (None, Declared::File(data, meta)) => {
            dir.insert(key, Node::File { data, meta });
        }
        (Some(Node::Dir { meta, declared, .. }), Declared::Dir(new)) => {
            if *declared && *meta != new {
                return Err(Error::Usage(format!("{what}: declared twice, with different owners or modes")));
            }
            *meta = new;
            *declared = true;
        }
        (Some(other), _) => return Err(clash(what, path, other)),
    }
    Ok(())
}

fn clash(what: &str, at: &str, node: &Node) -> Error {
    let is = match node {
        Node::Link(target) => format!("a symlink to {} (from `contents`)", String::from_utf8_lossy(target)),
        Node::File { .. } => "a file declared by users and groups".to_string(),
        Node::Dir { .. } => "a directory".to_string(),
    };
    Error::Usage(format!("{what}: {at} is also {is} in the customisation layer"))
}

fn emit(w: &mut TarWriter, dir: &BTreeMap<Vec<u8>, Node>, name: &mut Vec<u8>, report: &mut ForestReport) -> Result<()> {
    for (k, node) in dir {
        let len = name.len();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(k);
        match node {
            Node::Dir { children, meta, .. } => {
                w.dir(name, *meta)?;
                report.dirs += 1;
                emit(w, children, name, report)?;
            }
            Node::Link(target) => {
                w.symlink(name, target, Meta::root(0o777))?;
                report.links += 1;
            }
            Node::File { data, meta } => w.bytes(name, *meta, data)?,
        }
        name.truncate(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package with `bin/sh` (a file) and `etc` as a symlink.
    fn package() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("bin")).unwrap();
        fs::write(d.path().join("bin/sh"), "x").unwrap();
        std::os::unix::fs::symlink("/elsewhere", d.path().join("etc")).unwrap();
        d
    }

    fn build(decl: &Declarations) -> Result<Vec<(String, Meta)>> {
        let pkg = package();
        let out = pkg.path().join("layer.tar");
        pack_customisation_layer(&out, &[pkg.path().to_path_buf()], decl, 1, Compression::None)?;
        let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
        Ok(a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string().trim_end_matches('/').to_string(), Meta { mode: h.mode().unwrap(), uid: h.uid().unwrap() as u32, gid: h.gid().unwrap() as u32 })
            })
            .collect())
    }

    fn dir(path: &str, mode: &str, uid: u32) -> DirSpec {
        DirSpec { path: path.into(), mode: mode.into(), uid, gid: uid }
    }

    #[test]
    fn declared_directories_get_their_owner_and_mode_and_parents() {
        let decl = Declarations { dirs: vec![dir("/tmp", "1777", 0), dir("/home/app", "0700", 1000)], files: vec![] };
        let entries = build(&decl).unwrap();
        let meta = |p: &str| entries.iter().find(|(n, _)| n == p).map(|(_, m)| *m);
        assert_eq!(meta("tmp"), Some(Meta::root(0o1777)));
        assert_eq!(meta("home"), Some(Meta::root(0o755)));
        assert_eq!(meta("home/app"), Some(Meta { mode: 0o700, uid: 1000, gid: 1000 }));
        assert_eq!(meta("bin/sh"), Some(Meta::root(0o777)), "the forest is still there");
    }

    #[test]
    fn declarations_that_meet_a_symlink_are_errors_naming_both() {
        for path in ["/etc", "/etc/app", "/bin/sh", "/bin/sh/x"] {
            let e = build(&Declarations { dirs: vec![dir(path, "0755", 0)], files: vec![] }).unwrap_err().to_string();
            assert!(e.contains(&format!("dirs entry {path}")) && e.contains("is also a symlink to"), "{path}: {e}");
        }
        let passwd = DeclaredFile { path: "/etc/passwd".into(), data: b"root:x:0:0::/root:/bin/sh\n".to_vec(), meta: Meta::root(0o644) };
        let e = build(&Declarations { dirs: vec![], files: vec![passwd] }).unwrap_err().to_string();
        assert!(e.contains("/etc/passwd (from users and groups)") && e.contains("symlink to /elsewhere"), "{e}");
        let twice = Declarations { dirs: vec![dir("/data", "0755", 0), dir("/data", "0700", 0)], files: vec![] };
        assert!(build(&twice).unwrap_err().to_string().contains("declared twice"));
        for bad in ["relative", "/a/../b", "/a//b", "/"] {
            assert!(build(&Declarations { dirs: vec![dir(bad, "0755", 0)], files: vec![] }).is_err(), "{bad}");
        }
    }
}
