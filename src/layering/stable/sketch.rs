//! Sets of paths a layer depends on, and the sizes of their unions.
//!
//! A layer has to be downloaded again whenever any path it contains changes, and a store path
//! changes whenever anything in its closure does. So what a layer "depends on" is the union of its
//! paths' closures, and the size of that union is what the update-aware strategy minimises.
//! Up to [`EXACT_LIMIT`] paths these sets are exact bitsets. Beyond that (a 100k-path closure
//! would need over a gigabyte of bitsets) each set is a k-minimum-values sketch: the k smallest
//! hashes of its elements, which merges in O(k) and estimates the size of any union; below k
//! elements it is still exact, which covers most closures. Hashes come from path *names* without
//! the store hash, so renaming paths (a new build of the same package) changes no estimate, and
//! all arithmetic is on integers: the same results on every machine.

/// Largest closure handled with exact bitsets.
pub const EXACT_LIMIT: usize = 16384;

/// Smallest hashes kept per sketch.
pub const K: usize = 32;

/// How the sets of one closure are represented: bitsets over node ids, or sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Universe {
    Exact { words: usize },
    Sketched,
}

/// A set in its universe's representation: bitset words, or ascending sketch hashes.
pub type Set = Vec<u64>;

impl Universe {
    pub fn for_size(n: usize) -> Universe {
        if n <= EXACT_LIMIT { Universe::Exact { words: n.div_ceil(64) } } else { Universe::Sketched }
    }

    /// The empty set.
    pub fn empty(self) -> Set {
        match self {
            Universe::Exact { words } => vec![0; words],
            Universe::Sketched => Vec::new(),
        }
    }

    /// The set holding node `id`, whose name hashes to `hash`.
    pub fn singleton(self, id: usize, hash: u64) -> Set {
        let mut s = Vec::new();
        self.singleton_into(&mut s, id, hash);
        s
    }

    /// Writes the set holding node `id` into `out`.
    pub fn singleton_into(self, out: &mut Set, id: usize, hash: u64) {
        out.clear();
        match self {
            Universe::Exact { words } => {
                out.resize(words, 0);
                out[id / 64] |= 1 << (id % 64);
            }
            Universe::Sketched => out.push(hash),
        }
    }

    pub fn union(self, a: &[u64], b: &[u64]) -> Set {
        match self {
            Universe::Exact { .. } => a.iter().zip(b).map(|(x, y)| x | y).collect(),
            Universe::Sketched => merge_smallest(a, b),
        }
    }

    /// Adds `b` to `a`; a sketch union is built in `tmp` and swapped in, so that a caller merging
    /// many times keeps reusing two buffers.
    pub fn union_in_place_with(self, a: &mut Set, b: &[u64], tmp: &mut Set) {
        match self {
            Universe::Exact { .. } => a.iter_mut().zip(b).for_each(|(x, y)| *x |= y),
            Universe::Sketched => {
                tmp.clear();
                merge_smallest_into(a, b, tmp);
                std::mem::swap(a, tmp);
            }
        }
    }

    /// Adds `b` to `a`.
    pub fn union_in_place(self, a: &mut Set, b: &[u64]) {
        self.union_in_place_with(a, b, &mut Vec::new());
    }

    /// The number of elements (estimated, for sketches).
    pub fn count(self, a: &[u64]) -> u64 {
        match self {
            Universe::Exact { .. } => a.iter().map(|w| u64::from(w.count_ones())).sum(),
            Universe::Sketched => estimate(a),
        }
    }

    /// The number of elements of `a ∪ b`, without building it where possible.
    pub fn union_count(self, a: &[u64], b: &[u64]) -> u64 {
        match self {
            Universe::Exact { .. } => a.iter().zip(b).map(|(x, y)| u64::from((x | y).count_ones())).sum(),
            Universe::Sketched => union_estimate(a, b),
        }
    }
}

/// The estimate of `a ∪ b` for sketches, walking both lists without building the union.
fn union_estimate(a: &[u64], b: &[u64]) -> u64 {
    let (mut taken, mut last) = (0, 0);
    smallest_of_union(a, b, |v| {
        taken += 1;
        last = v;
    });
    if taken < K { taken as u64 } else { (((K as u128 - 1) << 64) / (u128::from(last) + 1)) as u64 }
}

/// Visits the K smallest distinct values of two ascending lists of distinct values, ascending.
#[inline(always)]
fn smallest_of_union(a: &[u64], b: &[u64], mut visit: impl FnMut(u64)) {
    let (mut i, mut j, mut taken) = (0, 0, 0);
    // Step past the smaller head, or both when equal.
    while i < a.len() && j < b.len() && taken < K {
        let (x, y) = (a[i], b[j]);
        visit(x.min(y));
        i += usize::from(x <= y);
        j += usize::from(y <= x);
        taken += 1;
    }
    let rest = if i < a.len() { &a[i..] } else { &b[j..] };
    rest.iter().take(K - taken).for_each(|&v| visit(v));
}

impl Universe {
    /// Writes the union of `first` and `rest` into `out`; `tmp` is a scratch buffer. Neither
    /// allocates once they have grown to a set's size.
    pub fn union_all_into<'a>(self, out: &mut Set, first: &[u64], rest: impl Iterator<Item = &'a [u64]>, tmp: &mut Set) {
        out.clear();
        out.extend_from_slice(first);
        match self {
            Universe::Exact { .. } => rest.for_each(|s| out.iter_mut().zip(s).for_each(|(x, y)| *x |= y)),
            Universe::Sketched => {
                for s in rest {
                    tmp.clear();
                    merge_smallest_into(out, s, tmp);
                    std::mem::swap(out, tmp);
                }
            }
        }
    }
}

/// One set per node, stored end to end in one buffer. The closure and dependent sets of every
/// node are built once and then only read: one allocation instead of one per node makes them
/// faster to build and, on a 100k-path closure, saves the tenth of a run that freeing 200k
/// small vectors took.
pub struct SetTable {
    data: Vec<u64>,
    /// Where each node's set starts in `data`, and its length.
    span: Vec<(u32, u32)>,
}

impl SetTable {
    const UNSET: (u32, u32) = (u32::MAX, 0);

    /// A table for `n` nodes of `universe`, none of whose sets is known yet. Room for the
    /// largest sets is reserved up front (pages untouched cost nothing), so the buffer is never
    /// copied as it grows.
    pub fn new(n: usize, universe: Universe) -> SetTable {
        let most = match universe {
            Universe::Exact { words } => words,
            Universe::Sketched => K,
        };
        SetTable { data: Vec::with_capacity(n * most), span: vec![SetTable::UNSET; n] }
    }

    pub fn contains(&self, i: usize) -> bool {
        self.span[i] != SetTable::UNSET
    }

    /// Records node `i`'s set (once).
    pub fn insert(&mut self, i: usize, set: &[u64]) {
        debug_assert!(!self.contains(i), "each set once");
        let start = u32::try_from(self.data.len()).expect("set table under 2^32 words");
        self.data.extend_from_slice(set);
        self.span[i] = (start, set.len() as u32);
    }

    /// Node `i`'s set; empty if not recorded.
    pub fn get(&self, i: usize) -> &[u64] {
        let (start, len) = self.span[i];
        if len == 0 { &[] } else { &self.data[start as usize..(start + len) as usize] }
    }
}

/// The K smallest distinct values of two ascending lists.
fn merge_smallest(a: &[u64], b: &[u64]) -> Set {
    let mut out = Vec::with_capacity((a.len() + b.len()).min(K));
    merge_smallest_into(a, b, &mut out);
    out
}

fn merge_smallest_into(a: &[u64], b: &[u64], out: &mut Set) {
    smallest_of_union(a, b, |v| out.push(v));
}

/// Sketch cardinality: exact below K, else (K - 1) / (K-th smallest hash as a fraction of 2^64).
fn estimate(s: &[u64]) -> u64 {
    if s.len() < K {
        return s.len() as u64;
    }
    let kth = u128::from(s[K - 1]) + 1;
    (((K as u128 - 1) << 64) / kth) as u64
}

/// A well-mixed 64-bit hash of a name (FNV-1a, then the SplitMix64 finaliser).
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(range: std::ops::Range<u32>) -> Set {
        range.fold(Vec::new(), |s, i| Universe::Sketched.union(&s, &[name_hash(&i.to_le_bytes())]))
    }

    #[test]
    fn sketches_are_exact_below_k_and_close_above() {
        let u = Universe::Sketched;
        let below_k = (K - 5) as u32;
        let small = sketch_of(0..below_k);
        assert_eq!(u.count(&small), u64::from(below_k));
        assert_eq!(u.union_count(&small, &small), u64::from(below_k), "unions do not double count");
        let (x, y) = (sketch_of(0..3000), sketch_of(2000..6000));
        assert_eq!(u.union_count(&x, &y), u.count(&u.union(&x, &y)));
        let e = u.count(&sketch_of(0..10_000)) as f64;
        assert!((e - 10_000.0).abs() < 3_000.0, "{e}");
    }

    #[test]
    fn bitsets_count_exactly() {
        let u = Universe::for_size(130);
        let a = u.union(&u.singleton(3, 0), &u.singleton(129, 0));
        let b = u.singleton(129, 0);
        assert_eq!((u.count(&a), u.count(&b), u.union_count(&a, &b)), (2, 1, 2));
    }
}
