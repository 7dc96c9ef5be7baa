//! Length-bucketed batches: texts of similar length share a batch, so
//! dynamic padding wastes little compute, while the order still varies from
//! epoch to epoch.

use clause_infer::rng::SplitMix64;

/// Batches per pool: the training set is shuffled, cut into pools of this
/// many batches, and each pool is sorted by length before being cut into
/// batches. Larger pools pad less and shuffle less.
pub const POOL_BATCHES: usize = 50;

/// The batches of one training epoch, as example indices. Depends only on
/// `(lengths, batch_size, seed, epoch)`, so a resumed run sees the same order.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut rng = SplitMix64::new(seed ^ (epoch as u64 + 1).wrapping_mul(0xd6e8_feb8_6659_fd93));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::with_capacity(lengths.len().div_ceil(batch_size));
    for pool in order.chunks_mut(batch_size * POOL_BATCHES) {
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// The training examples of one epoch: every example with a label, and at
/// most `ratio` label-less examples per labelled one, drawn afresh for each
/// epoch (`ratio` 0 keeps them all). Depends only on `(has_label, ratio,
/// seed, epoch)`; returned in ascending order.
pub fn epoch_examples(has_label: &[bool], ratio: f64, seed: u64, epoch: usize) -> Vec<usize> {
    let mut negatives: Vec<usize> = (0..has_label.len()).filter(|&i| !has_label[i]).collect();
    let labelled = has_label.len() - negatives.len();
    let keep = negatives_kept(negatives.len(), labelled, ratio);
    if keep < negatives.len() {
        let mut rng =
            SplitMix64::new(seed ^ 0x6e65_6761_7469_7665 ^ (epoch as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.shuffle(&mut negatives);
        negatives.truncate(keep);
    }
    let mut examples: Vec<usize> = (0..has_label.len()).filter(|&i| has_label[i]).chain(negatives).collect();
    examples.sort_unstable();
    examples
}

/// How many of `negatives` label-less examples an epoch keeps beside
/// `labelled` labelled ones at `ratio` (at least one when there are any, so
/// no epoch is positives only).
pub fn negatives_kept(negatives: usize, labelled: usize, ratio: f64) -> usize {
    if ratio <= 0.0 {
        return negatives;
    }
    ((labelled as f64 * ratio).round() as usize).clamp(negatives.min(1), negatives)
}

/// Batches for inference: sorted by length, for the least padding; callers
/// put results back in input order.
pub fn sorted_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_once_reproducible_and_varying_by_epoch() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 120 + 3).collect();
        let a = epoch_batches(&lengths, 16, 1, 0);
        let mut seen: Vec<usize> = a.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_batches(&lengths, 16, 1, 0));
        assert_ne!(a, epoch_batches(&lengths, 16, 1, 1));
        // Bucketing: the mean spread of lengths within a batch is small.
        let spread: usize = a
            .iter()
            .map(|b| {
                b.iter().map(|&i| lengths[i]).max().unwrap_or(0) - b.iter().map(|&i| lengths[i]).min().unwrap_or(0)
            })
            .sum();
        assert!(spread / a.len() < 10, "{}", spread / a.len());
    }

    #[test]
    fn epochs_keep_every_positive_and_a_fresh_draw_of_negatives() {
        let has_label: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let all = epoch_examples(&has_label, 0.0, 7, 0);
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(epoch_examples(&has_label, 20.0, 7, 0), all);
        let first = epoch_examples(&has_label, 2.5, 7, 0);
        assert_eq!(first.len(), 100 + 250);
        assert!((0..1000).step_by(10).all(|i| first.binary_search(&i).is_ok()));
        assert_eq!(first, epoch_examples(&has_label, 2.5, 7, 0));
        assert_ne!(first, epoch_examples(&has_label, 2.5, 7, 1));
        assert_eq!(negatives_kept(3, 0, 1.0), 1);
        assert_eq!(negatives_kept(0, 5, 0.5), 0);
    }

    #[test]
    fn sorted_batches_cover_in_length_order() {
        let lengths = [5, 1, 3, 1];
        assert_eq!(sorted_batches(&lengths, 3), vec![vec![1, 3, 2], vec![0]]);
    }
}
