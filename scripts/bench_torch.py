"""The PyTorch half of scripts/bench: the workloads of the Rust bench example
(crates/clause-train/examples/bench.rs), run the way a careful user of PyTorch
and transformers runs them, printed as one JSON object with the same keys.

    python scripts/bench_torch.py figures MODEL_DIR BASE_DIR WORK_DIR THREADS
    python scripts/bench_torch.py classify MODEL_DIR INPUT.jsonl THREADS > out.jsonl

`figures` reads WORK_DIR/test.jsonl and WORK_DIR/epoch.jsonl, which the Rust
half writes. `classify` is a plain classify pipeline (load, tokenise, batches
of 32 sorted by length and padded to the longest, sigmoid, input order
restored), timed from outside as a process, for wall time and peak memory.

How every figure is taken (the Rust half does the same):
- one untimed warm-up call, then timed calls until there are at least 3 and
  MIN_TIME seconds have passed; the figure is the MEDIAN of the calls' rates;
- tokenisation is outside the timed region (texts are tokenised once, before
  the warm-up); building each padded batch from token ids is inside it;
- the model reads each text once, truncated to the model's `max_length`
  (clause.json), pooled as clause pools it (mean over the attention mask,
  or BERT's pooler for a model without a card), then sigmoid.

Real-length rows:
- `infer_real`: the test split sorted by length, batches of 32 (clause's
  default), each padded to its longest text (as transformers' pipeline and
  DataCollatorWithPadding pad);
- `train_epoch`: the epoch sample in length-grouped batches of 16, each padded
  to its longest (group_by_length + DataCollatorWithPadding), grouped as
  `length_grouped_batches` says;
- `infer_real_legacy`, `train_epoch_legacy`: what this script did before
  (input order, every batch padded to 128), kept as labelled reference rows.

Environment, for smoke tests only: BENCH_MIN_TIME (seconds, default 3).
"""

import json
import os
import statistics
import sys
import time

import torch
from transformers import BertForSequenceClassification, PreTrainedTokenizerFast

LENGTH = 128
LABELS = 8
MIN_TIME = float(os.environ.get("BENCH_MIN_TIME", "3"))
MIN_REPEATS = 3
# clause's inference batch (`BatchPlan::default()`) and training batch.
INFER_BATCH = 32
TRAIN_BATCH = 16
# Length grouping of the training epoch: as clause's `epoch_batches`
# (crates/clause-train/src/batches.rs) and transformers' LengthGroupedSampler.
POOL_BATCHES = 50
GROUPING_SEED = 13
# What clause reads of a model directory without clause.json.
UNCARDED_MAX_LENGTH = 512


def measure(items, work, repeats=None):
    """Items per second of `work`: warmed up once, then called until it has
    run MIN_REPEATS times and MIN_TIME seconds; the median of the calls'
    rates. `repeats`, a dict, gets the number of timed calls under "last"."""
    work()
    rates, start = [], time.perf_counter()
    while len(rates) < MIN_REPEATS or time.perf_counter() - start < MIN_TIME:
        began = time.perf_counter()
        work()
        rates.append(items / (time.perf_counter() - began))
    if repeats is not None:
        repeats["last"] = len(rates)
    return statistics.median(rates)


def latency_p50_ms(sequences, one):
    """Median milliseconds of `one(sequence)` over 3 passes through the
    sequences, after one untimed pass."""
    for sequence in sequences:
        one(sequence)
    times = []
    for _ in range(3):
        for sequence in sequences:
            began = time.perf_counter()
            one(sequence)
            times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times)


def tokenizer_of(model_dir):
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    tokenizer.pad_token = tokenizer.pad_token or "[PAD]"
    return tokenizer


def card_of(model_dir):
    """What clause reads of a model directory: labels (names, thresholds,
    Platt calibrations), pooling and maximum length; clause's defaults for a
    directory without clause.json."""
    config = json.load(open(f"{model_dir}/config.json"))
    try:
        card = json.load(open(f"{model_dir}/clause.json"))
    except FileNotFoundError:
        names = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        return {
            "labels": [{"name": name, "threshold": 0.5} for name in names],
            "pooling": "cls",
            "max_length": min(config["max_position_embeddings"], UNCARDED_MAX_LENGTH),
        }
    return {"labels": card["labels"], "pooling": card.get("pooling", "cls"), "max_length": card["max_length"]}


def logits_of(model, pooling, input_ids, attention_mask):
    """The classifier's logits as clause computes them: mean pooling reads
    the encoder and the head (BertForSequenceClassification would use the
    pooler, which a mean-pooled model never trained); see
    scripts/compare-transformers."""
    if pooling == "mean":
        hidden = model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return model.classifier(model.dropout(pooled))
    return model(input_ids=input_ids, attention_mask=attention_mask).logits


class Scores(torch.nn.Module):
    """Token ids and mask to label probabilities: encoder, pooling, head,
    sigmoid. What the PyTorch rows run and what bench_onnx.py exports."""

    def __init__(self, model, pooling):
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(self, input_ids, attention_mask):
        return torch.sigmoid(logits_of(self.model, self.pooling, input_ids, attention_mask))


def token_ids(tokenizer, texts, max_length):
    """Token ids of each text, special tokens included, truncated, unpadded."""
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def collate(sequences, pad_id, length=None):
    """One batch as tensors: padded to its longest sequence (or to `length`),
    with the attention mask. What DataCollatorWithPadding does with ids."""
    longest = length or max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


def sorted_batches(lengths, batch_size):
    """Indices in batches of texts of similar length: sorted by length (ties
    in input order), as clause's inference sorts them."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def length_grouped_batches(lengths, batch_size, seed=GROUPING_SEED):
    """Length-grouped training batches, as transformers' LengthGroupedSampler
    groups them (megabatches of POOL_BATCHES batches, each sorted by length)
    and as clause's `epoch_batches` does: shuffle with a fixed seed, cut into
    pools of POOL_BATCHES batches, sort each pool by length, cut it into
    batches, shuffle the batches' order."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    pool_size = batch_size * POOL_BATCHES
    for start in range(0, len(order), pool_size):
        pool = sorted(order[start : start + pool_size], key=lambda i: lengths[i])
        batches += [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def padded_tokens(lengths, batches):
    """Token positions the batches compute, padding included."""
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def read_texts(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def gemm():
    n = 2048
    generator = torch.Generator().manual_seed(3)
    a, b = torch.randn(n, n, generator=generator), torch.randn(n, n, generator=generator)
    return 2 * n**3 * measure(1, lambda: a @ b) / 1e9


def figures(model_dir, base_dir, work_dir):
    out = {"gemm_gflops": gemm(), "repeats": {}}
    repeats = {}

    def note(key, value):
        out[key] = value
        out["repeats"][key] = repeats.pop("last", None)

    start = time.perf_counter()
    tokenizer = tokenizer_of(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    out["load_seconds"] = time.perf_counter() - start
    card = card_of(model_dir)
    scores = Scores(model, card["pooling"])
    pad_id = tokenizer.pad_token_id

    generator = torch.Generator().manual_seed(5)
    with torch.inference_mode():
        for batch in (1, 8, 32, 128):
            ids = torch.randint(2000, 30000, (batch, LENGTH), generator=generator)
            mask = torch.ones_like(ids)
            note(f"infer_b{batch}", measure(batch, lambda: scores(ids, mask).tolist(), repeats))

        single = token_ids(tokenizer, read_texts(f"{work_dir}/single.jsonl"), card["max_length"])
        out["single_p50_ms"] = latency_p50_ms(single, lambda s: scores(*collate([s], pad_id)).tolist())

        texts = read_texts(f"{work_dir}/test.jsonl")
        sequences = token_ids(tokenizer, texts, card["max_length"])
        lengths = [len(s) for s in sequences]
        batches = sorted_batches(lengths, INFER_BATCH)

        def infer_sorted():
            out_rows = [None] * len(sequences)
            for batch in batches:
                rows = scores(*collate([sequences[i] for i in batch], pad_id)).tolist()
                for i, row in zip(batch, rows):
                    out_rows[i] = row
            return out_rows

        note("infer_real", measure(len(texts), infer_sorted, repeats))
        out["infer_real_tokens"] = sum(lengths)
        out["infer_real_padded_tokens"] = padded_tokens(lengths, batches)

        # Legacy: input order, every batch padded to 128.
        legacy = token_ids(tokenizer, texts, LENGTH)
        legacy_batches = [list(range(i, min(i + INFER_BATCH, len(legacy)))) for i in range(0, len(legacy), INFER_BATCH)]

        def infer_legacy():
            for batch in legacy_batches:
                scores(*collate([legacy[i] for i in batch], pad_id, LENGTH)).tolist()

        note("infer_real_legacy", measure(len(texts), infer_legacy, repeats))
    del model, scores

    model = BertForSequenceClassification.from_pretrained(
        base_dir, num_labels=LABELS, problem_type="multi_label_classification"
    ).train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(LABELS))

    # One full step, as clause takes it: forward with dropout through the
    # encoder, mean pooling and the head (clause trains with mean pooling),
    # weighted BCE, backward, gradient clipping, AdamW.
    def step(ids, mask):
        targets = (torch.arange(ids.shape[0] * LABELS) % 5 == 0).float().view(-1, LABELS)
        loss = loss_fn(logits_of(model, "mean", ids, mask), targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    ids = torch.randint(2000, 30000, (TRAIN_BATCH, LENGTH), generator=generator)
    mask = torch.ones_like(ids)
    note("train_b16", measure(TRAIN_BATCH, lambda: step(ids, mask), repeats))

    tokenizer = tokenizer_of(base_dir)
    pad_id = tokenizer.pad_token_id
    epoch = read_texts(f"{work_dir}/epoch.jsonl")
    sequences = token_ids(tokenizer, epoch, LENGTH)
    lengths = [len(s) for s in sequences]
    batches = length_grouped_batches(lengths, TRAIN_BATCH)

    def epoch_grouped():
        for batch in batches:
            step(*collate([sequences[i] for i in batch], pad_id))

    note("train_epoch", measure(len(epoch), epoch_grouped, repeats))
    out["train_epoch_tokens"] = sum(lengths)
    out["train_epoch_padded_tokens"] = padded_tokens(lengths, batches)

    # Legacy: the drawn order, every batch padded to 128.
    def epoch_legacy():
        for i in range(0, len(sequences), TRAIN_BATCH):
            step(*collate(sequences[i : i + TRAIN_BATCH], pad_id, LENGTH))

    note("train_epoch_legacy", measure(len(epoch), epoch_legacy, repeats))
    out["threads"] = torch.get_num_threads()
    out["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    return out


def classify(model_dir, input_path):
    start = time.perf_counter()
    tokenizer = tokenizer_of(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    card = card_of(model_dir)
    scores = Scores(model, card["pooling"])
    print(f"load {time.perf_counter() - start:.3f} s", file=sys.stderr)
    records = read_texts(input_path)
    sequences = token_ids(tokenizer, [r["text"] for r in records], card["max_length"])
    rows = [None] * len(records)
    with torch.inference_mode():
        for batch in sorted_batches([len(s) for s in sequences], INFER_BATCH):
            for i, row in zip(batch, scores(*collate([sequences[i] for i in batch], tokenizer.pad_token_id)).tolist()):
                rows[i] = row
    for record, row in zip(records, rows):
        print(json.dumps({"id": record["id"], "scores": row}))


def main():
    mode = sys.argv[1]
    torch.set_num_threads(int(sys.argv[-1]))
    if mode == "figures":
        print(json.dumps(figures(*sys.argv[2:5])))
    elif mode == "classify":
        classify(*sys.argv[2:4])
    else:
        sys.exit(f"unknown mode {mode!r}: expected figures or classify")


if __name__ == "__main__":
    main()
