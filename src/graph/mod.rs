//! The closure graph: every store path of an image, its sizes and its references.
//!
//! Nix hands this over through `exportReferencesGraph`: with structured attributes, the attribute
//! `exportReferencesGraph.graph` keeps the roots the derivation asked for, and Nix adds a top-level
//! `graph` list with one `{path, narSize, closureSize, narHash, references}` entry per path of the
//! closure. This module turns that into a validated, order-independent [`Closure`]: nodes sorted by
//! path, references as sorted indices without self-references, and every reference and root known.
//! Sorting here is what makes every later step independent of the order Nix (or a user) wrote.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use rustc_hash::FxHashMap;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::output::read_file;

pub mod dominators;
pub mod walk;

/// Index of a node in [`Closure::nodes`].
pub type NodeId = u32;

/// One store path of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: String,
    /// Size of the path's NAR serialisation: what it weighs in a layer.
    pub nar_size: u64,
    /// Size of the path together with everything it references, as Nix reports it.
    pub closure_size: u64,
    /// Referenced nodes, sorted, without the node itself.
    pub references: Vec<NodeId>,
}

/// A validated closure: nodes sorted by path, roots sorted and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub nodes: Vec<Node>,
    pub roots: Vec<NodeId>,
}

/// One path as given, before validation (what an `.attrs.json` entry holds), for building a
/// closure by hand with [`Closure::from_entries`]. Strings may borrow.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub path: Option<Cow<'a, str>>,
    pub nar_size: Option<u64>,
    pub closure_size: Option<u64>,
    pub references: Option<Vec<Cow<'a, str>>>,
}

/// The document with each graph entry left as its text: reading it checks the whole file's
/// syntax, and the entries, most of the work, can then be read apart (see [`read_entries`]).
#[derive(Deserialize)]
struct RawAttrs<'a> {
    #[serde(rename = "exportReferencesGraph")]
    export: Option<RawExport>,
    #[serde(borrow)]
    graph: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct RawExport {
    graph: Option<Roots>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Roots {
    One(String),
    Many(Vec<String>),
}

impl Closure {
    /// Reads a structured-attrs file (or any JSON file of that shape).
    pub fn load(path: &Path) -> Result<Closure> {
        Closure::parse(path, &read_file(path)?)
    }

    pub fn parse(origin: &Path, bytes: &[u8]) -> Result<Closure> {
        let raw: RawAttrs =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { path: origin.to_path_buf(), source })?;
        let roots = match raw.export.and_then(|e| e.graph) {
            Some(Roots::One(r)) => vec![r],
            Some(Roots::Many(rs)) => rs,
            None => return Err(Error::invalid(origin, "no `exportReferencesGraph.graph` attribute: which paths are the roots?")),
        };
        let entries = raw.graph.ok_or_else(|| {
            Error::invalid(origin, "no `graph` list: was the file written by Nix with `exportReferencesGraph.graph`?")
        })?;
        let (entries, references) = read_entries(origin, &entries)?;
        Closure::from_read(origin, roots, entries, &references)
    }

    /// Validates entries and roots; `origin` names the input in errors.
    pub fn from_entries(origin: &Path, roots: Vec<String>, entries: Vec<Entry<'_>>) -> Result<Closure> {
        let mut references = Vec::new();
        let entries = entries
            .into_iter()
            .map(|e| {
                let refs = e.references.map(|r| {
                    let start = references.len();
                    references.extend(r);
                    start..references.len()
                });
                ReadEntry { path: e.path, nar_size: e.nar_size, closure_size: e.closure_size, references: refs }
            })
            .collect();
        Closure::from_read(origin, roots, entries, &references)
    }

    /// Validates entries whose references are ranges of `references`.
    fn from_read(origin: &Path, roots: Vec<String>, entries: Vec<ReadEntry<'_>>, references: &[Cow<'_, str>]) -> Result<Closure> {
        let mut staged = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let path = e.path.ok_or_else(|| Error::invalid(origin, format!("graph entry {i} has no `path`")))?;
            let missing = |field: &str| Error::invalid(origin, format!("graph entry {path} has no `{field}`"));
            let nar_size = e.nar_size.ok_or_else(|| missing("narSize"))?;
            let closure_size = e.closure_size.ok_or_else(|| missing("closureSize"))?;
            let refs = e.references.ok_or_else(|| missing("references"))?;
            staged.push((path, nar_size, closure_size, &references[refs]));
        }
        staged.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = staged.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid(origin, format!("graph lists {} twice", w[0].0)));
        }
        let mut index: FxHashMap<&str, NodeId> = FxHashMap::default();
        index.reserve(staged.len());
        index.extend(staged.iter().enumerate().map(|(i, s)| (&*s.0, i as NodeId)));
        let node = |i: usize| -> Result<Node> {
            let (path, nar_size, closure_size, refs) = &staged[i];
            let mut references = Vec::with_capacity(refs.len());
            for r in *refs {
                match index.get(&**r) {
                    Some(&j) if j as usize == i => {}
                    Some(&j) => references.push(j),
                    None => {
                        return Err(Error::invalid(origin, format!("{path} references {r}, which is not in the graph")));
                    }
                }
            }
            references.sort_unstable();
            references.dedup();
            Ok(Node { path: path.to_string(), nar_size: *nar_size, closure_size: *closure_size, references })
        };
        // Looking up every reference is most of the work here. The first error in entry order is
        // the one reported, however the work is split.
        let (first, second) = in_halves(staged.len(), |part| part.map(node).collect::<Result<Vec<_>>>());
        let mut nodes = first?;
        if let Some(second) = second {
            nodes.extend(second?);
        }
        let mut root_ids = Vec::with_capacity(roots.len());
        for r in &roots {
            root_ids.push(resolve_root(&index, r).ok_or_else(|| {
                Error::invalid(origin, format!("root {r} is not a path of the graph"))
            })?);
        }
        root_ids.sort_unstable();
        root_ids.dedup();
        Ok(Closure { nodes, roots: root_ids })
    }

    /// A closure from nodes whose references and `roots` are indices into `nodes`, in any order:
    /// sorts the nodes by path and renumbers everything, dropping self-references.
    pub fn from_indexed(nodes: Vec<Node>, roots: &[NodeId]) -> Closure {
        let mut order: Vec<usize> = (0..nodes.len()).collect();
        order.sort_by(|&a, &b| nodes[a].path.cmp(&nodes[b].path));
        let mut new_id = vec![0 as NodeId; nodes.len()];
        for (new, &old) in order.iter().enumerate() {
            new_id[old] = new as NodeId;
        }
        let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
        let nodes = order
            .iter()
            .map(|&old| {
                let mut node = slots[old].take().expect("each node once");
                node.references = node.references.iter().map(|&r| new_id[r as usize]).filter(|&r| r != new_id[old]).collect();
                node.references.sort_unstable();
                node.references.dedup();
                node
            })
            .collect();
        let mut roots: Vec<NodeId> = roots.iter().map(|&r| new_id[r as usize]).collect();
        roots.sort_unstable();
        roots.dedup();
        Closure { nodes, roots }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn path(&self, id: NodeId) -> &str {
        &self.nodes[id as usize].path
    }

    pub fn nar_size(&self, id: NodeId) -> u64 {
        self.nodes[id as usize].nar_size
    }

    /// The sum of narSize over the whole closure: the bytes of the image's store layers.
    pub fn total_size(&self) -> u64 {
        self.nodes.iter().map(|n| n.nar_size).sum()
    }

    /// For each node, the nodes that reference it (sorted).
    pub fn referrers(&self) -> Vec<Vec<NodeId>> {
        let mut rev = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &r in &n.references {
                rev[r as usize].push(i as NodeId);
            }
        }
        rev
    }

    /// Back to the `.attrs.json` shape, entries sorted by path as Nix writes them.
    pub fn to_attrs_json(&self) -> serde_json::Value {
        use serde_json::json;
        let graph: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                // Nix lists a path among its own references when it refers to itself; say so.
                let mut refs: Vec<&str> = n.references.iter().map(|&r| self.path(r)).collect();
                refs.push(&n.path);
                refs.sort_unstable();
                json!({"path": n.path, "narSize": n.nar_size, "closureSize": n.closure_size, "references": refs})
            })
            .collect();
        let roots: Vec<&str> = self.roots.iter().map(|&r| self.path(r)).collect();
        json!({"exportReferencesGraph": {"graph": roots}, "graph": graph})
    }
}

/// The name part of a store path: its last component without the `<hash>-` prefix.
pub fn name_of(store_path: &str) -> &str {
    let base = store_path.rsplit('/').next().unwrap_or(store_path);
    match base.split_once('-') {
        Some((_, name)) => name,
        None => base,
    }
}

/// Graphs of this many paths and more are read on two threads.
const PARALLEL_FROM: usize = 4096;

/// `work` over `0..n`: in one piece below [`PARALLEL_FROM`], else in two halves on two threads
/// (then the second half's result too).
fn in_halves<T: Send>(n: usize, work: impl Fn(Range<usize>) -> T + Sync) -> (T, Option<T>) {
    if n < PARALLEL_FROM {
        return (work(0..n), None);
    }
    std::thread::scope(|scope| {
        let second = scope.spawn(|| work(n / 2..n));
        (work(0..n / 2), Some(second.join().expect("second-half thread")))
    })
}

/// An entry as read, its references a range of one list shared by all entries: a 100k-path graph
/// holds half a million references, and a vector for each entry's cost a tenth of reading them.
#[derive(Default)]
struct ReadEntry<'a> {
    path: Option<Cow<'a, str>>,
    nar_size: Option<u64>,
    closure_size: Option<u64>,
    references: Option<Range<usize>>,
}

/// Reads each entry's text; large graphs in two halves on two threads (a fifth of a 100k-path
/// grouping went to reading the entries in one). The text was checked as JSON already, so reading
/// it again skips the UTF-8 checks.
fn read_entries<'a>(origin: &Path, raw: &[&'a RawValue]) -> Result<(Vec<ReadEntry<'a>>, Vec<Cow<'a, str>>)> {
    let read = |part: Range<usize>| -> Result<(Vec<ReadEntry<'a>>, Vec<Cow<'a, str>>)> {
        let mut references = Vec::with_capacity(part.len() * 8);
        let entries = part
            .map(|i| {
                let mut de = serde_json::Deserializer::from_str(raw[i].get());
                EntrySeed { references: &mut references }
                    .deserialize(&mut de)
                    .map_err(|e| Error::invalid(origin, format!("graph entry {i}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok((entries, references))
    };
    let (first, second) = in_halves(raw.len(), read);
    let (mut entries, mut references) = first?;
    let Some(second) = second else { return Ok((entries, references)) };
    let (more, their_references) = second?;
    let shift = references.len();
    references.extend(their_references);
    entries.extend(more.into_iter().map(|e| ReadEntry { references: e.references.map(|r| r.start + shift..r.end + shift), ..e }));
    Ok((entries, references))
}

/// Reads one entry, appending its references to a shared list.
struct EntrySeed<'r, 'a> {
    references: &'r mut Vec<Cow<'a, str>>,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_, 'de> {
    type Value = ReadEntry<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<ReadEntry<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_, 'de> {
    type Value = ReadEntry<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a graph entry (an object with path, narSize, closureSize and references)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<ReadEntry<'de>, A::Error> {
        fn once<T, E: serde::de::Error>(slot: &Option<T>, name: &'static str) -> std::result::Result<(), E> {
            if slot.is_some() { Err(E::duplicate_field(name)) } else { Ok(()) }
        }
        let mut e = ReadEntry::default();
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "path" => {
                    once(&e.path, "path")?;
                    e.path = Some(map.next_value::<Text>()?.0);
                }
                "narSize" => {
                    once(&e.nar_size, "narSize")?;
                    e.nar_size = Some(map.next_value()?);
                }
                "closureSize" => {
                    once(&e.closure_size, "closureSize")?;
                    e.closure_size = Some(map.next_value()?);
                }
                "references" => {
                    once(&e.references, "references")?;
                    let start = self.references.len();
                    map.next_value_seed(References { into: &mut *self.references })?;
                    e.references = Some(start..self.references.len());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(e)
    }
}

/// A list of strings appended to `into`.
struct References<'r, 'a> {
    into: &'r mut Vec<Cow<'a, str>>,
}

impl<'de> DeserializeSeed<'de> for References<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for References<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of store paths")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(Text(r)) = seq.next_element()? {
            self.into.push(r);
        }
        Ok(())
    }
}

/// A string borrowed from the input unless it had escapes to undo.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Text<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Nix accepts a path inside a store path as a root (`${pkg}/bin/x`); the graph lists the store path.
fn resolve_root(index: &FxHashMap<&str, NodeId>, root: &str) -> Option<NodeId> {
    let mut candidate = root.trim_end_matches('/');
    loop {
        if let Some(&id) = index.get(candidate) {
            return Some(id);
        }
        candidate = &candidate[..candidate.rfind('/')?];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_the_hash() {
        assert_eq!(name_of("/nix/store/0sgd2psd7c9i2q2zyvg47dcflxv4fqjh-glibc-2.27"), "glibc-2.27");
        assert_eq!(name_of("/tmp/x/store/abc-hello"), "hello");
        assert_eq!(name_of("nohash"), "nohash");
    }
}
