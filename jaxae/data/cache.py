"""The decoded-array cache: cache_dir()/<name>.npz, reused while its source files are unchanged."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxae.data.core import Dataset, one_line

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = pathlib.Path("~/.cache/jaxae")
CACHE_FORMAT_VERSION = 1

_ARRAY_FIELDS = ("train_images", "train_labels", "test_images", "test_labels")


def cache_dir() -> pathlib.Path:
    """Where decoded datasets are cached: $JAXAE_CACHE_DIR, else ~/.cache/jaxae."""
    env = os.environ.get("JAXAE_CACHE_DIR", "")
    return pathlib.Path(env).expanduser() if env else DEFAULT_CACHE_DIR.expanduser()


def files_under(directory: pathlib.Path) -> list[pathlib.Path]:
    """Every file below directory, at any depth."""
    return [p for p in directory.rglob("*") if p.is_file()]


def file_stamp(paths: Sequence[pathlib.Path]) -> list[list[Any]]:
    """[[path, size, mtime_ns], ...] sorted by path: what says a cache is still current."""
    stamps = []
    for p in sorted(paths):
        st = p.stat()
        stamps.append([str(p), st.st_size, st.st_mtime_ns])
    return stamps


def key(name: str, source: str, stamp: list[list[Any]]) -> str:
    """The string a cache entry must match: format version, dataset, source and file stamp."""
    return json.dumps(
        {"version": CACHE_FORMAT_VERSION, "name": name, "source": source, "files": stamp}
    )


def _path(name: str) -> pathlib.Path:
    return cache_dir() / f"{name}.npz"


def read(name: str, cache_key: str) -> Dataset | None:
    """The cached dataset if present and made with the same `cache_key`, else None."""
    arrays = read_arrays(name, cache_key)
    if arrays is None:
        return None
    fields = {f: arrays[f] for f in _ARRAY_FIELDS}
    origin = str(arrays["source"])
    return Dataset(
        name=name,
        num_classes=int(arrays["num_classes"]),
        source=f"cache:{_path(name)} (from {origin})",
        **fields,
    )


def write(ds: Dataset, cache_key: str) -> None:
    """Saves the full decoded arrays atomically (temp file + os.replace); failures only warn."""
    arrays = {field: getattr(ds, field) for field in _ARRAY_FIELDS}
    write_arrays(
        ds.name,
        cache_key,
        num_classes=np.array(ds.num_classes),
        source=np.array(ds.source),
        **arrays,
    )


def read_arrays(name: str, cache_key: str) -> dict[str, np.ndarray] | None:
    """The arrays cached under `name` if made with the same `cache_key`, else None; a damaged
    cache file warns, is removed and reads as None (it is rebuilt from the source)."""
    path = _path(name)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != cache_key:
                log.info("cache %s is stale (source changed); rebuilding", path)
                return None
            return {k: npz[k] for k in npz.files if k != "key"}
    except Exception as e:  # any damage means: drop it and rebuild
        warnings.warn(
            f"ignoring corrupt dataset cache {path} ({one_line(e)}); rebuilding it",
            RuntimeWarning,
            stacklevel=4,
        )
        path.unlink(missing_ok=True)
        return None


def write_arrays(name: str, cache_key: str, **arrays: np.ndarray) -> None:
    """Saves `arrays` under `name` atomically (temp file + os.replace); failures only warn."""
    path = _path(name)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as f:
            tmp_name = f.name
            np.savez(f, key=np.array(cache_key), **arrays)
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as e:
        warnings.warn(f"could not cache {name} in {path}: {e}", RuntimeWarning, stacklevel=4)
    finally:
        if tmp_name is not None:
            pathlib.Path(tmp_name).unlink(missing_ok=True)
