#!/usr/bin/env python3
"""Independent reference for the encoder's numerics: BERT forward in NumPy.

Written from the Hugging Face BERT definition (post-LayerNorm encoder, exact
erf GELU, tanh pooler), not from the Rust code, and run in float64. It reads
all-MiniLM-L6-v2 (run scripts/fetch-base-model first), tokenizes a few texts
with the Python `tokenizers` package from the same tokenizer.json, and writes
the token ids, the BERT pooler output (what cls pooling feeds the head) and
the mean-pooled sentence embedding (what mean pooling feeds it) to
fixtures/minilm_reference.json. The Rust test `reference_numerics` compares
against it.

    python3 -m pip install numpy tokenizers
    python3 crates/clause-infer/tests/reference_bert.py
"""
import json
import math
import pathlib
import struct

import numpy as np
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "base" / "all-MiniLM-L6-v2"
OUT = pathlib.Path(__file__).resolve().parent / "fixtures" / "minilm_reference.json"
TEXTS = [
    "Each Party shall adopt such legislative and other measures as may be necessary to empower its competent authorities to order a service provider to submit subscriber information.",
    "The requested Party may refuse assistance if the request concerns a political offence.",
    "We may terminate your account at any time without notice.",
]


def load_safetensors(path):
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    data = raw[8 + size :]
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"]).astype(np.float64)
    return tensors


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def encode(t, config, ids):
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    n = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n] + t["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    d = x.shape[-1] // heads
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        dense = lambda h, name: h @ t[p + name + ".weight"].T + t[p + name + ".bias"]
        q = dense(x, "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = dense(x, "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = dense(x, "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, heads * d)
        a = layer_norm(dense(context, "attention.output.dense") + x, t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(dense(a, "intermediate.dense"))
        x = layer_norm(dense(h, "output.dense") + a, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], eps)
    return x


def main():
    config = json.loads((MODEL / "config.json").read_text())
    tensors = load_safetensors(MODEL / "model.safetensors")
    tokenizer = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)
    cases = []
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        hidden = encode(tensors, config, ids)
        pooler = np.tanh(hidden[0] @ tensors["pooler.dense.weight"].T + tensors["pooler.dense.bias"])
        cases.append({"text": text, "ids": ids, "pooler": pooler.tolist(), "mean": hidden.mean(0).tolist()})
    OUT.write_text(json.dumps({"model": "all-MiniLM-L6-v2", "cases": cases}, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} texts)")


if __name__ == "__main__":
    main()
