"""The ONNX Runtime anchor of scripts/bench: the same trained model, exported
from PyTorch with torch.onnx.export, run by onnxruntime on the inference rows
of the Rust bench example, printed as one JSON object with the same keys.

    python scripts/bench_onnx.py MODEL_DIR WORK_DIR THREADS

What it does:
- exports bench_torch.Scores (encoder, clause's pooling, head, sigmoid) of the
  model to WORK_DIR/model.onnx, with dynamic batch and sequence axes, and
  checks its outputs against PyTorch's on a padded batch of test texts
  (`onnx_max_abs_diff`, on probabilities);
- exports it a second time the way ONNX Runtime's BERT tooling expects (the
  TorchScript exporter, the model loaded with eager attention) and runs
  onnxruntime.transformers.optimizer (model_type "bert") over it, which fuses
  the embeddings, attention, bias + GELU and residual + LayerNorm into
  ORT's contrib kernels (WORK_DIR/model.fused.onnx; the fusions are printed),
  as Optimum's ORTOptimizer does; checked against PyTorch the same way;
- quantises the first with onnxruntime.quantization.quantize_dynamic (QInt8
  weights) to WORK_DIR/model.int8.onnx;
- runs both with GraphOptimizationLevel.ORT_ENABLE_ALL, intra_op_num_threads
  = THREADS, inter_op_num_threads = 1: both fp32 models on the fixed rows (1,
  8, 32, 128 x 128, random ids), on single texts (p50 latency) and on the
  test split sorted by length in batches of 32 padded to the longest, each
  figure reported for both (`<key>_plain`, `<key>_fused`) and as the better
  of the two (`<key>`: the strongest way to run ORT, row by row); int8 on the
  test split only (a reference row);
- scores fp32 and int8 on the test split (WORK_DIR/test_labels.jsonl,
  WORK_DIR/labels.json, both written by the Rust half) at the model's own
  thresholds, after its per-label Platt calibrations where clause.json has
  them (weighing the lexical stage's margins, WORK_DIR/test_margins.jsonl,
  where the model has the stage): micro-F1 and LexGLUE macro-F1 (mean F1 over the labels and a "none"
  column, true when an example has no label), as crates/clause-eval computes
  them (scikit-learn's zero_division=0 conventions).

Timing and tokenisation are as in bench_torch.py: one warm-up call, then at
least 3 timed calls and BENCH_MIN_TIME seconds, median rate; tokenisation
outside the timed region, padding inside.
"""

import contextlib
import json
import math
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.optimizer import optimize_model
from transformers import BertForSequenceClassification

from bench_torch import (
    INFER_BATCH,
    LENGTH,
    Scores,
    card_of,
    latency_p50_ms,
    measure,
    padded_tokens,
    read_texts,
    sorted_batches,
    token_ids,
    tokenizer_of,
)


def export(model_dir, card, path):
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    scores = Scores(model, card["pooling"]).eval()
    ids = torch.randint(2000, 30000, (2, 16))
    mask = torch.ones_like(ids)
    # Batch and sequence length are dynamic axes of both inputs.
    axes = {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}
    # The exporter reports its progress on stdout, which carries our JSON.
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
        torch.onnx.export(
            scores,
            (ids, mask),
            path,
            input_names=["input_ids", "attention_mask"],
            output_names=["scores"],
            dynamic_shapes={"input_ids": axes, "attention_mask": axes},
            opset_version=18,
            external_data=False,
            verbose=False,
        )
    # The exporter's recorded intermediate shapes trip onnx's shape inference,
    # which quantize_dynamic runs ("Inferred shape and existing shape
    # differ"); they are hints only, so drop them.
    graph = onnx.load(path)
    del graph.graph.value_info[:]
    onnx.save(graph, path)
    onnx.checker.check_model(path)
    return scores


def export_fused(model_dir, card, path):
    """The model as ONNX Runtime's BERT optimizer wants it (its attention
    fusion matches the eager attention graph, not SDPA's), fused; returns the
    fusion counts."""
    model = BertForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
    scores = Scores(model, card["pooling"]).eval()
    ids = torch.randint(2000, 30000, (2, 16))
    mask = torch.ones_like(ids)
    axes = {0: "batch", 1: "sequence"}
    raw = path.replace(".onnx", ".raw.onnx")
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
        torch.onnx.export(
            scores,
            (ids, mask),
            raw,
            input_names=["input_ids", "attention_mask"],
            output_names=["scores"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes},
            opset_version=17,
            dynamo=False,
        )
    config = model.config
    with contextlib.redirect_stdout(sys.stderr):
        fused = optimize_model(raw, model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size)
    fused.save_model_to_file(path)
    return {name: count for name, count in fused.get_fused_operator_statistics().items() if count}


def session(path, threads):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def collate(sequences, pad_id, length=None):
    """bench_torch.collate, as NumPy int64 arrays."""
    longest = length or max(len(s) for s in sequences)
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def run_sorted(sess, sequences, batches, pad_id):
    """Probabilities of every sequence, in input order."""
    rows = [None] * len(sequences)
    for batch in batches:
        (out,) = sess.run(None, collate([sequences[i] for i in batch], pad_id))
        for i, row in zip(batch, out.tolist()):
            rows[i] = row
    return rows


def platt(p, calibration, margin):
    """clause_eval::calibration::Platt::apply, in double precision; `margin`
    is the lexical stage's for the label (0 without a stage)."""
    if calibration is None or math.isnan(p):
        return p
    eps = 1e-6
    p = min(max(p, eps), 1.0 - eps)
    z = calibration["slope"] * math.log(p / (1.0 - p)) + calibration.get("margin", 0.0) * margin + calibration["intercept"]
    return 1.0 / (1.0 + math.exp(-z))


def f1(support, predicted, true_positives):
    return 0.0 if true_positives == 0 else 2 * true_positives / (predicted + support)


def metrics(card, probabilities, truth, margins):
    """Micro-F1 and LexGLUE macro-F1 of the model's decisions (calibrated
    probability, with the lexical stage's `margins` where the model has the
    stage, at or above the label's threshold; NaN never flags), as
    clause_eval::metrics::evaluate computes them."""
    labels = card["labels"]
    n = len(labels)
    support, predicted, hits = [0] * n, [0] * n, [0] * n
    none = [0, 0, 0]
    for i, (row, true_row) in enumerate(zip(probabilities, truth)):
        flags = []
        for j, label in enumerate(labels):
            p = platt(row[j], label.get("calibration"), margins[i][j] if margins else 0.0)
            flags.append(not math.isnan(p) and p >= label["threshold"])
        for j in range(n):
            support[j] += true_row[j]
            predicted[j] += flags[j]
            hits[j] += true_row[j] and flags[j]
        truly_none, predicted_none = not any(true_row), not any(flags)
        none[0] += truly_none
        none[1] += predicted_none
        none[2] += truly_none and predicted_none
    per_label = [f1(support[j], predicted[j], hits[j]) for j in range(n)]
    return {
        "micro_f1": f1(sum(support), sum(predicted), sum(hits)),
        "lexglue_macro_f1": (sum(per_label) + f1(*none)) / (n + 1),
    }


def main():
    model_dir, work_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    card = card_of(model_dir)
    tokenizer = tokenizer_of(model_dir)
    pad_id = tokenizer.pad_token_id
    fp32_path, int8_path = f"{work_dir}/model.onnx", f"{work_dir}/model.int8.onnx"

    print("ONNX: export, check, fuse, quantise ...", file=sys.stderr)
    scores = export(model_dir, card, fp32_path)
    fused_path = f"{work_dir}/model.fused.onnx"
    fusions = export_fused(model_dir, card, fused_path)
    quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
    fp32, fused, int8 = (session(path, threads) for path in (fp32_path, fused_path, int8_path))

    texts = read_texts(f"{work_dir}/test.jsonl")
    sequences = token_ids(tokenizer, texts, card["max_length"])
    lengths = [len(s) for s in sequences]
    batches = sorted_batches(lengths, INFER_BATCH)

    # The check: a batch padded to its longest, so the mask matters.
    sample = list(range(min(8, len(sequences))))
    feed = collate([sequences[i] for i in sample], pad_id)
    with torch.inference_mode():
        reference = scores(torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"])).numpy()
    differences = {name: float(np.abs(sess.run(None, feed)[0] - reference).max())
                   for name, sess in (("plain", fp32), ("fused", fused), ("int8", int8))}
    out = {
        "onnx_max_abs_diff": differences["plain"],
        "onnx_fused_max_abs_diff": differences["fused"],
        "onnx_int8_max_abs_diff": differences["int8"],
        "onnx_fusions": fusions,
        "onnx_check_texts": len(sample),
        "repeats": {},
        "best": {},
    }
    print(f"ONNX vs PyTorch, {len(sample)} texts, max |difference|: {differences}; fused: {fusions}", file=sys.stderr)
    del scores

    repeats = {}

    def note(key, value):
        out[key] = value
        out["repeats"][key] = repeats.pop("last", None)

    def both(key, figure, higher_is_better=True):
        """`figure(session)` for the plain and the fused model; `key` is the
        better of the two."""
        for name, sess in (("plain", fp32), ("fused", fused)):
            note(f"{key}_{name}", figure(sess))
        plain, best = out[f"{key}_plain"], out[f"{key}_fused"]
        fused_wins = best > plain if higher_is_better else best < plain
        out[key] = best if fused_wins else plain
        out["best"][key] = "fused" if fused_wins else "plain"

    generator = np.random.default_rng(5)
    for batch in (1, 8, 32, 128):
        feed = {"input_ids": generator.integers(2000, 30000, (batch, LENGTH), dtype=np.int64)}
        feed["attention_mask"] = np.ones_like(feed["input_ids"])
        both(f"infer_b{batch}", lambda sess: measure(batch, lambda: sess.run(None, feed)[0].tolist(), repeats))

    single = token_ids(tokenizer, read_texts(f"{work_dir}/single.jsonl"), card["max_length"])
    both("single_p50_ms", lambda sess: latency_p50_ms(single, lambda s: sess.run(None, collate([s], pad_id))[0].tolist()),
         higher_is_better=False)
    both("infer_real", lambda sess: measure(len(texts), lambda: run_sorted(sess, sequences, batches, pad_id), repeats))
    note("infer_real_int8", measure(len(texts), lambda: run_sorted(int8, sequences, batches, pad_id), repeats))
    out["infer_real_tokens"] = sum(lengths)
    out["infer_real_padded_tokens"] = padded_tokens(lengths, batches)

    names = json.load(open(f"{work_dir}/labels.json"))
    model_names = [label["name"] for label in card["labels"]]
    if sorted(names) == sorted(model_names):
        gold = [set(row) for row in read_texts(f"{work_dir}/test_labels.jsonl")]
        truth = [[name in row for name in model_names] for row in gold]
        margins = read_texts(f"{work_dir}/test_margins.jsonl")
        out["f1"] = {
            "examples": len(truth),
            "fp32": metrics(card, run_sorted(fp32, sequences, batches, pad_id), truth, margins),
            "int8": metrics(card, run_sorted(int8, sequences, batches, pad_id), truth, margins),
        }
    else:
        out["f1"] = {"skipped": f"the model's labels {model_names} are not the dataset's {names}"}
    out["versions"] = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "torch": torch.__version__}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
