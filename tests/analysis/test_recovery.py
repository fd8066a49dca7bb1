"""jaxae.load and the analysis recover as training does: a damaged newest checkpoint falls back to
the previous intact one with one warning line; a bad config.json is one error line; nothing in the
workdir is moved or written."""

import json
import pathlib
import shutil

import numpy as np
import pytest

import jaxae
from jaxae.analysis import cli
from jaxae.analysis.load import DamagedCheckpointError, InvalidConfigJsonError
from jaxae.runtime import checkpoint

from .conftest import LIMITS


def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    directory = pathlib.Path(directory)
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def _largest(step_dir):
    return max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _without_manifest_and_flipped(step_dir):
    """Killed between the commit and the seal, then an array byte altered: only the state's
    CRC-32 recorded at save time can tell."""
    (step_dir / checkpoint.MANIFEST).unlink()
    _flip_byte(_largest(step_dir / "state"))


DAMAGE = {
    "truncated array file": lambda d: (p := _largest(d / "state")).write_bytes(
        p.read_bytes()[: p.stat().st_size // 2]
    ),
    "CRC mismatch (one byte changed)": lambda d: _flip_byte(_largest(d / "state")),
    "OCDBT manifest missing": lambda d: [p.unlink() for p in d.rglob("manifest.ocdbt")],
    "OCDBT manifest and jaxae manifest missing": lambda d: [
        p.unlink() for p in [*d.rglob("manifest.ocdbt"), d / checkpoint.MANIFEST]
    ],
    "no jaxae manifest, array changed": _without_manifest_and_flipped,
    "emptied metadata": lambda d: (d / "meta" / "metadata").write_bytes(b""),
}


@pytest.fixture
def run_copy(linear_run, tmp_path):
    """A copy of the session's linear run (checkpoints 3 and 6) that a test may damage."""
    copy = tmp_path / "run"
    shutil.copytree(linear_run[1], copy)
    return copy


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(
    linear_run, run_copy, damage, capsys
):
    DAMAGE[damage](run_copy / "checkpoints" / "6")
    before = _files(run_copy)
    run = jaxae.load(run_copy)
    err = capsys.readouterr().err.strip().splitlines()
    assert run.step == 3
    assert len(err) == 1 and err[0].startswith("warning: ") and "step 6: " in err[0], err
    assert "loaded step 3, the newest intact one" in err[0]
    assert _files(run_copy) == before  # read-only: nothing moved, nothing written
    x = np.random.default_rng(0).random((2, 28, 28, 1), np.float32)
    np.testing.assert_array_equal(run.logits(x), jaxae.load(linear_run[1], step=3).logits(x))


def test_a_damaged_checkpoint_asked_for_or_all_damaged_is_one_error_line(run_copy):
    DAMAGE["truncated array file"](run_copy / "checkpoints" / "6")
    with pytest.raises(DamagedCheckpointError, match="step 6: .* is damaged; load another") as e:
        jaxae.load(run_copy, step=6)
    assert len(str(e.value).splitlines()) == 1 and "saved steps: 3, 6" in str(e.value)
    assert jaxae.load(run_copy, step=3).step == 3
    DAMAGE["emptied metadata"](run_copy / "checkpoints" / "3")
    with pytest.raises(DamagedCheckpointError, match="every checkpoint is damaged") as e:
        jaxae.load(run_copy)
    assert "step 6: " in str(e.value) and "step 3: " in str(e.value)
    assert len(str(e.value).splitlines()) == 1


BAD_CONFIG_JSON = {
    "not JSON": ("{not json", "is not valid JSON \\(line 1 column 2"),
    "empty": ("", "is not valid JSON"),
    "a list": ("[1, 2]", "lacks a JSON object"),
    "no model": ('{"seed": 0}', "lacks a model section"),
}


@pytest.mark.parametrize("case", BAD_CONFIG_JSON)
def test_an_invalid_config_json_is_one_error_line(run_copy, case, capsys):
    text, message = BAD_CONFIG_JSON[case]
    (run_copy / "config.json").write_text(text)
    with pytest.raises(InvalidConfigJsonError, match=message) as e:
        jaxae.load(run_copy)
    assert len(str(e.value).splitlines()) == 1 and "config.json" in str(e.value)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--workdir", str(run_copy), "--only", "parameters"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "config.json" in err[0], err


def test_the_analysis_of_a_damaged_run_uses_the_previous_step(run_copy, capsys):
    DAMAGE["truncated array file"](run_copy / "checkpoints" / "6")
    out = cli.analyze(run_copy, only=["parameters"], limits=LIMITS)
    assert out["step"] == 3
    err = capsys.readouterr().err
    assert "warning: " in err and "Traceback" not in err and "absl" not in err
    saved = json.loads((run_copy / "analysis" / "analysis.json").read_text())
    assert saved["step"] == 3 and saved["analyses"]["parameters"]["numbers"]["code_size"] == 8
