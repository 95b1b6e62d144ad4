//! The `stable` strategy: what it promises across updates and images (property tests), and
//! hand-made graphs with their expected layers worked out by hand.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::graphs::{closure, names, packages_with_libraries, popularity, source_rooted_dag};
use nix_image_layers::graph::{name_of, Closure};
use nix_image_layers::layering::{self, check_partition, Options, Reason, Strategy};
use nix_image_layers::popularity::Popularity;
use nix_image_layers::layering::stable::sketch::Universe;
use nix_image_layers::research::{evaluate, synth};
use proptest::prelude::*;

/// The layers of `c` by stable with popularity `pop`, after the partition check.
fn stable(c: &Closure, pop: &Popularity, budget: usize) -> Vec<layering::Layer> {
    let layers = layering::group(c, pop, Strategy::Stable, &Options::with_budget(budget)).unwrap();
    assert_eq!(check_partition(c, &layers, budget), Ok(()));
    layers
}

/// Each path's layer-mates (the other paths of its layer), by path.
fn layer_mates(c: &Closure, layers: &[layering::Layer]) -> HashMap<String, BTreeSet<String>> {
    let mut mates = HashMap::new();
    for l in layers {
        let paths: BTreeSet<String> = l.contents.iter().map(|&i| c.path(i).to_string()).collect();
        for p in &paths {
            let mut others = paths.clone();
            others.remove(p);
            mates.insert(p.clone(), others);
        }
    }
    mates
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A new build of one package (it and its dependents renamed) moves no unchanged path: each
    /// one's layer-mates afterwards are some of its old layer-mates and renamed paths, never an
    /// unchanged path it was not with before. So every layer holding none of the changed paths
    /// is exactly as it was: only the changed paths' layers are new. With popularity, which
    /// weighs stable's costs.
    #[test]
    fn stable_moves_no_unchanged_path_when_a_package_is_rebuilt(
        n in 2usize..60,
        edges in prop::collection::vec((0usize..60, 0usize..60), 0..150),
        sizes in prop::collection::vec(1u64..100_000_000, 1..10),
        pops in prop::collection::vec(0u64..5000, 0..60),
        budget in 1usize..15,
        pick in any::<usize>(),
    ) {
        let c = source_rooted_dag(n, &edges, &sizes);
        let pop = popularity(&pops);
        let before = stable(&c, &pop, budget);
        let referrers = c.referrers();
        let changed = c.dependents_of(&referrers, (pick % n) as u32);
        let after_c = evaluate::renamed(&c, &changed, pick as u64);
        let after = stable(&after_c, &pop, budget);
        let old_paths: BTreeSet<&str> = c.nodes.iter().map(|x| x.path.as_str()).collect();
        let renamed: BTreeSet<String> = after_c.nodes.iter().map(|x| x.path.clone()).filter(|p| !old_paths.contains(p.as_str())).collect();
        prop_assert_eq!(renamed.len(), changed.iter().filter(|&&x| x).count(), "every changed path has a new name");
        let (old_mates, new_mates) = (layer_mates(&c, &before), layer_mates(&after_c, &after));
        for (path, mates) in &new_mates {
            if let Some(old) = old_mates.get(path) {
                let joined: Vec<&String> = mates.iter().filter(|m| !old.contains(*m) && !renamed.contains(*m)).collect();
                prop_assert!(joined.is_empty(), "unchanged {} now shares a layer with {:?}", path, joined);
            }
        }
        let set = |cl: &Closure, l: &layering::Layer| -> BTreeSet<String> { l.contents.iter().map(|&i| cl.path(i).to_string()).collect() };
        let new_sets: Vec<BTreeSet<String>> = after.iter().map(|l| set(&after_c, l)).collect();
        for l in &before {
            if l.contents.iter().all(|&i| !changed[i as usize]) {
                let s = set(&c, l);
                prop_assert!(new_sets.contains(&s), "layer {:?} should survive the update", s);
            }
        }
        prop_assert_eq!(after.len(), before.len());
    }
}

/// The same above the exact-set limit, where stable works on sketches of the paths' sets: a
/// 20,000-path closure, with popularity, and a few updates of paths at different depths.
#[test]
fn an_update_moves_no_unchanged_path_above_the_exact_set_limit() {
    let c = synth::generate(&synth::Shape::nixpkgs(20_000, 11));
    assert_eq!(Universe::for_size(c.len()), Universe::Sketched);
    let pop = synth::popularity(&c, 0.5, 11);
    let before = stable(&c, &pop, 95);
    let old_mates = layer_mates(&c, &before);
    let referrers = c.referrers();
    let counts = c.dependent_counts();
    // A base library (many dependents), a mid-level path and a leaf application.
    let mut by_dependents: Vec<u32> = (0..c.len() as u32).collect();
    by_dependents.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
    for (k, &v) in [by_dependents[20], by_dependents[c.len() / 4], by_dependents[c.len() - 1]].iter().enumerate() {
        let changed = c.dependents_of(&referrers, v);
        let after_c = evaluate::renamed(&c, &changed, k as u64 + 1);
        let after = stable(&after_c, &pop, 95);
        let old_paths: BTreeSet<&str> = c.nodes.iter().map(|x| x.path.as_str()).collect();
        let renamed: BTreeSet<String> = after_c.nodes.iter().map(|x| x.path.clone()).filter(|p| !old_paths.contains(p.as_str())).collect();
        for (path, mates) in &layer_mates(&after_c, &after) {
            if let Some(old) = old_mates.get(path) {
                let joined: Vec<&String> = mates.iter().filter(|m| !old.contains(*m) && !renamed.contains(*m)).collect();
                assert!(joined.is_empty(), "update {k} ({} paths changed): unchanged {path} now shares a layer with {} paths it was not with", renamed.len(), joined.len());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Naming a path the image holds anyway as one more root (`[app lib]` where `app` references
    /// `lib`) changes no layer's contents: images of the same paths share all their layers. Only
    /// the labels may change, and only as stable's rule says: a lone path (not big) that is now a
    /// named root is labelled `root` instead of `apart`. (Stable reads the roots for that label
    /// only; this guards the design against a change that would make roots decide contents.)
    /// Closures of over 768 paths, so that the dominator-tree phase runs too.
    #[test]
    fn stable_layers_depend_on_the_paths_not_on_which_are_named_roots(
        n in 770usize..900,
        edges in prop::collection::vec((0usize..900, 0usize..900), 800..2500),
        sizes in prop::collection::vec(1u64..100_000_000, 1..10),
        pops in prop::collection::vec(0u64..5000, 0..900),
        extra in prop::collection::vec(0usize..900, 1..6),
        budget in 3usize..30,
    ) {
        let c = source_rooted_dag(n, &edges, &sizes);
        let pop = popularity(&pops);
        let plain = stable(&c, &pop, budget);
        // Half the extra roots are the paths of lone layers (where the label can change), when
        // there are some; the others are any paths.
        let lone: Vec<u32> = plain.iter().filter(|l| l.reason == Reason::Apart && !c.roots.contains(&l.top)).map(|l| l.top).collect();
        let mut named = c.clone();
        for (k, &e) in extra.iter().enumerate() {
            named.roots.push(if k % 2 == 0 && !lone.is_empty() { lone[e % lone.len()] } else { (e % n) as u32 });
        }
        named.roots.sort_unstable();
        named.roots.dedup();
        let with_named = stable(&named, &pop, budget);
        prop_assert_eq!(plain.len(), with_named.len());
        for (a, b) in plain.iter().zip(&with_named) {
            prop_assert_eq!(&a.contents, &b.contents);
            let newly_named = a.contents.len() == 1 && named.roots.contains(&a.top) && !c.roots.contains(&a.top);
            let expected = if newly_named && a.reason == Reason::Apart { Reason::Root } else { a.reason };
            prop_assert_eq!(b.reason, expected, "layer {:?}", a.contents);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A path the stable strategy holds apart as big has a layer of its own in every image of the
    /// same packages that holds it (an image is at most as big, so the path is still big there):
    /// a registry stores that layer once for all of them. One to three paths are made heavy (each
    /// as big as all the ordinary paths together), and the image's roots include a dependent of
    /// the first path held apart, so every case has a big path in both images.
    #[test]
    fn a_big_path_has_the_same_lone_layer_in_every_image_holding_it(
        n in 2usize..120,
        edges in prop::collection::vec((0usize..120, 0usize..120), 0..300),
        sizes in prop::collection::vec(1u64..100_000_000, 1..12),
        heavy in prop::collection::vec(any::<usize>(), 1..4),
        pops in prop::collection::vec(0u64..5000, 0..120),
        budget in 4usize..24,
        roots in prop::collection::vec(any::<usize>(), 0..3),
        via in any::<usize>(),
    ) {
        let mut sized: Vec<u64> = (0..n).map(|i| sizes[i % sizes.len()]).collect();
        let ordinary: u64 = sized.iter().sum();
        for h in &heavy {
            sized[h % n] = ordinary;
        }
        let c = source_rooted_dag(n, &edges, &sized);
        let pop = popularity(&pops);
        let lone_big = |cl: &Closure| -> Vec<String> {
            stable(cl, &pop, budget).iter().filter(|l| l.reason == Reason::Big).map(|l| {
                assert_eq!(l.contents.len(), 1, "a big path shares its layer");
                cl.path(l.contents[0]).to_string()
            }).collect()
        };
        let full = lone_big(&c);
        prop_assert!(!full.is_empty() && full.len() <= budget / 4, "{} held apart, budget {}", full.len(), budget);
        let first = c.nodes.iter().position(|x| x.path == full[0]).unwrap() as u32;
        let dependents: Vec<u32> = c.dependents_of(&c.referrers(), first).iter().enumerate().filter(|d| *d.1).map(|d| d.0 as u32).collect();
        let mut image_roots: Vec<u32> = roots.iter().map(|&r| (r % n) as u32).collect();
        image_roots.push(dependents[via % dependents.len()]);
        let (image, _) = evaluate::sub_closure(&c, &image_roots);
        let in_image = lone_big(&image);
        let mut checked = 0;
        for path in &full {
            if image.nodes.iter().any(|x| &x.path == path) {
                prop_assert!(in_image.contains(path), "{} is alone in the full image only", path);
                checked += 1;
            }
        }
        prop_assert!(checked >= 1);
    }
}

/// Sizes in bytes: glibc 1 MB, zlib 100 kB, app 10 kB, data 5 MB; app uses zlib, glibc and data,
/// zlib uses glibc. Merge costs (update + storage, equal weights), worked by hand:
/// zlib+app 210k is cheapest, then glibc+{zlib,app} 3110k; {data} with anything costs over 15M.
const UPDATE: &[(&str, u64, &[&str])] = &[
    ("glibc", 1_000_000, &[]),
    ("zlib", 100_000, &["glibc"]),
    ("data", 5_000_000, &[]),
    ("app", 10_000, &["zlib", "glibc", "data"]),
];

#[test]
fn stable_merges_what_changes_together_and_orders_by_new_dependencies_per_byte() {
    let c = closure(UPDATE);
    let three = layering::group(&c, &Popularity::none(), Strategy::Stable, &Options::with_budget(3)).unwrap();
    // Bottom-up by new dependencies per byte: data (1 per 5 MB), glibc (1 per MB), then zlib+app.
    assert_eq!(names(&c, &three), vec![vec!["data"], vec!["glibc"], vec!["app", "zlib"]]);
    assert_eq!(three.iter().map(|l| l.reason).collect::<Vec<_>>(), vec![Reason::Apart, Reason::Apart, Reason::Merged]);
    let two = layering::group(&c, &Popularity::none(), Strategy::Stable, &Options::with_budget(2)).unwrap();
    assert_eq!(names(&c, &two), vec![vec!["data"], vec!["app", "glibc", "zlib"]]);
    // With room to spare, nothing is merged that costs more than a few kB per update.
    let all = layering::group(&c, &Popularity::none(), Strategy::Stable, &Options::with_budget(10)).unwrap();
    assert_eq!(all.len(), 4);
    // Naming data as a root too changes no contents, and labels its lone layer `root`.
    let mut named = c.clone();
    named.roots.push(c.nodes.iter().position(|x| x.path.ends_with("-data")).unwrap() as u32);
    named.roots.sort_unstable();
    let again = layering::group(&named, &Popularity::none(), Strategy::Stable, &Options::with_budget(3)).unwrap();
    assert_eq!(names(&named, &again), names(&c, &three));
    assert_eq!(again.iter().map(|l| l.reason).collect::<Vec<_>>(), vec![Reason::Root, Reason::Apart, Reason::Merged]);
}

// A small tool on gcc-lib, beside two paths of its own size: tzdata and bash (on glibc).
const TOOL: &[(&str, u64, &[&str])] = &[
    ("glibc", 13_000_000, &[]),
    ("gcc-lib", 8_000_000, &["glibc"]),
    ("tzdata", 3_000_000, &[]),
    ("bash", 3_000_000, &["glibc"]),
    ("tool", 1_000_000, &["gcc-lib"]),
];

/// Bytes re-pulled at chain level after an update of each path in turn, by name: every layer
/// from the first one holding a changed path, to the top.
fn chain_re_pulls(c: &Closure, layers: &[layering::Layer]) -> Vec<(String, u64)> {
    let referrers = c.referrers();
    let mut re_pulls: Vec<(String, u64)> = (0..c.len() as u32)
        .map(|v| {
            let changed = c.dependents_of(&referrers, v);
            let first = layers.iter().position(|l| l.contents.iter().any(|&p| changed[p as usize])).unwrap();
            (name_of(c.path(v)).to_string(), layers[first..].iter().map(|l| l.size).sum())
        })
        .collect();
    re_pulls.sort();
    re_pulls
}

fn by_name(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = v.iter().map(|&(n, b)| (n.to_string(), b)).collect();
    v.sort();
    v
}

#[test]
fn a_small_path_high_in_the_order_joins_the_top_layer_not_its_dependencies() {
    let c = closure(TOOL);
    let two = layering::group(&c, &Popularity::none(), Strategy::Stable, &Options::with_budget(2)).unwrap();
    // Beside gcc-lib at the bottom, tool would make every update of tool re-pull all 28 MB. glibc,
    // the largest path, keeps its layer (ending it costs the most, see stable's ALONE_PATHS: every
    // image of these packages holds glibc and shares that layer); the rest goes on top, where an
    // update of any of them re-pulls 15 MB and the base layer changes only with glibc.
    assert_eq!(names(&c, &two), vec![vec!["glibc"], vec!["bash", "gcc-lib", "tool", "tzdata"]]);
    // Mean 17.6 MB, against 19.2 MB with tool at the bottom ([glibc, gcc-lib, tool] then
    // [tzdata, bash]: 28, 28, 6, 6 and 28 MB).
    let mb = 1_000_000;
    assert_eq!(chain_re_pulls(&c, &two), by_name(&[("glibc", 28 * mb), ("gcc-lib", 15 * mb), ("tzdata", 15 * mb), ("bash", 15 * mb), ("tool", 15 * mb)]));
    let three = layering::group(&c, &Popularity::none(), Strategy::Stable, &Options::with_budget(3)).unwrap();
    assert_eq!(names(&c, &three), vec![vec!["glibc"], vec!["gcc-lib"], vec!["bash", "tool", "tzdata"]]);
    assert_eq!(chain_re_pulls(&c, &three), by_name(&[("glibc", 28 * mb), ("gcc-lib", 15 * mb), ("tzdata", 7 * mb), ("bash", 7 * mb), ("tool", 7 * mb)]));
}

#[test]
fn after_an_update_exactly_the_layers_of_changed_paths_are_new() {
    let c = closure(UPDATE);
    let opts = Options::with_budget(3);
    let before = layering::group(&c, &Popularity::none(), Strategy::Stable, &opts).unwrap();
    let sets = |cl: &Closure, ls: &[layering::Layer]| -> Vec<Vec<String>> {
        ls.iter().map(|l| l.contents.iter().map(|&i| cl.path(i).to_string()).collect()).collect()
    };
    let old = sets(&c, &before);
    let id = |name: &str| c.nodes.iter().position(|x| x.path.ends_with(&format!("-{name}"))).unwrap();
    // (package updated, the layers reused by a registry client, by bottom-up position)
    for (updated, reused) in [("app", vec![0, 1]), ("zlib", vec![0, 1]), ("glibc", vec![0]), ("data", vec![1])] {
        let mut changed = vec![false; c.len()];
        changed[id(updated)] = true;
        changed[id("app")] = true;
        if updated == "glibc" {
            changed[id("zlib")] = true;
        }
        let after_c = evaluate::renamed(&c, &changed, 7);
        let new = sets(&after_c, &layering::group(&after_c, &Popularity::none(), Strategy::Stable, &opts).unwrap());
        let kept: Vec<usize> = (0..old.len()).filter(|&i| new.contains(&old[i])).collect();
        assert_eq!(kept, reused, "after {updated} changed");
        // Chain level: layers keep their places, so the first new layer is the first not reused.
        let first_new = (0..new.len()).find(|&i| new[i] != old[i]).unwrap();
        let reused_at_bottom = (0..old.len()).take_while(|i| reused.contains(i)).count();
        assert_eq!(first_new, reused_at_bottom, "after {updated} changed");
    }
}

// glibc under everything; openssl under curl (under git) and python; zlib under perl.
const FAMILY: &[(&str, u64, &[&str])] = &[
    ("glibc", 10_000_000, &[]),
    ("openssl", 4_000_000, &["glibc"]),
    ("curl", 1_000_000, &["openssl", "glibc"]),
    ("git", 3_000_000, &["curl", "glibc"]),
    ("python", 6_000_000, &["openssl", "glibc"]),
    ("zlib", 500_000, &["glibc"]),
    ("perl", 5_000_000, &["glibc", "zlib"]),
];

#[test]
fn paths_that_smaller_images_keep_alone_stay_alone_where_the_budget_allows() {
    let stable = |spec: &[(&str, u64, &[&str])]| {
        let c = closure(spec);
        let layers = layering::group(&c, &Popularity::none(), Strategy::Stable, &Options::with_budget(3)).unwrap();
        names(&c, &layers)
    };
    let only = |keep: &[&str]| FAMILY.iter().filter(|s| keep.contains(&s.0)).copied().collect::<Vec<_>>();
    // Images of one package fit in 3 layers and keep their paths apart where they can.
    let small = [
        stable(&only(&["glibc", "openssl", "curl"])),
        stable(&only(&["glibc", "openssl", "python"])),
        stable(&only(&["glibc", "zlib", "perl"])),
        stable(&only(&["glibc", "openssl", "curl", "git"])),
    ];
    assert_eq!(small[1], vec![vec!["glibc"], vec!["openssl"], vec!["python"]]);
    // The image of all seven must merge. Ending a path's own layer costs in proportion to its
    // bytes (stable's ALONE_PATHS), so the 6 MB python keeps its layer, the one the python image
    // has, and the small paths go together on top. Without that part of the cost python would
    // join openssl, with which it changes (its closure is openssl's and itself), a layer no
    // smaller image has.
    let full = stable(FAMILY);
    assert_eq!(full, vec![vec!["glibc"], vec!["python"], vec!["curl", "git", "openssl", "perl", "zlib"]]);
    // The registry stores each distinct layer once: glibc 10, python 6, the merged 13.5, then of
    // the small images openssl 4, curl 1, zlib 0.5, perl 5 and curl+git 4 MB: 44 MB for 29.5 MB
    // of paths (with python beside openssl, 50 MB).
    let size = |layer: &Vec<String>| layer.iter().map(|n| FAMILY.iter().find(|s| s.0 == n).unwrap().1).sum::<u64>();
    let mut distinct: Vec<&Vec<String>> = full.iter().chain(small.iter().flatten()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.iter().map(|l| size(l)).sum::<u64>(), 44_000_000);
}

#[test]
fn closures_the_tree_phase_reduces_hold_up_to_half_the_budget_apart_for_smaller_images() {
    let opts = Options::with_budget(95);
    let stable = |c: &Closure| {
        let layers = layering::group(c, &Popularity::none(), Strategy::Stable, &opts).unwrap();
        check_partition(c, &layers, 95).unwrap();
        layers
    };
    let lone_packages = |c: &Closure, layers: &[layering::Layer]| -> Vec<String> {
        layers.iter().filter(|l| l.reason == Reason::Big).map(|l| c.path(l.contents[0]).to_string()).collect()
    };
    // 841 paths: over stable::PAIRWISE_LIMIT (768), so the dominator-tree phase runs first. An
    // average layer is 60.8 MB / 95 = 640 KB; each 1 MB package is above an eighth of that, and
    // half the budget, 47 of the 60, are held apart (the first by name, as all are equal).
    let full = packages_with_libraries(60);
    assert!(full.len() > layering::stable::PAIRWISE_LIMIT);
    let full_layers = stable(&full);
    let held = lone_packages(&full, &full_layers);
    assert_eq!(held.len(), 47);
    assert!(held.iter().all(|p| p.contains("-pkg-")));
    // Below the limit the pairwise phase's alone part does that work: of 50 packages (701 paths)
    // the rule holds apart only the budget's square root, 10, and still every package keeps its
    // own layer.
    let half = packages_with_libraries(50);
    let half_layers = stable(&half);
    assert_eq!(lone_packages(&half, &half_layers).len(), 10);
    let alone = |c: &Closure, layers: &[layering::Layer]| {
        layers.iter().filter(|l| l.contents.len() == 1 && c.path(l.contents[0]).contains("-pkg-")).count()
    };
    assert_eq!(alone(&half, &half_layers), 50);
    // A smaller image of six held packages beyond the first ten (85 paths, each alone in it)
    // shares all six package layers with the full image: a registry stores each once. Under the
    // rule below the limit, which holds only 10 apart, the full image merged these six and the
    // two images shared none of them.
    let held_ids: Vec<u32> = held.iter().skip(40).take(6).map(|p| full.nodes.iter().position(|x| &x.path == p).unwrap() as u32).collect();
    let (small, _) = evaluate::sub_closure(&full, &held_ids);
    let small_layers = stable(&small);
    let full_sets: Vec<Vec<&str>> = full_layers.iter().map(|l| l.contents.iter().map(|&i| full.path(i)).collect()).collect();
    let shared = small_layers
        .iter()
        .filter(|l| l.size == 1_000_000)
        .filter(|l| full_sets.contains(&l.contents.iter().map(|&i| small.path(i)).collect()))
        .count();
    assert_eq!(shared, 6);
}
