//! Output files that appear whole or not at all.
//!
//! A layer tarball or a grouping that stops half-way must never be mistaken for a finished one, so
//! every output is written under a temporary name in the same directory and renamed into place only
//! after the last byte was written; dropping an unfinished output removes it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A temporary file that takes its final name on [`Staged::commit`] and is removed otherwise.
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl Staged {
    /// Creates the temporary file next to `dest`.
    pub fn create(dest: &Path) -> Result<(Staged, File)> {
        let name = dest.file_name().ok_or_else(|| Error::Usage(format!("{}: not a file name", dest.display())))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let file = File::create(&tmp).map_err(|source| Error::Write { path: dest.to_path_buf(), source })?;
        Ok((Staged { tmp, dest: dest.to_path_buf(), done: false }, file))
    }

    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Renames the finished file into place; `file` is closed first so every write has landed.
    pub fn commit(mut self, file: File) -> Result<()> {
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(|source| Error::Write { path: self.dest.clone(), source })?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` whole, or to stdout when `dest` is `-`.
pub fn write_output(dest: &Path, bytes: &[u8]) -> Result<()> {
    let werr = |source| Error::Write { path: dest.to_path_buf(), source };
    if dest == Path::new("-") {
        let mut out = io::stdout().lock();
        return out.write_all(bytes).and_then(|_| out.flush()).map_err(werr);
    }
    let (staged, mut file) = Staged::create(dest)?;
    file.write_all(bytes).map_err(werr)?;
    staged.commit(file)
}

/// Reads a whole file, naming it on failure.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
}

/// Creates the new directory `dir` and fills it with `fill`; if filling fails, `dir` is removed:
/// an output directory is whole or absent. `fill` gets a helper that names a failed write.
pub fn new_dir(dir: &Path, fill: impl FnOnce(&dyn Fn(PathBuf) -> Box<dyn FnOnce(io::Error) -> Error>) -> Result<()>) -> Result<()> {
    fs::create_dir(dir).map_err(|source| Error::Write { path: dir.to_path_buf(), source })?;
    let werr = |path: PathBuf| -> Box<dyn FnOnce(io::Error) -> Error> { Box::new(move |source| Error::Write { path, source }) };
    fill(&werr).inspect_err(|_| {
        let _ = fs::remove_dir_all(dir);
    })
}
