"""Would a lexical member stacked on the encoder help? See scripts/lexical-stack-check."""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).parent))
from baseline_tfidf_svm import choose, read_folds, report, text_of, truth  # noqa: E402

EPSILON = 1e-6
# The model's own rules (crates/clause-eval): a label needs this many
# validation positives for a tuned threshold, and this many for a fit of its own.
THRESHOLD_MIN_POSITIVES = 3
MIN_POSITIVES_FOR_OWN_FIT = 8


def logit(p):
    p = np.clip(np.asarray(p, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


def tune(scores, truth_):
    """The best-F1 threshold of one label, as clause_eval::metrics::tune_thresholds picks it."""
    positives = int(truth_.sum())
    if positives < max(1, THRESHOLD_MIN_POSITIVES):
        return 0.5
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], truth_[order]
    best, tp, i = None, 0, 0
    while i < len(s):
        score = s[i]
        while i < len(s) and s[i] == score:
            tp += t[i]
            i += 1
        threshold = (s[i] + score) / 2 if i < len(s) else score
        f1 = 2 * tp / (i + positives)
        if best is None or f1 > best[0] + 1e-12 or (abs(f1 - best[0]) <= 1e-12 and abs(threshold - 0.5) < abs(best[1] - 0.5)):
            best = (f1, threshold)
    return best[1]


def margins(train_rows, rows_sets, labels, headings, c):
    """Each label's SVM margin on each row set (0 where training has no positive)."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    x_fit = vectorizer.fit_transform([text_of(r, headings) for r in train_rows])
    xs = [vectorizer.transform([text_of(r, headings) for r in rows]) for rows in rows_sets]
    y_fit = truth(train_rows, labels)
    out = [np.zeros((x.shape[0], len(labels))) for x in xs]
    for j in range(len(labels)):
        if y_fit[:, j].sum() == 0:
            continue
        svm = LinearSVC(C=c, class_weight="balanced", max_iter=20000).fit(x_fit, y_fit[:, j])
        for o, x in zip(out, xs):
            o[:, j] = svm.decision_function(x)
    return out


def stack(encoder_val, margin_val, truth_val, encoder_test, margin_test):
    """Per label: logistic regression on (encoder logit, SVM margin), fitted on
    validation with Platt's smoothed targets; labels with too few validation
    positives keep the encoder's calibrated score."""
    val_out, test_out = encoder_val.copy(), encoder_test.copy()
    for j in range(encoder_val.shape[1]):
        y = truth_val[:, j]
        positives, negatives = int(y.sum()), int(len(y) - y.sum())
        if positives < MIN_POSITIVES_FOR_OWN_FIT or negatives == 0:
            continue
        features = lambda enc, mar: np.column_stack([logit(enc[:, j]), mar[:, j]])
        x = features(encoder_val, margin_val)
        # Platt's targets as sample weights on a duplicated set: each example
        # counts as a positive with weight target and a negative with 1 - target.
        high, low = (positives + 1) / (positives + 2), 1 / (negatives + 2)
        target = np.where(y == 1, high, low)
        xx = np.vstack([x, x])
        yy = np.concatenate([np.ones(len(x)), np.zeros(len(x))])
        ww = np.concatenate([target, 1 - target])
        model = LogisticRegression(C=1e4, max_iter=1000).fit(xx, yy, sample_weight=ww)
        val_out[:, j] = model.predict_proba(x)[:, 1]
        test_out[:, j] = model.predict_proba(features(encoder_test, margin_test))[:, 1]
    return val_out, test_out


BANDS = [(0.50, 0.80), (0.80, 0.95), (0.95, 1.0)]
ECE_BINS = 10


def calibration_report(name, probabilities, truth_, labels):
    """The score bands and per-label expected calibration error of pooled
    out-of-fold probabilities, as crates/clause-eval computes them (bands
    include 1.0 in the last; ECE over 10 equal-width bins)."""
    p, t = probabilities.ravel(), truth_.ravel()
    print(f"\n{name}: score bands, pooled over labels")
    for low, high in BANDS:
        inside = (p >= low) & ((p < high) | ((high >= 1.0) & (p <= 1.0)))
        n = int(inside.sum())
        mean = p[inside].mean() if n else float("nan")
        share = t[inside].mean() if n else float("nan")
        print(f"  {low:.2f}-{high:.2f}  n {n:5}  mean {mean:.3f}  true {share:.3f}")
    errors = []
    for j, label in enumerate(labels):
        column, truth_column = probabilities[:, j], truth_[:, j]
        bins = np.minimum((np.clip(column, 0, 1) * ECE_BINS).astype(int), ECE_BINS - 1)
        ece = sum(
            (bins == k).sum() / len(column) * abs(column[bins == k].mean() - truth_column[bins == k].mean())
            for k in range(ECE_BINS)
            if (bins == k).any()
        )
        errors.append(f"{label} {ece:.3f} ({int(truth_column.sum())} positives)")
    print("  ECE per label: " + ", ".join(errors))


def read_predictions(path):
    """A fold's prediction rows (crates/clause-train/src/cross_validate.rs) by id."""
    return {row["id"]: row for row in map(json.loads, path.read_text().splitlines())}


def main():
    build, run = Path(sys.argv[1]), Path(sys.argv[2])
    labels = json.loads((build / "manifest.json").read_text())["labels"]
    rows, folds = read_folds(build, run)
    ids, flags, probabilities = [], defaultdict(list), defaultdict(list)
    for fold in sorted(folds):
        parts = folds[fold]
        directory = run / f"fold-{fold}"
        if not (directory / "predictions.jsonl").is_file():
            print(f"fold {fold}: not finished, left out")
            continue
        validation_scores = read_predictions(directory / "validation-predictions.jsonl")
        held_out = read_predictions(directory / "predictions.jsonl")
        if any("lexical_margins" in row for row in held_out.values()):
            sys.exit(f"{directory}: its model already has the lexical stage; this check is for runs without it")
        val, test = parts["validation"], parts["test"]
        enc_val = np.array([validation_scores[r["id"]]["scores"] for r in val])
        enc_test = np.array([held_out[r["id"]]["scores"] for r in test])
        y_val = truth(val, labels)
        headings, c = choose(parts["train"], val, labels, lambda _: None)
        m_val, m_test = margins(parts["train"], [val, test], labels, headings, c)
        st_val, st_test = stack(enc_val, m_val, y_val, enc_test, m_test)
        thresholds = np.array([tune(st_val[:, j], y_val[:, j]) for j in range(len(labels))])
        enc_thresholds = np.array([tune(enc_val[:, j], y_val[:, j]) for j in range(len(labels))])
        print(f"fold {fold}: SVM headings={headings} C={c}; validation {len(val)}, held out {len(test)}")
        ids += [r["id"] for r in test]
        flags["model"] += [[l in held_out[r["id"]]["flagged"] for l in labels] for r in test]
        flags["model, thresholds again"] += list(enc_test >= enc_thresholds)
        flags["TF-IDF + SVM"] += list(m_test > 0)
        flags["model + lexical"] += list(st_test >= thresholds)
        probabilities["model"] += list(enc_test)
        probabilities["model + lexical"] += list(st_test)
    systems = {name: np.array(f, dtype=int) for name, f in flags.items()}
    pairs = [("model + lexical", "model", "lexical - model"), ("model + lexical", "TF-IDF + SVM", "lexical - SVM")]
    report(rows, ids, labels, systems, pairs)
    y = truth([rows[i] for i in ids], labels)
    for name, p in probabilities.items():
        calibration_report(name, np.array(p), y, labels)
    with open(run / "lexical-stack-predictions.jsonl", "w") as f:
        for i, predicted in zip(ids, systems["model + lexical"]):
            f.write(json.dumps({"id": i, "flagged": [l for l, p in zip(labels, predicted) if p]}) + "\n")


if __name__ == "__main__":
    main()
