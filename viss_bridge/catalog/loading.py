"""Reading records from files (JSON lines, JSON arrays, CSV) for ``catalog load``.

Every row is checked against the manifest before anything is written, and a
bad row is reported with its file and line, so an operator never loads half
a file or hunts for the broken row.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from viss_bridge.catalog.manifest import Dataset, FieldType
from viss_bridge.catalog.values import ValueProblem, compose_key, constraint_problem, record_to_python


class RecordFileError(ValueError):
    def __init__(self, file: Path, line: int | None, message: str) -> None:
        self.file, self.line = file, line
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


def read_records(dataset: Dataset, path: str | Path) -> list[dict[str, Any]]:
    """All records of the file as Python values, or RecordFileError naming the first bad line."""
    path = Path(path)
    rows = list(_rows(dataset, path))
    result = []
    for line, row in rows:
        try:
            record = record_to_python(dataset.fields, row)
            compose_key(dataset.key_fields, record)  # a row without its key is refused here, not in the store
            problem = constraint_problem(dataset.fields, record)  # enum and max_length, at any depth
            if problem:
                raise ValueProblem(problem)
            result.append(record)
        except ValueProblem as exc:
            raise RecordFileError(path, line, str(exc)) from None
    return result


def _rows(dataset: Dataset, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordFileError(path, None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RecordFileError(path, None, f"not UTF-8 text: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # objects and lists (of objects or of values) are JSON inside their CSV cell
        lists = {f.name for f in dataset.fields if not f.is_scalar}
        empty_lists = {f.name for f in dataset.fields if f.type is FieldType.LIST}
        reader = csv.DictReader(text.splitlines())
        for row in reader:
            cleaned: dict[str, Any] = {}
            for name, value in row.items():
                if name is None:
                    raise RecordFileError(path, reader.line_num, "more values than header columns")
                if name in lists:
                    try:
                        cleaned[name] = json.loads(value) if value else ([] if name in empty_lists else None)
                    except json.JSONDecodeError as exc:
                        raise RecordFileError(path, reader.line_num,
                                              f"{name}: object and list columns hold JSON: {exc}") from None
                else:
                    cleaned[name] = value if value != "" else None
            yield reader.line_num, cleaned
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordFileError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
        if not isinstance(data, list):
            raise RecordFileError(path, 1, "a .json file must hold an array of records")
        for index, item in enumerate(data):
            yield index + 1, item
    elif suffix in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordFileError(path, number, f"not valid JSON: {exc.msg}") from None
    else:
        raise RecordFileError(path, None, "unknown file type; use .jsonl, .json or .csv")


def reporting(records: Iterable[dict[str, Any]], progress: Callable[[int, int | None], None] | None,
              total: int | None = None, start: int = 0, every: int = 200) -> Iterator[dict[str, Any]]:
    """Pass ``records`` through to the store, telling ``progress(done, total)`` how many went by.

    ``start`` continues a count over several datasets (the demo's registers); ``progress`` hears
    every ``every`` records and once at the end, so a terminal's progress bar stays cheap.
    """
    done = start
    for done, record in enumerate(records, start + 1):
        yield record
        if progress is not None and done % every == 0:
            progress(done, total)
    if progress is not None:
        progress(done, total)
