//! Strategies on the real closures of ../shared/data: registry storage across a family of
//! images, and re-pull against the floors no layering can beat.

mod common;

use nix_image_layers::graph::Closure;
use nix_image_layers::layering::{Options, Strategy};
use nix_image_layers::popularity::Popularity;
use nix_image_layers::research::evaluate;

/// Registries store fewer bytes for a family of images built from one real closure with the
/// stable strategy than with auto-layer (dockerTools' default), at a loose and a tight budget, for
/// both readings of the family: images of 1 to 4 of its packages, and images of subsets of its
/// top-level packages (nearly the whole closure each, a few paths apart).
#[test]
fn stable_stores_less_than_auto_layer_for_a_family_of_real_images() {
    let data = common::shared().join("data");
    if !common::have_file(&data, "stable_stores_less_than_auto_layer_for_a_family_of_real_images") {
        return;
    }
    let pop = Popularity::load(&data.join("popularity-narinfo-sample.json")).unwrap();
    let c = Closure::load(&data.join("ankisyncd.multiroot.attrs.json")).unwrap();
    for (budget, family) in [(95, evaluate::Family::Packages), (20, evaluate::Family::Packages), (20, evaluate::Family::TopLevel)] {
        let plan = evaluate::Plan { samples: 1, images: 20, seed: 1, family };
        let strategies = [Strategy::Stable, Strategy::AutoLayer];
        let r = evaluate::evaluate(&c, &pop, &strategies, &Options::with_budget(budget), &plan).unwrap();
        eprintln!("budget {budget}, {family:?} family: storage stable {:.3}, auto-layer {:.3}", r[0].storage, r[1].storage);
        assert!(r[0].storage < r[1].storage, "budget {budget}, {family:?} family: stable stores {:.3}, auto-layer {:.3}", r[0].storage, r[1].storage);
    }
}

#[test]
fn no_strategy_re_pulls_less_than_the_floors_on_real_closures() {
    let data = common::shared().join("data");
    if !common::have_file(&data, "no_strategy_re_pulls_less_than_the_floors_on_real_closures") {
        return;
    }
    let pop = Popularity::load(&data.join("popularity-narinfo-sample.json")).unwrap();
    let c = Closure::load(&data.join("ankisyncd.multiroot.attrs.json")).unwrap();
    let plan = evaluate::Plan { samples: 60, images: 4, seed: 3, family: evaluate::Family::Packages };
    let strategies = [Strategy::Stable, Strategy::Nixery, Strategy::PopularityOrder, Strategy::AutoLayer];
    let reports = evaluate::evaluate(&c, &pop, &strategies, &Options::with_budget(40), &plan).unwrap();
    for (strategy, r) in strategies.iter().zip(&reports) {
        let floor = r.chain_floor.expect("333 paths are within the chain floor's limit");
        assert!(r.blob.mean >= r.floor.mean - 1e-12, "{strategy:?}: blob {:?} below its floor {:?}", r.blob, r.floor);
        assert!(r.chain.mean >= floor - 1e-12, "{strategy:?}: chain {:?} below the chain floor {floor}", r.chain);
        assert!(floor >= r.floor.mean - 1e-12, "the chain floor {floor} is below the blob floor {:?}", r.floor);
        assert!(r.storage >= 1.0 - 1e-12, "{strategy:?}: storage {} below perfect sharing", r.storage);
    }
}
