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
