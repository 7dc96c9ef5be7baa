"""The PyTorch half of scripts/bench: the workloads of the Rust bench example
(crates/clause-train/examples/bench.rs), run the way a user of PyTorch and
transformers would run them, printed as one JSON object with the same keys.

    python scripts/bench_torch.py figures MODEL_DIR BASE_DIR WORK_DIR THREADS
    python scripts/bench_torch.py classify MODEL_DIR INPUT.jsonl THREADS > out.jsonl

`figures` reads WORK_DIR/test.jsonl and WORK_DIR/epoch.jsonl, which the Rust
half writes. `classify` is the plain classify pipeline (load, tokenise, padded
batches of 32 in input order, sigmoid), for load time and peak memory.
"""

import json
import sys
import time

import torch
from transformers import BertForSequenceClassification, PreTrainedTokenizerFast

LENGTH = 128
LABELS = 8
MIN_TIME = 3.0


def throughput(items, work):
    """Items per second of `work`, warmed up once, run for at least MIN_TIME."""
    work()
    start, calls = time.perf_counter(), 0
    while calls == 0 or time.perf_counter() - start < MIN_TIME:
        work()
        calls += 1
    return items * calls / (time.perf_counter() - start)


def tokenizer_of(model_dir):
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    tokenizer.pad_token = tokenizer.pad_token or "[PAD]"
    return tokenizer


def padded(tokenizer, texts):
    batch = tokenizer(texts, padding="max_length", truncation=True, max_length=LENGTH, return_tensors="pt")
    batch.pop("token_type_ids", None)
    return batch


def read_texts(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def gemm():
    n = 2048
    generator = torch.Generator().manual_seed(3)
    a, b = torch.randn(n, n, generator=generator), torch.randn(n, n, generator=generator)
    return 2 * n**3 * throughput(1, lambda: a @ b) / 1e9


def figures(model_dir, base_dir, work_dir):
    out = {"gemm_gflops": gemm()}
    start = time.perf_counter()
    tokenizer = tokenizer_of(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    out["load_seconds"] = time.perf_counter() - start

    generator = torch.Generator().manual_seed(5)
    with torch.inference_mode():
        for batch in (1, 8, 32, 128):
            ids = torch.randint(2000, 30000, (batch, LENGTH), generator=generator)
            mask = torch.ones_like(ids)
            out[f"infer_b{batch}"] = throughput(batch, lambda: model(input_ids=ids, attention_mask=mask).logits.sigmoid().tolist())

        texts = read_texts(f"{work_dir}/test.jsonl")
        start = time.perf_counter()
        for i in range(0, len(texts), 32):
            model(**padded(tokenizer, texts[i : i + 32])).logits.sigmoid().tolist()
        out["infer_real"] = len(texts) / (time.perf_counter() - start)
    del model

    model = BertForSequenceClassification.from_pretrained(
        base_dir, num_labels=LABELS, problem_type="multi_label_classification"
    ).train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(LABELS))

    def step(batch):
        targets = (torch.arange(batch["input_ids"].shape[0] * LABELS) % 5 == 0).float().view(-1, LABELS)
        loss = loss_fn(model(**batch).logits, targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    ids = torch.randint(2000, 30000, (16, LENGTH), generator=generator)
    fixed = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    out["train_b16"] = throughput(16, lambda: step(fixed))

    tokenizer = tokenizer_of(base_dir)
    epoch = read_texts(f"{work_dir}/epoch.jsonl")
    start = time.perf_counter()
    for i in range(0, len(epoch), 16):
        step(padded(tokenizer, epoch[i : i + 16]))
    out["train_epoch"] = len(epoch) / (time.perf_counter() - start)
    out["threads"] = torch.get_num_threads()
    out["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    return out


def classify(model_dir, input_path):
    start = time.perf_counter()
    tokenizer = tokenizer_of(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    print(f"load {time.perf_counter() - start:.3f} s", file=sys.stderr)
    records = read_texts(input_path)
    with torch.inference_mode():
        for i in range(0, len(records), 32):
            chunk = records[i : i + 32]
            scores = model(**padded(tokenizer, [r["text"] for r in chunk])).logits.sigmoid().tolist()
            for record, row in zip(chunk, scores):
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
