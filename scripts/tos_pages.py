"""Terms of Service as pages: does a sentence model read a page as well as
the corpus's own sentences?

For each company, the CLAUDETTE sentences are written out as a web page the
way terms read online (paragraphs of up to three sentences; headings and
fragments as paragraphs of their own), classified with `clause classify`
(which cuts each paragraph into sentences for a model trained on
sentences), and each corpus sentence gets the labels of the records that
cover its words. The same sentences are also classified directly, as a
table. Both are scored against the corpus's labels (tag levels 2 and 3, as
the tos-unfair recipe reads them) with LexGLUE's macro-F1 (the eight labels
and the "none" column), per company and pooled.

    python3 scripts/tos_pages.py --model models/tos-unfair [--clause target/release/clause]
        [--data ../shared/data] [--companies Amazon Evernote Linkedin Snap Uber] [--json]

With --json, one JSON object per company and one for the pool, for tests
(tests/review.rs runs it on one company).
"""

import argparse
import html
import json
import pathlib
import re
import subprocess
import sys
import tempfile

LABELS = ["a", "ch", "cr", "j", "law", "ltd", "ter", "use"]
LEVELS = {"2", "3"}
TEST_COMPANIES = ["Amazon", "Evernote", "Linkedin", "Snap", "Uber"]


def corpus(data: pathlib.Path, company: str):
    """(sentence, labels) of every non-blank sentence, in order."""
    root = data / "claudette-tos-en"
    sentences = (root / "sentences" / f"{company}.txt").read_text(encoding="utf-8").splitlines()
    tags = (root / "tags" / f"{company}.txt").read_text(encoding="utf-8").splitlines()
    tags += [""] * (len(sentences) - len(tags))
    out = []
    for sentence, tag in zip(sentences, tags):
        if not sentence.strip():
            continue
        labels = set()
        for token in tag.split():
            name, level = token[:-1], token[-1:]
            if level in LEVELS and name in LABELS:
                labels.add(name)
        out.append((" ".join(sentence.split()), labels))
    return out


def page(sentences) -> str:
    """The sentences as an HTML page of paragraphs."""
    paragraphs, current = [], []
    for sentence in sentences:
        if len(sentence.split()) <= 4 or not re.search(r"[.!?;:]$", sentence):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            paragraphs.append(sentence)
            continue
        current.append(sentence)
        if len(current) == 3:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    return f"<!DOCTYPE html>\n<html><head><title>Terms</title></head><body>\n{body}</body></html>\n"


def classify(clause: str, model: str, path: pathlib.Path):
    run = subprocess.run([clause, "classify", "--model", model, str(path), "--format", "jsonl"],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"tos_pages: clause classify {path} failed:\n{run.stderr}")
    return [json.loads(line) for line in run.stdout.splitlines()]


def spread(records, sentences):
    """Each sentence's labels from the page's records: the union over the
    records that cover any of its characters. Both are the same words in
    the same order, so their characters without whitespace align; words the
    page's reading left out (a title) cover nothing."""
    stream = "".join("".join(s.split()) for s in sentences)
    owner, at = [], 0
    for sentence_index, sentence in enumerate(sentences):
        owner.extend([sentence_index] * len("".join(sentence.split())))
    labels = [set() for _ in sentences]
    covered = [0] * len(sentences)
    for record in records:
        text = "".join(record["text"].split())
        start = stream.find(text, at)
        if start < 0:
            continue
        for index in range(start, start + len(text)):
            labels[owner[index]].update(record["labels"])
            covered[owner[index]] += 1
        at = start + len(text)
    read = sum(1 for i, s in enumerate(sentences) if covered[i] == len("".join(s.split())))
    lost = sum(len("".join(s.split())) - covered[i] for i, s in enumerate(sentences))
    return labels, read, lost


def f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def lexglue(gold, predicted):
    """Mean F1 over the labels and the none column."""
    scores = []
    for label in LABELS:
        tp = sum(1 for g, p in zip(gold, predicted) if label in g and label in p)
        fp = sum(1 for g, p in zip(gold, predicted) if label not in g and label in p)
        fn = sum(1 for g, p in zip(gold, predicted) if label in g and label not in p)
        scores.append(f1(tp, fp, fn))
    tp = sum(1 for g, p in zip(gold, predicted) if not g and not p)
    fp = sum(1 for g, p in zip(gold, predicted) if g and not p)
    fn = sum(1 for g, p in zip(gold, predicted) if not g and p)
    scores.append(f1(tp, fp, fn))
    return sum(scores) / len(scores)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--clause", default="target/release/clause")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--companies", nargs="+", default=TEST_COMPANIES)
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    pooled_gold, pooled_page, pooled_direct = [], [], []
    if not args.json:
        print(f"{'company':10} {'sentences':>9} {'records':>8} {'read whole':>10} {'page F1':>8} {'direct F1':>9}")
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        for company in args.companies:
            rows = corpus(pathlib.Path(args.data), company)
            sentences = [s for s, _ in rows]
            gold = [labels for _, labels in rows]
            (work / f"{company}.html").write_text(page(sentences), encoding="utf-8")
            records = classify(args.clause, args.model, work / f"{company}.html")
            on_page, read, lost = spread(records, sentences)
            table = work / f"{company}.jsonl"
            table.write_text("".join(json.dumps({"id": f"{company}:{i}", "text": s}) + "\n"
                                     for i, s in enumerate(sentences)), encoding="utf-8")
            direct = [set(r["labels"]) for r in classify(args.clause, args.model, table)]
            if args.json:
                print(json.dumps({"company": company, "sentences": len(sentences), "records": len(records),
                                  "read_whole": read, "characters_lost": lost, "page_f1": lexglue(gold, on_page),
                                  "direct_f1": lexglue(gold, direct),
                                  "sentences_labelled_on_page": sum(1 for p in on_page if p),
                                  "sentences_labelled_directly": sum(1 for d in direct if d)}))
            else:
                print(f"{company:10} {len(sentences):9d} {len(records):8d} {read / len(sentences):10.3f} "
                      f"{lexglue(gold, on_page):8.3f} {lexglue(gold, direct):9.3f}")
            pooled_gold += gold
            pooled_page += on_page
            pooled_direct += direct
    if args.json:
        print(json.dumps({"company": "pooled", "sentences": len(pooled_gold),
                          "page_f1": lexglue(pooled_gold, pooled_page),
                          "direct_f1": lexglue(pooled_gold, pooled_direct)}))
    else:
        print(f"{'pooled':10} {len(pooled_gold):9d} {'':8} {'':10} {lexglue(pooled_gold, pooled_page):8.3f} "
              f"{lexglue(pooled_gold, pooled_direct):9.3f}")


if __name__ == "__main__":
    main()
