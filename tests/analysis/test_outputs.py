"""The analysis's files are replaced atomically: a failed, full-disk or killed write leaves no
partial file that breaks the next run; --out writes elsewhere and leaves the workdir untouched."""

import errno
import json
import os
import pathlib
import shutil

import pytest

from jaxae.analysis import cli, files

from .conftest import LIMITS

ONLY = ["parameters"]


def _files(directory):
    directory = pathlib.Path(directory)
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.fixture
def analyzed_copy(linear_run, tmp_path):
    """A copy of the session's linear run with an analysis of ONLY written."""
    copy = tmp_path / "run"
    shutil.copytree(linear_run[1], copy)
    cli.analyze(copy, only=ONLY, limits=LIMITS)
    return copy


def _full_disk_after(monkeypatch, n_bytes, target):
    """Writes to a temporary file of `target` stop with ENOSPC after n_bytes (as a full disk)."""
    real = pathlib.Path.write_text

    def write_text(self, text, *args, **kwargs):
        if self.name.startswith(f".{target}"):
            with self.open("w") as f:
                f.write(text[:n_bytes])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


@pytest.mark.parametrize("target", ["analysis.json", "report.html"])
def test_a_full_disk_is_one_line_and_keeps_the_previous_files(
    analyzed_copy, monkeypatch, target, capsys
):
    outdir = analyzed_copy / "analysis"
    before = _files(outdir)
    _full_disk_after(monkeypatch, 10, target)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--workdir", str(analyzed_copy), "--only", "parameters", "--max_examples", "32"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no space left") and "--out" in err[0], err
    after = _files(outdir)
    assert after[target] == before[target]  # the previous version, whole
    assert not [name for name in after if name.startswith(".")]  # no temporary left behind
    monkeypatch.undo()
    out = cli.analyze(analyzed_copy, only=["parameters"], limits=LIMITS)  # the next run works
    assert json.loads((outdir / "analysis.json").read_text()) == out


def test_a_figure_that_fails_half_written_leaves_the_previous_one(analyzed_copy, monkeypatch):
    from jaxae.analysis import figures

    outdir = analyzed_copy / "analysis"
    before = (outdir / "parameters.png").read_bytes()

    def savefig(self, path, **kwargs):
        pathlib.Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(figures.plt.Figure, "savefig", savefig)
    with pytest.raises(files.AnalysisWriteError, match="no space left"):
        cli.analyze(analyzed_copy, only=["parameters"], limits=LIMITS)
    assert (outdir / "parameters.png").read_bytes() == before
    assert not list(outdir.glob(".*"))


@pytest.mark.parametrize("content", ["", '{"step": 6, "analy', "[]", '{"analyses": 3}'])
def test_an_analysis_json_left_broken_by_an_earlier_run_is_rewritten(
    analyzed_copy, content, capsys
):
    path = analyzed_copy / "analysis" / "analysis.json"
    path.write_text(content)
    stale = path.with_name(".analysis.json.tmp-999999999")  # killed before its rename
    stale.write_text('{"step": ')
    out = cli.analyze(analyzed_copy, only=["parameters"], limits=LIMITS)
    err = capsys.readouterr().err
    assert "warning: ignoring" in err and "analysis.json" in err
    assert json.loads(path.read_text()) == out and list(out["analyses"]) == ["parameters"]
    assert not stale.exists()


def _snapshot(directory):
    """{path: (mtime, bytes or None)} of every file and directory under `directory`."""
    return {
        p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
        for p in pathlib.Path(directory).rglob("*")
    }


def test_out_writes_elsewhere_and_leaves_the_workdir_untouched(linear_run, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(linear_run[1], workdir)
    before = _snapshot(workdir)
    elsewhere = tmp_path / "elsewhere" / "analysis"
    # the CLI, as a user with a read-only workdir would call it
    cli.main(["--workdir", str(workdir), "--out", str(elsewhere), "--only", "parameters"])
    assert capsys.readouterr().out.strip().endswith(f"wrote {elsewhere / 'report.html'}")
    assert _snapshot(workdir) == before
    saved = json.loads((elsewhere / "analysis.json").read_text())
    assert saved["workdir"] == str(workdir.absolute()) and (elsewhere / "parameters.png").is_file()


def test_an_unwritable_analysis_directory_is_one_line_naming_out(tmp_path, monkeypatch):
    def mkdir(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    error = pytest.raises(files.AnalysisWriteError, match="cannot write .* with --out DIR")
    with error as e, files.writing_into(tmp_path / "analysis"):
        pass
    assert len(str(e.value).splitlines()) == 1
