#!/usr/bin/env python3
"""Build the fuzz targets' seed corpora, at run time, into fuzz/corpus/<target>/
(git-ignored): pieces of the real inputs from the data root (../shared/data
beside the project, or $CLAUSE_DATA_ROOT; never copied into the repository),
the project's own recipes, annotations and example drafts, and small
hand-written requests. Seeds are named by their sha1, so rerunning adds
nothing twice and leaves what the fuzzer found in place.

Usage: python3 fuzz/seed.py [TARGET ...]   (default: every target)
"""

import hashlib
import json
import os
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
PROJECT = FUZZ.parent
DATA = Path(os.environ.get("CLAUSE_DATA_ROOT") or PROJECT.parent / "shared" / "data")
CORPUS = FUZZ / "corpus"

# Seeds are kept small: libFuzzer mutates short inputs far faster, and the
# parsers' interesting states are reached within a few kilobytes.
CHUNK = 4096


def chunks(data: bytes, size: int = CHUNK, limit: int = 40):
    """Pieces of `data` of at most `size` bytes, cut at line ends."""
    out, start = [], 0
    while start < len(data) and len(out) < limit:
        end = min(start + size, len(data))
        if end < len(data):
            cut = data.rfind(b"\n", start, end)
            end = cut + 1 if cut > start else end
        out.append(data[start:end])
        start = end
    return out


def lines_pieces(data: bytes, lines: int):
    rows = data.splitlines(keepends=True)
    return [b"".join(rows[i : i + lines]) for i in range(0, len(rows), lines)]


def treaties():
    directory = DATA / "treaties"
    if not directory.is_dir():
        sys.exit(f"fuzz/seed.py: no source data at {DATA} (set CLAUSE_DATA_ROOT)")
    return sorted(directory.glob("*.md"))


def examples():
    return sorted((PROJECT / "datasets" / "examples").glob("*.md"))


def seed_segment():
    for path in treaties() + examples():
        data = path.read_bytes()
        yield data[:CHUNK]
        yield from chunks(data)
    yield "\ufeffArticle 1 – Title\r\n1. Text.\r\n(a) one;\r\n(b) two.\r\n".encode()
    yield b"# Convention\n\nPreamble text.\n\nARTICLE IV\nTitle\n1)\nA.\nIN WITNESS WHEREOF\n"


def seed_claudette():
    root = DATA / "claudette-tos-en"
    names = sorted(p.name for p in (root / "sentences").glob("*.txt"))
    if not names:
        sys.exit(f"fuzz/seed.py: no CLAUDETTE corpus under {root}")
    for name in names:
        sentences = (root / "sentences" / name).read_bytes().splitlines(keepends=True)
        tags = (root / "tags" / name).read_bytes().splitlines(keepends=True)
        # The first lines, and the first stretch with tags in it.
        tagged = next((i for i, t in enumerate(tags) if t.strip()), 0)
        for start in sorted({0, max(0, tagged - 2)}):
            yield b"".join(sentences[start : start + 12]) + b"\0" + b"".join(tags[start : start + 12])
    yield b"We may end it.\r\nHello\r\n\0ter2 countrym\r\n\r\n"


def seed_table():
    csv, jsonl, parquet = 0, 1, 2
    ids, comma, documents, titles = 4, 8, 16, 32
    root = DATA / "claudette-tos-en"
    for name in ["Amazon.txt", "Dropbox.txt", "Spotify.txt"]:
        sentences = (root / "sentences" / name).read_text(encoding="utf-8").splitlines()[:20]
        tags = (root / "tags" / name).read_text(encoding="utf-8").splitlines()[:20]
        labels = [";".join(sorted({t.rstrip("0123456789") for t in line.split() if t[-1:] in "23"} & {"ltd", "ter", "a", "ch"})) for line in tags]
        rows = ["id,text,labels,document,title"]
        for i, (text, label) in enumerate(zip(sentences, labels)):
            rows.append(f'{name}-{i},"{text.replace(chr(34), chr(34) * 2)}",{label},{name},t{i}')
        yield bytes([csv | ids | documents | titles]) + ("\n".join(rows) + "\n").encode()
        lines = [
            json.dumps({"id": f"{name}-{i}", "text": text, "labels": label.split(";") if label else [], "n": i})
            for i, (text, label) in enumerate(zip(sentences, labels))
        ]
        yield bytes([jsonl | ids]) + ("\n".join(lines) + "\n").encode()
    yield bytes([csv | comma]) + b'\xef\xbb\xbftext,labels\r\n"We may end, at any time.","ter,ltd"\r\nHello,\r\n'
    yield bytes([jsonl]) + b'{"text":"a","labels":null}\n\n{"text":"b","labels":["ltd"],"x":{"y":[1,2.5]}}\n'
    # Parquet files the project wrote itself (dataset builds), when present.
    for path in sorted(PROJECT.glob("datasets/*/build/*.parquet")):
        data = path.read_bytes()
        if len(data) <= 64 * 1024:
            yield bytes([parquet | ids]) + data


def seed_recipe():
    for path in sorted(PROJECT.glob("datasets/*/dataset.toml")):
        yield path.read_bytes()
    yield b"""name = "t"
annotations = ["a.tsv"]
[[labels]]
name = "x"
description = "d"
[[sources]]
format = "table"
path = "t.csv"
sha256 = "%s"
text_column = "body"
label_delimiter = "|"
[split]
method = "documents"
validation = ["a"]
test = ["b"]
[leakage]
min_chars = 10
fail = true
""" % (b"0" * 64)


def seed_annotations():
    for path in sorted(PROJECT.glob("datasets/*/annotations/*.tsv")):
        yield from lines_pieces(path.read_bytes(), 25)
    for path in sorted(PROJECT.glob("datasets/*/rationales/*.tsv")):
        yield from lines_pieces(path.read_bytes(), 25)
    for path in sorted(PROJECT.glob("datasets/*/probes/*.tsv")):
        # The header first, as the probe parser wants it.
        lines = path.read_bytes().splitlines(keepends=True)
        yield b"".join(lines[:12])
        yield b"".join(lines[:1] + lines[-12:])
    yield b"# comment\r\ndoc:art1\t0123456789ABCDEF\tsecrecy, safeguard\tText\r\n\r\ndoc:art2\t0123456789abcdef\t-\n"


def request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def seed_serve_request():
    yield request("GET", "/healthz")
    yield request("HEAD", "/v1/labels")
    yield request("GET", "/v1/labels?x=1#y", headers="Connection: close\r\n")
    yield b"GET /healthz HTTP/1.0\nConnection: Keep-Alive\n\n"
    yield request("POST", "/v1/classify", b'{"texts": ["Each Party shall empower its authorities.", "b"], "id": 7}')
    yield request("POST", "/v1/classify", b'{"texts": []}', headers="Expect: 100-continue\r\n")
    yield request("POST", "/v1/classify", b"{}", headers="Transfer-Encoding: chunked\r\n")
    yield request("PUT", "/v2/x", b'{"texts": "a"}')
    yield b"POST /v1/classify HTTP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n"
    for path in examples():
        text = path.read_text(encoding="utf-8")
        for piece in chunks(text.encode(), 1500, 4):
            body = json.dumps({"document": piece.decode("utf-8", "ignore"), "name": path.stem, "id": "r"})
            yield request("POST", "/v1/classify", body.encode())
    for path in treaties()[:2]:
        piece = path.read_bytes()[:1500].decode("utf-8", "ignore")
        yield request("POST", "/v1/classify", json.dumps({"document": piece}).encode())


def seed_documents():
    # The readers' own fixtures: Word files whole (a zip cut short is only
    # an error), HTML pages in pieces as well.
    for path in sorted((PROJECT / "crates" / "clause-read" / "tests" / "fixtures").iterdir()):
        data = path.read_bytes()
        if path.suffix == ".docx":
            yield data
        elif path.suffix == ".html":
            yield data[:CHUNK]
            yield from chunks(data, 1024, 8)


TARGETS = {
    "segment": seed_segment,
    "documents": seed_documents,
    "claudette": seed_claudette,
    "table": seed_table,
    "recipe": seed_recipe,
    "annotations": seed_annotations,
    "serve_request": seed_serve_request,
}


def main(argv):
    names = argv or list(TARGETS)
    for name in names:
        if name not in TARGETS:
            sys.exit(f"fuzz/seed.py: unknown target {name}; expected one of {', '.join(TARGETS)}")
        directory = CORPUS / name
        directory.mkdir(parents=True, exist_ok=True)
        count = 0
        for seed in TARGETS[name]():
            if seed:
                (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
                count += 1
        print(f"{name}: {count} seeds in {directory.relative_to(PROJECT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
