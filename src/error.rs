//! The library's one error type: every failure names the file or store path it concerns, so the
//! binaries can print it as a single readable line.

use std::path::PathBuf;

/// Everything that can go wrong while reading inputs, grouping paths or writing layers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// An output could not be created, written, flushed or renamed into place.
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// A file is not valid JSON (serde's message carries the line and column).
    #[error("{path}: malformed JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    /// A file parsed, but one of its entries makes no sense; `what` names the entry.
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    /// A store path that cannot go into a layer (wrong file type, outside the store, changed while read).
    #[error("{path}: {what}")]
    Store { path: PathBuf, what: String },
    /// A bad argument or option value.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message as the binaries print it: one line, whatever the input held. Control characters
/// that came in with user data (a newline in a store path or a regex) are escaped as Rust writes
/// them in strings (`\n`, `\u{1b}`).
pub fn one_line(message: &str) -> String {
    message.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

impl Error {
    pub(crate) fn invalid(path: impl Into<PathBuf>, what: impl Into<String>) -> Error {
        Error::Invalid { path: path.into(), what: what.into() }
    }
    pub(crate) fn store(path: impl Into<PathBuf>, what: impl Into<String>) -> Error {
        Error::Store { path: path.into(), what: what.into() }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(super::one_line("a\nb\tc\u{1b}é"), "a\\nb\\tc\\u{1b}é");
        assert_eq!(super::one_line("plain: text"), "plain: text");
    }
}
