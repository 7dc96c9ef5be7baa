//! One micro-batch of training: forward with dropout, loss, backward, and
//! the gradients added into the optimizer.
//!
//! On CPU the batch is split across threads, each running its part's whole
//! forward and backward pass on its own (see [`ops::serially`]). One pass
//! split across the cores spends much of a step in small steps that each
//! wait for every thread (a layer norm, a softmax, the products of one
//! attention head); side by side, parts keep every core busy. Dropout draws
//! from one generator per sequence, so the result does not depend on the
//! split but only, within rounding, on the batch.

use candle_core::Tensor;
use candle_core::backprop::GradStore;
use clause_infer::model::{BertClassifier, DropoutRng};
use clause_infer::ops;
use clause_infer::rng::SplitMix64;

use crate::Error;
use crate::loss::weighted_bce_with_logits;
use crate::optim::AdamW;

/// The tensors of one micro-batch, all with the batch as first dimension.
#[derive(Clone, Copy)]
pub struct MicroBatch<'a> {
    /// Token ids, `(batch, length)` `u32`.
    pub ids: &'a Tensor,
    /// 1 for tokens, 0 for padding, `(batch, length)` `u32`.
    pub attention_mask: &'a Tensor,
    /// 0/1 per label, `(batch, labels)` `f32`.
    pub targets: &'a Tensor,
}

impl MicroBatch<'_> {
    /// The loss of sequences `start..start + len`, times `scale`, and its
    /// gradients.
    fn part_gradients(
        self,
        model: &BertClassifier,
        pos_weight: &Tensor,
        (start, len): (usize, usize),
        rngs: &mut [DropoutRng],
        scale: f64,
    ) -> Result<(f64, GradStore), Error> {
        let ids = self.ids.narrow(0, start, len)?;
        let mask = self.attention_mask.narrow(0, start, len)?;
        let targets = self.targets.narrow(0, start, len)?;
        let logits = model.forward(&ids, &mask, Some(rngs))?;
        let loss = (weighted_bce_with_logits(&logits, &targets, pos_weight)? * scale)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        Ok((value, loss.backward()?))
    }
}

/// One dropout generator per sequence of a batch, seeded from `rng` (the
/// run's checkpointed generator).
pub fn dropout_generators(rng: &mut SplitMix64, sequences: usize) -> Vec<DropoutRng> {
    (0..sequences).map(|_| SplitMix64::new(rng.next_u64())).collect()
}

/// Train on `batch`: add `scale` times the gradient of its mean loss into
/// `optimizer` (`scale` is 1 / the micro-batches per step when gradients
/// accumulate) and return its mean loss. `rngs` holds one dropout generator
/// per sequence. On CPU the sequences are split into as many parts as
/// candle has threads.
pub fn accumulate_gradients(
    model: &BertClassifier,
    batch: MicroBatch<'_>,
    pos_weight: &Tensor,
    rngs: &mut [DropoutRng],
    scale: f64,
    optimizer: &mut AdamW,
) -> Result<f64, Error> {
    let parts = if batch.ids.device().is_cpu() { candle_core::utils::get_num_threads() } else { 1 };
    accumulate_in_parts(model, batch, pos_weight, rngs, scale, optimizer, parts)
}

/// [`accumulate_gradients`] with the sequences split into `parts` parts
/// (fewer when the batch is smaller), each on a thread of its own.
fn accumulate_in_parts(
    model: &BertClassifier,
    batch: MicroBatch<'_>,
    pos_weight: &Tensor,
    rngs: &mut [DropoutRng],
    scale: f64,
    optimizer: &mut AdamW,
    parts: usize,
) -> Result<f64, Error> {
    let sequences = batch.ids.dim(0)?;
    if rngs.len() != sequences {
        return Err(Error::Data(format!("{} dropout generators for a batch of {sequences}", rngs.len())));
    }
    let per_part = sequences.div_ceil(parts.max(1)).max(1);
    if per_part >= sequences {
        let (loss, grads) = batch.part_gradients(model, pos_weight, (0, sequences), rngs, scale)?;
        optimizer.accumulate(&grads)?;
        return Ok(loss / scale);
    }
    // A part's mean loss weighs as its share of the batch.
    let results: Vec<Result<(f64, GradStore), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rngs
            .chunks_mut(per_part)
            .enumerate()
            .map(|(i, rngs)| {
                let part = (i * per_part, rngs.len());
                let part_scale = scale * part.1 as f64 / sequences as f64;
                scope.spawn(move || ops::serially(|| batch.part_gradients(model, pos_weight, part, rngs, part_scale)))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut loss = 0.0;
    for result in results {
        let (part_loss, grads) = result?;
        optimizer.accumulate(&grads)?;
        loss += part_loss;
    }
    Ok(loss / scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::AdamWParams;
    use candle_core::{DType, Device};
    use clause_infer::model::{Pooling, TrainableModel};

    /// The gradients of a batch split across threads are those of the
    /// whole batch on one thread, within rounding.
    #[test]
    fn a_split_batch_has_the_gradients_of_the_whole() {
        let device = Device::Cpu;
        let config = serde_json::from_value(serde_json::json!({
            "vocab_size": 20, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 32, "max_position_embeddings": 16
        }))
        .expect("config");
        let model = TrainableModel::random(&config, 3, Pooling::Mean, 5, &device).expect("model");
        let ids = Tensor::new(&[[2u32, 4, 9, 12, 3], [2, 6, 3, 0, 0], [2, 7, 8, 3, 0]], &device).expect("ids");
        let attention_mask = ids.ne(0u32).and_then(|m| m.to_dtype(DType::U32)).expect("mask");
        let targets = Tensor::new(&[[1f32, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], &device).expect("targets");
        let batch = MicroBatch { ids: &ids, attention_mask: &attention_mask, targets: &targets };
        let pos_weight = Tensor::new(&[2f32, 3.0, 1.0], &device).expect("weights");
        let params =
            AdamWParams { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, max_grad_norm: 0.0, ema_decay: 0.0 };
        let rngs = || (0..3).map(|i| SplitMix64::new(40 + i)).collect::<Vec<_>>();
        let run = |parts: usize| {
            let mut optimizer = AdamW::new(&model.vars, params).expect("optimizer");
            let loss = accumulate_in_parts(&model.model, batch, &pos_weight, &mut rngs(), 0.5, &mut optimizer, parts)
                .expect("gradients");
            (loss, optimizer)
        };
        let (whole_loss, whole) = run(1);
        // Parts of 2 and 1 sequences, and of one each.
        for parts in [2, 3] {
            let (loss, split) = run(parts);
            assert!((loss - whole_loss).abs() < 1e-6, "{parts} parts: loss {loss}, whole {whole_loss}");
            let (a, b) = (whole.pending(), split.pending());
            assert_eq!(a.len(), b.len());
            assert!(!a.is_empty());
            for ((name, a), (_, b)) in a.iter().zip(&b) {
                let difference: f32 = (*a - *b)
                    .and_then(|d| d.abs())
                    .and_then(|d| d.max_all())
                    .and_then(|d| d.to_scalar())
                    .expect("diff");
                assert!(difference < 1e-6, "{parts} parts: {name}: gradients differ by {difference}");
            }
        }
        let mut optimizer = AdamW::new(&model.vars, params).expect("optimizer");
        let err = accumulate_in_parts(&model.model, batch, &pos_weight, &mut rngs()[..2], 1.0, &mut optimizer, 2)
            .expect_err("two generators for three sequences");
        assert!(err.to_string().contains("2 dropout generators for a batch of 3"), "{err}");
    }
}
