"""TFDS datasets through tfds.data_source (array_record, no TensorFlow), and a network probe.

`tfds:NAME` (load_any) reads any prepared TFDS image dataset by its TFDS name (with
/CONFIG and :VERSION as TFDS spells them), not only the built-in ones.
"""

from __future__ import annotations

import logging
import os
import pathlib
import socket
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxae.data import cache, own
from jaxae.data.core import DataFileError, Dataset, DatasetNotFoundError, LoadRequest, one_line

log = logging.getLogger(__name__)

DEFAULT_TFDS_DIR = pathlib.Path("~/tensorflow_datasets")
# TFDS first tries its own storage for prepared data, then the dataset's original host.
TFDS_STORAGE_HOST = ("storage.googleapis.com", 443)
NETWORK_PROBE_TIMEOUT_S = 2.0
_CHUNK = 4096  # records fetched per __getitems__ call


def resolve_dir(data_dir: str) -> str:
    """The TFDS directory to use: data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets.

    Local paths come back expanded; URLs (gs://...) unchanged.
    """
    chosen = data_dir or os.environ.get("TFDS_DATA_DIR", "") or str(DEFAULT_TFDS_DIR)
    return chosen if is_remote(chosen) else str(pathlib.Path(chosen).expanduser())


def is_remote(tfds_dir: str) -> bool:
    """Whether tfds_dir is a URL, whose files cannot be stat'ed for the cache key."""
    return "://" in tfds_dir


def data_source(name: str, tfds_dir: str, split: str, download: bool) -> Sequence[Any]:
    """tfds.data_source over array_record: random access without TensorFlow."""
    import tensorflow_datasets as tfds  # lazy: heavy, and only needed for real data

    return tfds.data_source(
        name,
        split=split,
        data_dir=tfds_dir,
        download=download,
        # With an explicit data_dir TFDS would default to TFRecord, which has no random access.
        builder_kwargs={"file_format": "array_record"},
    )


def read(
    name: str,
    tfds_dir: str,
    *,
    download: bool,
    image_shape: tuple[int, int, int],
    num_classes: int,
) -> Dataset:
    """The train and test splits of TFDS dataset `name` as uint8 [N, *image_shape], int32 [N]."""
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        source = data_source(name, tfds_dir, split, download)
        n = len(source)
        images = np.empty((n, *image_shape), np.uint8)
        labels = np.empty((n,), np.int32)
        for start in range(0, n, _CHUNK):
            keys = list(range(start, min(start + _CHUNK, n)))
            getitems = getattr(source, "__getitems__", None)
            records = getitems(keys) if getitems else [source[k] for k in keys]
            for i, record in zip(keys, records, strict=True):
                images[i] = np.asarray(record["image"], np.uint8).reshape(image_shape)
                labels[i] = int(record["label"])
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
        log.info("read %d %s examples of %s from TFDS dir %s", n, split, name, tfds_dir)
    return Dataset(name=name, num_classes=num_classes, source=f"tfds:{tfds_dir}", **out)


def load_any(request: LoadRequest) -> Dataset:
    """`tfds:NAME`: TFDS dataset request.path prepared (array_record) in dataset.data_dir, else
    $TFDS_DATA_DIR or ~/tensorflow_datasets; never downloads. Records need an 'image' (uint8
    [H, W] or [H, W, C]) and may have a 'label'. Its 'train' and 'test' splits; without a
    'test' split, 'train' is divided as jaxae.data.own describes. Decoded arrays are cached.
    """
    name, tfds_dir = request.path, resolve_dir(request.data_dir)
    base = pathlib.Path(tfds_dir) / name.split("/")[0].split(":")[0]
    if not is_remote(tfds_dir) and not base.is_dir():
        raise DatasetNotFoundError(
            f"tfds:{name}: no prepared {base.name}/ in {tfds_dir}; on a machine with internet run "
            f"`tfds build {name} --file_format=array_record`, copy tensorflow_datasets/{base.name} "
            f"there, or point --config.dataset.data_dir at the directory holding it"
        )
    stamp = [] if is_remote(tfds_dir) else cache.file_stamp(cache.files_under(base))
    key = own.cache_name("tfds", name, tfds_dir)
    arrays, hit = own.cached(key, [], [stamp], lambda: _read_any(name, tfds_dir))
    labels = "train_labels" in arrays
    main = own.Part(arrays["train_x"], arrays.get("train_labels"), None, f"{tfds_dir}/{name}")
    test = None
    if "test_x" in arrays:
        test = own.Part(
            arrays["test_x"],
            arrays.get("test_labels") if labels else None,
            None,
            f"{tfds_dir}/{name}",
        )
    source = f"{'cache:' if hit else ''}tfds:{tfds_dir}/{name}"
    return own.finish(request, main, test, kind="images", source=source)


def _read_any(name: str, tfds_dir: str) -> dict[str, np.ndarray]:
    """{'train_x', ['train_labels'], ['test_x', 'test_labels']}: uint8 [N, H, W, C], int32 [N]."""
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        try:
            source = data_source(name, tfds_dir, split, False)
        except Exception as e:
            if split == "test":  # many datasets have no test split: train is divided instead
                log.info("tfds:%s has no readable test split (%s); dividing train", name, e)
                break
            raise DataFileError(
                f"tfds:{name} in {tfds_dir} is not a readable prepared dataset ({one_line(e)}); "
                f"rebuild it with `tfds build {name} --file_format=array_record`"
            ) from None
        images, labels = _records(source, name)
        out[f"{split}_x"] = images
        if labels is not None:
            out[f"{split}_labels"] = labels
    return out


def _records(source: Sequence[Any], name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """All records of one split: images uint8 [N, H, W, C], labels int32 [N] or None."""
    n = len(source)
    images = labels = None
    for start in range(0, n, _CHUNK):
        keys = list(range(start, min(start + _CHUNK, n)))
        getitems = getattr(source, "__getitems__", None)
        records = getitems(keys) if getitems else [source[k] for k in keys]
        for i, record in zip(keys, records, strict=True):
            if "image" not in record:
                raise DataFileError(
                    f"tfds:{name} records have no 'image' feature (they have {sorted(record)}); "
                    f"only image datasets can be read this way"
                )
            image = np.asarray(record["image"])
            image = image[..., None] if image.ndim == 2 else image
            if images is None:
                images = np.empty((n, *image.shape), np.uint8)
                labels = np.empty((n,), np.int32) if "label" in record else None
            if image.shape != images.shape[1:] or image.dtype != np.uint8:
                raise DataFileError(
                    f"tfds:{name} record {i} is a {image.dtype} image {image.shape}, the first "
                    f"was uint8 {images.shape[1:]}; only datasets of one uint8 image size work"
                )
            images[i] = image
            if labels is not None:
                labels[i] = int(record["label"])
    if images is None:
        raise DataFileError(f"tfds:{name} has an empty split")
    return images, labels


def network_reachable(hosts: Sequence[tuple[str, int]]) -> bool:
    """True if any (host, port) accepts a TCP connection within NETWORK_PROBE_TIMEOUT_S.

    Offline, TFDS's downloader retries for minutes; this probe fails in about 2 s instead.
    DNS lookups ignore socket timeouts, so the probes run in daemon threads that we stop
    waiting for.
    """
    ok = threading.Event()

    def probe(host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=NETWORK_PROBE_TIMEOUT_S):
                ok.set()
        except OSError:
            pass

    threads = [threading.Thread(target=probe, args=hp, daemon=True) for hp in dict.fromkeys(hosts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=NETWORK_PROBE_TIMEOUT_S + 0.5)
        if ok.is_set():
            return True
    return ok.is_set()
