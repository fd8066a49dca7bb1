"""A trained tiny codec: the entropy model's rate predicts the real files, and the command
lines compress, decompress and refuse foreign files."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from jaxae.codec import api, bitstream

pytestmark = pytest.mark.slow


def test_estimated_rate_is_within_a_few_percent_of_the_payload(trained_codec):
    workdir, test_images = trained_codec
    codec = api.ImageCodec.from_workdir(workdir)
    estimated = sum(codec.estimated_bits(im) for im in test_images)
    payload = sum(len(bitstream.unpack(codec.compress(im), "x")[1]) * 8 for im in test_images)
    assert abs(payload - estimated) / estimated < 0.05, (payload, estimated)


def _cli(module, *args):
    env = {"PYTHONPATH": str(ROOT), "JAXAE_NO_DOWNLOAD": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_compress_and_decompress_from_the_command_line(trained_codec, tmp_path):
    workdir, test_images = trained_codec
    Image.fromarray(test_images[0][..., 0]).save(tmp_path / "one.png")
    np.save(tmp_path / "many.npy", test_images[1:4])
    done = _cli(
        "jaxae.compress",
        "--workdir",
        workdir,
        tmp_path / "one.png",
        tmp_path / "many.npy",
        "--out",
        tmp_path / "z",
    )
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "z").glob("*.jxc"))
    assert [f.name for f in files] == [f"many_0000{i}.jxc" for i in range(3)] + ["one.jxc"]
    done = _cli("jaxae.decompress", "--workdir", workdir, *files, "--out", tmp_path / "png")
    assert done.returncode == 0, done.stderr
    codec = api.ImageCodec.from_workdir(workdir)
    for name, image in [
        ("one", test_images[0]),
        *((f"many_0000{i}", test_images[1 + i]) for i in range(3)),
    ]:
        decoded = np.asarray(Image.open(tmp_path / "png" / f"{name}.png"))[..., None]
        np.testing.assert_array_equal(decoded, codec.reconstruct(image))
    (tmp_path / "bad.jxc").write_bytes(b"JXC\x01" + b"\0" * 20)
    done = _cli("jaxae.decompress", "--workdir", workdir, tmp_path / "bad.jxc", "--out", tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "another model" in errors[0] and "Traceback" not in done.stderr


def test_analysis_report_and_study_command_show_the_rate_distortion_table(trained_codec, tmp_path):
    import json

    from jaxae.analysis import cli
    from jaxae.analysis.context import Limits

    workdir, _ = trained_codec
    limits = Limits(eval_examples=8, tsne_points=8, probe_train=16, probe_test=8, batch_size=8)
    out = cli.analyze(workdir, only=["test_metrics", "rate_distortion"], limits=limits)
    entry = out["analyses"]["rate_distortion"]
    assert entry["figures"] == ["rate_distortion.png"] and entry["numbers"]["examples"] == 8
    methods = {(r["method"], r["mode"]) for r in entry["numbers"]["rows"]}
    assert {
        ("codec", "per-image"),
        ("JPEG", "tiled"),
        ("WEBP", "per-image"),
        ("PNG", "tiled"),
    } <= methods
    assert "rate_distortion.png" in (workdir / "analysis" / "report.html").read_text()
    done = _cli(
        "jaxae.rate_distortion",
        "--workdirs",
        workdir,
        "--out",
        tmp_path / "rd",
        "--max_examples",
        6,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "rd" / "rate_distortion.json").read_text())
    assert result["examples"] == 6 and (tmp_path / "rd" / "rate_distortion.png").exists()
    codec_row = next(r for r in result["rows"] if r["method"] == workdir.name)
    assert codec_row["header_bpp"] > 0 and codec_row["bpp"] > codec_row["header_bpp"]
