//! The peer strategies (`popularity-order`, `auto-layer`) and `layer-eval measure`'s metrics on
//! small graphs, with every expected partition and value worked out by hand. Other tests compare
//! our strategies against these; here they are checked on their own.

mod common;

use std::fs;
use std::process::Command;

use common::graphs::{closure, grouped, names, DIAMOND};
use nix_image_layers::graph::Closure;
use nix_image_layers::layering::{self, Options, Reason, Strategy};
use nix_image_layers::popularity::Popularity;

fn group(c: &Closure, strategy: Strategy, budget: usize) -> Vec<layering::Layer> {
    grouped(c, &Popularity::none(), strategy, &Options::with_budget(budget))
}

/// Paths ranked by how many paths depend on them (glibc 4; data, libA and libB 1; app and tool
/// 0), ties by name; the first `budget - 1` alone, the rest in one layer on top.
#[test]
fn popularity_order_puts_the_most_depended_on_paths_alone_and_the_rest_on_top() {
    let c = closure(DIAMOND);
    let three = group(&c, Strategy::PopularityOrder, 3);
    assert_eq!(names(&c, &three), vec![vec!["glibc"], vec!["data"], vec!["app", "libA", "libB", "tool"]]);
    assert_eq!(three.iter().map(|l| l.reason).collect::<Vec<_>>(), vec![Reason::Popular, Reason::Popular, Reason::Merged]);
    assert_eq!(three.iter().map(|l| l.rating).collect::<Vec<_>>(), vec![4, 1, 0]);
    assert_eq!((three[2].candidates, three[2].size), (4, 37));
    // With room for every path, each is alone, in the same order.
    let all = group(&c, Strategy::PopularityOrder, 10);
    assert_eq!(names(&c, &all), vec![vec!["glibc"], vec!["data"], vec!["libA"], vec!["libB"], vec!["app"], vec!["tool"]]);
}

/// The largest paths become primaries while the distinct sets of nearest primaries fit the
/// budget: glibc (2 sets: itself and the roots'), then libB (3); libA would make 4. Every other
/// path is used from the roots without going through a primary, so they share one layer. Layers
/// go by closure size: glibc 100, libB 120, the roots' layer (top tool) 122.
#[test]
fn auto_layer_makes_the_largest_paths_primaries_while_their_sets_fit() {
    let c = closure(DIAMOND);
    let three = group(&c, Strategy::AutoLayer, 3);
    assert_eq!(names(&c, &three), vec![vec!["glibc"], vec!["libB"], vec!["app", "data", "libA", "tool"]]);
    assert_eq!(three.iter().map(|l| l.reason).collect::<Vec<_>>(), vec![Reason::Big, Reason::Big, Reason::Shared]);
    assert_eq!(three.iter().map(|l| l.rating).collect::<Vec<_>>(), vec![100, 120, 122]);
    let two = group(&c, Strategy::AutoLayer, 2);
    assert_eq!(names(&c, &two), vec![vec!["glibc"], vec!["app", "data", "libA", "libB", "tool"]]);
    // Budget 1: not even glibc fits as a primary; everything is the roots' layer.
    let one = group(&c, Strategy::AutoLayer, 1);
    assert_eq!(names(&c, &one), vec![vec!["app", "data", "glibc", "libA", "libB", "tool"]]);
    assert_eq!(one[0].reason, Reason::Shared);
}

// base (100 bytes) under tool (10); alone (1) references nothing. The only path that references
// something is tool, so every image of the storage family is {tool, base}.
const FOREST: &[(&str, u64, &[&str])] = &[("base", 100, &[]), ("tool", 10, &["base"]), ("alone", 1, &[])];

/// `layer-eval measure` with popularity-order at budget 2, every path updated once:
/// layers [base] then [alone, tool]; the family image {tool, base} has [base] then [tool].
/// - update base (base, tool renamed): both layers new, 111 bytes at both levels; floor 110.
/// - update tool: [alone, tool'] new, 11 bytes; floor 10.
/// - update alone: [alone', tool] new, 11 bytes; floor 1.
///
/// So blob and chain re-pull average 133/333 with a 90th percentile of 1; the floor averages
/// 121/333, 90th percentile 110/111. The best order of single-path layers (base, tool, alone)
/// re-pulls 111 + 11 + 1 = 123 bytes, the chain floor 123/333. Storage: the distinct layers
/// {base} 100, {alone, tool} 11, {tool} 10 hold 121 bytes for the 111 of the union.
#[test]
fn layer_eval_measures_re_pull_floors_and_storage_as_worked_by_hand() {
    let c = closure(FOREST);
    let d = tempfile::tempdir().unwrap();
    let graph = d.path().join("forest.json");
    fs::write(&graph, serde_json::to_vec(&c.to_attrs_json()).unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_layer-eval"))
        .args(["measure", "--strategy", "popularity-order", "--budget", "2", "--samples", "3", "--images", "5", "--json", "--graph"])
        .arg(&graph)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &reports[0];
    let close = |key: &str, got: &serde_json::Value, want: f64| {
        let got = got.as_f64().unwrap_or_else(|| panic!("{key}: {got}"));
        assert!((got - want).abs() < 1e-12, "{key}: {got}, worked by hand {want}");
    };
    assert_eq!((r["strategy"].as_str(), r["layers"].as_u64(), r["samples"].as_u64(), r["images"].as_u64()), (Some("popularity-order"), Some(2), Some(3), Some(5)));
    close("blob.mean", &r["blob"]["mean"], 133.0 / 333.0);
    close("blob.p90", &r["blob"]["p90"], 1.0);
    close("chain.mean", &r["chain"]["mean"], 133.0 / 333.0);
    close("chain.p90", &r["chain"]["p90"], 1.0);
    close("floor.mean", &r["floor"]["mean"], 121.0 / 333.0);
    close("floor.p90", &r["floor"]["p90"], 110.0 / 111.0);
    close("chain_floor", &r["chain_floor"], 123.0 / 333.0);
    close("storage", &r["storage"], 121.0 / 111.0);
}
