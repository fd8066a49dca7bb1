"""Datasets as uint8 NHWC numpy arrays: TFDS dir, local IDX files or TFDS download, then cached."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import math
import os
import pathlib
import socket
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from jaxae.errors import UserError

log = logging.getLogger(__name__)

# Module-level so tests (and unusual machines) can monkeypatch them.
DEBIAN_DATA_ROOT = pathlib.Path(os.environ.get("JAXAE_DEBIAN_DATA_ROOT", "/usr/share/datasets"))
DEFAULT_TFDS_DIR = pathlib.Path("~/tensorflow_datasets")
DEFAULT_CACHE_DIR = pathlib.Path("~/.cache/jaxae")
# TFDS first tries its own storage for prepared data, then the dataset's original host.
TFDS_STORAGE_HOST = ("storage.googleapis.com", 443)
NETWORK_PROBE_TIMEOUT_S = 2.0
CACHE_FORMAT_VERSION = 1

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclasses.dataclass(frozen=True)
class _RealSpec:
    num_classes: int
    image_shape: tuple[int, int, int]
    has_idx: bool  # whether the dataset is distributed as the four IDX files
    download_host: tuple[str, int]  # where TFDS fetches the original files
    fix: str  # the one thing that makes it available on a machine without internet


_REAL: dict[str, _RealSpec] = {
    "fashion_mnist": _RealSpec(
        10,
        (28, 28, 1),
        True,
        ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
        "Fix: `sudo apt-get install dataset-fashion-mnist`, or set JAXAE_DATA_DIR to a "
        "directory holding the four IDX .gz files.",
    ),
    "mnist": _RealSpec(
        10,
        (28, 28, 1),
        True,
        ("storage.googleapis.com", 443),
        "Fix: set JAXAE_DATA_DIR to a directory holding the four MNIST IDX .gz files "
        "(train-images-idx3-ubyte.gz, ...), or use fashion_mnist "
        "(`sudo apt-get install dataset-fashion-mnist`).",
    ),
    "cifar10": _RealSpec(
        10,
        (32, 32, 3),
        False,
        ("www.cs.toronto.edu", 443),
        "Fix: on a machine with internet run `tfds build cifar10 --file_format=array_record` "
        "and copy its tensorflow_datasets/cifar10 directory to ~/tensorflow_datasets "
        "(or point TFDS_DATA_DIR at it).",
    ),
}
_GENERATED = ("digits", "synthetic")
DATASETS: tuple[str, ...] = (*_REAL, *_GENERATED)

SYNTHETIC_NUM_CLASSES = 10
SYNTHETIC_DEFAULT_SIZES = (2048, 512)  # (train, test)


class DatasetNotFoundError(UserError, FileNotFoundError):
    """No source had the dataset; the message is one line naming every place looked and the fix."""


class ImageShapeError(UserError, ValueError):
    """The dataset's images do not have the shape the model expects; the message is one line."""


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split held on the host as uint8 NHWC images and int32 labels."""

    name: str
    train_images: np.ndarray  # [N, H, W, C] uint8
    train_labels: np.ndarray  # [N] int32
    test_images: np.ndarray  # [M, H, W, C] uint8
    test_labels: np.ndarray  # [M] int32
    num_classes: int
    source: str  # e.g. 'idx:/usr/share/datasets/fashion-mnist', 'tfds:...', 'cache:...'

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"{self.name} {split}_images must be uint8 [N, H, W, C], "
                    f"got {images.dtype} {images.shape}"
                )
            if labels.dtype != np.int32 or labels.shape != images.shape[:1]:
                raise ValueError(
                    f"{self.name} {split}_labels must be int32 [{images.shape[0]}], "
                    f"got {labels.dtype} {labels.shape}"
                )
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ValueError(
                f"{self.name} train and test images differ in shape: "
                f"{self.train_images.shape[1:]} vs {self.test_images.shape[1:]}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        h, w, c = self.train_images.shape[1:]
        return int(h), int(w), int(c)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.train_images.shape[0]}, "
            f"test={self.test_images.shape[0]}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes}, source={self.source!r})"
        )


# ----------------------------------------------------------------------------- public helpers


def to_float(images: Any) -> Any:
    """uint8 images [..., H, W, C] (numpy or jax) -> float32 in [0, 1], same shape and kind."""
    if images.dtype != np.uint8:
        # A float input here would be divided by 255 twice; fail loudly instead.
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    return images.astype(np.float32) / 255.0


def cache_dir() -> pathlib.Path:
    """Where decoded datasets are cached: $JAXAE_CACHE_DIR, else ~/.cache/jaxae."""
    env = os.environ.get("JAXAE_CACHE_DIR", "")
    return pathlib.Path(env).expanduser() if env else DEFAULT_CACHE_DIR.expanduser()


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


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    rng: np.random.Generator | None,
    drop_remainder: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (images [B, H, W, C], labels [B]) host batches, shuffled when rng is given.

    With drop_remainder every batch has exactly batch_size examples (fixed shapes: one compile).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(images)
    if len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    order = rng.permutation(n) if rng is not None else None
    end = n - n % batch_size if drop_remainder else n
    for start in range(0, end, batch_size):
        stop = min(start + batch_size, end)
        if order is None:
            yield images[start:stop], labels[start:stop]
        else:
            idx = order[start:stop]
            yield images[idx], labels[idx]


# ----------------------------------------------------------------------------- load_dataset


def load_dataset(
    name: str,
    *,
    data_dir: str = "",
    max_train_examples: int = 0,
    max_test_examples: int = 0,
    exclude_class: int = -1,
    image_shape: tuple[int, int, int] | Sequence[int] | None = None,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """Loads a dataset as uint8 images [N, H, W, C] and int32 labels [N].

    Real data (fashion_mnist, mnist, cifar10) comes from the first source that works: a
    prepared TFDS directory (data_dir, $TFDS_DATA_DIR or ~/tensorflow_datasets) read through
    tfds.data_source (array_record, no TensorFlow); IDX files in $JAXAE_DATA_DIR or
    /usr/share/datasets/<name>; a TFDS download when `download` and $JAXAE_NO_DOWNLOAD is
    unset. A source is decoded once, then read from cache_dir()/<name>.npz while its files'
    sizes and mtimes are unchanged. Nothing found -> DatasetNotFoundError (one line).
    'digits' (scikit-learn, 8x8x1) and 'synthetic' (procedural, default 28x28x1 or
    `image_shape`) are generated from `seed`; real data ignores `seed`.

    Afterwards `exclude_class` >= 0 drops that class from train only (anomaly detection), and
    max_train_examples / max_test_examples > 0 keep the first N examples.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if max_train_examples < 0 or max_test_examples < 0:
        raise ValueError("max_train_examples and max_test_examples must be >= 0 (0 = all)")
    wanted = None if image_shape is None else tuple(int(d) for d in image_shape)
    if wanted is not None and (len(wanted) != 3 or min(wanted) <= 0):
        raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}")

    if key == "synthetic":
        ds = _synthetic(
            wanted or (28, 28, 1),
            max_train_examples or SYNTHETIC_DEFAULT_SIZES[0],
            max_test_examples or SYNTHETIC_DEFAULT_SIZES[1],
            seed,
        )
    elif key == "digits":
        ds = _digits(seed)
    else:
        ds = _load_real(key, data_dir=data_dir, download=download)

    if wanted is not None and ds.image_shape != wanted:
        raise ImageShapeError(
            f"dataset {key} has images {_fmt_shape(ds.image_shape)} but the model expects "
            f"{_fmt_shape(wanted)}; set --config.model.image_shape or pick another dataset"
        )
    return _subset(ds, max_train_examples, max_test_examples, exclude_class)


def load_for_config(config: Any) -> Dataset:
    """The dataset a run's config names (`config.dataset`, `config.seed`), at the model's
    image shape (`config.model.image_shape`, default 28×28×1). Train, analysis and sweep share it.
    """
    return load_dataset(
        config.dataset.name,
        data_dir=config.dataset.data_dir,
        max_train_examples=config.dataset.max_train_examples,
        max_test_examples=config.dataset.max_test_examples,
        exclude_class=config.dataset.exclude_class,
        image_shape=tuple(config.model.get("image_shape", (28, 28, 1))),
        seed=config.seed,
    )


def _fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def _subset(ds: Dataset, max_train: int, max_test: int, exclude_class: int) -> Dataset:
    train_x, train_y = ds.train_images, ds.train_labels
    if exclude_class >= 0:
        if exclude_class >= ds.num_classes:
            raise ValueError(
                f"exclude_class={exclude_class} but {ds.name} has classes 0..{ds.num_classes - 1}"
            )
        keep = train_y != exclude_class
        train_x, train_y = train_x[keep], train_y[keep]
    if max_train:
        train_x, train_y = train_x[:max_train], train_y[:max_train]
    test_x, test_y = ds.test_images, ds.test_labels
    if max_test:
        test_x, test_y = test_x[:max_test], test_y[:max_test]
    return dataclasses.replace(
        ds, train_images=train_x, train_labels=train_y, test_images=test_x, test_labels=test_y
    )


# ----------------------------------------------------------------------------- real data


class _SourceFailed(Exception):
    """One source could not provide the data; the message says why (one short phrase)."""


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _env_flag(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


def _tfds_dir(data_dir: str) -> str:
    chosen = data_dir or os.environ.get("TFDS_DATA_DIR", "") or str(DEFAULT_TFDS_DIR)
    return chosen if "://" in chosen else str(pathlib.Path(chosen).expanduser())


def _idx_dirs(name: str) -> list[tuple[str, list[pathlib.Path]]]:
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


def _cache_key(name: str, source: str, stamp: list[list[Any]]) -> str:
    return json.dumps(
        {"version": CACHE_FORMAT_VERSION, "name": name, "source": source, "files": stamp}
    )


def _find_idx_files(directory: pathlib.Path) -> tuple[dict[str, pathlib.Path], list[str]]:
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


def _file_stamp(paths: Sequence[pathlib.Path]) -> list[list[Any]]:
    stamps = []
    for p in sorted(paths):
        st = p.stat()
        stamps.append([str(p), st.st_size, st.st_mtime_ns])
    return stamps


def _load_real(name: str, *, data_dir: str, download: bool) -> Dataset:
    spec = _REAL[name]
    looked: list[str] = []

    def attempt(source: str, stamp: list[list[Any]], decode: Any) -> Dataset:
        cache_key = _cache_key(name, source, stamp)
        cached = _read_cache(name, cache_key)
        if cached is not None:
            return cached
        ds = decode()
        _write_cache(ds, cache_key)
        return ds

    # 1) A prepared TFDS directory. Checking for <dir>/<name> first avoids importing TFDS
    #    (and its warnings) on machines that never prepared anything.
    tfds_dir = _tfds_dir(data_dir)
    ds_dir = pathlib.Path(tfds_dir) / name
    if "://" in tfds_dir or ds_dir.is_dir():
        try:
            stamp = [] if "://" in tfds_dir else _file_stamp(_files_under(ds_dir))
            return attempt(
                f"tfds:{tfds_dir}",
                stamp,
                lambda: _read_tfds(name, tfds_dir, download=False),
            )
        except Exception as e:  # any TFDS failure means "try the next source"
            looked.append(f"TFDS dir {tfds_dir} (unreadable: {_one_line(e)})")
    else:
        looked.append(f"TFDS dir {tfds_dir} (no {name}/ there)")

    # 2) Local IDX files.
    if spec.has_idx:
        for label, dirs in _idx_dirs(name):
            problems: list[str] = []
            for directory in dirs:
                files, missing = _find_idx_files(directory)
                if missing:
                    if files:  # a partial set is worth naming; an empty or absent dir is not
                        problems.append(f"{directory} lacks {', '.join(missing)}")
                    continue
                try:
                    return attempt(
                        f"idx:{directory}",
                        _file_stamp(list(files.values())),
                        lambda files=files, directory=directory: _read_idx_dataset(
                            name, files, f"idx:{directory}"
                        ),
                    )
                except Exception as e:  # a broken directory must not hide the next
                    problems.append(f"{directory} unreadable: {_one_line(e)}")
            looked.append(label + (f" [{'; '.join(problems)}]" if problems else ""))
    else:
        looked.append(f"no IDX files exist for {name}")

    # 3) A TFDS download, last and only when allowed.
    if not download:
        dl = "download not attempted (download=False)"
    elif _env_flag("JAXAE_NO_DOWNLOAD"):
        dl = "download skipped ($JAXAE_NO_DOWNLOAD is set)"
    elif not _network_reachable([TFDS_STORAGE_HOST, spec.download_host]):
        dl = "download skipped (no network)"
    else:
        try:
            ds = _read_tfds(name, tfds_dir, download=True)
            stamp = [] if "://" in tfds_dir else _file_stamp(_files_under(ds_dir))
            _write_cache(ds, _cache_key(name, f"tfds:{tfds_dir}", stamp))
            return ds
        except Exception as e:
            dl = f"download failed ({_one_line(e)})"

    raise DatasetNotFoundError(f"{name} not found: looked in {', '.join(looked)}; {dl}. {spec.fix}")


def _files_under(directory: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def _read_idx_dataset(name: str, files: dict[str, pathlib.Path], source: str) -> Dataset:
    arrays = {field: read_idx(path) for field, path in files.items()}
    spec = _REAL[name]
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
        if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
            raise ValueError(
                f"{files[f'{split}_labels']}: labels outside 0..{spec.num_classes - 1}"
            )
        out[f"{split}_images"] = np.ascontiguousarray(images)
        out[f"{split}_labels"] = labels.astype(np.int32)
    return Dataset(name=name, num_classes=spec.num_classes, source=source, **out)


def _tfds_data_source(name: str, tfds_dir: str, split: str, download: bool) -> Sequence[Any]:
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


def _read_tfds(name: str, tfds_dir: str, *, download: bool) -> Dataset:
    spec = _REAL[name]
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        source = _tfds_data_source(name, tfds_dir, split, download)
        n = len(source)
        images = np.empty((n, *spec.image_shape), np.uint8)
        labels = np.empty((n,), np.int32)
        chunk = 4096
        for start in range(0, n, chunk):
            keys = list(range(start, min(start + chunk, n)))
            getitems = getattr(source, "__getitems__", None)
            records = getitems(keys) if getitems else [source[k] for k in keys]
            for i, record in zip(keys, records, strict=True):
                images[i] = np.asarray(record["image"], np.uint8).reshape(spec.image_shape)
                labels[i] = int(record["label"])
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
        log.info("read %d %s examples of %s from TFDS dir %s", n, split, name, tfds_dir)
    return Dataset(name=name, num_classes=spec.num_classes, source=f"tfds:{tfds_dir}", **out)


def _network_reachable(hosts: Sequence[tuple[str, int]]) -> bool:
    """True if any host accepts a TCP connection within NETWORK_PROBE_TIMEOUT_S.

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


# ----------------------------------------------------------------------------- cache


def _cache_path(name: str) -> pathlib.Path:
    return cache_dir() / f"{name}.npz"


_ARRAY_FIELDS = ("train_images", "train_labels", "test_images", "test_labels")


def _read_cache(name: str, key: str) -> Dataset | None:
    """The cached dataset if present and made from the same source files, else None."""
    path = _cache_path(name)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                log.info("cache %s is stale (source changed); rebuilding", path)
                return None
            arrays = {f: npz[f] for f in _ARRAY_FIELDS}
            num_classes = int(npz["num_classes"])
            origin = str(npz["source"])
        return Dataset(
            name=name,
            num_classes=num_classes,
            source=f"cache:{path} (from {origin})",
            **arrays,
        )
    except Exception as e:  # any damage means: drop it and rebuild
        warnings.warn(
            f"ignoring corrupt dataset cache {path} ({_one_line(e)}); rebuilding it",
            RuntimeWarning,
            stacklevel=4,
        )
        path.unlink(missing_ok=True)
        return None


def _write_cache(ds: Dataset, key: str) -> None:
    """Saves the full decoded arrays atomically (temp file + os.replace); failures only warn."""
    path = _cache_path(ds.name)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as f:
            tmp_name = f.name
            np.savez(
                f,
                key=np.array(key),
                num_classes=np.array(ds.num_classes),
                source=np.array(ds.source),
                **{field: getattr(ds, field) for field in _ARRAY_FIELDS},
            )
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as e:
        warnings.warn(f"could not cache {ds.name} in {path}: {e}", RuntimeWarning, stacklevel=4)
    finally:
        if tmp_name is not None:
            pathlib.Path(tmp_name).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- generated data


def _digits(seed: int) -> Dataset:
    """scikit-learn's bundled 8x8 digits (values 0..16) -> uint8 0..255, 80/20 split by seed."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn import is slow

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(0.2 * len(images)))
    test, train = order[:n_test], order[n_test:]
    return Dataset(
        name="digits",
        train_images=images[train],
        train_labels=labels[train],
        test_images=images[test],
        test_labels=labels[test],
        num_classes=10,
        source="sklearn:load_digits",
    )


def _synthetic(image_shape: tuple[int, int, int], n_train: int, n_test: int, seed: int) -> Dataset:
    train = _synthetic_split(image_shape, n_train, np.random.default_rng([seed, 0]))
    test = _synthetic_split(image_shape, n_test, np.random.default_rng([seed, 1]))
    return Dataset(
        name="synthetic",
        train_images=train[0],
        train_labels=train[1],
        test_images=test[0],
        test_labels=test[1],
        num_classes=SYNTHETIC_NUM_CLASSES,
        source=f"synthetic:seed={seed}",
    )


def _step(x: np.ndarray) -> np.ndarray:
    """Smooth 0->1 step (logistic via tanh, which cannot overflow)."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _synthetic_split(
    image_shape: tuple[int, int, int], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n images [n, H, W, C] uint8 of 10 shape classes, balanced labels [n] int32.

    Classes: 0 horizontal bar, 1 vertical bar, 2 blob, 3 ring, 4 checker patch, 5 square,
    6 diagonal bar, 7 cross, 8 two blobs, 9 square frame; each with random centre, size,
    thickness, intensity (and colour when C > 1) on a dim noisy background.
    """
    h, w, c = image_shape
    labels = rng.permutation(np.arange(n) % SYNTHETIC_NUM_CLASSES).astype(np.int32)
    f32 = np.float32
    # Per-example parameters in coordinates where the image spans [0, 1]^2.
    cy, cx = (rng.uniform(0.3, 0.7, (2, n, 1, 1))).astype(f32)
    size = rng.uniform(0.15, 0.3, (n, 1, 1)).astype(f32)
    thick = (size * rng.uniform(0.25, 0.45, (n, 1, 1))).astype(f32)
    amp = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(f32)
    colour = rng.uniform(0.35, 1.0, (n, c)).astype(f32) if c > 1 else np.ones((n, 1), f32)
    background = rng.uniform(0.0, 0.08, (n, 1, 1, 1)).astype(f32)

    yy = ((np.arange(h, dtype=f32) + 0.5) / h)[None, :, None]
    xx = ((np.arange(w, dtype=f32) + 0.5) / w)[None, None, :]
    sharp = f32(2.0 * max(h, w))  # edges about one pixel wide at any resolution
    pattern = np.empty((n, h, w), f32)

    def box(dx: np.ndarray, dy: np.ndarray, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
        return _step(sharp * (hx - np.abs(dx))) * _step(sharp * (hy - np.abs(dy)))

    for k in range(SYNTHETIC_NUM_CLASSES):
        idx = np.flatnonzero(labels == k)
        if idx.size == 0:
            continue
        dy, dx = yy - cy[idx], xx - cx[idx]
        s, t = size[idx], thick[idx]
        if k == 0:
            p = box(dx, dy, s, t / 2)
        elif k == 1:
            p = box(dx, dy, t / 2, s)
        elif k == 2:
            p = np.exp(-(dx**2 + dy**2) / (2 * (s / 2) ** 2))
        elif k == 3:
            sigma = np.maximum(t / 3, f32(0.6 / min(h, w)))
            p = np.exp(-((np.sqrt(dx**2 + dy**2) - s) ** 2) / (2 * sigma**2))
        elif k == 4:
            cell = s / 2
            sign = np.sin(np.pi * dx / cell) * np.sin(np.pi * dy / cell) > 0
            p = box(dx, dy, s, s) * np.where(sign, f32(1.0), f32(0.15))
        elif k == 5:
            p = box(dx, dy, s, s)
        elif k == 6:
            u, v = (dx + dy) / np.sqrt(f32(2)), (dx - dy) / np.sqrt(f32(2))
            p = box(u, v, s * 1.2, t / 2)
        elif k == 7:
            p = np.maximum(box(dx, dy, s, t / 2), box(dx, dy, t / 2, s))
        elif k == 8:
            sigma2 = 2 * (s / 3) ** 2
            p = np.maximum(
                np.exp(-((dx - 0.8 * s) ** 2 + dy**2) / sigma2),
                np.exp(-((dx + 0.8 * s) ** 2 + dy**2) / sigma2),
            )
        else:
            p = np.clip(box(dx, dy, s, s) - box(dx, dy, s - t, s - t), 0.0, 1.0)
        pattern[idx] = p

    # Work in 0..255 in place: this part dominates the time for large colour images.
    images = rng.standard_normal((n, h, w, c), dtype=f32)
    images *= f32(0.02 * 255)
    images += pattern[..., None] * (amp[..., None] * colour[:, None, None, :] * f32(255))
    images += background * f32(255) + f32(0.5)  # + 0.5: the uint8 cast below then rounds
    np.clip(images, 0.0, 255.0, out=images)
    return images.astype(np.uint8), labels
