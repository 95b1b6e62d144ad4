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

/// The parsed attributes as a program's input sees them: every attribute by its name, and every
/// output of the derivation by its name too (`out`, `record`, ...), so that an input struct names
/// a file it writes the same way whether a flag or an output gives it. Attributes set to `null`
/// are left out, as Nix writes `null` for an attribute set to null. [`Attrs::input`] reads them
/// into a program's typed input.
pub struct Attrs {
    path: PathBuf,
    view: Value,
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
    /// bytes, and as a tree of values a large graph costs a good part of a grouping.
    pub fn parse_without(path: &Path, bytes: &[u8], skipped: &[&str]) -> Result<Attrs> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = de.deserialize_any(Object { skipped }).and_then(|map| de.end().map(|()| map));
        match parsed {
            Ok(Some(mut map)) => {
                if let Some(Value::Object(outputs)) = map.get("outputs").cloned() {
                    for (name, out) in outputs {
                        map.entry(name).or_insert(out);
                    }
                }
                map.retain(|_, v| !v.is_null());
                Ok(Attrs { path: path.to_path_buf(), view: Value::Object(map) })
            }
            Ok(None) => Err(Error::invalid(path, "structured attributes are not a JSON object")),
            Err(source) => Err(Error::Json { path: path.to_path_buf(), source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The attributes as a program's typed input (or part of it); an error names the attribute.
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(&self.view).map_err(|e| {
            let inner = e.inner().to_string();
            let what = match (e.path().to_string().as_str(), inner.strip_prefix("missing field ")) {
                (".", Some(field)) => format!("attribute {field} is missing"),
                (".", None) => inner,
                (at, _) => format!("attribute `{at}`: {inner}"),
            };
            Error::invalid(&self.path, what)
        })
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
