"""Data tests run isolated: no real sources, no network, a private cache."""

import pytest

from jaxae.data import idx


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real sources, no network, and a private cache, unless a test opts back in."""
    monkeypatch.setenv("JAXAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("JAXAE_NO_DOWNLOAD", "1")
    monkeypatch.delenv("JAXAE_DATA_DIR", raising=False)
    monkeypatch.setattr(idx, "DEBIAN_DATA_ROOT", tmp_path / "no-debian-datasets")
