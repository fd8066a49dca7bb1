"""IDX files (the MNIST format): read_idx, where to look for the four files, and decoding them."""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import zlib

import numpy as np

from jaxae.data.core import Dataset

# Module-level so tests (and unusual machines) can monkeypatch it: jaxae.data.idx.DEBIAN_DATA_ROOT.
DEBIAN_DATA_ROOT = pathlib.Path(os.environ.get("JAXAE_DEBIAN_DATA_ROOT", "/usr/share/datasets"))

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an IDX file (gzip or raw) with numpy -> array of its dims in native byte order.

    Raises ValueError naming the file when it is not a well-formed IDX file.
    """
    path = pathlib.Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic: decide by content, not by the file name
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from e
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(raw)} bytes)")
    zero, code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} "
            "(expected 0x0000 then a type code 08/09/0B/0C/0D/0E and the number of dims)"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header says 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: np.prod would overflow
    if math.prod(d for d in dims if d) * dtype.itemsize > np.iinfo(np.intp).max:
        raise ValueError(f"{path}: IDX dims {dims} describe an impossibly large array")
    payload = len(raw) - header
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX payload {what}: dims {dims} of {dtype.name} need {expected} bytes, "
            f"file has {payload}"
        )
    array = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native order, and a writable copy


def search_dirs(name: str) -> list[tuple[str, list[pathlib.Path]]]:
    """IDX directories in search order, grouped under the label the error message uses."""
    hyphen = name.replace("_", "-")
    groups: list[tuple[str, list[pathlib.Path]]] = []
    env = os.environ.get("JAXAE_DATA_DIR", "")
    if env:
        root = pathlib.Path(env).expanduser()
        # Subdirectories first: MNIST and Fashion-MNIST use the same file names.
        dirs = list(dict.fromkeys([root / name, root / hyphen, root]))
        groups.append((f"$JAXAE_DATA_DIR={root} (and its {name}/, {hyphen}/)", dirs))
    else:
        groups.append(("$JAXAE_DATA_DIR (unset)", []))
    debian = DEBIAN_DATA_ROOT / hyphen
    groups.append((str(debian), [debian]))
    return groups


def find_files(directory: pathlib.Path) -> tuple[dict[str, pathlib.Path], list[str]]:
    """The four IDX files found in directory (.gz preferred), and the names of missing ones."""
    found, missing = {}, []
    for field, stem in IDX_FILES.items():
        for candidate in (directory / f"{stem}.gz", directory / stem):
            if candidate.is_file():
                found[field] = candidate
                break
        else:
            missing.append(f"{stem}[.gz]")
    return found, missing


def read_dataset(
    name: str, files: dict[str, pathlib.Path], source: str, num_classes: int
) -> Dataset:
    """The Dataset in the four IDX `files` (keys of IDX_FILES): images [N, H, W(, C)] uint8 ->
    [N, H, W, C], labels [N] in 0..num_classes-1 -> int32. A malformed file: ValueError naming it.
    """
    arrays = {field: read_idx(path) for field, path in files.items()}
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim == 3:  # IDX stores [N, H, W]; we keep an explicit channel axis
            images = images[..., None]
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"{files[f'{split}_images']}: expected uint8 [N, H, W] images, "
                f"got {images.dtype} {images.shape}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{files[f'{split}_labels']}: expected {len(images)} labels, got {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{files[f'{split}_labels']}: labels outside 0..{num_classes - 1}")
        out[f"{split}_images"] = np.ascontiguousarray(images)
        out[f"{split}_labels"] = labels.astype(np.int32)
    return Dataset(name=name, num_classes=num_classes, source=source, **out)
