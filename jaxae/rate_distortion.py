"""`python -m jaxae.rate_distortion --workdirs W... --out DIR`: the rate–distortion study.

Compresses the test split with every codec workdir (the λ ladder) through the real files and
with Pillow's JPEG, WebP and PNG (per-image files and one tiled image), and writes
DIR/rate_distortion.{json,md,png}: the table, JPEG's and WebP's bpp at each codec point's PSNR,
and the plot.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from jaxae import errors


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxae.rate_distortion", description=__doc__)
    parser.add_argument("--workdirs", nargs="+", required=True, help="trained codec workdirs")
    parser.add_argument("--out", required=True, help="directory for the table and plot")
    parser.add_argument("--max_examples", type=int, default=10000, help="test images (first N)")
    args = parser.parse_args(argv)
    with errors.one_line_errors():
        from jaxae import data
        from jaxae.analysis import rate_distortion as rd
        from jaxae.analysis.report import jsonable
        from jaxae.codec.api import open_codec

        codecs = {pathlib.Path(w).name: open_codec(w) for w in args.workdirs}
        first = next(iter(codecs.values())).run.config
        images = data.load_for_config(first).test_images[: args.max_examples]
        rows, estimates = [], {}
        for name, codec in codecs.items():
            codec_rows, estimates[name] = rd.codec_rows(codec, images, name)
            rows += codec_rows
            print(f"{name}: {codec_rows[0]['bpp']:.3f} bpp, {codec_rows[0]['psnr']:.2f} dB")
        rows += rd.pillow_rows(images)
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        names = list(codecs)
        result = {
            "dataset": first.dataset.name,
            "examples": len(images),
            "estimates": estimates,
            "rows": rows,
            "vs_jpeg_webp": rd.comparison(rows, names),
        }
        (out / "rate_distortion.json").write_text(json.dumps(jsonable(result), indent=2) + "\n")
        (out / "rate_distortion.md").write_text(rd.markdown(rows) + "\n")
        title = f"{first.dataset.name} test split, {len(images)} images"
        rd.plot(rows, names, title).savefig(out / "rate_distortion.png", dpi=120)
        print(f"wrote {out}/rate_distortion.{{json,md,png}}")


if __name__ == "__main__":
    main(sys.argv[1:])
