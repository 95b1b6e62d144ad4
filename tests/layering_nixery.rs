//! The `nixery` strategy (Nixery (2019)) on hand-made graphs, with the expected partitions
//! written out, and on the real closures.

mod common;

use common::graphs::{closure, grouped, names, DIAMOND};
use nix_image_layers::graph::Closure;
use nix_image_layers::layering::{self, Options, Reason, Strategy};
use nix_image_layers::popularity::Popularity;

fn nixery(c: &Closure, pop: &Popularity, opts: Options) -> Vec<layering::Layer> {
    grouped(c, pop, Strategy::Nixery, &opts)
}

#[test]
fn shared_paths_stand_alone_and_dominated_ones_join_their_owner() {
    let c = closure(DIAMOND);
    let layers = nixery(&c, &Popularity::none(), Options::with_budget(10));
    // Closure sizes: glibc 100, libA 110, libB 120, data 1, app 116, tool 122. Ratings (popularity
    // 1 times the sum of closure sizes): tool+libB 242, app+libA+data 227, glibc 100.
    assert_eq!(names(&c, &layers), vec![vec!["libB", "tool"], vec!["app", "data", "libA"], vec!["glibc"]]);
    let reasons: Vec<Reason> = layers.iter().map(|l| l.reason).collect();
    assert_eq!(reasons, vec![Reason::Root, Reason::Root, Reason::Shared]);
    assert_eq!(layers.iter().map(|l| l.rating).collect::<Vec<_>>(), vec![242, 227, 100]);
    assert_eq!(layers.iter().map(|l| l.size).collect::<Vec<_>>(), vec![22, 16, 100]);
}

#[test]
fn a_single_root_dominates_its_whole_closure() {
    let mut c = closure(DIAMOND);
    let app = c.nodes.iter().position(|n| n.path.ends_with("-app")).unwrap() as u32;
    let tool = c.nodes.iter().position(|n| n.path.ends_with("-tool")).unwrap() as u32;
    c.nodes[app as usize].references.push(tool);
    c.nodes[app as usize].references.sort_unstable();
    c.roots = vec![app];
    let layers = nixery(&c, &Popularity::none(), Options::with_budget(10));
    assert_eq!(names(&c, &layers), vec![vec!["app", "data", "glibc", "libA", "libB", "tool"]]);
}

#[test]
fn over_budget_the_lowest_rated_fold_into_one_top_layer() {
    let c = closure(DIAMOND);
    let layers = nixery(&c, &Popularity::none(), Options::with_budget(2));
    // Sorted by rating: glibc 100, app 227 | tool 242: the first two fold, on top.
    assert_eq!(names(&c, &layers), vec![vec!["libB", "tool"], vec!["app", "data", "glibc", "libA"]]);
    assert_eq!(layers[1].reason, Reason::Merged);
    assert_eq!(layers[1].candidates, 2);
    assert_eq!(layers[1].rating, 327);
    let one = nixery(&c, &Popularity::none(), Options::with_budget(1));
    assert_eq!(names(&c, &one), vec![vec!["app", "data", "glibc", "libA", "libB", "tool"]]);
    assert_eq!(one[0].candidates, 3);
}

#[test]
fn popular_and_big_paths_are_hoisted() {
    let chain: &[(&str, u64, &[&str])] = &[("libC", 50, &[]), ("libA", 10, &["libC"]), ("app", 5, &["libA"])];
    let c = closure(chain);
    let none = nixery(&c, &Popularity::none(), Options::with_budget(5));
    assert_eq!(names(&c, &none), vec![vec!["app", "libA", "libC"]]);

    let pop = Popularity::from_counts([("libC".to_string(), 1000)]);
    let popular = nixery(&c, &pop, Options::with_budget(5));
    assert_eq!(names(&c, &popular), vec![vec!["libC"], vec!["app", "libA"]]);
    assert_eq!(popular[0].reason, Reason::Popular);
    // 999 is below the threshold.
    let pop = Popularity::from_counts([("libC".to_string(), 999)]);
    assert_eq!(names(&c, &nixery(&c, &pop, Options::with_budget(5))), vec![vec!["app", "libA", "libC"]]);

    // libA's closure is 60 bytes: "big" is strictly above the threshold.
    let opts = Options { big_threshold: 59, ..Options::with_budget(5) };
    let big = nixery(&c, &Popularity::none(), opts);
    assert_eq!(names(&c, &big), vec![vec!["libA", "libC"], vec!["app"]]);
    assert_eq!(big[0].reason, Reason::Big);
    let opts = Options { big_threshold: 60, ..Options::with_budget(5) };
    assert_eq!(names(&c, &nixery(&c, &Popularity::none(), opts)), vec![vec!["app", "libA", "libC"]]);
}

#[test]
fn paths_the_roots_cannot_reach_are_kept() {
    let mut c = closure(&[("lib", 10, &[]), ("app", 5, &["lib"]), ("orphan", 7, &["lib"]), ("orphan-dep", 1, &[])]);
    // Make `app` the only root: `orphan` (and `orphan-dep`, which nothing references) are unreachable.
    let app = c.nodes.iter().position(|n| n.path.ends_with("-app")).unwrap() as u32;
    c.roots = vec![app];
    let layers = nixery(&c, &Popularity::none(), Options::with_budget(10));
    let mut got = names(&c, &layers);
    got.sort();
    assert_eq!(got, vec![vec!["app"], vec!["lib"], vec!["orphan"], vec!["orphan-dep"]]);
    assert!(layers.iter().any(|l| l.reason == Reason::Unreachable));
}

#[test]
fn equal_ratings_at_the_merge_boundary_break_by_top_path() {
    // Three independent roots with equal ratings: with budget 2 the two first by path fold.
    let c = closure(&[("b-pkg", 10, &[]), ("a-pkg", 10, &[]), ("c-pkg", 10, &[])]);
    let layers = nixery(&c, &Popularity::none(), Options::with_budget(2));
    // Top paths order by their (fake) hash, which the helper derives from the name: a < b < c.
    assert_eq!(names(&c, &layers), vec![vec!["c-pkg"], vec!["a-pkg", "b-pkg"]]);
}

#[test]
fn an_empty_closure_gives_no_layers_and_budget_zero_is_refused() {
    let c = closure(&[]);
    assert!(layering::group(&c, &Popularity::none(), Strategy::Nixery, &Options::with_budget(3)).unwrap().is_empty());
    assert_eq!(layering::to_json(&c, &[]), b"[]\n");
    let e = layering::group(&closure(DIAMOND), &Popularity::none(), Strategy::Nixery, &Options::with_budget(0)).unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
}

#[test]
fn real_graphs_keep_every_path() {
    let data = common::shared().join("data");
    if !common::have_file(&data, "real_graphs_keep_every_path") {
        return;
    }
    for file in ["ankisyncd.attrs.json", "ankisyncd.multiroot.attrs.json", "hello-2.10.attrs.json"] {
        let c = Closure::load(&data.join(file)).unwrap();
        let pop = Popularity::load(&data.join("popularity-narinfo-sample.json")).unwrap();
        for budget in [1, 2, 20, 95, 1000] {
            nixery(&c, &pop, Options::with_budget(budget));
        }
    }
    let hello = Closure::load(&data.join("hello-2.10.attrs.json")).unwrap();
    assert_eq!(hello.len(), 5);
    assert_eq!(hello.roots.len(), 2);
}
