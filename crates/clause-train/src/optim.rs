//! AdamW with the usual exemptions and global gradient clipping.
//!
//! candle's `AdamW` decays every parameter and cannot clip; fine-tuning BERT
//! conventionally exempts biases and LayerNorm weights from decay and clips
//! the global gradient norm to 1. The optimizer state is plain tensors by
//! parameter name, so a checkpoint can store and restore it exactly.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;

/// One parameter and its moment estimates.
struct Slot {
    name: String,
    var: Var,
    decay: bool,
    m: Tensor,
    v: Tensor,
    pending: Option<Tensor>,
}

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamWParams {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip; 0 disables it.
    pub max_grad_norm: f64,
}

/// The optimizer.
pub struct AdamW {
    slots: Vec<Slot>,
    params: AdamWParams,
    step: usize,
}

/// Biases and LayerNorm parameters are not decayed.
pub fn is_decayed(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm"))
}

impl AdamW {
    /// An optimizer over every variable of `vars`, in name order.
    pub fn new(vars: &VarMap, params: AdamWParams) -> Result<Self> {
        let data = vars.data().lock().map_err(|_| candle_core::Error::msg("parameter lock poisoned"))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let mut slots = Vec::with_capacity(names.len());
        for name in names {
            let var = data[name].clone();
            slots.push(Slot {
                name: name.clone(),
                decay: is_decayed(name),
                m: var.zeros_like()?,
                v: var.zeros_like()?,
                var,
                pending: None,
            });
        }
        Ok(Self { slots, params, step: 0 })
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// Add one micro-batch's gradients to those pending.
    pub fn accumulate(&mut self, grads: &GradStore) -> Result<()> {
        for slot in &mut self.slots {
            if let Some(grad) = grads.get(slot.var.as_tensor()) {
                slot.pending = Some(match slot.pending.take() {
                    Some(sum) => (sum + grad)?,
                    None => grad.clone(),
                });
            }
        }
        Ok(())
    }

    /// Clip the pending gradients, update every parameter with learning rate
    /// `lr`, and clear them. Returns the gradient norm before clipping.
    pub fn apply(&mut self, lr: f64) -> Result<f64> {
        let mut squared = 0f64;
        for slot in &self.slots {
            if let Some(grad) = &slot.pending {
                squared += f64::from(grad.sqr()?.sum_all()?.to_scalar::<f32>()?);
            }
        }
        let norm = squared.sqrt();
        let clip = if self.params.max_grad_norm > 0.0 && norm > self.params.max_grad_norm {
            self.params.max_grad_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let AdamWParams { beta1, beta2, eps, weight_decay, .. } = self.params;
        let correction1 = 1.0 - beta1.powi(self.step as i32);
        let correction2 = 1.0 - beta2.powi(self.step as i32);
        for slot in &mut self.slots {
            let Some(grad) = slot.pending.take() else { continue };
            let grad = (grad * clip)?;
            slot.m = ((&slot.m * beta1)? + (&grad * (1.0 - beta1))?)?;
            slot.v = ((&slot.v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&slot.m / correction1)?;
            let v_hat = (&slot.v / correction2)?;
            let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
            let decay = if slot.decay { 1.0 - lr * weight_decay } else { 1.0 };
            let next = ((slot.var.as_tensor() * decay)? - (update * lr)?)?;
            slot.var.set(&next)?;
        }
        Ok(norm)
    }

    /// The moment estimates by name (`m.<param>`, `v.<param>`), for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::with_capacity(self.slots.len() * 2);
        for slot in &self.slots {
            out.insert(format!("m.{}", slot.name), slot.m.clone());
            out.insert(format!("v.{}", slot.name), slot.v.clone());
        }
        out
    }

    /// Restore moments saved by [`AdamW::state`] and the step count.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, step: usize) -> Result<()> {
        for slot in &mut self.slots {
            let get = |key: String| {
                state
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| candle_core::Error::msg(format!("optimizer state lacks `{key}`")))
            };
            slot.m = get(format!("m.{}", slot.name))?;
            slot.v = get(format!("v.{}", slot.name))?;
            if slot.m.dims() != slot.var.dims() || slot.v.dims() != slot.var.dims() {
                return Err(candle_core::Error::msg(format!(
                    "optimizer state for `{}` has the wrong shape",
                    slot.name
                )));
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{Init, VarBuilder};

    fn params() -> AdamWParams {
        AdamWParams { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, max_grad_norm: 0.0 }
    }

    #[test]
    fn first_step_moves_each_weight_by_the_learning_rate() {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let w = vb.get_with_hints(2, "layer.weight", Init::Const(1.0)).expect("w");
        let b = vb.get_with_hints(2, "layer.bias", Init::Const(1.0)).expect("b");
        let mut opt = AdamW::new(&vars, params()).expect("opt");
        let loss = ((&w * Tensor::new(&[3.0f32, -2.0], &Device::Cpu).expect("t")).expect("mul").sum_all().expect("s")
            + b.sum_all().expect("s"))
        .expect("add");
        opt.accumulate(&loss.backward().expect("backward")).expect("acc");
        opt.apply(0.01).expect("step");
        // Adam's first step is lr·sign(g); decay shrinks the weight, not the bias.
        let w: Vec<f32> = w.to_vec1().expect("w");
        let b: Vec<f32> = b.to_vec1().expect("b");
        assert!((w[0] - (1.0 * (1.0 - 0.001) - 0.01)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (1.0 * (1.0 - 0.001) + 0.01)).abs() < 1e-6, "{w:?}");
        assert!((b[0] - 0.99).abs() < 1e-6, "{b:?}");
        assert_eq!(opt.steps(), 1);
    }

    #[test]
    fn clipping_scales_the_global_norm() {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let w = vb.get_with_hints(2, "w", Init::Const(0.0)).expect("w");
        let mut opt = AdamW::new(&vars, AdamWParams { max_grad_norm: 1.0, ..params() }).expect("opt");
        let loss = (&w * Tensor::new(&[30.0f32, 40.0], &Device::Cpu).expect("t")).expect("m").sum_all().expect("s");
        opt.accumulate(&loss.backward().expect("b")).expect("acc");
        let norm = opt.apply(0.01).expect("step");
        assert!((norm - 50.0).abs() < 1e-4, "{norm}");
        let state = opt.state();
        let m: Vec<f32> = state["m.w"].to_vec1().expect("m");
        // m = (1-β1)·g·clip = 0.1·(30,40)/50.
        assert!((m[0] - 0.06).abs() < 1e-5 && (m[1] - 0.08).abs() < 1e-5, "{m:?}");
    }

    #[test]
    fn exemptions() {
        assert!(is_decayed("bert.encoder.layer.0.attention.self.query.weight"));
        assert!(!is_decayed("bert.encoder.layer.0.attention.self.query.bias"));
        assert!(!is_decayed("bert.embeddings.LayerNorm.weight"));
    }
}
