//! The layering contract every strategy keeps: every path in exactly one layer, the budget
//! kept, and the same layers whatever the order of the input.

mod common;

use common::graphs::{attrs_json, popularity, random_closure};
use nix_image_layers::layering::stable::sketch::{Universe, EXACT_LIMIT};
use nix_image_layers::research::synth;
use common::sp;
use nix_image_layers::graph::{Closure, Entry};
use nix_image_layers::layering::{self, check_partition, Options, Strategy};
use proptest::prelude::*;
use std::borrow::Cow;
use std::path::Path;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random graphs, with popularity, arbitrary roots (some paths unreachable) and, in most
    /// cases, a few reference cycles, which Nix never makes but a malformed graph may hold.
    #[test]
    fn every_path_once_within_budget_whatever_the_input_order(
        n in 1usize..40,
        edges in prop::collection::vec((0usize..40, 0usize..40), 0..120),
        back_edges in prop::collection::vec((0usize..40, 0usize..40), 0..4),
        sizes in prop::collection::vec(1u64..1_000_000_000, 1..10),
        roots in prop::collection::vec(0usize..40, 0..4),
        pops in prop::collection::vec(0u64..2000, 0..40),
        budget in 1usize..12,
        seed in any::<u64>(),
    ) {
        let c = random_closure(n, &edges, &back_edges, &sizes, &roots);
        let pop = popularity(&pops);
        let opts = Options { big_threshold: 1_500_000_000, ..Options::with_budget(budget) };
        for strategy in [Strategy::Stable, Strategy::Nixery, Strategy::PopularityOrder, Strategy::AutoLayer] {
            let layers = layering::group(&c, &pop, strategy, &opts).unwrap();
            prop_assert_eq!(check_partition(&c, &layers, budget), Ok(()), "{:?}", strategy);
            let expected = layering::to_json(&c, &layers);
            for k in 0..2u64 {
                let shuffled = Closure::parse(Path::new("shuffled.json"), &attrs_json(&c, seed.wrapping_add(k))).unwrap();
                let again = layering::group(&shuffled, &pop, strategy, &opts).unwrap();
                prop_assert_eq!(&layering::to_json(&shuffled, &again), &expected, "{:?}", strategy);
            }
        }
    }
}

/// Above the exact-set limit `stable` works on sketches of the paths' closures instead of exact
/// sets: the contract holds there too, for every strategy, and so does independence from the
/// order of the input.
#[test]
fn the_contract_holds_above_the_exact_set_limit() {
    let c = synth::generate(&synth::Shape::nixpkgs(20_000, 5));
    assert!(c.len() > EXACT_LIMIT && Universe::for_size(c.len()) == Universe::Sketched);
    let pop = synth::popularity(&c, 0.5, 5);
    for budget in [2, 95] {
        let opts = Options::with_budget(budget);
        for strategy in Strategy::ALL {
            let layers = layering::group(&c, &pop, strategy, &opts).unwrap();
            assert_eq!(check_partition(&c, &layers, budget), Ok(()), "{strategy:?}, budget {budget}");
            assert!(budget == 2 || layers.len() > budget / 2, "{strategy:?} used {} of {budget} layers", layers.len());
        }
    }
    let opts = Options::with_budget(95);
    let expected = layering::to_json(&c, &layering::group(&c, &pop, Strategy::Stable, &opts).unwrap());
    let shuffled = Closure::parse(Path::new("shuffled.json"), &attrs_json(&c, 9)).unwrap();
    let again = layering::group(&shuffled, &pop, Strategy::Stable, &opts).unwrap();
    assert!(layering::to_json(&shuffled, &again) == expected, "the input order changed stable's layers");
}

#[test]
fn entries_parse_with_self_references_and_single_string_roots() {
    let root = sp("app");
    let entries = vec![Entry {
        path: Some(Cow::Owned(root.clone())),
        nar_size: Some(3),
        closure_size: Some(3),
        references: Some(vec![Cow::Owned(root.clone())]),
    }];
    let c = Closure::from_entries(Path::new("x"), vec![format!("{root}/bin/app")], entries).unwrap();
    assert_eq!(c.roots, vec![0]);
    assert!(c.nodes[0].references.is_empty());
    let json = format!(r#"{{"exportReferencesGraph":{{"graph":"{root}"}},"graph":[{{"path":"{root}","narSize":3,"closureSize":3,"narHash":"sha256:x","references":[],"extra":1}}],"other":true}}"#);
    let c = Closure::parse(Path::new("x"), json.as_bytes()).unwrap();
    assert_eq!(c.roots, vec![0]);
}
