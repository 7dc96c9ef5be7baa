//! The fused kernels against the composed candle ops: values and gradients.

use candle_core::{D, Device, Var};

use super::attention::{AttentionShape, attention_rows_kernel};
use super::gelu::erf;
use super::linear::{Matrix, product_into};
use super::*;
use crate::rng::SplitMix64;

fn random(shape: &[usize], scale: f32, seed: u64) -> Var {
    let mut rng = SplitMix64::new(seed);
    let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.next_normal() * scale).collect();
    Var::from_vec(values, shape, &Device::Cpu).expect("var")
}

fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).expect("sub").abs().expect("abs").flatten_all().expect("flat").max(0).expect("max").to_scalar().expect("s")
}

/// Check values and the gradients of a weighted sum of the outputs (so
/// that every output element gets a different upstream gradient).
fn check(fused: &Tensor, composed: &Tensor, inputs: &[&Var], tolerance: f32) {
    assert!(max_difference(fused, composed) < tolerance, "values differ by {}", max_difference(fused, composed));
    let weights = random(fused.dims(), 1.0, 99);
    let fused_grads = (fused * weights.as_tensor()).expect("mul").sum_all().expect("sum").backward().expect("bwd");
    let composed_grads =
        (composed * weights.as_tensor()).expect("mul").sum_all().expect("sum").backward().expect("bwd");
    for (i, input) in inputs.iter().enumerate() {
        let a = fused_grads.get(input.as_tensor()).expect("fused grad");
        let b = composed_grads.get(input.as_tensor()).expect("composed grad");
        let difference = max_difference(a, b);
        assert!(difference < tolerance, "gradient of input {i} differs by {difference}");
    }
}

#[test]
fn linear_matches_matmul_in_parallel_and_serially() {
    let x = random(&[3, 70, 48], 1.0, 11);
    let weight = random(&[40, 48], 1.0, 12);
    let bias = random(&[40], 1.0, 13);
    let reference = x
        .as_tensor()
        .broadcast_matmul(&weight.as_tensor().t().expect("t"))
        .and_then(|p| p.broadcast_add(bias.as_tensor()))
        .expect("reference");
    let parallel = linear(x.as_tensor(), weight.as_tensor(), bias.as_tensor()).expect("parallel");
    assert_eq!(parallel.dims(), [3, 70, 40]);
    check(&parallel, &reference, &[&x, &weight, &bias], 1e-4);
    // The backward pass runs under `serially` too, as a training thread
    // runs it.
    serially(|| {
        let serial = linear(x.as_tensor(), weight.as_tensor(), bias.as_tensor()).expect("serial");
        check(&serial, &reference, &[&x, &weight, &bias], 1e-4);
    });
    assert!(!is_serial(), "serially restores the flag");
}

#[test]
fn product_into_refuses_shapes_that_disagree() {
    let values = [1f32; 6];
    let a = Matrix::row_major(&values, 2, 3);
    let mut out = [0f32; 4];
    assert!(product_into(&mut out, a, a, false).is_err(), "2x3 by 2x3");
    assert!(product_into(&mut out, a, a.t(), false).is_ok());
    assert_eq!(out, [3.0; 4]);
    product_into(&mut out, a, a.t(), true).expect("accumulate");
    assert_eq!(out, [6.0; 4]);
    let too_long = Matrix { rows: 3, ..a };
    assert!(product_into(&mut [0f32; 6], too_long, a.t(), false).is_err(), "reads past the values");
}

#[test]
fn bias_add_matches_broadcast_add() {
    // Enough rows to be split across threads.
    let x = random(&[3, 200, 96], 1.0, 1);
    let b = random(&[96], 1.0, 2);
    let fused = bias_add(x.as_tensor(), b.as_tensor()).expect("fused");
    let composed = x.as_tensor().broadcast_add(b.as_tensor()).expect("composed");
    check(&fused, &composed, &[&x, &b], 1e-4);
}

#[test]
fn layer_norm_matches_composition() {
    let x = random(&[4, 300, 64], 3.0, 3);
    let gamma = random(&[64], 1.0, 4);
    let beta = random(&[64], 1.0, 5);
    let fused = layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-12).expect("fused");
    let composed = composed::layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-12).expect("composed");
    check(&fused, &composed, &[&x, &gamma, &beta], 1e-4);
}

#[test]
fn residual_layer_norm_matches_the_sum_then_the_norm() {
    let x = random(&[3, 50, 64], 2.0, 21).as_tensor().detach();
    let residual = random(&[3, 50, 64], 2.0, 22).as_tensor().detach();
    let gamma = random(&[64], 1.0, 23).as_tensor().detach();
    let beta = random(&[64], 1.0, 24).as_tensor().detach();
    let fused = residual_layer_norm(&x, &residual, &gamma, &beta, 1e-12).expect("fused");
    let sum = (&x + &residual).expect("sum");
    let composed = composed::layer_norm(&sum, &gamma, &beta, 1e-12).expect("composed");
    assert!(max_difference(&fused, &composed) < 1e-5, "{}", max_difference(&fused, &composed));
    let serial = serially(|| residual_layer_norm(&x, &residual, &gamma, &beta, 1e-12)).expect("serial");
    assert!(max_difference(&serial, &composed) < 1e-5, "{}", max_difference(&serial, &composed));
}

#[test]
fn masked_softmax_matches_composition() {
    let (batch, heads, length) = (3, 4, 37);
    let scores = random(&[batch, heads, length, length], 2.0, 6);
    // The last sequence is padded after 20 tokens.
    let bias: Vec<f32> = (0..batch * length).map(|i| if i >= 2 * length + 20 { -1e9 } else { 0.0 }).collect();
    let bias = Tensor::from_vec(bias, (batch, length), &Device::Cpu).expect("bias");
    let scale = 0.125;
    let fused = masked_softmax(scores.as_tensor(), &bias, scale).expect("fused");
    let composed = composed::masked_softmax(scores.as_tensor(), &bias, scale).expect("composed");
    check(&fused, &composed, &[&scores], 1e-5);
    let padded = fused.get(2).expect("seq").narrow(D::Minus1, 20, length - 20).expect("pad");
    assert_eq!(padded.sum_all().expect("sum").to_scalar::<f32>().expect("s"), 0.0);
}

#[test]
fn fused_attention_matches_the_composed_heads() {
    // The second sequence is padded after 20 tokens, any later ones
    // after 5 (a sequence always has a token: [CLS]). With 2 sequences, parts are 32 rows and start inside a
    // sequence; with 9, a part is a sequence. 3 heads of 20 dimensions
    // make a register block of 8 and a remainder.
    for batch in [2, 9] {
        check_fused_attention(batch, 37, 3, 20);
    }
    // Blocks of 32 keys and 32 dimensions, as in MiniLM and BERT.
    check_fused_attention(3, 71, 2, 40);
}

fn check_fused_attention(batch: usize, length: usize, heads: usize, head_dim: usize) {
    let hidden = heads * head_dim;
    let qkv = random(&[batch, length, 3 * hidden], 1.5, 8);
    let tokens = |sequence: usize| match sequence {
        0 => length,
        1 => 20,
        _ => 5,
    };
    let bias: Vec<f32> =
        (0..batch * length).map(|i| if i % length >= tokens(i / length) { -1e4 } else { 0.0 }).collect();
    let bias = Tensor::from_vec(bias, (batch, length), &Device::Cpu).expect("bias");
    let scale = 1.0 / (head_dim as f64).sqrt();
    let fused = attention(qkv.as_tensor(), &bias, heads, scale).expect("fused");
    let split = qkv
        .as_tensor()
        .reshape((batch, length, 3, heads, head_dim))
        .and_then(|t| t.permute((2, 0, 3, 1, 4)))
        .and_then(|t| t.contiguous())
        .expect("split");
    let (q, k, v) = (split.get(0).expect("q"), split.get(1).expect("k"), split.get(2).expect("v"));
    let scores = q.matmul(&k.t().expect("t")).expect("scores");
    let probs = composed::masked_softmax(&scores, &bias, scale).expect("probs");
    let composed = probs
        .matmul(&v)
        .and_then(|c| c.transpose(1, 2))
        .and_then(|c| c.reshape((batch, length, hidden)))
        .expect("context");
    let difference = max_difference(&fused, &composed);
    assert!(difference < 1e-5, "fused attention differs by {difference} (batch {batch})");
    // The build without AVX2 and FMA, which this machine may not run
    // through the dispatch.
    let shape = AttentionShape { length, heads, head_dim, scale: scale as f32 };
    let mut narrow = vec![0f32; batch * length * hidden];
    let qkv_values = qkv.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("qkv");
    let bias_values = bias.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("bias");
    attention_rows_kernel::<false>(&mut narrow, &qkv_values, &bias_values, 0, shape);
    let narrow = Tensor::from_vec(narrow, (batch, length, hidden), &Device::Cpu).expect("narrow");
    let difference = max_difference(&narrow, &composed);
    assert!(difference < 1e-5, "narrow attention differs by {difference} (batch {batch})");
}

#[test]
fn gelu_matches_candle_and_its_gradient_matches_finite_differences() {
    let x = random(&[5, 1000], 3.0, 7);
    let fused = gelu_erf(x.as_tensor()).expect("fused");
    let reference = x.as_tensor().gelu_erf().expect("candle");
    assert!(max_difference(&fused, &reference) < 1e-6, "{}", max_difference(&fused, &reference));
    let grads = fused.sum_all().expect("sum").backward().expect("bwd");
    let analytic = grads.get(x.as_tensor()).expect("grad");
    let h = 1e-2;
    let numeric = (((x.as_tensor() + h).expect("+").gelu_erf().expect("g")
        - (x.as_tensor() - h).expect("-").gelu_erf().expect("g"))
    .expect("diff")
        / (2.0 * h))
        .expect("div");
    assert!(max_difference(analytic, &numeric) < 1e-3, "{}", max_difference(analytic, &numeric));
}

#[test]
fn exp_is_accurate_and_zero_below_the_normal_range() {
    let mut worst = 0f32;
    for i in -87_000..=88_000 {
        let x = i as f32 / 1000.0 + 0.000_37;
        let exact = f64::from(x).exp();
        worst = worst.max(((f64::from(exp(x)) - exact) / exact).abs() as f32);
    }
    assert!(worst < 2.5e-7, "relative error {worst}");
    assert_eq!(exp(0.0), 1.0);
    for x in [-87.4, -1e4, -1e9, f32::NEG_INFINITY] {
        assert_eq!(exp(x), 0.0, "{x}");
    }
    assert!(exp(88.3).is_finite());
}

#[test]
fn erf_is_accurate() {
    let candle_erf = |x: f32| candle_core::cpu::erf::erf_f64(f64::from(x)) as f32;
    let worst = (-600..=600).map(|i| i as f32 / 100.0).map(|x| (erf(x) - candle_erf(x)).abs()).fold(0f32, f32::max);
    assert!(worst < 3e-7, "erf error {worst}");
}
