"""`import jaxae` and `jaxae.load` stay light: no matplotlib, scikit-learn or training code."""

import subprocess
import sys

from conftest import ROOT

HEAVY = ("matplotlib", "sklearn")


def _modules_after(code: str) -> set[str]:
    """The top-level modules loaded by a fresh interpreter after running `code`."""
    script = (
        f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_import_jaxae_and_jaxae_load_import_no_plotting_or_scikit_learn():
    loaded = _modules_after("import jaxae\nimport jaxae.analysis.load\nassert callable(jaxae.load)")
    assert "jax" in loaded and not loaded & set(HEAVY), loaded & set(HEAVY)


def test_the_analysis_package_never_imports_training_code():
    names = "cli context curves downstream features figures latent load parameters"
    names += " reconstruction report sweep vae"
    imports = "\n".join(f"import jaxae.analysis.{n}" for n in names.split())
    check = (
        "bad = [m for m in sys.modules if m in ('jaxae.train', 'jaxae.steps')]\nassert not bad, bad"
    )
    _modules_after(f"{imports}\n{check}")
