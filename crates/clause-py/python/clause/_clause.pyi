"""Type stubs of the native module `clause._clause` (crates/clause-py/src)."""

from os import PathLike
from pathlib import Path
from typing import Any, Optional, Sequence, TypedDict, Union

__version__: str

class ClauseError(Exception):
    """A model directory that cannot be loaded or run, with the message that
    names the file and what is wrong."""

class Prediction(TypedDict):
    labels: list[str]
    scores: dict[str, float]

class ArrowStream:
    """Results held in Rust, exported through the Arrow PyCapsule interface."""

    @property
    def num_rows(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...

class Classifier:
    def __init__(self, model_dir: Union[str, PathLike[str]], threads: Optional[int] = None) -> None: ...
    @property
    def labels(self) -> list[str]: ...
    @property
    def thresholds(self) -> list[float]: ...
    @property
    def model_sha256(self) -> str: ...
    @property
    def model_dir(self) -> Path: ...
    @property
    def threads(self) -> int: ...
    @property
    def members(self) -> int: ...
    def predict(
        self,
        texts: Sequence[str],
        *,
        titles: Optional[Sequence[Optional[str]]] = None,
        batch_size: int = 32,
    ) -> list[Prediction]: ...
    def predict_stream(
        self,
        data: Any,
        text_column: str = "text",
        id_column: Optional[str] = "id",
        *,
        title_column: Optional[str] = None,
        batch_size: int = 32,
    ) -> ArrowStream: ...

def segment(text: str, document: str = "document") -> list[dict[str, Any]]: ...
