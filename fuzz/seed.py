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
import struct
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
    for path in sorted(PROJECT.glob("datasets/*/probes/*.tsv")) + sorted(PROJECT.glob("datasets/*/sentences/*.tsv")):
        # The header first, as the probe and written-sentence parsers want it.
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


def pdf(objects, trailer=""):
    """A PDF file of `objects` (object 1 the catalog), with a correct
    cross-reference table: the fixtures' streams are deflated, so small
    uncompressed files let the fuzzer reach the content and font code."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R {trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdf_stream(dictionary, data):
    return f"<< {dictionary} /Length {len(data.encode('latin-1'))} >>\nstream\n{data}\nendstream"


def pdf_page(content, resources="", extra=()):
    """One page drawing `content`: Helvetica as /F1, object 6 as /F2."""
    return pdf(
        [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            f"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> {resources} >> >>",
            pdf_stream("", content),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /FirstChar 32 /LastChar 126 "
            "/Widths [" + " ".join(["556"] * 95) + "] >>",
            *extra,
        ]
    )


def seed_pdf():
    # Text operators, a footnote mark (Ts), a running footer, two columns.
    yield pdf_page(
        "BT /F1 11 Tf 14 TL 1 0 0 1 480 800 Tm (A/AC.291/L.15) Tj ET "
        "BT /F1 12 Tf 72 740 Td (Article 5 \\226 Scope) Tj T* [(1. Each Party shall sur) -20 (veil-)] TJ "
        "(lance of the data.) ' 2 0 (\\(a\\) in good faith.) \" /F1 7 Tf 4 Ts (1) Tj 0 Ts ET "
        "BT /F1 12 Tf 72 600 Td (Left column text) Tj 0 -14 Td (runs down here.) Tj ET "
        "BT /F1 12 Tf 320 596 Td (Right column text) Tj 0 -14 Td (follows it.) Tj ET "
        "BT /F1 9 Tf 72 90 Td /F1 5 Tf 3 Ts (1) Tj 0 Ts /F1 9 Tf ( A footnote.) Tj ET "
        "BT /F1 10 Tf 280 40 Td (- 1 -) Tj ET"
    )
    # A composite font with a /ToUnicode map and /W widths.
    cmap = (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        "2 beginbfchar\n<0001> <0041>\n<0002> <00660069>\nendbfchar\n"
        "1 beginbfrange\n<0003> <0005> <0063>\nendbfrange\n"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    )
    yield pdf_page(
        "BT /F2 12 Tf 72 700 Td <00010002000300040005> Tj ET",
        extra=[
            "<< /Type /Font /Subtype /Type0 /BaseFont /AAAAAA+Serif-Bold /Encoding /Identity-H "
            "/DescendantFonts [7 0 R] /ToUnicode 8 0 R >>",
            "<< /Type /Font /Subtype /CIDFontType2 /DW 500 /W [1 [600 500] 3 5 550] "
            "/FontDescriptor << /FontWeight 700 /Flags 262144 >> >>",
            pdf_stream("", cmap),
        ],
    )
    # A form drawing text and itself, an image, an inline image.
    yield pdf_page(
        "q 1 0 0 1 0 -50 cm /Fm1 Do Q q 100 0 0 100 0 0 cm /Im1 Do Q BI /W 1 /H 1 /CS /G /BPC 8 ID \x00 EI",
        "/XObject << /Fm1 6 0 R /Im1 7 0 R >>",
        [
            pdf_stream(
                "/Type /XObject /Subtype /Form /BBox [0 0 595 842] /Matrix [1 0 0 1 0 -10] "
                "/Resources << /Font << /F1 5 0 R >> /XObject << /Fm1 6 0 R >> >>",
                "BT /F1 12 Tf 72 700 Td (In a form.) Tj ET /Fm1 Do",
            ),
            pdf_stream("/Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8", "\x00"),
        ],
    )
    # A trailer that names an encryption dictionary.
    yield pdf(
        [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            pdf_stream("", "garbled"),
            "<< /Filter /Standard /V 2 /R 3 /Length 128 /P -4 /O <" + "01" * 32 + "> /U <" + "02" * 32 + "> >>",
        ],
        "/Encrypt 5 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]",
    )


def seed_documents():
    # The readers' own fixtures: Word files and PDFs whole (a zip or a PDF
    # cut short is only an error), HTML pages in pieces as well; and small
    # uncompressed PDFs written here.
    for path in sorted((PROJECT / "crates" / "clause-read" / "tests" / "fixtures").iterdir()):
        data = path.read_bytes()
        if path.suffix in (".docx", ".pdf"):
            yield data
        elif path.suffix == ".html":
            yield data[:CHUNK]
            yield from chunks(data, 1024, 8)
    yield from seed_pdf()


def safetensors(tensors):
    """The safetensors encoding of `tensors`, name -> (shape, f32 values):
    an 8-byte little-endian header length, the JSON header, the data."""
    header, data = {}, b""
    for name, (shape, values) in sorted(tensors.items()):
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def seed_model_files():
    # config.json, clause.json, lexical.json and lexical.safetensors joined by
    # NUL bytes, as fuzz_targets/model_files.rs splits them: a two-label model
    # written here, the way `clause train` writes one, and variants.
    labels = ["surveillance", "secrecy"]
    config = {
        "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
        "intermediate_size": 1536, "max_position_embeddings": 512, "hidden_act": "gelu",
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": "multi_label_classification", "clause_pooling": "mean", "clause_context": "headings",
    }
    card = {
        "format": 1, "max_length": 256, "pooling": "mean", "context": "headings", "reading": "sentences",
        "unit": "provision",
        "labels": [
            {"name": name, "description": "d", "threshold": 0.4 + i / 10,
             "calibration": {"slope": 0.43, "intercept": -1.9, "margin": 0.8}}
            for i, name in enumerate(labels)
        ],
    }
    terms = ["intercept", "secret", "data", "intercept content", "keep it secret"]
    header = {"format": 1, "headings": True, "reading": "sentences", "c": 0.3, "labels": 2, "terms": terms}
    weights = safetensors({
        "idf": ([5], [1.5, 2.0, 1.0, 2.5, 3.0]),
        "weight": ([2, 5], [2.0, 0.0, 0.5, 1.0, 0.0, 0.0, 3.0, 0.0, 0.0, 1.5]),
        "bias": ([2], [-0.5, -1.0]),
    })

    def joined(config, card, header, weights):
        return b"\0".join([json.dumps(config).encode(), json.dumps(card).encode(), json.dumps(header).encode(), weights])

    yield joined(config, card, header, weights)
    whole = dict(header, reading="whole", headings=False)
    yield joined(config, dict(card, reading="whole", context="text"), whole, weights)
    ensemble = dict(card, ensemble=[{"dir": "members/1", "seed": 1}, {"dir": "members/2"}])
    yield joined(config, ensemble, header, weights)
    yield joined(config, {"labels": card["labels"], "max_length": 128, "pooling": "cls"}, header, weights)
    yield joined(config, card, dict(header, terms=terms[:3]), weights)


TARGETS = {
    "segment": seed_segment,
    "documents": seed_documents,
    "claudette": seed_claudette,
    "table": seed_table,
    "recipe": seed_recipe,
    "annotations": seed_annotations,
    "serve_request": seed_serve_request,
    "model_files": seed_model_files,
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
