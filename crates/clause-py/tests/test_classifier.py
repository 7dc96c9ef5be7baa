"""`clause.Classifier` and `clause.segment` against the `clause` binary."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import clause
from conftest import classify_jsonl, run_clause, texts

TOLERANCE = 1e-6


def assert_same(got: list[dict[str, Any]], expected: list[dict[str, Any]], tolerance: float = TOLERANCE) -> float:
    """Labels exactly, every probability within `tolerance`; returns the
    largest difference."""
    assert len(got) == len(expected)
    largest = 0.0
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g["labels"] == e["labels"], f"row {index}: {g} against {e}"
        assert g["scores"].keys() == e["scores"].keys()
        for label, p in e["scores"].items():
            difference = abs(g["scores"][label] - p)
            assert difference <= tolerance, f"row {index}, {label}: {g['scores'][label]} against {p}"
            largest = max(largest, difference)
    return largest


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def records(table: pa.Table, labels: list[str]) -> list[dict[str, Any]]:
    """predict_arrow's rows as classify's records (labels and scores)."""
    return [
        {"labels": row["labels"], "scores": {label: row[f"score_{label}"] for label in labels}}
        for row in table.to_pylist()
    ]


def test_predict_equals_classify_for_a_model_that_reads_headings_windows_and_sentences(
    single_model: Path, tmp_path: Path
) -> None:
    corpus = texts(60, seed=1)
    titles = [None if i % 3 == 0 else "the state" if i % 3 == 1 else "secret data" for i in range(len(corpus))]
    rows = [{"id": f"r{i}", "text": t, "title": title} for i, (t, title) in enumerate(zip(corpus, titles))]
    table = write_jsonl(tmp_path / "rows.jsonl", rows)
    expected = classify_jsonl(single_model, [table], "--title-field", "title")
    model = clause.Classifier(single_model)
    assert model.labels == ["surveillance", "secrecy"]
    assert any(len(t.split()) > 16 for t in corpus), "some texts fill more than one window"
    assert_same(model.predict(corpus, titles=titles), expected)
    assert sorted({label for e in expected for label in e["labels"]}) == ["secrecy", "surveillance"], (
        "the comparison covers both labels flagged"
    )
    # The same through Arrow, the table in several batches.
    arrow = pa.Table.from_pylist(rows).combine_chunks().to_batches(max_chunksize=7)
    result = model.predict_arrow(pa.Table.from_batches(arrow), title_column="title")
    assert_same(records(result, model.labels), expected)
    # A threshold the model's card gives decides the labels, as classify does.
    assert model.thresholds == [label["threshold"] for label in json.loads((single_model / "clause.json").read_text())["labels"]]


def test_predict_equals_classify_for_an_ensemble(ensemble_model: Path, tmp_path: Path) -> None:
    corpus = texts(40, seed=2)
    table = write_jsonl(tmp_path / "rows.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(corpus)])
    expected = classify_jsonl(ensemble_model, [table])
    model = clause.Classifier(ensemble_model, threads=1)
    assert model.members == 2
    assert model.threads == 1
    assert_same(model.predict(corpus), expected)
    # Any thread count gives the same probabilities.
    assert_same(clause.Classifier(ensemble_model, threads=3).predict(corpus), expected)


def test_predict_arrow_round_trips_ids_and_carries_other_columns(single_model: Path) -> None:
    model = clause.Classifier(single_model)
    corpus = texts(25, seed=3)
    table = pa.table(
        {
            "page": pa.array(range(25), pa.int32()),
            "text": pa.array(corpus, pa.large_string()),
            "key": pa.array([1000 + i for i in range(25)], pa.int64()),
            "labels": pa.array([["x"]] * 25),
            "meta": pa.array([{"a": i} for i in range(25)]),
        }
    )
    result = model.predict_arrow(table, id_column="key")
    assert result.column_names == [
        "key", "labels", "score_surveillance", "score_secrecy", "model_sha256",
        "page", "text", "input_labels", "meta",
    ]
    assert result.column("key").to_pylist() == table.column("key").to_pylist()
    assert result.schema.field("key").type == pa.int64()
    for name in ["page", "text", "meta"]:
        assert result.column(name) == table.column(name), name
    assert result.column("input_labels") == table.column("labels")
    assert set(result.column("model_sha256").to_pylist()) == {model.model_sha256}
    assert records(result, model.labels) == [
        {"labels": p["labels"], "scores": p["scores"]} for p in model.predict(corpus)
    ]
    # Without ids, rows keep their order; a RecordBatch, a reader, a
    # DataFrame and an empty table are taken too.
    plain = model.predict_arrow(table.select(["text"]), id_column=None)
    assert plain.column_names[:1] == ["labels"] and plain.num_rows == 25
    batch = pa.record_batch({"id": ["a"], "text": [corpus[0]]})
    assert model.predict_arrow(batch).column("id").to_pylist() == ["a"]
    reader = pa.RecordBatchReader.from_batches(batch.schema, [batch, batch])
    assert model.predict_arrow(reader).num_rows == 2
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"id": ["p", "q"], "text": corpus[:2]})
    assert model.predict_arrow(frame).column("id").to_pylist() == ["p", "q"]
    empty = model.predict_arrow(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}))
    assert empty.num_rows == 0 and empty.column_names[1] == "labels"


def test_bad_input_raises_an_exception_naming_the_problem(single_model: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model: model directory not found"):
        clause.Classifier(missing)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(single_model / "config.json", partial)
    with pytest.raises(FileNotFoundError, match="tokenizer.json: missing"):
        clause.Classifier(partial)
    broken = tmp_path / "broken"
    shutil.copytree(single_model, broken)
    (broken / "clause.json").write_text('{"labels": 3}')
    with pytest.raises(clause.ClauseError, match="clause.json: line 1"):
        clause.Classifier(broken)
    assert issubclass(clause.ClauseError, Exception)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        clause.Classifier(single_model, threads=0)

    model = clause.Classifier(single_model)
    with pytest.raises(ValueError, match=r"no text column `text`; its columns are \[\"id\", \"body\"\]"):
        model.predict_arrow(pa.table({"id": ["a"], "body": ["the data"]}))
    with pytest.raises(ValueError, match="no id column `ref`"):
        model.predict_arrow(pa.table({"text": ["the data"]}), id_column="ref")
    with pytest.raises(TypeError, match="text column `text` holds Int64, not strings"):
        model.predict_arrow(pa.table({"id": ["a"], "text": [3]}))
    with pytest.raises(ValueError, match=r"text column `text` is null at row 1"):
        model.predict_arrow(pa.table({"id": ["a", "b"], "text": ["the data", None]}))
    with pytest.raises(TypeError, match="expected Arrow data"):
        model.predict_arrow(42)
    with pytest.raises(TypeError, match=r"texts\[1\] is int, not str"):
        model.predict(["the data", 3])
    with pytest.raises(TypeError, match="not a single str"):
        model.predict("the data")
    with pytest.raises(ValueError, match="1 titles for 2 texts"):
        model.predict(["the data", "the state"], titles=["x"])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        model.predict(["the data"], batch_size=0)


def test_a_text_longer_than_the_model_reads_is_warned_of(single_model: Path) -> None:
    model = clause.Classifier(single_model)
    with pytest.warns(UserWarning, match="1 of 2 texts are longer than the model reads"):
        model.predict(["the data", "the state shall search " * 200])


def test_predictions_release_the_gil_and_run_side_by_side(ensemble_model: Path) -> None:
    model = clause.Classifier(ensemble_model, threads=1)
    # While one thread predicts, this one runs: Python code runs only when
    # the prediction has released the GIL.
    many = texts(3000, seed=5)
    worker = threading.Thread(target=model.predict, args=(many,))
    spins = 0
    worker.start()
    while worker.is_alive():
        spins += 1
    assert spins > 1000, f"the main thread ran {spins} times while a prediction ran"

    corpus = texts(30, seed=4)
    expected = model.predict(corpus)
    results: dict[int, list[dict[str, Any]]] = {}

    def work(k: int) -> None:
        results[k] = model.predict(corpus)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(results[k] == expected for k in range(4))


def test_model_sha256_is_the_sha256_of_the_listing_of_the_model_files(ensemble_model: Path) -> None:
    files = ["clause.json", "config.json", "tokenizer.json", "members/1/model.safetensors",
             "members/2/model.safetensors"]
    listing = "".join(
        f"{hashlib.sha256((ensemble_model / f).read_bytes()).hexdigest()}  {f}\n" for f in sorted(files)
    )
    model = clause.Classifier(ensemble_model)
    assert model.model_sha256 == hashlib.sha256(listing.encode()).hexdigest()


def test_segment_equals_clause_segment(project: Path) -> None:
    draft = project / "data" / "alpha.md"
    expected = [json.loads(line) for line in run_clause("segment", "--format", "jsonl", str(draft), cwd=project).splitlines()]
    assert clause.segment(draft.read_text(), document="alpha") == expected
    assert clause.segment("") == []


def test_the_stubs_name_what_the_native_module_has() -> None:
    stub = Path(clause.__file__).with_name("_clause.pyi")
    tree = ast.parse(stub.read_text())
    names = {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    names |= {t.id for node in tree.body if isinstance(node, ast.AnnAssign) for t in [node.target]}
    native = {name for name in dir(clause._clause) if not name.startswith("_")} | {"__version__"}
    assert native <= names, native - names
    classifier = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Classifier")
    methods = {n.name for n in classifier.body if isinstance(n, ast.FunctionDef)}
    assert {n for n in dir(clause._clause.Classifier) if not n.startswith("_")} <= methods
    assert (Path(clause.__file__).with_name("py.typed")).is_file()
