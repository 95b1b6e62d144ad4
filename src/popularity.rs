//! Popularity: how many packages of a package set reference a store path's name.
//!
//! Nixery's format is a JSON object from a path's name without its hash (`glibc-2.27` for
//! `/nix/store/<hash>-glibc-2.27`) to a count. The data always comes from some other nixpkgs
//! revision than the image's, so it is matched by name and is always partial: a name it lacks
//! counts as 1, the same as having no data at all.

use std::path::Path;

use rustc_hash::FxHashMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::name_of;
use crate::output::read_file;

/// Counts by name; absent names count as 1.
#[derive(Debug, Clone, Default)]
pub struct Popularity {
    counts: FxHashMap<String, u64>,
}

impl Popularity {
    /// No data: every path counts as 1.
    pub fn none() -> Popularity {
        Popularity::default()
    }

    pub fn load(path: &Path) -> Result<Popularity> {
        Popularity::parse(path, &read_file(path)?)
    }

    pub fn parse(origin: &Path, bytes: &[u8]) -> Result<Popularity> {
        let map: FxHashMap<String, Value> = match serde_json::from_slice(bytes) {
            Ok(map) => map,
            Err(e) if e.is_data() && e.line() == 1 && e.column() <= 1 => {
                return Err(Error::invalid(origin, "popularity data must be a JSON object from name to count"));
            }
            Err(source) => return Err(Error::Json { path: origin.to_path_buf(), source }),
        };
        let mut counts = FxHashMap::with_capacity_and_hasher(map.len(), Default::default());
        for (name, v) in map {
            let n = v.as_u64().ok_or_else(|| {
                Error::invalid(origin, format!("popularity of \"{name}\" is {v}, not a non-negative integer"))
            })?;
            counts.insert(name, n);
        }
        Ok(Popularity { counts })
    }

    pub fn from_counts(counts: impl IntoIterator<Item = (String, u64)>) -> Popularity {
        Popularity { counts: counts.into_iter().collect() }
    }

    /// The count for a store path, if the data knows its name.
    pub fn get(&self, store_path: &str) -> Option<u64> {
        self.counts.get(name_of(store_path)).copied()
    }

    /// The count for a store path, 1 when unknown (Nixery's rule).
    pub fn of(&self, store_path: &str) -> u64 {
        self.get(store_path).unwrap_or(1)
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The data in Nixery's format, keys sorted.
    pub fn to_json(&self) -> serde_json::Value {
        let sorted: std::collections::BTreeMap<&str, u64> = self.counts.iter().map(|(k, &v)| (k.as_str(), v)).collect();
        serde_json::json!(sorted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_count_one_and_bad_counts_are_named() {
        let p = Popularity::parse(Path::new("pop.json"), br#"{"glibc-2.27": 5000}"#).unwrap();
        assert_eq!(p.of("/nix/store/aaa-glibc-2.27"), 5000);
        assert_eq!(p.of("/nix/store/aaa-zlib-1"), 1);
        let e = Popularity::parse(Path::new("pop.json"), br#"{"a": 1, "zlib": 2.5}"#).unwrap_err().to_string();
        assert!(e.contains("pop.json") && e.contains("\"zlib\"") && e.contains("2.5"), "{e}");
        let e = Popularity::parse(Path::new("pop.json"), br#"{"zlib": -1}"#).unwrap_err().to_string();
        assert!(e.contains("-1"), "{e}");
        let e = Popularity::parse(Path::new("pop.json"), b"[1]").unwrap_err().to_string();
        assert!(e.contains("JSON object"), "{e}");
    }
}
