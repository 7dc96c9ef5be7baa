"""Fixtures: tiny models trained by the `clause` binary on a tiny recipe.

The recipe is tests/review.rs's: three drafts in the tiny base model's twelve
words, "search"/"seize" meaning surveillance and "secret"/"confidential"
secrecy. The base is the tiny model directory of
tests/fixtures/previous-release (`clause_train::fixtures::tiny_base`'s
vocabulary, trained for two epochs), which `clause train --base` takes as it
takes any BERT directory; training from it takes about a second.

The binary is `$CLAUSE_BIN`, else `target/debug/clause` (built by `cargo
test` or `cargo build`); it must be current with the extension module, since
the tests compare the two.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "tests" / "fixtures" / "previous-release" / "model"

#: What the tests report at the end of the run (pytest_terminal_summary).
REPORT: list[str] = []

DRAFTS = {
    "alpha": "Article 1\n\n1. the party shall search the data\n2. the state may seize data\n"
    "3. the party shall keep it secret\n4. the state shall\n\n"
    "Article 2\n\n1. the party may search and keep confidential\n2. the data shall\n"
    "3. the state may seize the secret data\n4. the party may\n\n"
    "Article 3\n\n1. the state shall search\n2. the party shall keep confidential\n"
    "3. the party may seize\n4. the data may\n",
    "beta": "Article 1\n\n1. the party may search data\n2. the state shall keep secret\n"
    "3. the data may\n4. the state may seize and keep confidential\n",
    "gamma": "Article 1\n\n1. the state may search\n2. the party may keep confidential\n"
    "3. the party shall\n4. the state shall seize the secret data\n",
}

WORDS = ["search", "seize", "extradite", "surrender", "secret", "confidential", "the", "party", "shall", "may",
         "data", "state"]


def labels_of(text: str) -> list[str]:
    labels = []
    if "search" in text or "seize" in text:
        labels.append("surveillance")
    if "secret" in text or "confidential" in text:
        labels.append("secrecy")
    return labels


def clause_bin() -> Path:
    binary = Path(os.environ.get("CLAUSE_BIN", ROOT / "target" / "debug" / "clause"))
    if not binary.is_file():
        raise RuntimeError(f"{binary}: no clause binary; run `cargo build` first (or set CLAUSE_BIN)")
    return binary


def run_clause(*args: str, cwd: Path) -> str:
    """Run `clause` and return its stdout; a failure shows its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUSE_") or k == "CLAUSE_BIN"}
    done = subprocess.run([str(clause_bin()), *args], cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise AssertionError(f"clause {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def classify_jsonl(model: Path, inputs: list[Path], *extra: str) -> list[dict[str, Any]]:
    """`clause classify --format jsonl` records."""
    out = run_clause("classify", "--model", str(model), *map(str, inputs), "--format", "jsonl", *extra,
                     cwd=model.parent)
    return [json.loads(line) for line in out.splitlines()]


def texts(count: int, seed: int) -> list[str]:
    """Provision-like texts in the tiny vocabulary: one to three sentences,
    some longer than a 16-token window."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))) for _ in range(rng.randint(1, 3))]
        out.append(". ".join(sentences) + ".")
    return out


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny recipe `datasets/x` over `data/`, as tests/review.rs writes it."""
    root = tmp_path_factory.mktemp("project")
    sources = ""
    annotation_files = []
    for name, text in DRAFTS.items():
        path = root / "data" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        sources += f'[[sources]]\nformat = "draft"\npath = "{name}.md"\nsha256 = "{sha}"\n'
        template = run_clause("segment", "--format", "annotations", str(path), cwd=root)
        lines = ""
        for line in template.splitlines():
            fields = line.split("\t")
            labels = ",".join(labels_of(fields[3])) or "-"
            lines += f"{fields[0]}\t{fields[1]}\t{labels}\t{fields[3]}\n"
        annotations = root / "datasets" / "x" / "annotations" / f"{name}.tsv"
        annotations.parent.mkdir(parents=True, exist_ok=True)
        annotations.write_text(lines)
        annotation_files.append(f'"annotations/{name}.tsv"')
    (root / "datasets" / "x" / "dataset.toml").write_text(
        f'name = "x"\ndescription = "tiny"\nannotations = [{", ".join(annotation_files)}]\n'
        '[[labels]]\nname = "surveillance"\ndescription = "search and seizure words"\n'
        '[[labels]]\nname = "secrecy"\ndescription = "secrecy words"\n'
        f'{sources}[split]\nmethod = "documents"\nvalidation = ["beta"]\ntest = ["gamma"]\n'
    )
    return root


def train(project: Path, out: str, settings: str) -> Path:
    (project / f"{out}.toml").write_text(settings)
    run_clause("train", "datasets/x", "--base", str(BASE), "--out", out, "--data-root", "data",
               "--config", f"{out}.toml", cwd=project)
    return project / out


@pytest.fixture(scope="session")
def single_model(project: Path) -> Path:
    """One model that reads headings, sentence by sentence, 16 tokens at a
    time (so that longer texts are read in windows)."""
    return train(project, "single", 'context = "headings"\nreading = "sentences"\nmax_length = 16\n'
                 "epochs = 30\nbatch_size = 4\nlearning_rate = 0.005\n")


@pytest.fixture(scope="session")
def ensemble_model(project: Path) -> Path:
    """An ensemble of two models that read the text alone, whole."""
    return train(project, "ensemble", "ensemble = 2\nepochs = 3\nbatch_size = 4\nlearning_rate = 0.005\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("clause")
        for line in REPORT:
            terminalreporter.write_line(line)
