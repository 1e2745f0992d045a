"""Read a dataset wherever it is published: files (optionally gzip-compressed), a
``save_to_disk`` folder, or a dataset in the local Hugging Face cache.

Plain JSONL/JSON/CSV/Parquet files go through :func:`governance.records.iter_records`
(streaming, errors as ``file:line: ...``). A ``.gz`` file is decompressed to a
private temporary file of the inner type and read the same way; error messages
name the compressed file. Folders and cached datasets are read with the
``datasets`` library (``load_from_disk`` / ``load_dataset`` offline); their
"line" is the 1-based row number.

What this module believes: the bytes it hashes are the bytes it reads. It
records a SHA-256 for every raw input (a file, each file of a folder, or each
Arrow cache file of a cached dataset) so the report can show them.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.errors import DataError
from governance.lineage import md5_file, sha256_dir, sha256_file
from governance.records import SUPPORTED_SUFFIXES, Record, iter_records

#: ``input:`` values with this prefix name a dataset in the local Hugging Face cache.
HF_CACHE_PREFIX = "hf:"


@dataclass
class Source:
    """Where a dataset comes from: what ``input:`` said, how it was read, and its raw hashes."""

    spec: str
    reader: str
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    folder: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``inputs`` entry: one hash record per raw file."""
        return {name: {**hashes, "reader": self.reader} for name, hashes in self.hashes.items()}


def open_source(spec: str, *, split: str = "train", config: str | None = None) -> tuple[Source, Iterator[Record]]:
    """Resolve ``input:`` to a :class:`Source` and an iterator of its records.

    ``split``/``config`` choose a split of a ``DatasetDict`` folder or of a cached
    dataset; plain files ignore them.
    """
    if spec.startswith(HF_CACHE_PREFIX):
        return _hf_cache(spec, split, config)
    path = Path(spec)
    if path.is_dir():
        return _saved_folder(path, split)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    hashes = {str(path): {"sha256": sha256_file(path), "md5": md5_file(path)}}
    if path.suffix.lower() == ".gz":
        return Source(spec, "gzip+" + path.with_suffix("").suffix.lstrip(".").lower(), hashes), _gzip(path)
    return Source(spec, path.suffix.lstrip(".").lower(), hashes), iter_records(path)


def _gzip(path: Path) -> Iterator[Record]:
    inner = path.with_suffix("").suffix.lower()
    if inner not in SUPPORTED_SUFFIXES:
        raise DataError(
            f"{path}: unsupported compressed file type {inner or '(none)'!r} "
            f"(expected one of {', '.join(s + '.gz' for s in SUPPORTED_SUFFIXES)})"
        )
    with tempfile.TemporaryDirectory(prefix="govern-gz-") as tmp:
        plain = Path(tmp) / f"data{inner}"
        try:
            with gzip.open(path, "rb") as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc.__class__.__name__})") from None
        try:
            yield from iter_records(plain)
        except DataError as exc:
            # The temporary file's name means nothing to the user: name the compressed one
            raise DataError(str(exc).replace(str(plain), str(path), 1)) from None


def _rows(dataset, where: str) -> Iterator[Record]:
    for index, row in enumerate(dataset, start=1):
        if not isinstance(row, dict):
            raise DataError(f"{where}:{index}: expected a record with named fields")
        yield Record(index, row)


def _pick_split(loaded, where: str, split: str):
    from datasets import DatasetDict

    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise DataError(f"{where}: no split {split!r} (splits: {', '.join(sorted(loaded))}); set split:")
        return loaded[split]
    return loaded


def _saved_folder(path: Path, split: str) -> tuple[Source, Iterator[Record]]:
    if not any((path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
        raise DataError(f"{path}: a folder but not a datasets save_to_disk folder (no dataset_info.json)")
    from datasets import load_from_disk

    try:
        dataset = _pick_split(load_from_disk(str(path)), str(path), split)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot load the saved dataset ({str(exc).splitlines()[0][:200]})") from None
    hashes = {
        str(file): {"sha256": sha256_file(file), "md5": md5_file(file)}
        for file in sorted(p for p in path.rglob("*") if p.is_file())
    }
    source = Source(str(path), "save_to_disk", hashes, folder=path, info=_info(dataset))
    source.info["folder_sha256"] = sha256_dir(path, exclude=())
    return source, _rows(dataset, str(path))


def _hf_cache(spec: str, split: str, config: str | None) -> tuple[Source, Iterator[Record]]:
    import os

    from datasets import load_dataset

    name = spec[len(HF_CACHE_PREFIX) :]
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        dataset = load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many unrelated types for "not cached"
        raise DataError(
            f"{spec}: not a dataset in the local Hugging Face cache ({exc.__class__.__name__}); "
            "the pipeline runs offline: download it first or give a file"
        ) from None
    hashes = {}
    for cache in dataset.cache_files:
        file = Path(cache["filename"])
        hashes[f"{spec}/{file.name}"] = {"sha256": sha256_file(file), "md5": md5_file(file)}
    return Source(spec, "hf_cache", hashes, folder=_card_folder(name), info=_info(dataset)), _rows(dataset, spec)


def _card_folder(name: str) -> Path | None:
    """Where the dataset's README.md (its card) lives: a local dataset folder, or its cached Hub snapshot."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, repo_type="dataset", local_files_only=True))
    except Exception:  # not cached as a snapshot (e.g. only the Arrow cache): no card to read
        return None


def _info(dataset) -> dict[str, Any]:
    info = getattr(dataset, "info", None)
    if info is None:
        return {}
    return {
        key: value
        for key in ("dataset_name", "description", "license", "homepage", "citation")
        if (value := getattr(info, key, None))
    }
