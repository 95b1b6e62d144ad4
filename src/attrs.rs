//! Nix's structured attributes: how a derivation with `__structuredAttrs = true` hands its inputs to
//! a builder.
//!
//! Nix writes every attribute of the derivation, plus the reference graphs requested with
//! `exportReferencesGraph` and the `outputs` map, into one JSON file. Newer Nix names it in
//! `$NIX_ATTRS_JSON_FILE`; Nix 2.8 and older leave `.attrs.json` in the build directory. Both
//! programs run as builders straight from this file, so no shell or stdenv is needed.

use std::path::{Path, PathBuf};

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::output::read_file;

/// Where the structured attributes of the current build are: `$NIX_ATTRS_JSON_FILE` if it names
/// a file, else `./.attrs.json`. (Nix 2.8 sets the variable to the host-side path even inside the
/// sandbox, where the file is in the build directory instead.)
pub fn default_path() -> PathBuf {
    std::env::var_os("NIX_ATTRS_JSON_FILE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(".attrs.json"))
}

/// True when this process looks like a Nix builder with structured attributes.
pub fn present() -> bool {
    default_path().is_file()
}

/// The parsed attributes, with accessors that name the file and the attribute in every error.
pub struct Attrs {
    path: PathBuf,
    map: Map<String, Value>,
}

impl Attrs {
    pub fn load(path: &Path) -> Result<Attrs> {
        let bytes = read_file(path)?;
        Attrs::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Attrs> {
        Attrs::parse_without(path, bytes, &[])
    }

    /// The attributes without those named in `skipped`, whose values are checked as JSON but not
    /// kept: a reference graph Nix exported is read by [`crate::graph::Closure`] from the same
    /// bytes, and as a tree of values a 100k-path graph took a quarter of a grouping.
    pub fn parse_without(path: &Path, bytes: &[u8], skipped: &[&str]) -> Result<Attrs> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = de.deserialize_any(Object { skipped }).and_then(|map| de.end().map(|()| map));
        match parsed {
            Ok(Some(map)) => Ok(Attrs { path: path.to_path_buf(), map }),
            Ok(None) => Err(Error::invalid(path, "structured attributes are not a JSON object")),
            Err(source) => Err(Error::Json { path: path.to_path_buf(), source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The attributes as a program's typed input: every attribute by its name, and every output
    /// of the derivation by its name too (`out`, `record`, ...), so that an input struct names a
    /// file it writes the same way whether a flag or an output gives it. An error names the
    /// attribute.
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let mut map = self.map.clone();
        if let Some(Value::Object(outputs)) = self.map.get("outputs") {
            for (name, path) in outputs {
                map.entry(name.clone()).or_insert_with(|| path.clone());
            }
        }
        // Nix writes `null` for an attribute set to null: the same as leaving it out.
        map.retain(|_, v| !v.is_null());
        serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
            let inner = e.inner().to_string();
            let what = match (e.path().to_string().as_str(), inner.strip_prefix("missing field ")) {
                (".", Some(field)) => format!("attribute {field} is missing"),
                (".", None) => inner,
                (at, _) => format!("attribute `{at}`: {inner}"),
            };
            Error::invalid(&self.path, what)
        })
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<&str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.bad(name, v, "a string")),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<&str> {
        self.string(name)?.ok_or_else(|| Error::invalid(&self.path, format!("attribute `{name}` is missing")))
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.bad(name, v, "a non-negative integer")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.bad(name, v, "a boolean")),
        }
    }

    /// A list of strings; a single string counts as a list of one, as Nix allows for paths.
    pub fn strings(&self, name: &str) -> Result<Vec<String>> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| self.bad(name, v, "a list of strings")))
                .collect(),
            Some(v) => Err(self.bad(name, v, "a list of strings")),
        }
    }

    /// The store path of output `name`, if the derivation has that output.
    pub fn output(&self, name: &str) -> Option<PathBuf> {
        self.map.get("outputs")?.get(name)?.as_str().map(PathBuf::from)
    }

    pub fn required_output(&self, name: &str) -> Result<PathBuf> {
        self.output(name).ok_or_else(|| Error::invalid(&self.path, format!("the derivation has no output `{name}`")))
    }

    fn bad(&self, name: &str, v: &Value, want: &str) -> Error {
        let mut shown = v.to_string();
        if shown.len() > 80 {
            shown.truncate(77);
            shown.push_str("...");
        }
        Error::invalid(&self.path, format!("attribute `{name}` should be {want}, not {shown}"))
    }
}

/// A JSON document read as an object without some of its members; `None` if it is no object.
struct Object<'s> {
    skipped: &'s [&'s str],
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = Option<Map<String, Value>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if self.skipped.contains(&key.as_str()) {
                access.next_value::<IgnoredAny>()?;
            } else {
                map.insert(key, access.next_value()?);
            }
        }
        Ok(Some(map))
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> std::result::Result<Self::Value, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}
