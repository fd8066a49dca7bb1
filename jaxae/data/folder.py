"""`folder:PATH`: a folder of images in any format Pillow reads (PNG, JPEG, BMP, TIFF, ...).

Layout: PATH/train/ and PATH/test/ are the two splits (or dataset.test_path names a second
folder); otherwise PATH is one split, divided as jaxae.data.own describes. Inside a split, class
subfolders become labels (sorted names -> 0..K-1); images directly in it have no labels.
Channels follow the model's image_shape: C=1 greyscale, C=3 RGB (other modes are converted).
Every image must be the model's H×W, unless dataset.resize=True resizes them (bilinear).
Decoded images are cached while the files are unchanged.
"""

from __future__ import annotations

import collections
import pathlib

import numpy as np

from jaxae.data import own
from jaxae.data.core import DataFileError, Dataset, DatasetNotFoundError, LoadRequest, fmt_shape

_MODES = {1: "L", 3: "RGB"}


def load(request: LoadRequest) -> Dataset:
    """The Dataset of the image folder request.path (request.test_path: a test folder)."""
    root = _existing_dir(request.path, "folder:")
    test_root = (
        _existing_dir(request.test_path, "dataset.test_path=") if request.test_path else None
    )
    if test_root is None and (root / "train").is_dir() and (root / "test").is_dir():
        root, test_root = root / "train", root / "test"
    files, labels, classes = _scan(root)
    test_scan = _scan(test_root) if test_root is not None else None
    if test_scan is not None and test_scan[2] != classes:
        if set(test_scan[2]) - set(classes) or (classes and not test_scan[2]):
            raise DataFileError(
                f"{test_root} has classes {list(test_scan[2])} but {root} has {list(classes)}; "
                f"give both splits the same class subfolders"
            )
        test_scan = (
            test_scan[0],
            np.array([classes.index(test_scan[2][i]) for i in test_scan[1]]),
            classes,
        )
    shape = _target_shape(request, files[0])
    all_files = files + (test_scan[0] if test_scan else [])
    name = own.cache_name("folder", root, test_root, shape, request.resize)
    arrays, hit = own.cached(
        name,
        all_files,
        [shape, request.resize],
        lambda: {"x": decode(all_files, shape, request.resize, root)},
    )
    x = arrays["x"]
    main = own.Part(x[: len(files)], labels, None, str(root))
    test = None
    if test_scan is not None:
        test = own.Part(x[len(files) :], test_scan[1], None, str(test_root))
    source = f"{'cache:' if hit else ''}folder:{root}" + (f" + {test_root}" if test_root else "")
    return own.finish(request, main, test, kind="images", source=source, class_names=classes)


def _existing_dir(path: str, how: str) -> pathlib.Path:
    directory = pathlib.Path(path).expanduser()
    if not directory.is_dir():
        raise DatasetNotFoundError(
            f"{how}{path}: no such folder; give the folder that holds the images "
            f"(or its class subfolders)"
        )
    return directory


def _is_image(path: pathlib.Path) -> bool:
    from PIL import Image  # lazy: only folders need Pillow

    return path.is_file() and path.suffix.lower() in Image.registered_extensions()


def _scan(directory: pathlib.Path) -> tuple[list[pathlib.Path], np.ndarray | None, tuple]:
    """(image files in order, int32 labels [N] or None, class names) of one split's folder."""
    entries = sorted(directory.iterdir())
    flat = [p for p in entries if _is_image(p)]
    subdirs = [p for p in entries if p.is_dir() and any(_is_image(f) for f in p.iterdir())]
    if flat and subdirs:
        raise DataFileError(
            f"{directory} holds both images ({flat[0].name}, ...) and class subfolders "
            f"({subdirs[0].name}/, ...); move the loose images into a class subfolder or out"
        )
    if flat:
        return flat, None, ()
    if not subdirs:
        raise DatasetNotFoundError(
            f"{directory} holds no images (a Pillow format: .png, .jpg, ...) and no class "
            f"subfolders with images; point folder: at the folder of images"
        )
    files, labels = [], []
    for label, sub in enumerate(subdirs):
        images = sorted(p for p in sub.iterdir() if _is_image(p))
        files += images
        labels += [label] * len(images)
    return files, np.asarray(labels, np.int32), tuple(p.name for p in subdirs)


def _target_shape(request: LoadRequest, first: pathlib.Path) -> tuple[int, int, int]:
    """(H, W, C): the model's image_shape, else the first image's size and grey/RGB mode."""
    if request.image_shape is not None:
        if request.image_shape[2] not in _MODES:
            raise DataFileError(
                f"image folders give 1 (grey) or 3 (RGB) channels, but the model expects "
                f"{request.image_shape[2]}; set --config.model.image_shape=(H, W, 1) or (H, W, 3)"
            )
        return request.image_shape
    from PIL import Image

    with Image.open(first) as im:
        return im.size[1], im.size[0], 1 if im.mode in ("1", "L", "I", "I;16", "F") else 3


def decode(
    files: list[pathlib.Path], shape: tuple[int, int, int], resize: bool, root: pathlib.Path
) -> np.ndarray:
    """uint8 [N, H, W, C] from image files; a damaged file or mixed sizes: one-line error."""
    from PIL import Image

    h, w, c = shape
    sizes: dict[tuple[int, int], list[pathlib.Path]] = collections.defaultdict(list)
    for f in files:
        try:
            with Image.open(f) as im:
                sizes[im.size].append(f)
        except (OSError, SyntaxError, ValueError) as e:
            raise DataFileError(f"{f}: not a readable image ({e}); replace or remove it") from None
    if not resize and set(sizes) != {(w, h)}:
        found = ", ".join(
            f"{fmt_shape((sh, sw))}: {len(fs)} files" for (sw, sh), fs in sizes.items()
        )
        odd = next(fs[0] for size, fs in sizes.items() if size != (w, h))
        what = "images of different sizes" if len(sizes) > 1 else "images of another size"
        raise DataFileError(
            f"{root} has {what} ({found}, e.g. {odd}) but the model expects {fmt_shape((h, w))}; "
            f"pass --config.dataset.resize=True to resize them, or set "
            f"--config.model.image_shape to their size"
        )
    out = np.empty((len(files), h, w, c), np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert(_MODES[c])
                if im.size != (w, h):
                    im = im.resize((w, h), Image.Resampling.BILINEAR)
                out[i] = np.asarray(im, np.uint8).reshape(h, w, c)
        except (OSError, SyntaxError, ValueError) as e:  # a truncated file fails only here
            raise DataFileError(f"{f}: not a readable image ({e}); replace or remove it") from None
    return out
