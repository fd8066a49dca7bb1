"""fashion_mnist, mnist, cifar10: the first source that has them (TFDS dir, IDX files, download)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable
from typing import Any

from jaxae.data import cache, idx, tfds
from jaxae.data.core import DataFileError, Dataset, DatasetNotFoundError, LoadRequest, one_line


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a real dataset is and how to get it."""

    num_classes: int
    image_shape: tuple[int, int, int]
    has_idx: bool  # whether the dataset is distributed as the four IDX files
    download_host: tuple[str, int]  # where TFDS fetches the original files
    fix: str  # the one thing that makes it available on a machine without internet


SPECS: dict[str, Spec] = {
    "fashion_mnist": Spec(
        10,
        (28, 28, 1),
        True,
        ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
        "Fix: `sudo apt-get install dataset-fashion-mnist`, or set JAXAE_DATA_DIR to a "
        "directory holding the four IDX .gz files.",
    ),
    "mnist": Spec(
        10,
        (28, 28, 1),
        True,
        ("storage.googleapis.com", 443),
        "Fix: set JAXAE_DATA_DIR to a directory holding the four MNIST IDX .gz files "
        "(train-images-idx3-ubyte.gz, ...), or use fashion_mnist "
        "(`sudo apt-get install dataset-fashion-mnist`).",
    ),
    "cifar10": Spec(
        10,
        (32, 32, 3),
        False,
        ("www.cs.toronto.edu", 443),
        "Fix: on a machine with internet run `tfds build cifar10 --file_format=array_record` "
        "and copy its tensorflow_datasets/cifar10 directory to ~/tensorflow_datasets "
        "(or point TFDS_DATA_DIR at it).",
    ),
}


def _env_flag(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


def _tfds_stamp(tfds_dir: str, ds_dir: pathlib.Path) -> list[list[Any]]:
    # A remote directory cannot be stat'ed cheaply: its cache is keyed by the URL alone.
    return [] if tfds.is_remote(tfds_dir) else cache.file_stamp(cache.files_under(ds_dir))


def load(request: LoadRequest) -> Dataset:
    """The loader of every name in SPECS (request.data_dir and request.download; sizes and
    image shape are load_dataset's to apply).

    Tries a prepared TFDS directory, then the IDX directories, then a TFDS download; a source
    is decoded once and then read from the cache while its files are unchanged. Nothing found
    -> DatasetNotFoundError naming every place looked, why each failed, and the fix.
    """
    name = request.name
    spec = SPECS[name]
    looked: list[str] = []

    def attempt(source: str, stamp: list[list[Any]], decode: Callable[[], Dataset]) -> Dataset:
        cache_key = cache.key(name, source, stamp)
        cached = cache.read(name, cache_key)
        if cached is not None:
            return cached
        ds = decode()
        cache.write(ds, cache_key)
        return ds

    def read_tfds(download: bool) -> Dataset:
        return tfds.read(
            name,
            tfds_dir,
            download=download,
            image_shape=spec.image_shape,
            num_classes=spec.num_classes,
        )

    # 1) A prepared TFDS directory. Checking for <dir>/<name> first avoids importing TFDS
    #    (and its warnings) on machines that never prepared anything. A data_dir the user gave
    #    must hold it: falling through to another copy would train on data they did not name.
    tfds_dir = tfds.resolve_dir(request.data_dir)
    ds_dir = pathlib.Path(tfds_dir) / name
    if request.data_dir and not tfds.is_remote(tfds_dir) and not ds_dir.is_dir():
        raise DatasetNotFoundError(
            f"dataset.data_dir={request.data_dir} holds no prepared TFDS {name} (no {ds_dir}); "
            f"for your own images use --config.dataset.name=folder:{request.data_dir}, else "
            f"point data_dir at a TFDS data directory or remove it"
        )
    if tfds.is_remote(tfds_dir) or ds_dir.is_dir():
        try:
            return attempt(
                f"tfds:{tfds_dir}", _tfds_stamp(tfds_dir, ds_dir), lambda: read_tfds(False)
            )
        except Exception as e:  # any TFDS failure means "try the next source"...
            if request.data_dir:  # ...unless the user named this directory
                raise DataFileError(
                    f"dataset.data_dir={request.data_dir}: {ds_dir} is not a readable prepared "
                    f"TFDS dataset ({one_line(e)}); rebuild it or remove data_dir"
                ) from None
            looked.append(f"TFDS dir {tfds_dir} (unreadable: {one_line(e)})")
    else:
        looked.append(f"TFDS dir {tfds_dir} (no {name}/ there)")

    # 2) Local IDX files.
    if spec.has_idx:
        for label, dirs in idx.search_dirs(name):
            problems: list[str] = []
            for directory in dirs:
                files, missing = idx.find_files(directory)
                if missing:
                    if files and label.startswith("$JAXAE_DATA_DIR"):  # the user pointed here
                        raise DatasetNotFoundError(
                            f"$JAXAE_DATA_DIR: {directory} lacks {', '.join(missing)} of {name}; "
                            f"add the missing file(s) or unset JAXAE_DATA_DIR"
                        )
                    if files:  # a partial set is worth naming; an empty or absent dir is not
                        problems.append(f"{directory} lacks {', '.join(missing)}")
                    continue
                source = f"idx:{directory}"
                try:
                    return attempt(
                        source,
                        cache.file_stamp(list(files.values())),
                        lambda files=files, source=source: idx.read_dataset(
                            name, files, source, spec.num_classes
                        ),
                    )
                except Exception as e:  # a broken directory must not hide the next...
                    if label.startswith("$JAXAE_DATA_DIR"):  # ...unless the user pointed here
                        why = " ".join(str(e).split())
                        raise DataFileError(
                            f"$JAXAE_DATA_DIR: {directory} is unreadable: {why}; replace the "
                            f"damaged file (or unset JAXAE_DATA_DIR to use {idx.DEBIAN_DATA_ROOT})"
                        ) from None
                    problems.append(f"{directory} unreadable: {one_line(e)}")
            looked.append(label + (f" [{'; '.join(problems)}]" if problems else ""))
    else:
        looked.append(f"no IDX files exist for {name}")

    # 3) A TFDS download, last and only when allowed.
    if not request.download:
        dl = "download not attempted (download=False)"
    elif _env_flag("JAXAE_NO_DOWNLOAD"):
        dl = "download skipped ($JAXAE_NO_DOWNLOAD is set)"
    elif not tfds.network_reachable([tfds.TFDS_STORAGE_HOST, spec.download_host]):
        dl = "download skipped (no network)"
    else:
        try:
            ds = read_tfds(True)
            cache.write(ds, cache.key(name, f"tfds:{tfds_dir}", _tfds_stamp(tfds_dir, ds_dir)))
            return ds
        except Exception as e:
            dl = f"download failed ({one_line(e)})"

    raise DatasetNotFoundError(f"{name} not found: looked in {', '.join(looked)}; {dl}. {spec.fix}")
