"""Classify Parquet shards on a Ray cluster, Parquet to Parquet.

    python -m clause.ray --model models/treaty-risk shards/ --out results/ --workers 8
    clause-ray --model models/treaty-risk shards/*.parquet --out results/ --address auto

Each worker is a Ray actor that loads the model once and classifies the
batches it is given (``ray.data.read_parquet(...).map_batches(...,
concurrency=workers)``); Ray restarts a worker that dies and retries its
batch. The results are written to a staging directory first and then
deduplicated by id into ``output_dir``, so a batch that was retried after its
results were written appears once. Every row needs a unique, non-null id.

On a cluster, every node needs the ``clause`` package installed in the
Python environment Ray's workers run in, and the model directory at the same
path; the inputs and ``output_dir`` must be on storage every node can read
and write (a shared file system).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import sys
import time
import uuid
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["classify", "main"]

class ClassifyBatches:
    """The Ray Data UDF: one model per actor, Arrow batches in and out."""

    def __init__(
        self,
        model_dir: str,
        threads: int,
        text_column: str,
        id_column: str,
        title_column: Optional[str],
        exit_once: Optional[tuple[str, str]] = None,
        load_log: Optional[str] = None,
    ) -> None:
        import clause

        self._classifier = clause.Classifier(model_dir, threads=threads)
        self._text_column = text_column
        self._id_column = id_column
        self._title_column = title_column
        self._exit_once = exit_once
        if load_log is not None:
            os.makedirs(load_log, exist_ok=True)
            name = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
            with open(os.path.join(load_log, name), "w"):
                pass

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self._exit_once is not None:
            batch = self._maybe_exit(batch)
        ids = batch.column(self._id_column) if self._id_column in batch.column_names else None
        if ids is not None and ids.null_count:
            raise ValueError(f"the id column `{self._id_column}` has {ids.null_count} null values: every row needs an id")
        return self._classifier.predict_arrow(
            batch,
            self._text_column,
            self._id_column,
            title_column=self._title_column,
        )

    def _maybe_exit(self, batch: pa.Table) -> pa.Table:
        """For the fault-tolerance test: exit the process, the first time in
        the whole job (a marker file says so), on a batch with rows from an
        input whose path contains the given text."""
        text, marker = self._exit_once  # type: ignore[misc]
        paths = batch.column("path").to_pylist()
        if any(text in path for path in paths):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os._exit(70)
        return batch.drop_columns(["path"])


def classify(
    model_dir: Union[str, os.PathLike],
    input_paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    output_dir: Union[str, os.PathLike],
    workers: int = 1,
    threads_per_worker: int = 1,
    address: Optional[str] = None,
    *,
    text_column: str = "text",
    id_column: str = "id",
    title_column: Optional[str] = None,
    batch_size: int = 1024,
    _exit_once: Optional[tuple[str, str]] = None,
    _load_log: Optional[str] = None,
) -> dict[str, Any]:
    """Classify every row of the Parquet files (or directories of them) in
    ``input_paths`` with ``workers`` Ray actors of ``threads_per_worker``
    threads each, and write the results as Parquet into ``output_dir``
    (created; it must hold no Parquet files yet).

    ``address`` is a Ray cluster's address (``"auto"``, ``"ray://host:10001"``);
    None joins the cluster this process is already connected to, or starts
    a local one of ``workers * threads_per_worker + 1`` CPUs (the one for
    reading and writing). ``batch_size`` rows go to a worker at a time, the
    unit Ray retries when a worker dies. Output rows have the columns of
    :meth:`clause.Classifier.predict_arrow`. Returns a summary: rows, duplicate
    rows dropped (a retried batch written twice), files and seconds.
    """
    import ray

    if workers < 1 or threads_per_worker < 1:
        raise ValueError("workers and threads_per_worker must be at least 1")
    model_dir = os.path.abspath(os.fspath(model_dir))
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"{model_dir}: model directory not found (it must be at this path on every node)")
    if isinstance(input_paths, (str, os.PathLike)):
        input_paths = [input_paths]
    paths = [os.path.abspath(os.fspath(p)) for p in input_paths]
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such input file or directory")
    output_dir = os.path.abspath(os.fspath(output_dir))
    if glob.glob(os.path.join(output_dir, "*.parquet")):
        raise FileExistsError(f"{output_dir}: already holds Parquet files; give an empty or new directory")
    os.makedirs(output_dir, exist_ok=True)
    staging = os.path.join(output_dir, f".staging-{uuid.uuid4().hex}")

    started = time.monotonic()
    # Ray Data's reading and writing take a CPU of their own besides the
    # workers'; without one free the job waits forever.
    needed = workers * threads_per_worker + 1
    joined = False
    if not ray.is_initialized():
        if address is None and not os.environ.get("RAY_ADDRESS"):
            # A local cluster of as many logical CPUs as the job takes: the
            # reading and writing task is light beside the workers.
            ray.init(num_cpus=needed)
        else:
            ray.init(address=address)
        joined = True
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < needed:
            warnings.warn(
                f"the Ray cluster has {cpus:g} CPUs; {workers} workers of {threads_per_worker} threads take "
                f"{needed - 1} and reading and writing one more: the job waits until the cluster has {needed}",
                stacklevel=2,
            )
        dataset = ray.data.read_parquet(paths, include_paths=_exit_once is not None)
        # Blocks of `batch_size` rows, however the files are cut: a block is
        # what a worker is given at a time and what Ray retries, so every
        # worker has work even when the input is a few small files.
        dataset = dataset.repartition(target_num_rows_per_block=batch_size)
        dataset = dataset.map_batches(
            ClassifyBatches,
            fn_constructor_kwargs={
                "model_dir": model_dir,
                "threads": threads_per_worker,
                "text_column": text_column,
                "id_column": id_column,
                "title_column": title_column,
                "exit_once": _exit_once,
                "load_log": _load_log,
            },
            batch_format="pyarrow",
            batch_size=batch_size,
            # A fixed pool of `workers` actors; Ray Data restarts an actor
            # that dies and retries its batch (max_restarts and
            # max_task_retries default to -1 for actor pools: without limit).
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads_per_worker,
        )
        dataset.write_parquet(staging)
    finally:
        if joined:
            ray.shutdown()
    rows, duplicates, files = _deduplicate(staging, output_dir, id_column)
    shutil.rmtree(staging)
    return {
        "rows": rows,
        "duplicates_dropped": duplicates,
        "files": files,
        "seconds": time.monotonic() - started,
        "output_dir": output_dir,
    }


def _deduplicate(staging: str, output_dir: str, id_column: str) -> tuple[int, int, int]:
    """Move the staged files into ``output_dir`` as ``part-NNNNN.parquet``,
    keeping the first row of each id (in file-name order) and dropping any
    later one; a file with nothing to drop is moved as it is. Returns rows
    kept, rows dropped and files written."""
    files = sorted(glob.glob(os.path.join(staging, "**", "*.parquet"), recursive=True))
    if not files:
        return 0, 0, 0
    columns = [pq.read_table(f, columns=[id_column]).column(0) for f in files]
    counts = [len(column) for column in columns]
    total = sum(counts)
    ids = pa.chunked_array([chunk for column in columns for chunk in column.chunks], type=columns[0].type)
    positions = pa.array(np.arange(total, dtype=np.int64))
    # The first position of each id, by Arrow's hash aggregation.
    first = pa.table({"id": ids, "position": positions}).group_by("id", use_threads=False).aggregate(
        [("position", "min")]
    )
    kept = pc.is_in(positions, value_set=first.column("position_min").combine_chunks())
    duplicates = total - first.num_rows
    written = 0
    start = 0
    for index, (path, count) in enumerate(zip(files, counts)):
        mask = kept.slice(start, count)
        start += count
        target = os.path.join(output_dir, f"part-{index:05d}.parquet")
        if pc.all(mask).as_py() in (True, None):
            os.replace(path, target)
        else:
            table = pq.read_table(path).filter(mask)
            pq.write_table(table, target + ".tmp")
            os.replace(target + ".tmp", target)
        written += 1
    return total - duplicates, duplicates, written


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m clause.ray`` and the ``clause-ray`` console script."""
    parser = argparse.ArgumentParser(
        prog="python -m clause.ray",
        description="Classify the rows of Parquet files on a Ray cluster (or a local one) and write the results "
        "as Parquet, deduplicated by id.",
    )
    parser.add_argument("inputs", nargs="+", help="Parquet files or directories of them")
    parser.add_argument("--model", required=True, help="model directory (at the same path on every node)")
    parser.add_argument("--out", required=True, help="output directory (new or empty)")
    parser.add_argument("--workers", type=int, default=1, help="Ray actors, each loading the model once (1)")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="CPU threads of each worker (1)")
    parser.add_argument("--address", default=None, help="Ray cluster address (`auto`, `ray://host:10001`); "
                        "default: start a local cluster")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--title-column", default=None, help="column of headings, for a model trained with them")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="rows given to a worker at a time, the unit retried when a worker dies (1024)")
    args = parser.parse_args(argv)
    try:
        summary = classify(
            args.model,
            args.inputs,
            args.out,
            workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            address=args.address,
            text_column=args.text_column,
            id_column=args.id_column,
            title_column=args.title_column,
            batch_size=args.batch_size,
        )
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
