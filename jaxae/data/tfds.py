"""TFDS datasets through tfds.data_source (array_record, no TensorFlow), and a network probe."""

from __future__ import annotations

import logging
import os
import pathlib
import socket
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxae.data.core import Dataset

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
