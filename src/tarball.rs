//! Layer tarballs: the same store paths give the same bytes, on any machine, in any run.
//!
//! A layer is a tar stream written entry by entry into a [`LayerSink`], so it is hashed (and
//! compressed, see [`crate::compress`]) while it is written. Everything that varies between
//! machines is left out or fixed: entries come in byte order of their names (each directory
//! before its contents), owners are numeric with empty names (0/0 unless [`crate::perms`] or the
//! customisation layer's declarations say otherwise), every mtime is the same (1 by default),
//! there are no atimes, ctimes, xattrs or device numbers, and hard links are written as the files
//! they are. Names are relative to the image root (no leading `/`), ustar headers carry them when
//! they fit in 100 bytes, and a PAX extended header otherwise (store paths pass 100 bytes all the
//! time); names are bytes, not strings, so names that are not UTF-8 survive as they are.
//!
//! This file writes the *store layer* of a group of store paths, with the store directory's own
//! ancestors (`nix/`, `nix/store/`) at mode 0755 so that non-root users can traverse them; the
//! customisation layer's contents are [`crate::customisation`]'s.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::compress::{Compression, LayerDigests, LayerSink};
use crate::error::{Error, Result};
use crate::perms::{PermSpec, Perms, Rule};

/// The mtime of every entry unless told otherwise: 1970-01-01T00:00:01Z, as Nixery (2019)'s
/// `SOURCE_DATE_EPOCH`.
pub const DEFAULT_MTIME: u64 = 1;

/// Largest size the ustar size field holds (11 octal digits).
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// The owner and permission bits of an entry: root's and the store's unless `perms` (store
/// layers) or declared directories and accounts (the customisation layer) say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    /// Owned by root.
    pub fn root(mode: u32) -> Meta {
        Meta { mode, uid: 0, gid: 0 }
    }
}

/// Writes tar entries into a sink.
pub struct TarWriter<'a> {
    sink: &'a mut LayerSink,
    mtime: u64,
    /// Where errors of the sink are reported: the output's name.
    output: PathBuf,
}

impl<'a> TarWriter<'a> {
    pub fn new(sink: &'a mut LayerSink, mtime: u64, output: &Path) -> TarWriter<'a> {
        TarWriter { sink, mtime, output: output.to_path_buf() }
    }

    fn werr(&self, source: io::Error) -> Error {
        Error::Write { path: self.output.clone(), source }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.sink.write(bytes).map_err(|e| self.werr(e))
    }

    fn header(&mut self, name: &[u8], kind: EntryType, meta: Meta, size: u64, link: Option<&[u8]>) -> Result<()> {
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        if name.len() > 100 {
            pax.push(("path", name.to_vec()));
        }
        if let Some(l) = link.filter(|l| l.len() > 100) {
            pax.push(("linkpath", l.to_vec()));
        }
        if size > USTAR_MAX_SIZE {
            pax.push(("size", size.to_string().into_bytes()));
        }
        if !pax.is_empty() {
            if pax.iter().any(|(_, v)| std::str::from_utf8(v).is_err()) {
                // PAX values are UTF-8 unless the archive says otherwise.
                pax.insert(0, ("hdrcharset", b"BINARY".to_vec()));
            }
            let body = pax_records(&pax);
            let mut h = self.plain_header(b"././@PaxHeader", EntryType::XHeader, Meta::root(0o644), body.len() as u64, None);
            h.set_cksum();
            self.put(h.as_bytes())?;
            self.put(&body)?;
            self.pad(body.len() as u64)?;
        }
        let mut h = self.plain_header(name, kind, meta, size.min(USTAR_MAX_SIZE), link);
        h.set_cksum();
        self.put(h.as_bytes())
    }

    fn plain_header(&self, name: &[u8], kind: EntryType, meta: Meta, size: u64, link: Option<&[u8]>) -> Header {
        let mut h = Header::new_ustar();
        {
            let u = h.as_ustar_mut().expect("ustar header");
            let n = name.len().min(100);
            u.name[..n].copy_from_slice(&name[..n]);
            if let Some(l) = link {
                let n = l.len().min(100);
                u.linkname[..n].copy_from_slice(&l[..n]);
            }
        }
        h.set_entry_type(kind);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid.into());
        h.set_gid(meta.gid.into());
        h.set_mtime(self.mtime);
        h.set_size(size);
        h
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.put(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    /// A directory entry; `name` without its trailing slash.
    pub fn dir(&mut self, name: &[u8], meta: Meta) -> Result<()> {
        let mut n = name.to_vec();
        n.push(b'/');
        self.header(&n, EntryType::Directory, meta, 0, None)
    }

    /// A symbolic link; its mode is always 0777 (no system reads another), its owner `meta`'s.
    pub fn symlink(&mut self, name: &[u8], target: &[u8], meta: Meta) -> Result<()> {
        self.header(name, EntryType::Symlink, Meta { mode: 0o777, ..meta }, 0, Some(target))
    }

    /// A regular file of these bytes.
    pub fn bytes(&mut self, name: &[u8], meta: Meta, data: &[u8]) -> Result<()> {
        self.header(name, EntryType::Regular, meta, data.len() as u64, None)?;
        self.put(data)?;
        self.pad(data.len() as u64)
    }

    /// A regular file whose `size` bytes come from `source`; it must not change while read.
    pub fn file(&mut self, name: &[u8], meta: Meta, size: u64, source: &Path) -> Result<()> {
        let rerr = |source_err| Error::Read { path: source.to_path_buf(), source: source_err };
        let mut f = File::open(source).map_err(rerr)?;
        self.header(name, EntryType::Regular, meta, size, None)?;
        let got = self.sink.copy_from(&mut f, size).map_err(rerr)?;
        if got != size {
            return Err(Error::store(source, format!("shrank from {size} to {got} bytes while it was read")));
        }
        let mut probe = [0u8; 1];
        if io::Read::read(&mut f, &mut probe).map_err(rerr)? != 0 {
            return Err(Error::store(source, format!("grew past {size} bytes while it was read")));
        }
        self.pad(size)
    }

    /// The end-of-archive marker: two zero blocks.
    pub fn finish(&mut self) -> Result<()> {
        self.put(&[0u8; 1024])
    }

    /// Writes `path` (a file, directory or symlink) and, for a directory, everything below it,
    /// as entry `name`; `rules` may change each entry's owner and mode, matched on its path
    /// below the store path, `name[rel..]` (empty for the store path itself).
    pub fn tree(&mut self, path: &Path, name: &mut Vec<u8>, rules: &[&Rule], rel: usize) -> Result<()> {
        let md = fs::symlink_metadata(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let ft = md.file_type();
        let mut meta = Meta::root(md.mode() & 0o7777);
        let below = name.get(rel..).unwrap_or_default();
        for rule in rules {
            rule.apply(below, ft.is_symlink(), &mut meta);
        }
        if ft.is_dir() {
            self.dir(name, meta)?;
            for child in sorted_dir(path)? {
                let len = name.len();
                name.push(b'/');
                name.extend_from_slice(child.as_bytes());
                self.tree(&path.join(&child), name, rules, rel)?;
                name.truncate(len);
            }
            Ok(())
        } else if ft.is_file() {
            self.file(name, meta, md.len(), path)
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
            self.symlink(name, target.as_os_str().as_bytes(), meta)
        } else {
            let kind = if ft.is_fifo() {
                "a fifo"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_block_device() {
                "a block device"
            } else if ft.is_char_device() {
                "a character device"
            } else {
                "of an unknown file type"
            };
            Err(Error::store(path, format!("is {kind}, which a layer cannot hold")))
        }
    }
}

fn pax_records(records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        // "<len> <key>=<value>\n", where <len> counts itself.
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// Directory entries in byte order of their names.
pub(crate) fn sorted_dir(path: &Path) -> Result<Vec<OsString>> {
    let rerr = |source| Error::Read { path: path.to_path_buf(), source };
    let mut names = fs::read_dir(path)
        .map_err(rerr)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(rerr)?;
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// The store directory in effect: `--store-dir`, else `$NIX_STORE_DIR`, else `/nix/store`.
pub fn store_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("NIX_STORE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/nix/store"))
}

/// Checks that each path is a store path (a direct child of `store`), and returns them sorted
/// by bytes without duplicates.
pub fn store_paths(store: &Path, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        // Rebuilt from its components: without trailing slashes or `.` components. After `..`
        // there is no file name, so `store/..` and `store/x/..` fail as they should.
        let trimmed: PathBuf = p.components().collect();
        let ok = trimmed.parent() == Some(store) && trimmed.file_name().is_some();
        if !ok {
            return Err(Error::store(p, format!("is not a store path: layers hold direct children of {}", store.display())));
        }
        out.push(trimmed);
    }
    out.sort_unstable_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    out.dedup();
    Ok(out)
}

/// Writes the store layer of `paths` (already checked by [`store_paths`]), with `perms`' rules
/// applied below their store paths.
pub fn write_store_layer(w: &mut TarWriter, store: &Path, paths: &[PathBuf], perms: &Perms) -> Result<()> {
    let rel = store.strip_prefix("/").unwrap_or(store).as_os_str().as_bytes();
    let mut name = Vec::new();
    for component in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(component);
        w.dir(&name, Meta::root(0o755))?;
    }
    for p in paths {
        let len = name.len();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(p.file_name().expect("checked store path").as_bytes());
        // Below the store path, rules see `bin/hello`: past the name and its slash.
        let rel = name.len() + 1;
        w.tree(p, &mut name, &perms.for_path(p), rel)?;
        name.truncate(len);
    }
    perms.check_all_matched()?;
    w.finish()
}

/// Writes a tarball to `out` through `body`, hashing and compressing it on the way; `out`
/// appears only once the whole blob is written.
pub fn pack<T>(out: &Path, mtime: u64, compression: Compression, body: impl FnOnce(&mut TarWriter) -> Result<T>) -> Result<(LayerDigests, T)> {
    let werr = |source| Error::Write { path: out.to_path_buf(), source };
    let (staged, file) = crate::output::Staged::create(out)?;
    let mut sink = LayerSink::new(compression, Some(file)).map_err(werr)?;
    let value = body(&mut TarWriter::new(&mut sink, mtime, out))?;
    let (digests, file) = sink.finish().map_err(werr)?;
    staged.commit(file.expect("sink was given a file"))?;
    Ok((digests, value))
}

/// Packs the store layer of `paths` into `out`, with `perms` (each naming one of `paths`).
pub fn pack_store_layer(out: &Path, store: &Path, paths: &[PathBuf], perms: &[PermSpec], mtime: u64, compression: Compression) -> Result<LayerDigests> {
    let paths = store_paths(store, paths)?;
    let perms = Perms::new(perms, &paths)?;
    Ok(pack(out, mtime, compression, |w| write_store_layer(w, store, &paths, &perms))?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(name: &[u8], size: u64) -> Vec<u8> {
        entry_header_bytes(name, size, None)
    }

    fn entry_header_bytes(name: &[u8], size: u64, link: Option<&[u8]>) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("h.tar");
        let (staged, file) = crate::output::Staged::create(&out).unwrap();
        let mut sink = LayerSink::new(Compression::None, Some(file)).unwrap();
        let kind = if link.is_some() { EntryType::Symlink } else { EntryType::Regular };
        TarWriter::new(&mut sink, 1, &out).header(name, kind, Meta::root(0o644), size, link).unwrap();
        let (_, file) = sink.finish().unwrap();
        staged.commit(file.unwrap()).unwrap();
        fs::read(&out).unwrap()
    }

    #[test]
    fn sizes_past_the_ustar_field_go_into_pax() {
        let small = header_bytes(b"f", 10);
        assert_eq!(small.len(), 512, "no extended header when everything fits");
        let big = header_bytes(b"f", 9_000_000_000);
        assert_eq!(&big[156..157], b"x");
        assert!(big[512..1024].starts_with(b"19 size=9000000000\n"));
        assert_eq!(big.len(), 1536);
    }

    /// The ustar fields hold a name and a link target of 100 bytes and a size up to
    /// USTAR_MAX_SIZE: at the limit the header is plain (one block), one past it a PAX header
    /// comes first (three blocks). Layers' bytes, and so their digests, depend on where it falls.
    #[test]
    fn fields_at_their_limit_stay_plain_and_one_past_go_into_pax() {
        let blocks = |b: Vec<u8>| b.len() / 512;
        assert_eq!(blocks(header_bytes(&[b'n'; 100], 10)), 1);
        assert_eq!(blocks(header_bytes(&[b'n'; 101], 10)), 3);
        assert_eq!(blocks(entry_header_bytes(b"l", 0, Some(&[b't'; 100]))), 1);
        assert_eq!(blocks(entry_header_bytes(b"l", 0, Some(&[b't'; 101]))), 3);
        assert_eq!(blocks(header_bytes(b"f", USTAR_MAX_SIZE)), 1);
        assert_eq!(blocks(header_bytes(b"f", USTAR_MAX_SIZE + 1)), 3);
    }

    /// The bytes of a layer are pinned: a change to this writer, or an update of the `tar` crate,
    /// that changes them (and so the digest of every layer users have) fails here, loudly. The
    /// tree has names and a link target of exactly 100 and 101 bytes, a name that is not UTF-8,
    /// a file over one block, an empty file and directory, and several modes.
    #[test]
    fn layer_bytes_are_pinned() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::create_dir_all(src.join("share/empty")).unwrap();
        let file = |name: &[u8], data: &[u8], mode: u32| {
            let p = src.join(std::ffi::OsStr::from_bytes(name));
            fs::write(&p, data).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        };
        file(b"bin/tool", b"#!/bin/sh\necho tool\n", 0o555);
        file(b"share/data", &(0..1300u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>(), 0o444);
        file(b"share/empty-file", b"", 0o644);
        file(b"share/latin1-\xe9t\xe9", b"not utf-8", 0o444);
        // After `nix/store/<32 bytes>-pinned/share/` (56 bytes), names of 100 and 101 bytes.
        file(&[b"share/".as_slice(), &[b'n'; 44]].concat(), b"100", 0o444);
        file(&[b"share/".as_slice(), &[b'm'; 45]].concat(), b"101", 0o444);
        symlink("a".repeat(100), src.join("bin/link-100")).unwrap();
        symlink("b".repeat(101), src.join("bin/link-101")).unwrap();
        symlink("../share", src.join("bin/share")).unwrap();
        for dir in ["", "bin", "share", "share/empty"] {
            fs::set_permissions(src.join(dir), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = d.path().join("pinned.tar");
        let (digests, ()) = pack(&out, DEFAULT_MTIME, Compression::None, |w| {
            w.dir(b"nix", Meta::root(0o755))?;
            w.dir(b"nix/store", Meta::root(0o755))?;
            w.tree(&src, &mut b"nix/store/00000000000000000000000000000000-pinned".to_vec(), &[], 0)?;
            w.finish()
        })
        .unwrap();
        assert_eq!(digests.blob.size, 14_336);
        assert_eq!(digests.diff_id, digests.blob.sha256);
        assert_eq!(digests.blob.sha256, "c2d9e4dad046287dbb4eedc157ac21a6006bab34ea366024d6f411d84d2200cc");
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        assert_eq!(pax_records(&[("path", b"abc".to_vec())]), b"12 path=abc\n");
        // " linkpath=" + 90 bytes + "\n" is 101 bytes: with its own three digits, 104.
        let r = pax_records(&[("linkpath", vec![b'a'; 90])]);
        assert_eq!(r.len(), 104);
        assert!(r.starts_with(b"104 linkpath="));
        // 95 bytes plus two digits is 97: the length field stays at two digits.
        assert!(pax_records(&[("linkpath", vec![b'a'; 85])]).starts_with(b"98 linkpath="));
        let bin = pax_records(&[("hdrcharset", b"BINARY".to_vec())]);
        assert_eq!(bin, b"21 hdrcharset=BINARY\n");
    }
}
