"""Fixtures of the runtime tests: one 4-device subprocess run shared by several tests."""

import pytest


@pytest.fixture(scope="session")
def four_device_runs(tmp_path_factory):
    """(process, root): one subprocess training on 4 simulated CPU devices (test_parallel.py)."""
    from .test_parallel import start_four_device_runs

    return start_four_device_runs(tmp_path_factory.mktemp("four_devices"))
