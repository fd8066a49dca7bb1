"""`python -m jaxae.compress --workdir W INPUT... --out DIR`: one codec file per image.

INPUT is any image Pillow reads (converted to the model's channels: L for 1, RGB for 3) or an
.npy array of uint8 images [N, H, W] or [N, H, W, C]. IMAGE.png becomes DIR/IMAGE.jxc and
ARRAY.npy becomes DIR/ARRAY_00000.jxc, ... The first run on a checkpoint builds its coder
tables into W/codec/tables_<step>.npz; every later compress and decompress reads them.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Iterator

import numpy as np

from jaxae import errors
from jaxae.errors import UserError

SUFFIX = ".jxc"


class InputError(UserError, ValueError):
    """An input that is missing or holds no images the codec can take."""


def read_inputs(paths: list[str], channels: int) -> Iterator[tuple[str, np.ndarray]]:
    """(output stem, uint8 image [H, W, C]) for every image in `paths`."""
    from PIL import Image, UnidentifiedImageError

    for text in paths:
        path = pathlib.Path(text)
        if not path.is_file():
            raise InputError(f"input {path} does not exist")
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            if array.ndim == 3:
                array = array[..., None]
            if array.ndim != 4 or array.dtype != np.uint8:
                raise InputError(
                    f"{path} holds {array.dtype} {array.shape}; give uint8 images [N, H, W] "
                    f"or [N, H, W, C]"
                )
            for i, image in enumerate(array):
                yield f"{path.stem}_{i:05d}", image
            continue
        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("L" if channels == 1 else "RGB"))
        except UnidentifiedImageError:
            raise InputError(f"{path} is no image Pillow can read, nor an .npy array") from None
        yield path.stem, image


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxae.compress", description=__doc__)
    parser.add_argument("--workdir", required=True, help="a workdir of a trained codec")
    parser.add_argument("--step", default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="directory for the .jxc files")
    parser.add_argument("inputs", nargs="+", help="images or .npy arrays of uint8 images")
    args = parser.parse_args(argv)
    with errors.one_line_errors():
        from jaxae.analysis.cli import parse_step
        from jaxae.codec.api import open_codec

        codec = open_codec(args.workdir, parse_step(args.step))
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        count, total = 0, 0
        for stem, image in read_inputs(args.inputs, codec.channels):
            data = codec.compress(codec.check_image(image, stem))
            (out / f"{stem}{SUFFIX}").write_bytes(data)
            count, total = count + 1, total + len(data)
        print(f"wrote {count} file(s), {total} bytes, to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
