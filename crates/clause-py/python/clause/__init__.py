"""clause: find the risky provisions in legal drafts, from Python.

    import clause
    model = clause.Classifier("models/treaty-risk")
    model.predict(["Each Party shall empower its authorities to intercept content data."])
    scores = model.predict_arrow(table)          # a pyarrow.Table: id, labels, score_<label>, ...
    clause.segment(open("draft.md").read(), document="draft")

The model is run by the same Rust code as the `clause` binary: the same
reading (headings, windows, sentences), calibration and thresholds, so
`predict` gives what `clause classify --format jsonl` gives for the same
texts. `clause.ray` runs it over Parquet shards on a Ray cluster.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional

# As the `clause` binary does at start (crates/clause-infer/src/runtime.rs):
# candle's own element-wise pool is kept to the calling thread, so that the
# threads of a prediction do not queue on it. candle reads the variable
# once, when its pool is first used; a value the user set is kept.
os.environ.setdefault("CANDLE_NUM_THREADS", "1")

from clause._clause import ArrowStream, ClauseError, __version__, segment  # noqa: E402
from clause._clause import Classifier as _NativeClassifier  # noqa: E402

if TYPE_CHECKING:
    import pyarrow

__all__ = ["ArrowStream", "ClauseError", "Classifier", "__version__", "segment"]


class Classifier(_NativeClassifier):
    """A trained model directory (a single model or an ensemble), loaded once.

    ``Classifier(model_dir, threads=None)``: ``threads`` is this classifier's
    own thread count (default ``RAYON_NUM_THREADS``, else the cores, as the
    ``clause`` binary takes). Prediction releases the GIL.

    A missing model directory or file raises ``FileNotFoundError``; a
    directory that cannot be loaded, ``clause.ClauseError``.
    """

    def predict_arrow(
        self,
        data: Any,
        text_column: str = "text",
        id_column: Optional[str] = "id",
        *,
        title_column: Optional[str] = None,
        batch_size: int = 32,
    ) -> "pyarrow.Table":
        """Classify every row of a table and return a ``pyarrow.Table``.

        ``data`` is a pyarrow Table, RecordBatch or RecordBatchReader, or
        anything with ``__arrow_c_stream__`` (a polars DataFrame), or
        anything ``pyarrow.table`` takes (a pandas DataFrame, a dict of
        lists). The result has, in input order: the id column (omitted when
        ``id_column`` is None), ``labels`` (the labels at the model's
        thresholds), ``score_<label>`` for every label, ``model_sha256``,
        then every other input column (``input_<name>`` where the name is
        taken). ``title_column`` names a column of headings, for a model
        trained with them.

        A missing column raises ``ValueError``; a text column that does not
        hold strings, ``TypeError``; a null text, ``ValueError`` naming the
        row.
        """
        import pyarrow as pa

        stream = self.predict_stream(
            _arrow_stream(data),
            text_column,
            id_column,
            title_column=title_column,
            batch_size=batch_size,
        )
        return pa.table(stream)


def _arrow_stream(data: Any) -> Any:
    """``data`` as an object with ``__arrow_c_stream__``."""
    if hasattr(data, "__arrow_c_stream__"):
        return data
    import pyarrow as pa

    try:
        return pa.table(data)
    except (TypeError, ValueError, pa.ArrowException) as err:
        raise TypeError(
            "expected Arrow data (a pyarrow Table or RecordBatch, an object with __arrow_c_stream__) "
            f"or a DataFrame, not {type(data).__name__}"
        ) from err
