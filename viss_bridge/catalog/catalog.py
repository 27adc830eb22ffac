"""The catalog: every dataset manifest in one folder, loaded and versioned.

A catalog is immutable once loaded; a reload builds a new one and the server
swaps it in whole, so a request never sees half of a change. ``fingerprint``
changes when any manifest file changes, which is how workers notice reloads
without talking to each other.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from viss_bridge.catalog.manifest import Dataset, ManifestError, load_manifest, parse_manifest

MANIFEST_SUFFIXES = (".yaml", ".yml")


class CatalogError(ValueError):
    """One or more manifests are wrong; ``errors`` has each with file and line."""

    def __init__(self, errors: list[ManifestError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class Catalog:
    datasets: dict[str, Dataset]
    folders: tuple[str, ...] = ()
    fingerprint: str = ""
    version_hash: str = field(default="")

    def __iter__(self) -> Iterator[Dataset]:
        return iter(sorted(self.datasets.values(), key=lambda d: d.dataset))

    def __len__(self) -> int:
        return len(self.datasets)

    def __contains__(self, name: object) -> bool:
        return name in self.datasets

    def get(self, name: str) -> Dataset | None:
        return self.datasets.get(name)

    def owners(self) -> list[str]:
        return sorted({d.owner for d in self.datasets.values()})


def manifest_files(folders: list[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        files.extend(sorted(p for p in folder.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file()))
    return files


def folder_fingerprint(folders: list[Path]) -> str:
    """Cheap change detector: names, sizes and mtimes of the manifest files."""
    digest = hashlib.sha256()
    for path in manifest_files(folders):
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class _ParseCache:
    """Manifests already validated, by path and content: a reload re-validates only what changed.

    With all of VISS (745 manifests) in one folder, an edit of one file must not cost the
    validation of every other one. The key is the file's exact bytes, so a file rewritten with
    the same text is not parsed again, and any change is.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Path, tuple[str, Dataset | ManifestError]] = {}

    def load(self, path: Path) -> Dataset:
        try:
            raw = path.read_bytes()
        except OSError:
            return load_manifest(path)  # names the problem with the file
        digest = hashlib.sha256(raw).hexdigest()
        with self._lock:
            cached = self._entries.get(path)
        if cached is not None and cached[0] == digest:
            result = cached[1]
        else:
            try:
                result = parse_manifest(raw.decode("utf-8"), path)
            except UnicodeDecodeError as exc:
                result = ManifestError(path, None, None, f"not UTF-8 text: {exc}")
            except ManifestError as exc:
                result = exc
            with self._lock:
                self._entries[path] = (digest, result)
        if isinstance(result, ManifestError):
            raise result
        return result

    def forget_except(self, present: set[Path]) -> None:
        with self._lock:
            for path in [p for p in self._entries if p not in present]:
                del self._entries[path]


_PARSED = _ParseCache()


def _load(paths: list[Path]) -> tuple[dict[str, Dataset], list[ManifestError]]:
    datasets: dict[str, Dataset] = {}
    errors: list[ManifestError] = []
    files = manifest_files(paths)
    for path in files:
        try:
            dataset = _PARSED.load(path)
        except ManifestError as exc:
            errors.append(exc)
            continue
        if dataset.dataset in datasets:
            errors.append(ManifestError(path, 1, "dataset",
                                        f"dataset '{dataset.dataset}' is already defined in {datasets[dataset.dataset].origin}"))
            continue
        datasets[dataset.dataset] = dataset
    _PARSED.forget_except(set(files))
    return datasets, errors


def _catalog(datasets: dict[str, Dataset], paths: list[Path], fingerprint: str) -> Catalog:
    content = hashlib.sha256()
    for name in sorted(datasets):
        content.update(datasets[name].model_dump_json().encode())
    return Catalog(datasets=datasets, folders=tuple(str(p) for p in paths),
                   fingerprint=fingerprint, version_hash=content.hexdigest()[:16])


def _folders(folders: tuple[str | os.PathLike[str], ...]) -> list[Path]:
    paths = [Path(f) for f in folders]
    for path in paths:
        if not path.is_dir():
            raise CatalogError([ManifestError(path, None, None, "catalog folder does not exist")])
    return paths


def load_catalog(*folders: str | os.PathLike[str]) -> Catalog:
    """Load every manifest in the folders; raise :class:`CatalogError` listing all problems.

    Several folders let a deployment combine a shipped catalog with local ones;
    a dataset name may appear only once across them.
    """
    paths = _folders(folders)
    fingerprint = folder_fingerprint(paths)
    datasets, errors = _load(paths)
    if errors:
        raise CatalogError(errors)
    return _catalog(datasets, paths, fingerprint)


def load_catalog_keeping(previous: Catalog | None, *folders: str | os.PathLike[str]) -> tuple[Catalog, list[ManifestError]]:
    """Load what is valid; for a manifest that is now broken keep its previously published version.

    A running bridge uses this on reload (and when a worker restarts), so that
    one bad edit neither blocks the other manifests nor unpublishes the
    dataset it broke, and every worker converges on the same set.
    """
    paths = _folders(folders)
    fingerprint = folder_fingerprint(paths)
    datasets, errors = _load(paths)
    if previous is not None:
        for error in errors:
            stem = Path(error.file).stem
            kept = previous.datasets.get(stem)
            if kept is not None and kept.origin == error.file and stem not in datasets:
                datasets[stem] = kept
    return _catalog(datasets, paths, fingerprint), errors
