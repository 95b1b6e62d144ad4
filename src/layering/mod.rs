//! Layering: deciding which store paths of a closure go into which image layer.
//!
//! A strategy takes a [`Closure`], [`Popularity`] data and [`Options`] (above all the layer
//! budget) and returns a list of [`Layer`]s, bottom layer first. Whatever the strategy, the result
//! obeys the same contract, checked by [`check_partition`] in tests:
//! - every path of the closure is in exactly one layer, including paths the roots cannot reach;
//! - there are at most `budget` layers, and none is empty;
//! - contents are sorted, and the output depends only on the set of inputs, never on their order.
//!
//! The strategies live in their own files: [`stable`], the default, makes layers that survive
//! updates (fewest bytes re-pulled, most sharing); [`nixery`] is the algorithm of Nixery (2019),
//! kept so results stay comparable with the original. Two other tools' strategies, rewritten for
//! comparison, are research code ([`crate::research::peers`]).

pub mod nixery;
pub mod stable;

use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::graph::{Closure, NodeId};
use crate::popularity::Popularity;
use crate::research::peers;

/// Why a layer stands on its own; shown by `--explain` and written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its top path is one of the image's roots.
    Root,
    /// Its top path is referenced from several layers, so no single one of them owns it.
    Shared,
    /// Its top path's popularity reached the threshold, so it was hoisted to its own layer.
    Popular,
    /// Its top path is big, so it was hoisted to a layer of its own (nixery: its closure exceeded
    /// the size threshold; stable: it holds at least half an average layer's bytes).
    Big,
    /// No root references its top path; it is kept anyway, as a root of its own.
    Unreachable,
    /// Several candidate layers folded together to fit the budget.
    Merged,
    /// A single path kept in a layer of its own, because every merge would cost more re-pulled
    /// bytes than the budget forces (the `stable` strategy).
    Apart,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Root => "root",
            Reason::Shared => "shared",
            Reason::Popular => "hoisted: popular",
            Reason::Big => "hoisted: big",
            Reason::Unreachable => "unreachable",
            Reason::Merged => "merged",
            Reason::Apart => "apart",
        }
    }
}

/// One layer of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Node ids in ascending order, which is byte order of the paths.
    pub contents: Vec<NodeId>,
    /// Sum of narSize over `contents`.
    pub size: u64,
    /// The strategy's rating (for nixery, the merge rating of Nixery (2019)).
    pub rating: u128,
    /// The path at the layer's top: the one that dominates the rest.
    pub top: NodeId,
    pub reason: Reason,
    /// How many candidate layers went into this one (1 unless merged).
    pub candidates: usize,
}

/// The layering strategies `group-layers` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Layers that survive updates: fewest bytes re-pulled, most sharing (the default).
    #[default]
    Stable,
    /// The algorithm of Nixery (2019): dominator-tree candidates, lowest-rated folded together.
    Nixery,
    /// For comparison: nixpkgs' referencesByPopularity (also nix2container's), rewritten.
    PopularityOrder,
    /// For comparison: nixpkgs' auto-layer (dockerTools' default since 2025), rewritten.
    AutoLayer,
}

impl Strategy {
    /// Every strategy, in the order help texts list them.
    pub const ALL: [Strategy; 4] = [Strategy::Stable, Strategy::Nixery, Strategy::PopularityOrder, Strategy::AutoLayer];

    /// The one name of a strategy: the flag's value, the builder attribute's and `build-image.nix`'s
    /// `strategy` argument's, and what the logs say.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Stable => "stable",
            Strategy::Nixery => "nixery",
            Strategy::PopularityOrder => "popularity-order",
            Strategy::AutoLayer => "auto-layer",
        }
    }

    /// The strategy of that name; the error lists the known ones.
    pub fn from_name(s: &str) -> Result<Strategy> {
        Strategy::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let known: Vec<&str> = Strategy::ALL.iter().map(|k| k.name()).collect();
            Error::Usage(format!("unknown layering strategy `{s}` (known: {})", known.join(", ")))
        })
    }
}

impl std::str::FromStr for Strategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Strategy> {
        Strategy::from_name(s)
    }
}

impl<'de> serde::Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Strategy, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Strategy::from_name(&s).map_err(serde::de::Error::custom)
    }
}

/// Options shared by the strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Most layers the result may have.
    pub budget: usize,
    /// Popularity at which a path gets a layer of its own (`nixery` only).
    pub popular_threshold: u64,
    /// closureSize above which a path gets a layer of its own (`nixery` only; bytes, decimal).
    pub big_threshold: u64,
}

pub const DEFAULT_POPULAR_THRESHOLD: u64 = 1000;
pub const DEFAULT_BIG_THRESHOLD: u64 = 100 * 1000 * 1000;

impl Options {
    pub fn with_budget(budget: usize) -> Options {
        Options { budget, popular_threshold: DEFAULT_POPULAR_THRESHOLD, big_threshold: DEFAULT_BIG_THRESHOLD }
    }
}

/// Groups the closure into layers, bottom first.
pub fn group(closure: &Closure, pop: &Popularity, strategy: Strategy, opts: &Options) -> Result<Vec<Layer>> {
    if opts.budget < 1 {
        return Err(Error::Usage(format!("layer budget must be at least 1, not {}", opts.budget)));
    }
    if closure.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match strategy {
        Strategy::Stable => stable::group(closure, pop, opts),
        Strategy::Nixery => nixery::group(closure, pop, opts),
        Strategy::PopularityOrder => peers::popularity_order(closure, opts),
        Strategy::AutoLayer => peers::auto_layer(closure, opts),
    })
}

#[derive(Serialize)]
struct LayerJson<'a> {
    contents: Vec<&'a str>,
    size: u64,
    rating: u128,
    top: &'a str,
    reason: Reason,
    candidates: usize,
}

/// The program's output: `[{"contents": [...], "size": ..., ...}]`, bottom layer first.
pub fn to_json(closure: &Closure, layers: &[Layer]) -> Vec<u8> {
    let out: Vec<LayerJson> = layers
        .iter()
        .map(|l| LayerJson {
            contents: l.contents.iter().map(|&c| closure.path(c)).collect(),
            size: l.size,
            rating: l.rating,
            top: closure.path(l.top),
            reason: l.reason,
            candidates: l.candidates,
        })
        .collect();
    // Room for every path and its quotes up front: a 100k-path output otherwise grows and is
    // copied a dozen times.
    let room = closure.nodes.iter().map(|x| x.path.len() + 3).sum::<usize>() + 256 * (layers.len() + 1);
    let mut bytes = Vec::with_capacity(room);
    serde_json::to_writer(&mut bytes, &out).expect("layers serialise");
    bytes.push(b'\n');
    bytes
}

/// A readable table: one row per layer, bottom first, with why it stands alone.
pub fn explain(closure: &Closure, layers: &[Layer]) -> String {
    let mut s = String::new();
    let total: u64 = layers.iter().map(|l| l.size).sum();
    let _ = writeln!(s, "{} paths, {} in {} layers (bottom first)", closure.len(), human_size(total), layers.len());
    let _ = writeln!(s, "{:>5} {:>6} {:>10} {:>22}  {:<18} top", "layer", "paths", "size", "rating", "why");
    for (i, l) in layers.iter().enumerate() {
        let why = if l.reason == Reason::Merged {
            format!("merged ({})", l.candidates)
        } else {
            l.reason.describe().to_string()
        };
        let _ = writeln!(
            s,
            "{:>5} {:>6} {:>10} {:>22}  {:<18} {}",
            i + 1,
            l.contents.len(),
            human_size(l.size),
            l.rating,
            why,
            closure.path(l.top)
        );
    }
    s
}

/// Sizes as Nix prints them: binary units, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Checks the contract every strategy promises; returns what is wrong, if anything.
pub fn check_partition(closure: &Closure, layers: &[Layer], budget: usize) -> std::result::Result<(), String> {
    if layers.len() > budget {
        return Err(format!("{} layers exceed the budget of {budget}", layers.len()));
    }
    let mut seen = vec![false; closure.len()];
    for (i, l) in layers.iter().enumerate() {
        if l.contents.is_empty() {
            return Err(format!("layer {i} is empty"));
        }
        if !l.contents.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!("layer {i} contents are not sorted"));
        }
        if l.size != l.contents.iter().map(|&c| closure.nar_size(c)).sum::<u64>() {
            return Err(format!("layer {i} size is not the sum of its narSizes"));
        }
        for &c in &l.contents {
            if std::mem::replace(&mut seen[c as usize], true) {
                return Err(format!("{} is in two layers", closure.path(c)));
            }
        }
    }
    match seen.iter().position(|s| !s) {
        Some(missing) => Err(format!("{} is in no layer", closure.path(missing as NodeId))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Node;

    #[test]
    fn sizes_read_as_nix_prints_them() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024 * 1024 + 1024 * 1024 / 10, "10.1 MiB"),
            (3 << 30, "3.0 GiB"),
            (5 << 40, "5.0 TiB"),
            (2048 << 40, "2048.0 TiB"),
        ];
        for (bytes, shown) in cases {
            assert_eq!(human_size(bytes), shown, "{bytes}");
        }
    }

    /// The --explain table: a header, then one row per layer with its number, paths, size,
    /// rating, why (merged layers say how many candidates) and top path.
    #[test]
    fn explain_has_a_row_per_layer_saying_why() {
        let node = |name: &str, size: u64| Node { path: format!("/nix/store/{}-{name}", "a".repeat(32)), nar_size: size, closure_size: size, references: vec![] };
        let c = Closure::from_indexed(vec![node("app", 2048), node("lib", 10), node("tool", 5)], &[0, 2]);
        let layers = vec![
            Layer { contents: vec![1, 2], size: 15, rating: 7, top: 2, reason: Reason::Merged, candidates: 2 },
            Layer { contents: vec![0], size: 2048, rating: 9, top: 0, reason: Reason::Root, candidates: 1 },
        ];
        let table = explain(&c, &layers);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "3 paths, 2.0 KiB in 2 layers (bottom first)");
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["layer", "paths", "size", "rating", "why", "top"]);
        let row = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(row(2), format!("1 2 15 B 7 merged (2) /nix/store/{}-tool", "a".repeat(32)));
        assert_eq!(row(3), format!("2 1 2.0 KiB 9 root /nix/store/{}-app", "a".repeat(32)));
        assert_eq!(lines.len(), 4);
        let described: Vec<&str> = [Reason::Root, Reason::Shared, Reason::Popular, Reason::Big, Reason::Unreachable, Reason::Merged, Reason::Apart].map(Reason::describe).to_vec();
        assert_eq!(described, ["root", "shared", "hoisted: popular", "hoisted: big", "unreachable", "merged", "apart"]);
    }

    /// The contract's checker, which every strategy test relies on, finds each way to break it.
    #[test]
    fn check_partition_finds_every_breach() {
        let node = |i: u32, size: u64| Node { path: format!("/nix/store/{i:032}-p{i}"), nar_size: size, closure_size: size, references: vec![] };
        let c = Closure::from_indexed(vec![node(0, 1), node(1, 2), node(2, 4)], &[0, 1, 2]);
        let layer = |contents: Vec<NodeId>| {
            let size = contents.iter().map(|&i| c.nar_size(i)).sum();
            Layer { contents, size, rating: 0, top: 0, reason: Reason::Merged, candidates: 1 }
        };
        assert_eq!(check_partition(&c, &[layer(vec![0, 2]), layer(vec![1])], 2), Ok(()));
        let breaches: Vec<(Vec<Layer>, usize, &str)> = vec![
            (vec![layer(vec![0]), layer(vec![1]), layer(vec![2])], 2, "exceed the budget"),
            (vec![layer(vec![0, 1, 2]), layer(vec![])], 2, "is empty"),
            (vec![layer(vec![2, 0, 1])], 1, "not sorted"),
            (vec![layer(vec![0, 0, 1, 2])], 1, "not sorted"),
            (vec![Layer { size: 6, ..layer(vec![0, 1, 2]) }], 1, "size"),
            (vec![layer(vec![0, 1]), layer(vec![1, 2])], 2, "in two layers"),
            (vec![layer(vec![0, 1])], 1, "in no layer"),
        ];
        for (layers, budget, says) in breaches {
            let e = check_partition(&c, &layers, budget).unwrap_err();
            assert!(e.contains(says), "{e} (expected: {says})");
        }
    }

    /// Strategies by name, from JSON too (the builder attribute), and an unknown one refused.
    #[test]
    fn strategies_read_by_name() {
        for s in Strategy::ALL {
            let from_json: Strategy = serde_json::from_str(&format!("\"{}\"", s.name())).unwrap();
            assert_eq!(from_json, s);
        }
        assert!(serde_json::from_str::<Strategy>("\"bogus\"").unwrap_err().to_string().contains("bogus"));
    }
}
