//! A BERT encoder with a multi-label classification head, written so that it
//! can be fine-tuned.
//!
//! candle-transformers' `BertModel` cannot be: its LayerNorm and softmax take
//! fused kernels without a backward pass, so a loss on top trains only the
//! head, silently, and its dropout is an identity. Here every op has a
//! backward pass (on CPU the fused kernels of [`crate::ops`], elsewhere
//! compositions of candle ops), dropout is real in training, and
//! the parameter names are those of Hugging Face's
//! `BertForSequenceClassification` (`bert.*`, `classifier.*`), so pretrained
//! and fine-tuned safetensors load unchanged.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::ops;
use crate::rng::SplitMix64;

/// The fields of a Hugging Face BERT `config.json` that the model uses; every
/// other field is kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// `gelu` (exact, erf), `gelu_new` / `gelu_pytorch_tanh` (tanh approximation) or `relu`.
    #[serde(default = "default_activation")]
    pub hidden_act: String,
    /// Dropout on hidden states in training.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities in training.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Longest input in tokens.
    pub max_position_embeddings: usize,
    /// Token type vocabulary (segment ids).
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Standard deviation of newly initialised weights.
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Every other field of `config.json`.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_activation() -> String {
    "gelu".to_string()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}

impl BertConfig {
    /// Read and check a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// The config in `text`, the contents of `path` (named in errors), checked
    /// as [`BertConfig::from_file`] checks it.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let config: Self = serde_json::from_str(text).map_err(|err| Error::Config {
            path: path.to_path_buf(),
            message: format!("line {}: {err}", err.line()),
        })?;
        config.check().map_err(|message| Error::Config { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    /// The shape rules the model relies on, as a message naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.hidden_size == 0
            || self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "field `num_attention_heads` ({}) must divide `hidden_size` ({})",
                self.num_attention_heads, self.hidden_size
            ));
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("field `{field}` = {p} must be in [0, 1)"));
            }
        }
        Activation::parse(&self.hidden_act).map(|_| ())
    }
}

/// How the encoder's hidden states become one vector per text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// BERT's pooler: the `[CLS]` state through a dense layer and tanh, as in
    /// `BertForSequenceClassification`.
    #[default]
    Cls,
    /// The mean of the token states under the attention mask (no pooler);
    /// Hugging Face's classification class does not do this.
    Mean,
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    GeluErf,
    GeluTanh,
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "gelu" => Ok(Self::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Self::GeluTanh),
            "relu" => Ok(Self::Relu),
            other => Err(format!("field `hidden_act`: unsupported activation `{other}` (use gelu, gelu_new or relu)")),
        }
    }

    fn forward(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::GeluErf => ops::gelu_erf(x),
            Self::GeluTanh => x.gelu(),
            Self::Relu => x.relu(),
        }
    }
}

/// The random state dropout draws from in training. Kept by the caller so
/// that a seeded run is reproducible on CPU (candle's CPU generator cannot be
/// seeded) and can be checkpointed. The model takes one per sequence of a
/// batch, so that a sequence's dropout masks are the same whether the batch
/// runs whole or split across threads.
pub type DropoutRng = SplitMix64;

/// Inverted dropout with masks from our own generators, one per sequence
/// (the first dimension of every tensor it sees); the identity when `rngs`
/// is `None` (inference).
#[derive(Debug, Clone, Copy)]
struct Dropout {
    p: f32,
}

impl Dropout {
    fn forward(self, x: &Tensor, rngs: &mut Option<&mut [DropoutRng]>) -> candle_core::Result<Tensor> {
        let Some(rngs) = rngs.as_deref_mut() else { return Ok(x.clone()) };
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        let sequences = x.dim(0)?;
        if rngs.len() != sequences {
            candle_core::bail!("dropout: {} generators for a batch of {sequences}", rngs.len());
        }
        let per_sequence = x.elem_count() / sequences.max(1);
        let scale = 1.0 / (1.0 - self.p);
        let mut mask = Vec::with_capacity(x.elem_count());
        for rng in rngs.iter_mut() {
            mask.extend((0..per_sequence).map(|_| if rng.next_f32() < self.p { 0.0 } else { scale }));
        }
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

/// LayerNorm over the hidden dimension.
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self { weight: vb.get(size, "weight")?, bias: vb.get(size, "bias")?, eps })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }

    /// The norm of `x + residual`.
    fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> candle_core::Result<Tensor> {
        ops::residual_layer_norm(x, residual, &self.weight, &self.bias, self.eps)
    }
}

/// A dense layer `x W^T + b` over the last dimension. On CPU one fused op
/// ([`ops::linear`]) with its own backward pass; elsewhere, unlike candle-nn's
/// `Linear`, the bias is added by [`ops::bias_add`], whose backward pass sums
/// rows directly instead of reducing a broadcast.
#[derive(Debug, Clone)]
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() {
            return ops::linear(x, &self.weight, &self.bias);
        }
        let (inputs, outputs) = (self.weight.dim(1)?, self.weight.dim(0)?);
        let mut shape = x.dims().to_vec();
        let rows = x.elem_count() / inputs.max(1);
        let product = x.contiguous()?.reshape((rows, inputs))?.matmul(&self.weight.t()?)?;
        if let Some(last) = shape.last_mut() {
            *last = outputs;
        }
        ops::bias_add(&product, &self.bias)?.reshape(shape)
    }
}

fn linear(input: usize, output: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    Ok(Linear { weight: vb.get((output, input), "weight")?, bias: vb.get(output, "bias")? })
}

struct Embeddings {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
    dropout: Dropout,
}

impl Embeddings {
    fn new(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let table = |n: usize, name: &str| -> candle_core::Result<Embedding> {
            Ok(Embedding::new(vb.pp(name).get((n, h), "weight")?, h))
        };
        Ok(Self {
            words: table(config.vocab_size, "word_embeddings")?,
            positions: table(config.max_position_embeddings, "position_embeddings")?,
            token_types: table(config.type_vocab_size, "token_type_embeddings")?,
            norm: LayerNorm::new(h, config.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: Dropout { p: config.hidden_dropout_prob as f32 },
        })
    }

    fn forward(&self, ids: &Tensor, rng: &mut Option<&mut [DropoutRng]>) -> candle_core::Result<Tensor> {
        let (batch, length) = ids.dims2()?;
        let positions = Tensor::arange(0u32, length as u32, ids.device())?;
        let types = ids.zeros_like()?;
        let x = self.words.forward(ids)?;
        // Position embeddings are the same for every sequence: a bias over
        // the flattened (length x hidden) row.
        let hidden = x.dim(2)?;
        let x =
            ops::bias_add(&x.reshape((batch, length * hidden))?, &self.positions.forward(&positions)?.flatten_all()?)?
                .reshape((batch, length, hidden))?;
        let x = (x + self.token_types.forward(&types)?)?;
        self.dropout.forward(&self.norm.forward(&x)?, rng)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
    activation: Activation,
    hidden_dropout: Dropout,
    attention_dropout: Dropout,
    /// The three projections as one, kept once built when the weights are
    /// constants (inference); variables being trained change every step.
    constant_projections: std::sync::OnceLock<Linear>,
}

impl Layer {
    fn new(config: &BertConfig, activation: Activation, vb: VarBuilder) -> candle_core::Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let attention = vb.pp("attention");
        Ok(Self {
            query: linear(h, h, attention.pp("self").pp("query"))?,
            key: linear(h, h, attention.pp("self").pp("key"))?,
            value: linear(h, h, attention.pp("self").pp("value"))?,
            attention_out: linear(h, h, attention.pp("output").pp("dense"))?,
            attention_norm: LayerNorm::new(h, config.layer_norm_eps, attention.pp("output").pp("LayerNorm"))?,
            intermediate: linear(h, i, vb.pp("intermediate").pp("dense"))?,
            output: linear(i, h, vb.pp("output").pp("dense"))?,
            output_norm: LayerNorm::new(h, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: config.num_attention_heads,
            activation,
            hidden_dropout: Dropout { p: config.hidden_dropout_prob as f32 },
            attention_dropout: Dropout { p: config.attention_probs_dropout_prob as f32 },
            constant_projections: std::sync::OnceLock::new(),
        })
    }

    /// Queries, keys and values as one projection: fewer, larger products
    /// use the cores better than three small ones.
    fn projections(&self) -> candle_core::Result<Linear> {
        let join = || -> candle_core::Result<Linear> {
            Ok(Linear {
                weight: Tensor::cat(&[&self.query.weight, &self.key.weight, &self.value.weight], 0)?,
                bias: Tensor::cat(&[&self.query.bias, &self.key.bias, &self.value.bias], 0)?,
            })
        };
        let parts = [&self.query, &self.key, &self.value];
        if parts.iter().any(|p| p.weight.track_op() || p.bias.track_op()) {
            return join();
        }
        if let Some(joined) = self.constant_projections.get() {
            return Ok(joined.clone());
        }
        let joined = join()?;
        Ok(self.constant_projections.get_or_init(|| joined).clone())
    }

    /// `mask_bias` is `(batch, length)`: 0 for tokens, a large negative
    /// number for padding.
    fn forward(
        &self,
        x: &Tensor,
        mask_bias: &Tensor,
        rng: &mut Option<&mut [DropoutRng]>,
    ) -> candle_core::Result<Tensor> {
        let (batch, length, hidden) = x.dims3()?;
        let head_dim = hidden / self.heads;
        let projected = self.projections()?.forward(x)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        // Nothing to differentiate (no variable upstream) and no dropout: the
        // fused kernel, which has no backward pass.
        let context = if rng.is_none() && !projected.track_op() && projected.device().is_cpu() {
            ops::attention(&projected, mask_bias, self.heads, scale)?
        } else {
            let qkv =
                projected.reshape((batch, length, 3, self.heads, head_dim))?.permute((2, 0, 3, 1, 4))?.contiguous()?;
            let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
            let probs = ops::masked_softmax(&q.matmul(&k.t()?)?, mask_bias, scale)?;
            let probs = self.attention_dropout.forward(&probs, rng)?;
            probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, length, hidden))?
        };
        let attended = self.hidden_dropout.forward(&self.attention_out.forward(&context)?, rng)?;
        let attended = self.attention_norm.forward_residual(&attended, x)?;
        let inner = self.activation.forward(&self.intermediate.forward(&attended)?)?;
        let out = self.hidden_dropout.forward(&self.output.forward(&inner)?, rng)?;
        self.output_norm.forward_residual(&out, &attended)
    }
}

/// BERT with a pooling step, dropout and a linear multi-label head.
pub struct BertClassifier {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pooler: Option<Linear>,
    classifier: Linear,
    classifier_dropout: Dropout,
    pooling: Pooling,
    config: BertConfig,
    num_labels: usize,
}

impl BertClassifier {
    /// Build the model from `vb`, whose names are those of
    /// `BertForSequenceClassification`.
    pub fn new(config: &BertConfig, num_labels: usize, pooling: Pooling, vb: VarBuilder) -> candle_core::Result<Self> {
        let activation = Activation::parse(&config.hidden_act).map_err(candle_core::Error::msg)?;
        let bert = vb.pp("bert");
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::new(config, activation, bert.pp("encoder").pp("layer").pp(i)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let pooler = match pooling {
            Pooling::Cls => Some(linear(config.hidden_size, config.hidden_size, bert.pp("pooler").pp("dense"))?),
            Pooling::Mean => None,
        };
        Ok(Self {
            embeddings: Embeddings::new(config, bert.pp("embeddings"))?,
            layers,
            pooler,
            classifier: linear(config.hidden_size, num_labels, vb.pp("classifier"))?,
            classifier_dropout: Dropout { p: config.hidden_dropout_prob as f32 },
            pooling,
            config: config.clone(),
            num_labels,
        })
    }

    /// The encoder configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Output labels.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// Logits `(batch, labels)` for token ids and an attention mask, both
    /// `(batch, length)` `u32`. Dropout is applied only when `rng` is given:
    /// one generator per sequence.
    pub fn forward(
        &self,
        ids: &Tensor,
        attention_mask: &Tensor,
        mut rng: Option<&mut [DropoutRng]>,
    ) -> candle_core::Result<Tensor> {
        let pooled = self.pooled_with(ids, attention_mask, &mut rng)?;
        self.classifier.forward(&self.classifier_dropout.forward(&pooled, &mut rng)?)
    }

    /// The pooled vector `(batch, hidden)` the head reads, without dropout:
    /// for cls pooling the BERT pooler's output, for mean pooling the
    /// sentence embedding.
    pub fn pooled(&self, ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        self.pooled_with(ids, attention_mask, &mut None)
    }

    fn pooled_with(
        &self,
        ids: &Tensor,
        attention_mask: &Tensor,
        rng: &mut Option<&mut [DropoutRng]>,
    ) -> candle_core::Result<Tensor> {
        let mask = attention_mask.to_dtype(DType::F32)?;
        // 0 where attended, -1e9 at padding: exp() of it is exactly 0 in f32.
        let bias = ((mask.ones_like()? - &mask)? * -1e9)?;
        let mut hidden = self.embeddings.forward(ids, rng)?;
        for layer in &self.layers {
            hidden = layer.forward(&hidden, &bias, rng)?;
        }
        let pooled = match (&self.pooler, self.pooling) {
            (Some(pooler), Pooling::Cls) => pooler.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)?.tanh()?,
            _ => {
                let weights = mask.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&weights)?.sum(1)?;
                summed.broadcast_div(&weights.sum(1)?.clamp(1e-9, f64::MAX)?)?
            }
        };
        Ok(pooled)
    }
}

/// Parameters of a trainable model, by Hugging Face name.
pub struct TrainableModel {
    /// The model.
    pub model: BertClassifier,
    /// Its parameters.
    pub vars: VarMap,
}

impl TrainableModel {
    /// A model with every parameter drawn from the seeded generator the way
    /// BERT initialises them: weights normal(0, `initializer_range`), biases
    /// zero, LayerNorm weights one.
    pub fn random(
        config: &BertConfig,
        num_labels: usize,
        pooling: Pooling,
        seed: u64,
        device: &Device,
    ) -> Result<Self, Error> {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, device);
        let model = BertClassifier::new(config, num_labels, pooling, vb).map_err(Error::Candle)?;
        let mut rng = SplitMix64::new(seed);
        let data = vars.data().lock().map_err(|_| Error::Candle(candle_core::Error::msg("parameter lock poisoned")))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let shape = var.shape().clone();
            let values: Vec<f32> = if name.ends_with("LayerNorm.weight") {
                vec![1.0; shape.elem_count()]
            } else if name.ends_with(".bias") {
                vec![0.0; shape.elem_count()]
            } else {
                (0..shape.elem_count()).map(|_| rng.next_normal() * config.initializer_range as f32).collect()
            };
            var.set(&Tensor::from_vec(values, shape, device).map_err(Error::Candle)?).map_err(Error::Candle)?;
        }
        drop(data);
        Ok(Self { model, vars })
    }

    /// A model initialised as [`TrainableModel::random`], then given the
    /// encoder weights in `weights` (a BERT `model.safetensors`, with or
    /// without the `bert.` prefix). The pooler and classifier may be missing
    /// from the file and keep their initial values; any other missing tensor,
    /// or one of the wrong shape, is an error naming it.
    pub fn from_pretrained(
        config: &BertConfig,
        weights: &Path,
        num_labels: usize,
        pooling: Pooling,
        seed: u64,
        device: &Device,
    ) -> Result<Self, Error> {
        let trainable = Self::random(config, num_labels, pooling, seed, device)?;
        let tensors = candle_core::safetensors::load(weights, device)
            .map_err(|err| Error::Weights { path: weights.to_path_buf(), message: err.to_string() })?;
        let data = trainable
            .vars
            .data()
            .lock()
            .map_err(|_| Error::Candle(candle_core::Error::msg("parameter lock poisoned")))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let plain = name.strip_prefix("bert.").unwrap_or(name);
            let Some(tensor) = tensors.get(name.as_str()).or_else(|| tensors.get(plain)) else {
                if name.starts_with("classifier.") || name.starts_with("bert.pooler.") {
                    continue;
                }
                return Err(weights_error(weights, format!("tensor `{plain}` is missing")));
            };
            let var = &data[name];
            if tensor.dims() != var.dims() {
                return Err(weights_error(
                    weights,
                    format!("tensor `{plain}` has shape {:?}, the config implies {:?}", tensor.dims(), var.dims()),
                ));
            }
            var.set(&tensor.to_dtype(DType::F32).map_err(Error::Candle)?).map_err(Error::Candle)?;
        }
        drop(data);
        Ok(trainable)
    }
}

impl std::fmt::Debug for TrainableModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainableModel").field("parameters", &self.vars.all_vars().len()).finish()
    }
}

fn weights_error(path: &Path, message: String) -> Error {
    Error::Weights { path: PathBuf::from(path), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tiny_config() -> BertConfig {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 50,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 32,
            "max_position_embeddings": 32,
            "hidden_act": "gelu",
            "model_type": "bert"
        }))
        .expect("config")
    }

    fn batch(device: &Device) -> (Tensor, Tensor) {
        let ids = Tensor::new(&[[2u32, 7, 9, 11, 3], [2, 5, 3, 0, 0]], device).expect("ids");
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], device).expect("mask");
        (ids, mask)
    }

    #[test]
    fn config_keeps_unknown_fields_and_checks_shapes() {
        let config = tiny_config();
        assert_eq!(config.extra.get("model_type"), Some(&serde_json::json!("bert")));
        let mut bad = config.clone();
        bad.num_attention_heads = 5;
        assert!(bad.check().expect_err("5 does not divide 16").contains("num_attention_heads"));
        bad = config;
        bad.hidden_act = "swish".into();
        assert!(bad.check().expect_err("unsupported").contains("hidden_act"));
    }

    #[test]
    fn gradients_reach_every_parameter() {
        let device = Device::Cpu;
        for pooling in [Pooling::Cls, Pooling::Mean] {
            let trainable = TrainableModel::random(&tiny_config(), 3, pooling, 7, &device).expect("model");
            let (ids, mask) = batch(&device);
            let mut rngs = [SplitMix64::new(1), SplitMix64::new(2)];
            let logits = trainable.model.forward(&ids, &mask, Some(&mut rngs)).expect("forward");
            assert_eq!(logits.dims(), [2, 3]);
            let loss = logits.sqr().expect("sqr").sum_all().expect("sum");
            let grads = loss.backward().expect("backward");
            let data = trainable.vars.data().lock().expect("lock");
            assert!(!data.is_empty());
            for (name, var) in data.iter() {
                let grad = grads.get(var).unwrap_or_else(|| panic!("{pooling:?}: no gradient for {name}"));
                let norm: f32 = grad.sqr().expect("sqr").sum_all().expect("sum").to_scalar().expect("scalar");
                assert!(norm.is_finite() && norm > 0.0, "{pooling:?}: no gradient flows to {name}");
            }
        }
    }

    /// Autograd against central finite differences, for one element of
    /// every kind of parameter, in float64 so the comparison is tight.
    #[test]
    fn gradients_match_finite_differences() {
        let device = Device::Cpu;
        let mut config = tiny_config();
        config.hidden_dropout_prob = 0.0;
        config.attention_probs_dropout_prob = 0.0;
        for pooling in [Pooling::Cls, Pooling::Mean] {
            let trainable = TrainableModel::random(&config, 3, pooling, 5, &device).expect("model");
            let (ids, mask) = batch(&device);
            let data = trainable.vars.data().lock().expect("lock");
            let loss = |model: &BertClassifier| -> Tensor {
                let logits = model.forward(&ids, &mask, None).expect("forward");
                (logits.sqr().expect("sqr").sum_all().expect("sum") + logits.sum_all().expect("sum")).expect("add")
            };
            let grads = loss(&trainable.model).backward().expect("backward");
            let mut names: Vec<&String> = data.keys().collect();
            names.sort();
            for name in names {
                let var = &data[name];
                let grad: Vec<f32> = grads.get(var).expect("grad").flatten_all().expect("flat").to_vec1().expect("vec");
                // The element with the largest gradient, so the check is not vacuous.
                let (index, analytic) = grad
                    .iter()
                    .copied()
                    .enumerate()
                    .fold((0, 0f32), |best, (i, g)| if g.abs() > best.1.abs() { (i, g) } else { best });
                let original: Vec<f32> = var.flatten_all().expect("flat").to_vec1().expect("vec");
                let eps = 1e-2f32;
                let at = |delta: f32| -> f32 {
                    let mut values = original.clone();
                    values[index] += delta;
                    var.set(&Tensor::from_vec(values, var.shape(), &device).expect("t")).expect("set");
                    loss(&trainable.model).to_scalar::<f32>().expect("scalar")
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                var.set(&Tensor::from_vec(original, var.shape(), &device).expect("t")).expect("set");
                let tolerance = 2e-2 * analytic.abs().max(1e-2);
                assert!(
                    (numeric - analytic).abs() <= tolerance,
                    "{pooling:?} {name}[{index}]: autograd {analytic}, finite difference {numeric}"
                );
            }
        }
    }

    #[test]
    fn padding_does_not_change_logits_and_inference_is_deterministic() {
        let device = Device::Cpu;
        let trainable = TrainableModel::random(&tiny_config(), 2, Pooling::Mean, 3, &device).expect("model");
        let short_ids = Tensor::new(&[[2u32, 5, 3]], &device).expect("ids");
        let short_mask = Tensor::new(&[[1u32, 1, 1]], &device).expect("mask");
        let (ids, mask) = batch(&device);
        let short: Vec<f32> = trainable
            .model
            .forward(&short_ids, &short_mask, None)
            .expect("f")
            .flatten_all()
            .expect("flat")
            .to_vec1()
            .expect("vec");
        let padded: Vec<Vec<f32>> = trainable.model.forward(&ids, &mask, None).expect("f").to_vec2().expect("vec");
        for (a, b) in short.iter().zip(&padded[1]) {
            assert!((a - b).abs() < 1e-5, "{short:?} vs {:?}", padded[1]);
        }
        let again: Vec<Vec<f32>> = trainable.model.forward(&ids, &mask, None).expect("f").to_vec2().expect("vec");
        assert_eq!(padded, again);
    }

    #[test]
    fn dropout_is_seeded_and_only_in_training() {
        let device = Device::Cpu;
        let trainable = TrainableModel::random(&tiny_config(), 2, Pooling::Cls, 3, &device).expect("model");
        let (ids, mask) = batch(&device);
        let run = |seed: u64| -> Vec<Vec<f32>> {
            let mut rngs = [SplitMix64::new(seed), SplitMix64::new(seed + 100)];
            trainable.model.forward(&ids, &mask, Some(&mut rngs)).expect("f").to_vec2().expect("vec")
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let eval: Vec<Vec<f32>> = trainable.model.forward(&ids, &mask, None).expect("f").to_vec2().expect("vec");
        assert_ne!(run(1), eval);
        // One generator per sequence: the first sequence on its own gets the
        // masks it got in the batch, so a batch split across threads trains
        // as the whole batch does.
        let alone: Vec<Vec<f32>> = trainable
            .model
            .forward(
                &ids.narrow(0, 0, 1).expect("ids"),
                &mask.narrow(0, 0, 1).expect("mask"),
                Some(&mut [SplitMix64::new(1)]),
            )
            .expect("f")
            .to_vec2()
            .expect("vec");
        for (a, b) in alone[0].iter().zip(&run(1)[0]) {
            assert!((a - b).abs() < 1e-5, "{:?} alone, {:?} in the batch", alone[0], run(1)[0]);
        }
        let wrong = trainable.model.forward(&ids, &mask, Some(&mut [SplitMix64::new(1)]));
        assert!(wrong.expect_err("one generator for two").to_string().contains("1 generators for a batch of 2"));
    }

    #[test]
    fn layer_norm_and_softmax_match_candle_kernels() {
        let device = Device::Cpu;
        let x = Tensor::new(&[[0.5f32, -1.0, 2.0, 3.5], [1.0, 1.0, 1.5, -2.0]], &device).expect("x");
        let weight = Tensor::new(&[1.0f32, 2.0, 0.5, -1.0], &device).expect("w");
        let bias = Tensor::new(&[0.1f32, 0.0, -0.2, 0.3], &device).expect("b");
        let ours = LayerNorm { weight: weight.clone(), bias: bias.clone(), eps: 1e-12 }.forward(&x).expect("ln");
        let theirs = candle_nn::ops::layer_norm(&x, &weight, &bias, 1e-12).expect("ln");
        let diff: f32 = (ours - theirs).expect("d").abs().expect("a").max_all().expect("m").to_scalar().expect("s");
        assert!(diff < 1e-5, "{diff}");
        let ours = ops::composed::softmax_last_dim(&x).expect("sm");
        let theirs = candle_nn::ops::softmax_last_dim(&x).expect("sm");
        let diff: f32 = (ours - theirs).expect("d").abs().expect("a").max_all().expect("m").to_scalar().expect("s");
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn pretrained_weights_load_by_name_and_shape() {
        let device = Device::Cpu;
        let config = tiny_config();
        let source = TrainableModel::random(&config, 2, Pooling::Cls, 11, &device).expect("model");
        let dir = tempfile::tempdir().expect("tempdir");
        // A base-model file: encoder tensors without the `bert.` prefix, no head.
        let data = source.vars.data().lock().expect("lock");
        let base: std::collections::HashMap<String, Tensor> = data
            .iter()
            .filter(|(name, _)| !name.starts_with("classifier."))
            .map(|(name, var)| (name.trim_start_matches("bert.").to_string(), var.as_tensor().clone()))
            .collect();
        drop(data);
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&base, &path).expect("save");
        let loaded = TrainableModel::from_pretrained(&config, &path, 2, Pooling::Cls, 99, &device).expect("load");
        let key = "bert.encoder.layer.1.attention.self.query.weight";
        let a: Vec<Vec<f32>> = source.vars.data().lock().expect("l")[key].as_tensor().to_vec2().expect("v");
        let b: Vec<Vec<f32>> = loaded.vars.data().lock().expect("l")[key].as_tensor().to_vec2().expect("v");
        assert_eq!(a, b);

        let mut wrong = config.clone();
        wrong.intermediate_size = 24;
        let err =
            TrainableModel::from_pretrained(&wrong, &path, 2, Pooling::Cls, 1, &device).expect_err("shape").to_string();
        assert!(
            err.contains("model.safetensors")
                && err.contains("intermediate.dense.")
                && err.contains("the config implies [24]"),
            "{err}"
        );

        let mut missing = base.clone();
        missing.remove("encoder.layer.0.output.LayerNorm.bias");
        candle_core::safetensors::save(&missing, &path).expect("save");
        let err = TrainableModel::from_pretrained(&config, &path, 2, Pooling::Cls, 1, &device)
            .expect_err("missing")
            .to_string();
        assert!(err.contains("`encoder.layer.0.output.LayerNorm.bias` is missing"), "{err}");
    }
}
