"""Shared fixtures: every test gets its own state folder and no XSELL_* from the caller's shell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("XSELL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XSELL_STATE_DIR", str(tmp_path / "state"))


# Property tests must not fail on a loaded machine because one example was slow.
settings.register_profile("xsell", deadline=None)
settings.load_profile("xsell")
