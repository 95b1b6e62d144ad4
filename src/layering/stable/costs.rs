//! What a merge costs: bytes re-pulled after updates (blob and chain level), bytes stored twice
//! by images holding one group but not the other, and the end of a path's layer of its own; and
//! the rounding that keeps nearly equal costs equal, so that images of the same packages make the
//! same merges.

use super::{Ctx, Group, Side, BASE_WEIGHT};

/// A size rounded down to one of four steps per octave (1, 1.25, 1.5, 1.75 times a power of two).
/// Updates change sizes a little; costs computed from rounded sizes mostly stay the same, so the
/// sequence of merges, and with it every other layer, stays the same too.
pub fn rounded(size: u64) -> u64 {
    if size < 8 {
        return size;
    }
    let shift = 63 - size.leading_zeros() - 2;
    (size >> shift) << shift
}

/// A merge cost rounded down to one of eight steps per octave. The storage half of a cost counts
/// the paths depending on a group, and those differ a little between images of the same packages
/// (one root more or less). Exact costs would let such a difference reorder nearly-equal merges
/// and, through them, regroup unrelated paths; rounded, most costs stay equal and the tie-break by
/// name decides the same way in every image, so the images share their layers.
pub(super) fn rounded_cost(cost: u128) -> u128 {
    if cost < 16 {
        return cost;
    }
    let shift = 127 - cost.leading_zeros() - 3;
    (cost >> shift) << shift
}

/// A merge's cost and its tie-break (the two groups' tops by name rank, lower first).
pub(super) type Cost = (u128, u32, u32);

/// A rounded merge cost (see [`rounded_cost`]) in 16 bits, order kept: below 16 as is, above
/// by octave and the three bits below the leading one; `u128::MAX` (never merge) as `u16::MAX`.
pub(super) fn cost_code(cost: u128) -> u16 {
    if cost == u128::MAX {
        return u16::MAX;
    }
    debug_assert_eq!(cost, rounded_cost(cost), "only rounded costs have a code");
    if cost < 16 {
        return cost as u16;
    }
    let shift = 127 - cost.leading_zeros() - 3;
    16 + (shift as u16 - 1) * 8 + ((cost >> shift) as u16 - 8)
}

pub(super) fn cost_of_code(code: u16) -> u128 {
    match code {
        u16::MAX => u128::MAX,
        0..16 => u128::from(code),
        _ => u128::from((code - 16) % 8 + 8) << ((code - 16) / 8 + 1),
    }
}

impl Ctx<'_> {
    /// The cost of merging two groups in the pairwise phase, and its tie-break (the groups' tops
    /// by name): the bytes re-pulled more often after updates, blob level (from what they depend
    /// on) and chain level (from where they stand in the reference order), plus the bytes stored
    /// twice by images holding one group but not the other (from what depends on them).
    pub(super) fn merge_cost(&self, a: &Group, b: &Group) -> Cost {
        let (ra, rb) = self.tie_break(a.top, b.top);
        if self.held_apart(a) || self.held_apart(b) {
            // After every other merge: never needed, as big paths are at most half the
            // budget and everything else could merge into one layer first.
            return (u128::MAX, ra, rb);
        }
        let (sa, sb) = (self.side(a), self.side(b));
        let blob_and_storage = self.exact_cost_of_unions(&sa, &sb, self.unions(&sa, &sb));
        (rounded_cost(blob_and_storage + self.chain_cost(a, b) * BASE_WEIGHT), ra, rb)
    }

    /// The chain half of a merge's cost. With the layers in the reference order, each placed
    /// where its highest member stands, a layer is re-pulled (chain level) whenever anything in
    /// the order up to there changes; merged, the lower of the two groups moves up to the higher
    /// one's place, and its bytes are re-pulled for every path in the order between the two.
    /// That order changes little as groups merge, so this stays a close estimate of what the
    /// final order makes of the merge. Blob cost alone cannot see it: a small tool merged into
    /// the base libraries' layer costs little there, but every update of the tool then re-pulls
    /// the bottom layer and everything above it.
    pub(super) fn chain_cost(&self, a: &Group, b: &Group) -> u128 {
        // Positions are distinct: each starting group has its own, and a group takes its highest.
        let (low, high) = if a.pos < b.pos { (a, b) } else { (b, a) };
        u128::from(low.size) * u128::from(self.chain[high.pos as usize] - self.chain[low.pos as usize])
    }

    /// The sizes of the unions of two groups' sets: what the merged group would depend on, and
    /// what would depend on it. Most of a merge cost's work; it changes only when a set does.
    pub(super) fn unions(&self, a: &Side, b: &Side) -> (u64, u64) {
        (self.universe.union_count(a.set, b.set), self.universe.union_count(a.up, b.up))
    }

    /// The rounded blob and storage cost of merging two groups, from the sizes of the unions of
    /// their sets (see [`Ctx::merge_cost`]; the tree phase has no chain half).
    pub(super) fn cost_of_unions(&self, a: &Side, b: &Side, unions: (u64, u64)) -> u128 {
        rounded_cost(self.exact_cost_of_unions(a, b, unions))
    }

    /// [`Ctx::cost_of_unions`] before rounding.
    pub(super) fn exact_cost_of_unions(&self, a: &Side, b: &Side, (set, up): (u64, u64)) -> u128 {
        let (sa, sb) = (u128::from(a.size), u128::from(b.size));
        let extra = |both: u64, ca: u64, cb: u64| ((sa + sb) * u128::from(both)).saturating_sub(sa * u128::from(ca) + sb * u128::from(cb));
        let update = extra(set, a.depends, b.depends);
        let storage = extra(up, a.up_count, b.up_count);
        (update + storage) * BASE_WEIGHT + a.alone + b.alone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_codes_round_trip_in_order() {
        let mut costs: Vec<u128> = (0..200u32).flat_map(|e| [1u128, 3, 5, 7, 9, 11, 13, 15].map(|m| rounded_cost(m.checked_shl(e).unwrap_or(0)))).collect();
        costs.extend([u128::MAX, rounded_cost(u128::MAX - 1)]);
        costs.sort_unstable();
        costs.dedup();
        for w in costs.windows(2) {
            assert!(cost_code(w[0]) < cost_code(w[1]), "{} and {}", w[0], w[1]);
        }
        for &c in &costs {
            assert_eq!(cost_of_code(cost_code(c)), c);
        }
    }

    #[test]
    fn rounded_costs_keep_three_bits_below_the_leading_one() {
        assert_eq!(rounded_cost(15), 15);
        assert_eq!(rounded_cost(0b1_0111_0110), 0b1_0110_0000);
        assert_eq!(rounded_cost(u128::MAX), 0b1111 << 124);
        for c in [100u128, 12345, 1 << 40, (1 << 70) + 12345] {
            let r = rounded_cost(c);
            assert!(r <= c && c - r < (c >> 3), "{c} -> {r}");
            assert_eq!(rounded_cost(r), r);
        }
    }
}
