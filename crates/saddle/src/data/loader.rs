//! A seeded loader: which examples go into which batch, epoch by epoch.
//!
//! The order of epoch `e` is a Fisher-Yates shuffle drawn from a generator
//! seeded with `(seed, e)`, so any epoch can be reproduced on its own (resuming
//! mid-run gives the same batches). Under data parallelism every rank draws
//! the same order and trains on its [`shard`] of each batch.
//!
//! Uses: `rng`.

use crate::Rng;

/// Batch indices for each epoch (`torch.utils.data.DataLoader`'s sampler).
#[derive(Clone, Debug)]
pub struct Loader {
    /// Number of examples.
    pub len: usize,
    /// Examples per batch.
    pub batch_size: usize,
    /// Shuffle each epoch.
    pub shuffle: bool,
    /// Drop the last batch if it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the shuffles.
    pub seed: u64,
}

impl Loader {
    /// The batches of epoch `epoch`, each a list of example indices.
    pub fn epoch(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            let mut rng = Rng::new(self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            rng.shuffle(&mut order);
        }
        let bs = self.batch_size.max(1);
        order.chunks(bs).filter(|c| !self.drop_last || c.len() == bs).map(|c| c.to_vec()).collect()
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let bs = self.batch_size.max(1);
        if self.drop_last {
            self.len / bs
        } else {
            self.len.div_ceil(bs)
        }
    }
}

/// Rank `rank`'s share of `items` among `ranks` ranks: the contiguous slice
/// `items[⌊r·n/R⌋ .. ⌊(r+1)·n/R⌋]`, with `n = items.len()` and `R = ranks`.
/// The shares are disjoint, cover `items` in order, and differ in length by
/// at most one (PyTorch's `DistributedSampler` gives each rank a disjoint
/// share too, but pads the epoch so that all are equal).
///
/// ```
/// use saddle::data::shard;
/// let batch = [7, 3, 9, 1, 4];
/// assert_eq!(shard(&batch, 0, 2), &[7, 3]);
/// assert_eq!(shard(&batch, 1, 2), &[9, 1, 4]);
/// assert_eq!(shard(&batch, 0, 1), &batch);
/// ```
pub fn shard<T>(items: &[T], rank: usize, ranks: usize) -> &[T] {
    let (n, ranks) = (items.len(), ranks.max(1));
    &items[rank * n / ranks..(rank + 1) * n / ranks]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_example_once_and_are_seeded() {
        let l = Loader { len: 10, batch_size: 3, shuffle: true, drop_last: false, seed: 7 };
        let e0 = l.epoch(0);
        assert_eq!(e0.len(), 4);
        assert_eq!(l.batches_per_epoch(), 4);
        let mut all: Vec<usize> = e0.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(e0, l.epoch(0));
        assert_ne!(e0, l.epoch(1));
        let d = Loader { drop_last: true, ..l };
        assert_eq!(d.epoch(0).len(), 3);
        assert_eq!(d.batches_per_epoch(), 3);
    }

    #[test]
    fn shards_cover_a_batch_once_in_order() {
        for n in 0..12 {
            let items: Vec<usize> = (0..n).collect();
            for ranks in 1..5 {
                let shares: Vec<&[usize]> = (0..ranks).map(|r| shard(&items, r, ranks)).collect();
                assert_eq!(shares.concat(), items, "{n} items, {ranks} ranks");
                let lens: Vec<usize> = shares.iter().map(|s| s.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1, "{lens:?}");
            }
        }
    }
}
