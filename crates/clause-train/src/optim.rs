//! AdamW with the usual exemptions and global gradient clipping, and an
//! optional running average of the weights.
//!
//! candle's `AdamW` decays every parameter and cannot clip; fine-tuning BERT
//! conventionally exempts biases and LayerNorm weights from decay and clips
//! the global gradient norm to 1. The optimizer state is plain tensors by
//! parameter name, so a checkpoint can store and restore it exactly.
//!
//! The average is an exponential moving average of the weights after each
//! step, started from zero and divided by `1 - decay^steps` as Adam corrects
//! its moments, so it is a weighted mean of the steps taken and owes nothing
//! to the starting point.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor, Var, bail};
use candle_nn::VarMap;
use clause_infer::ops::{cpu_slice, cpu_slice_mut, for_each_part, with_host};

/// One parameter and its moment estimates.
struct Slot {
    name: String,
    var: Var,
    decay: bool,
    m: Tensor,
    v: Tensor,
    /// Running average of the weights, when `ema_decay` > 0.
    average: Option<Tensor>,
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
    /// Decay of the running average of the weights; 0 keeps none.
    pub ema_decay: f64,
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
                average: if params.ema_decay > 0.0 { Some(var.zeros_like()?) } else { None },
                var,
                pending: None,
            });
        }
        Ok(Self { slots, params, step: 0 })
    }

    /// The pending gradients by parameter name, in name order.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> Vec<(&str, &Tensor)> {
        self.slots.iter().filter_map(|slot| Some((slot.name.as_str(), slot.pending.as_ref()?))).collect()
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
                squared += squared_norm(grad)?;
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
            let decay = if slot.decay { 1.0 - lr * weight_decay } else { 1.0 };
            let param = slot.var.as_tensor();
            if param.device().is_cpu() {
                // In place: the moments and parameters of a 22M-parameter
                // model are too big to reallocate a dozen times per step.
                let grad = grad.contiguous()?;
                let moment = |beta: f64, square: bool| MomentUpdate { beta: beta as f32, clip: clip as f32, square };
                slot.m.inplace_op2(&grad, &moment(beta1, false))?;
                slot.v.inplace_op2(&grad, &moment(beta2, true))?;
                let update = ParamUpdate {
                    lr: lr as f32,
                    decay: decay as f32,
                    correction1: correction1 as f32,
                    correction2: correction2 as f32,
                    eps: eps as f32,
                };
                param.inplace_op3(&slot.m, &slot.v, &update)?;
                if let Some(average) = &slot.average {
                    // The same running average as the first moment, of the weights.
                    let decay = self.params.ema_decay as f32;
                    average.inplace_op2(param, &MomentUpdate { beta: decay, clip: 1.0, square: false })?;
                }
            } else {
                let grad = (grad * clip)?;
                slot.m = ((&slot.m * beta1)? + (&grad * (1.0 - beta1))?)?;
                slot.v = ((&slot.v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
                let m_hat = (&slot.m / correction1)?;
                let v_hat = (&slot.v / correction2)?;
                let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
                let next = ((param * decay)? - (update * lr)?)?;
                slot.var.set(&next)?;
                if let Some(average) = &mut slot.average {
                    let d = self.params.ema_decay;
                    *average = ((&*average * d)? + (&next * (1.0 - d))?)?;
                }
            }
        }
        Ok(norm)
    }

    /// The averaged weights by parameter name, bias-corrected; `None` when
    /// the optimizer keeps no average or has taken no step.
    pub fn averaged(&self) -> Result<Option<HashMap<String, Tensor>>> {
        if self.params.ema_decay <= 0.0 || self.step == 0 {
            return Ok(None);
        }
        let correction = 1.0 - self.params.ema_decay.powi(self.step as i32);
        let mut out = HashMap::with_capacity(self.slots.len());
        for slot in &self.slots {
            if let Some(average) = &slot.average {
                out.insert(slot.name.clone(), (average / correction)?);
            }
        }
        Ok(Some(out))
    }

    /// The moment estimates by name (`m.<param>`, `v.<param>`, and
    /// `average.<param>` when averaging), for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::with_capacity(self.slots.len() * 3);
        for slot in &self.slots {
            out.insert(format!("m.{}", slot.name), slot.m.clone());
            out.insert(format!("v.{}", slot.name), slot.v.clone());
            if let Some(average) = &slot.average {
                out.insert(format!("average.{}", slot.name), average.clone());
            }
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
            if slot.average.is_some() {
                slot.average = Some(get(format!("average.{}", slot.name))?);
            }
            let average_dims = slot.average.as_ref().map_or(slot.var.dims(), Tensor::dims);
            if slot.m.dims() != slot.var.dims() || slot.v.dims() != slot.var.dims() || average_dims != slot.var.dims() {
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

/// The squared L2 norm of a gradient, accumulated in f64.
fn squared_norm(grad: &Tensor) -> Result<f64> {
    if grad.device().is_cpu() {
        with_host(grad, "gradient norm", |g| Ok(g.iter().map(|&x| f64::from(x) * f64::from(x)).sum()))
    } else {
        Ok(f64::from(grad.sqr()?.sum_all()?.to_scalar::<f32>()?))
    }
}

/// `m = beta m + (1 - beta) g'` with `g' = clip g` (or `g'^2` for the second
/// moment), in place; with `clip` 1 it is also the running average of the
/// weights.
struct MomentUpdate {
    beta: f32,
    clip: f32,
    square: bool,
}

impl InplaceOp2 for MomentUpdate {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let grad = cpu_slice(s2, l2, self.name())?;
        let moment = cpu_slice_mut(s1, l1, self.name())?;
        if grad.len() != moment.len() {
            bail!("adamw-moment: {} gradients for {} moments", grad.len(), moment.len());
        }
        let Self { beta, clip, square } = *self;
        for_each_part(moment, |offset, part| {
            for (m, g) in part.iter_mut().zip(&grad[offset..]) {
                let g = g * clip;
                *m = beta * *m + (1.0 - beta) * if square { g * g } else { g };
            }
        });
        Ok(())
    }
}

/// The AdamW parameter update from bias-corrected moments, in place.
struct ParamUpdate {
    lr: f32,
    decay: f32,
    correction1: f32,
    correction2: f32,
    eps: f32,
}

impl InplaceOp3 for ParamUpdate {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let m = cpu_slice(s2, l2, self.name())?;
        let v = cpu_slice(s3, l3, self.name())?;
        let param = cpu_slice_mut(s1, l1, self.name())?;
        if m.len() != param.len() || v.len() != param.len() {
            bail!("adamw-update: moments of {}/{} for {} parameters", m.len(), v.len(), param.len());
        }
        let Self { lr, decay, correction1, correction2, eps } = *self;
        for_each_part(param, |offset, part| {
            for ((p, m), v) in part.iter_mut().zip(&m[offset..]).zip(&v[offset..]) {
                let update = (m / correction1) / ((v / correction2).sqrt() + eps);
                *p = *p * decay - lr * update;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{Init, VarBuilder};

    fn params() -> AdamWParams {
        AdamWParams { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, max_grad_norm: 0.0, ema_decay: 0.0 }
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

    #[test]
    fn three_steps_match_the_textbook_update_and_average() {
        // Large enough to be split across threads.
        let n = 100_000;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let w = vb.get_with_hints(n, "w", Init::Const(0.5)).expect("w");
        let hyper = AdamWParams { max_grad_norm: 0.0, ema_decay: 0.9, ..params() };
        let mut opt = AdamW::new(&vars, hyper).expect("opt");
        assert!(opt.averaged().expect("averaged").is_none(), "no step taken, nothing averaged");
        let coefficients: Vec<f32> = (0..n).map(|i| ((i % 17) as f32 - 8.0) * 0.3).collect();
        let (mut p, mut m, mut v) = (vec![0.5f64; n], vec![0f64; n], vec![0f64; n]);
        let mut average = vec![0f64; n];
        for step in 1..=3 {
            // loss = sum(c * w^2 / 2): the gradient c * w depends on the weights.
            let c = Tensor::new(coefficients.as_slice(), &Device::Cpu).expect("c");
            let loss = ((w.sqr().expect("sqr") * &c).expect("mul") * 0.5).expect("half").sum_all().expect("s");
            opt.accumulate(&loss.backward().expect("b")).expect("acc");
            opt.apply(0.01).expect("apply");
            for i in 0..n {
                let g = f64::from(coefficients[i]) * p[i];
                m[i] = hyper.beta1 * m[i] + (1.0 - hyper.beta1) * g;
                v[i] = hyper.beta2 * v[i] + (1.0 - hyper.beta2) * g * g;
                let m_hat = m[i] / (1.0 - hyper.beta1.powi(step));
                let v_hat = v[i] / (1.0 - hyper.beta2.powi(step));
                p[i] = p[i] * (1.0 - 0.01 * hyper.weight_decay) - 0.01 * m_hat / (v_hat.sqrt() + hyper.eps);
                average[i] = hyper.ema_decay * average[i] + (1.0 - hyper.ema_decay) * p[i];
            }
        }
        let worst = |ours: &Tensor, expected: &[f64]| {
            let ours: Vec<f32> = ours.to_vec1().expect("to_vec");
            ours.iter().zip(expected).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0f64, f64::max)
        };
        assert!(worst(&w, &p) < 1e-6, "weights: largest difference {}", worst(&w, &p));
        // The average of the three steps' weights, 0.1·0.81, 0.1·0.9 and 0.1
        // over their sum 0.271, which is what dividing by 1 - 0.9³ does.
        let correction = 1.0 - hyper.ema_decay.powi(3);
        let expected: Vec<f64> = average.iter().map(|a| a / correction).collect();
        let averaged = opt.averaged().expect("averaged").expect("an average");
        assert!(worst(&averaged["w"], &expected) < 1e-6, "average: {}", worst(&averaged["w"], &expected));
        // A checkpoint carries the average, and a restored optimizer gives it back.
        let mut restored = AdamW::new(&vars, hyper).expect("opt");
        restored.restore(&opt.state(), opt.steps()).expect("restore");
        let again = restored.averaged().expect("averaged").expect("an average");
        assert!(worst(&again["w"], &expected) < 1e-6);
        let mut without = opt.state();
        without.remove("average.w");
        let err = AdamW::new(&vars, hyper).expect("opt").restore(&without, 3).expect_err("no average");
        assert!(err.to_string().contains("average.w"), "{err}");
    }
}
