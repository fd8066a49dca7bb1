"""`python -m jaxae.decompress --workdir W FILE... --out DIR`: codec files back to PNG images.

FILE.jxc becomes DIR/FILE.png (8-bit grayscale or RGB). A file written by another model or
format version stops with one `error:` line and exit status 2.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from jaxae import errors
from jaxae.compress import InputError


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxae.decompress", description=__doc__)
    parser.add_argument("--workdir", required=True, help="the workdir that compressed them")
    parser.add_argument("--step", default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="directory for the PNG files")
    parser.add_argument("files", nargs="+", help=".jxc files written by python -m jaxae.compress")
    args = parser.parse_args(argv)
    with errors.one_line_errors():
        from PIL import Image

        from jaxae.analysis.cli import parse_step
        from jaxae.codec.api import open_codec

        codec = open_codec(args.workdir, parse_step(args.step))
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for text in args.files:
            path = pathlib.Path(text)
            if not path.is_file():
                raise InputError(f"input {path} does not exist")
            image = codec.decompress(path.read_bytes(), str(path))
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                out / f"{path.stem}.png"
            )
        print(f"wrote {len(args.files)} PNG file(s) to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
