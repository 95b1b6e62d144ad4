//! Estimated sizes of closures and of their unions: how many paths of an image a layer depends on.
//!
//! A layer has to be downloaded again whenever any path it contains changes, and a store path
//! changes whenever anything in its closure does. So what a layer "depends on" is the union of its
//! paths' closures, and its size is what the update-aware strategy minimises. Exact unions over
//! 100k paths would need gigabytes of bitsets; a k-minimum-values sketch keeps the k smallest
//! hashes of a set, merges in O(k), and estimates the size of any union of sets it has sketched.
//! Below k elements it is exact, which covers most closures. Hashes come from path *names*
//! without the store hash, so renaming paths (a new build of the same package) changes no
//! estimate, and all arithmetic is on integers: the same estimates on every machine.

/// Smallest hashes kept per sketch.
pub const K: usize = 64;

/// The k smallest distinct hashes of a set, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch(Vec<u64>);

impl Sketch {
    pub fn of(hash: u64) -> Sketch {
        Sketch(vec![hash])
    }

    /// The union of two sketched sets.
    pub fn union(&self, other: &Sketch) -> Sketch {
        let (a, b) = (&self.0, &other.0);
        let mut out = Vec::with_capacity((a.len() + b.len()).min(K));
        let (mut i, mut j) = (0, 0);
        while out.len() < K && (i < a.len() || j < b.len()) {
            let next = match (a.get(i), b.get(j)) {
                (Some(&x), Some(&y)) if x == y => {
                    i += 1;
                    j += 1;
                    x
                }
                (Some(&x), Some(&y)) if x < y => {
                    i += 1;
                    x
                }
                (Some(_), Some(&y)) => {
                    j += 1;
                    y
                }
                (Some(&x), None) => {
                    i += 1;
                    x
                }
                (None, Some(&y)) => {
                    j += 1;
                    y
                }
                (None, None) => unreachable!(),
            };
            out.push(next);
        }
        Sketch(out)
    }

    pub fn union_in_place(&mut self, other: &Sketch) {
        *self = self.union(other);
    }

    /// Estimated number of elements: exact below K, else (K - 1) / (K-th smallest hash as a
    /// fraction of the hash space).
    pub fn estimate(&self) -> u64 {
        if self.0.len() < K {
            return self.0.len() as u64;
        }
        let kth = u128::from(self.0[K - 1]) + 1;
        (((K as u128 - 1) << 64) / kth) as u64
    }
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

    #[test]
    fn exact_below_k_and_close_above() {
        let small = (0..40u32).fold(Sketch::default(), |s, i| s.union(&Sketch::of(name_hash(&i.to_le_bytes()))));
        assert_eq!(small.estimate(), 40);
        let again = small.union(&small);
        assert_eq!(again.estimate(), 40, "unions do not double count");
        let big = (0..10_000u32).fold(Sketch::default(), |s, i| s.union(&Sketch::of(name_hash(&i.to_le_bytes()))));
        let e = big.estimate() as f64;
        assert!((e - 10_000.0).abs() < 3_000.0, "{e}");
    }
}
