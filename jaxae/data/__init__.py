"""Datasets as NHWC numpy arrays: built-in (TFDS dir, IDX files, download) and own data, cached."""

# The settings below are copies: to change one in a test, patch the submodule that reads it
# (e.g. jaxae.data.idx.DEBIAN_DATA_ROOT), or set its environment variable before the import.
from jaxae.data import scaling, stream
from jaxae.data.cache import CACHE_FORMAT_VERSION, DEFAULT_CACHE_DIR, cache_dir
from jaxae.data.core import (
    DataFileError,
    Dataset,
    DatasetNotFoundError,
    ImageShapeError,
    LoadRequest,
    UnusedFieldError,
    to_float,
)
from jaxae.data.generated import SYNTHETIC_DEFAULT_SIZES, SYNTHETIC_NUM_CLASSES
from jaxae.data.idx import DEBIAN_DATA_ROOT, IDX_FILES, read_idx
from jaxae.data.load import DATASETS, LOADERS, load_dataset, load_for_config
from jaxae.data.tfds import DEFAULT_TFDS_DIR, NETWORK_PROBE_TIMEOUT_S, TFDS_STORAGE_HOST

__all__ = [
    "CACHE_FORMAT_VERSION",
    "DATASETS",
    "DEBIAN_DATA_ROOT",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_TFDS_DIR",
    "IDX_FILES",
    "LOADERS",
    "NETWORK_PROBE_TIMEOUT_S",
    "SYNTHETIC_DEFAULT_SIZES",
    "SYNTHETIC_NUM_CLASSES",
    "TFDS_STORAGE_HOST",
    "DataFileError",
    "Dataset",
    "DatasetNotFoundError",
    "ImageShapeError",
    "LoadRequest",
    "UnusedFieldError",
    "cache_dir",
    "load_dataset",
    "load_for_config",
    "read_idx",
    "scaling",
    "stream",
    "to_float",
]
