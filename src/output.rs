//! Output files that appear whole or not at all.
//!
//! A layer tarball or a grouping that stops half-way must never be mistaken for a finished one, so
//! every output is written under a temporary name in the same directory and renamed into place only
//! after the last byte was flushed; dropping an unfinished file removes it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file being written; it takes its final name on [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let name = dest.file_name().ok_or_else(|| Error::Usage(format!("{}: not a file name", dest.display())))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let file = File::create(&tmp).map_err(|source| Error::Write { path: dest.to_path_buf(), source })?;
        Ok(AtomicFile { tmp, dest: dest.to_path_buf(), file: Some(BufWriter::with_capacity(1 << 20, file)) })
    }

    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Flushes, syncs nothing (Nix registers outputs itself), and renames into place.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("committed twice");
        let werr = |source| Error::Write { path: self.dest.clone(), source };
        let file = file.into_inner().map_err(|e| werr(e.into_error()))?;
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(werr)
    }

    /// Writes all of `bytes` and commits.
    pub fn write_all_and_commit(mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes).map_err(|source| Error::Write { path: self.dest.clone(), source })?;
        self.commit()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("write after commit").write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.as_mut().expect("write after commit").write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("flush after commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` whole, or to stdout when `dest` is `-`.
pub fn write_output(dest: &Path, bytes: &[u8]) -> Result<()> {
    if dest == Path::new("-") {
        let mut out = io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|_| out.flush())
            .map_err(|source| Error::Write { path: dest.to_path_buf(), source });
    }
    AtomicFile::create(dest)?.write_all_and_commit(bytes)
}

/// Reads a whole file, naming it on failure.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
}
