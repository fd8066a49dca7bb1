"""`array:PATH`: numpy arrays in a .npy or .npz file.

A .npy holds x; a .npz holds x and optional integer labels y (one split, divided as
jaxae.data.own describes), or x_train, x_test and optional y_train, y_test (both splits).
dataset.test_path names a second file of the same form as the test split.

x is [N, H, W, C] (or [N, H, W], given one channel) images, uint8 or float in [0, 1]; or
[N, D] feature vectors of any numeric dtype, scaled per feature by dataset.scaling (fitted on
train). A .npy larger than about half the free memory (dataset.stream='auto', or 'on') is
memory-mapped and streamed from disk; a .npz is always read into memory.
"""

from __future__ import annotations

import pathlib
import zipfile

import numpy as np

from jaxae.data import own, stream
from jaxae.data.core import DataFileError, Dataset, DatasetNotFoundError, LoadRequest


def load(request: LoadRequest) -> Dataset:
    """The Dataset in the array file request.path (and request.test_path, if given)."""
    main, test = _read(request.path, request.stream)
    if request.test_path:
        if test is not None:
            raise DataFileError(
                f"{request.path} holds x_test already and dataset.test_path={request.test_path} "
                f"names another test split; drop one"
            )
        test, extra = _read(request.test_path, request.stream)
        if extra is not None:
            raise DataFileError(f"{request.test_path}: a test file holds x (and y), not x_test")
    kind = "vectors" if main.x.ndim == 2 else "images"
    if test is not None and test.x.shape[1:] != main.x.shape[1:]:
        raise DataFileError(
            f"{test.where} has rows of shape {test.x.shape[1:]} but {main.where} has "
            f"{main.x.shape[1:]}; the train and test arrays must agree"
        )
    names = tuple(f"x{i}" for i in range(main.x.shape[1])) if kind == "vectors" else ()
    source = f"array:{request.path}" + (f" + {request.test_path}" if request.test_path else "")
    if isinstance(main.x, np.memmap):
        source += " (streamed)"
    return own.finish(request, main, test, kind=kind, source=source, feature_names=names)


def _read(path_text: str, mode: str) -> tuple[own.Part, own.Part | None]:
    """(the main Part, the test Part when the file holds x_test) of one .npy/.npz file."""
    path = pathlib.Path(path_text).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(f"array:{path_text}: no such file; give a .npy or .npz file")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise DataFileError(f"{path}: array: reads .npy or .npz files, not {path.suffix or 'this'}")
    try:
        if path.suffix.lower() == ".npy":
            mmap = "r" if stream.should_stream(mode, path.stat().st_size) else None
            return own.Part(
                _check_x(np.load(path, mmap_mode=mmap), path), None, None, str(path)
            ), None
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataFileError(f"{path}: not a readable numpy file ({e}); rewrite it") from None
    if "x" in arrays:
        return _part(arrays, "x", "y", path), None
    if "x_train" in arrays and "x_test" in arrays:
        return _part(arrays, "x_train", "y_train", path), _part(arrays, "x_test", "y_test", path)
    raise DataFileError(
        f"{path} holds {sorted(arrays)}; name the arrays x (and y), or x_train, x_test (and "
        f"y_train, y_test): np.savez(path, x=images, y=labels)"
    )


def _part(arrays: dict, x_key: str, y_key: str, path: pathlib.Path) -> own.Part:
    x = _check_x(arrays[x_key], path, x_key)
    labels = None
    if y_key in arrays:
        y = arrays[y_key]
        if (
            y.shape != (len(x),)
            or not np.issubdtype(y.dtype, np.integer)
            or (y.size and y.min() < 0)
        ):
            raise DataFileError(
                f"{path}: {y_key} must be {len(x)} integer labels >= 0 (one per row of "
                f"{x_key}), got {y.dtype} {y.shape}"
            )
        labels = y.astype(np.int32)
    return own.Part(x, labels, None, f"{path}[{x_key}]")


def _check_x(x: np.ndarray, path: pathlib.Path, key: str = "x") -> np.ndarray:
    """x as the Dataset takes it: [N, H, W, C] uint8/float32 images or [N, D] numbers."""
    where = f"{path}" + (f"[{key}]" if key != "x" else "")
    if x.ndim == 3:
        x = x[..., None]  # [N, H, W] greyscale
    if x.ndim not in (2, 4) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataFileError(
            f"{where} is {x.dtype} {x.shape}; give images [N, H, W, C] (uint8, or float in "
            f"[0, 1]) or feature vectors [N, D] of numbers"
        )
    if x.ndim == 4 and x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise DataFileError(
                f"{where}: images are {x.dtype}; save them as uint8 (0..255) or float in [0, 1]"
            )
        if isinstance(x, np.memmap) and x.dtype != np.float32:
            raise DataFileError(f"{where}: streamed float images must be float32, not {x.dtype}")
        x = x if isinstance(x, np.memmap) else x.astype(np.float32)
    if not isinstance(x, np.memmap) and np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x.reshape(len(x), -1))
        if bad.any():
            row, col = (int(i[0]) for i in np.nonzero(bad))
            raise DataFileError(
                f"{where} has {int(bad.sum())} NaN/inf values (first: row {row}, column "
                f"{col}); fill or drop those rows"
            )
    return x
