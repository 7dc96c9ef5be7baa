"""TF-IDF + linear SVM baseline; see scripts/baseline-tfidf-svm for usage."""

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.svm import LinearSVC

SETTINGS = [(headings, c) for headings in (False, True) for c in (0.1, 0.3, 1.0, 3.0, 10.0)]
RESAMPLES = 1000
SEED = 20261129


def text_of(row, headings):
    if not headings:
        return row["text"]
    parts = []
    if row.get("chapter"):
        parts.append(row["chapter"].split(" > ")[-1])
    if row.get("title"):
        parts.append(row["title"])
    parts.append(row["text"])
    return ". ".join(p.rstrip(". ") for p in parts)


def truth(rows, labels):
    return np.array([[label in row["labels"] for label in labels] for row in rows], dtype=int).reshape(-1, len(labels))


def fit_predict(fit_rows, predict_rows, labels, headings, c):
    vectorizer = TfidfVectorizer(ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    x_fit = vectorizer.fit_transform([text_of(r, headings) for r in fit_rows])
    x_pred = vectorizer.transform([text_of(r, headings) for r in predict_rows])
    y_fit = truth(fit_rows, labels)
    predicted = np.zeros((x_pred.shape[0], len(labels)), dtype=int)
    for j in range(len(labels)):
        if y_fit[:, j].sum() == 0:
            continue
        svm = LinearSVC(C=c, class_weight="balanced", max_iter=20000)
        svm.fit(x_fit, y_fit[:, j])
        predicted[:, j] = svm.predict(x_pred)
    return predicted


def scores(truth_, predicted):
    frequent = [j for j, n in enumerate(truth_.sum(axis=0)) if n >= 10]
    micro = f1_score(truth_, predicted, average="micro", zero_division=0)
    macro = f1_score(truth_[:, frequent], predicted[:, frequent], average="macro", zero_division=0)
    return micro, macro


def lexglue_macro(truth_, predicted):
    none_t = (truth_.sum(axis=1) == 0).astype(int)[:, None]
    none_p = (predicted.sum(axis=1) == 0).astype(int)[:, None]
    return f1_score(np.hstack([truth_, none_t]), np.hstack([predicted, none_p]), average="macro", zero_division=0)


def choose(train_rows, validation_rows, labels, log):
    best = None
    for headings, c in SETTINGS:
        micro, macro = scores(truth(validation_rows, labels), fit_predict(train_rows, validation_rows, labels, headings, c))
        log(f"validation  headings={headings!s:5}  C={c:<4}  micro-F1 {micro:.3f}  macro-F1 (>= 10) {macro:.3f}")
        if best is None or micro > best[0]:
            best = (micro, headings, c)
    return best[1], best[2]


def instrument(document, documents):
    match = re.fullmatch(r"(.*)-(\d{1,2})", document)
    return match.group(1) if match and match.group(1) in documents else document


def bootstrap(units, figure, rng):
    groups = defaultdict(list)
    for i, unit in enumerate(units):
        groups[unit].append(i)
    keys = list(groups)
    values = []
    for _ in range(RESAMPLES):
        drawn = rng.integers(0, len(keys), len(keys))
        values.append(figure(np.concatenate([groups[keys[k]] for k in drawn])))
    return np.percentile(values, 2.5), np.percentile(values, 97.5)


def single_split(build, labels):
    splits = {s: pq.read_table(build / f"{s}.parquet").to_pylist() for s in ["train", "validation", "test"]}
    headings, c = choose(splits["train"], splits["validation"], labels, print)
    predicted = fit_predict(splits["train"], splits["test"], labels, headings, c)
    y = truth(splits["test"], labels)
    micro, macro = scores(y, predicted)
    print(f"\nchosen on validation: headings={headings}, C={c}")
    print(f"test: micro-F1 {micro:.3f}  macro-F1 (labels with >= 10 test examples) {macro:.3f}  ({len(y)} examples)")
    for j, label in enumerate(labels):
        print(f"  {label:16} support {y[:, j].sum():4}  F1 {f1_score(y[:, j], predicted[:, j], zero_division=0):.3f}")


def cross_validated(build, labels, run):
    rows, folds = read_folds(build, run)
    out = []
    for fold in sorted(folds):
        parts = folds[fold]
        headings, c = choose(parts["train"], parts["validation"], labels, lambda _: None)
        predicted = fit_predict(parts["train"], parts["test"], labels, headings, c)
        print(f"fold {fold}: chosen on its validation: headings={headings}, C={c}")
        for row, flags in zip(parts["test"], predicted):
            out.append({"id": row["id"], "flagged": [l for l, f in zip(labels, flags) if f]})
    with open(run / "baseline-predictions.jsonl", "w") as f:
        for row in out:
            f.write(json.dumps(row) + "\n")
    baseline = {r["id"]: r["flagged"] for r in out}
    ids = [r["id"] for r in out]
    model = {}
    for path in sorted(run.glob("fold-*/predictions.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            model[row["id"]] = row["flagged"]
    if model and set(model) != set(ids):
        # A run still going: compare on the folds it has finished.
        ids = [i for i in ids if i in model]
        print(f"\nthe model has finished {len(ids)} of {len(baseline)} examples: both are scored on those")
    systems = {"TF-IDF + SVM": truth([{"labels": baseline[i]} for i in ids], labels)}
    pairs = []
    if model:
        systems["model"] = truth([{"labels": model[i]} for i in ids], labels)
        pairs = [("model", "TF-IDF + SVM", "difference")]
    report(rows, ids, labels, systems, pairs)


def read_folds(build, run):
    """Every example of the built recipe by id, and each fold's examples by split
    (RUN/folds.tsv, as `clause train --cross-validate` wrote it)."""
    rows = {}
    for s in ["train", "validation", "test"]:
        for row in pq.read_table(build / f"{s}.parquet").to_pylist():
            rows[row["id"]] = row
    folds = defaultdict(lambda: defaultdict(list))
    for line in (run / "folds.tsv").read_text().splitlines()[1:]:
        fold, id_, split = line.split("\t")
        folds[int(fold)][split].append(rows[id_])
    return rows, folds


def report(rows, ids, labels, systems, pairs):
    """Out-of-fold figures of each system (0/1 flags, one row per id) with 95%
    intervals that resample instruments, and for each (a, b, name) of `pairs`
    the paired interval of a minus b."""
    y = truth([rows[i] for i in ids], labels)
    documents = {rows[i]["document"] for i in ids}
    units = [instrument(rows[i]["document"], documents) for i in ids]
    frequent = [j for j, n in enumerate(y.sum(axis=0)) if n >= 10]
    figures = {
        "micro-F1": lambda p, idx: f1_score(y[idx], p[idx], average="micro", zero_division=0),
        "macro-F1 (>= 10)": lambda p, idx: f1_score(y[idx][:, frequent], p[idx][:, frequent], average="macro", zero_division=0),
        "LexGLUE macro-F1": lambda p, idx: lexglue_macro(y[idx], p[idx]),
    }
    width = max(len(name) for name in list(systems) + [name for _, _, name in pairs])
    every = np.arange(len(ids))
    print(f"\nout-of-fold, {len(ids)} examples of {len(set(units))} instruments, 95% intervals resample instruments")
    for name, figure in figures.items():
        for system, predicted in systems.items():
            low, high = bootstrap(units, lambda idx: figure(predicted, idx), np.random.default_rng(SEED))
            print(f"  {name:18} {system:{width}} {figure(predicted, every):.3f}  [{low:.3f}, {high:.3f}]")
        for a, b, label in pairs:
            diff = lambda idx: figure(systems[a], idx) - figure(systems[b], idx)
            low, high = bootstrap(units, diff, np.random.default_rng(SEED))
            print(f"  {name:18} {label:{width}} {diff(every):+.3f}  [{low:+.3f}, {high:+.3f}]  (paired)")

def main():
    build = Path(sys.argv[1])
    labels = json.loads((build / "manifest.json").read_text())["labels"]
    if len(sys.argv) > 3 and sys.argv[2] == "--folds":
        cross_validated(build, labels, Path(sys.argv[3]))
    elif len(sys.argv) == 2:
        single_split(build, labels)
    else:
        sys.exit("usage: baseline-tfidf-svm [RECIPE] [--folds RUN]")


if __name__ == "__main__":
    main()
