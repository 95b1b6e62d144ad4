use nix_image_layers::{graph::Closure, popularity::Popularity, layering::{self, *}};
fn closures(c: &Closure) -> Vec<Vec<u64>> {
    let n = c.len(); let w = (n + 63) / 64;
    let mut out = vec![vec![0u64; w]; n];
    // postorder
    let mut done = vec![false; n];
    fn go(c: &Closure, x: usize, out: &mut Vec<Vec<u64>>, done: &mut Vec<bool>) {
        if done[x] { return; } done[x] = true;
        let mut s = vec![0u64; out[x].len()]; s[x / 64] |= 1 << (x % 64);
        for &r in &c.nodes[x].references { go(c, r as usize, out, done); for (a, b) in s.iter_mut().zip(&out[r as usize]) { *a |= b; } }
        out[x] = s;
    }
    for x in 0..n { go(c, x, &mut out, &mut done); }
    out
}
fn pc(v: &[u64]) -> u64 { v.iter().map(|x| x.count_ones() as u64).sum() }
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let c = Closure::load(std::path::Path::new(&args[1])).unwrap();
    let budget: usize = args[2].parse().unwrap();
    let pop = Popularity::none();
    let cl = closures(&c);
    let n = c.len() as f64; let total = c.total_size() as f64;
    let floor: f64 = (0..c.len()).map(|i| c.nodes[i].nar_size as f64 * pc(&cl[i]) as f64).sum::<f64>() / n / total;
    let model = |layers: &[Layer]| -> f64 { layers.iter().map(|l| { let mut u = vec![0u64; cl[0].len()]; for &m in &l.contents { for (a, b) in u.iter_mut().zip(&cl[m as usize]) { *a |= b; } } l.size as f64 * pc(&u) as f64 }).sum::<f64>() / n / total };
    for s in [Strategy::Stable, Strategy::AutoLayer, Strategy::Nixery] {
        let l = layering::group(&c, &pop, s, &Options::with_budget(budget)).unwrap();
        println!("{:?}: model {:.2}% (floor {:.2}%) layers {}", s, 100.0 * model(&l), 100.0 * floor, l.len());
    }
    // unrestricted greedy: all pairs, exact
    let mut groups: Vec<(Vec<u64>, f64, Vec<usize>)> = (0..c.len()).map(|i| (cl[i].clone(), c.nodes[i].nar_size as f64, vec![i])).collect();
    while groups.len() > budget {
        let mut best = (f64::MAX, 0, 0);
        for i in 0..groups.len() { for j in i+1..groups.len() {
            let u: u64 = groups[i].0.iter().zip(&groups[j].0).map(|(a, b)| (a | b).count_ones() as u64).sum();
            let d = (groups[i].1 + groups[j].1) * u as f64 - groups[i].1 * pc(&groups[i].0) as f64 - groups[j].1 * pc(&groups[j].0) as f64;
            if d < best.0 { best = (d, i, j); }
        }}
        let (_, i, j) = best; let g = groups.swap_remove(j);
        let gi = &mut groups[i]; for (a, b) in gi.0.iter_mut().zip(&g.0) { *a |= b; } gi.1 += g.1; gi.2.extend(g.2);
    }
    let cost: f64 = groups.iter().map(|g| g.1 * pc(&g.0) as f64).sum::<f64>() / n / total;
    println!("unrestricted greedy: model {:.2}%", 100.0 * cost);
}
