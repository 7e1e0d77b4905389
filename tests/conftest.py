"""Shared test fixtures: where the shared CMS files and 835 samples live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path under ``../shared``; skips the test with a message when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present: the shared reference folder is not beside this checkout")
    return path


@pytest.fixture
def x12_dir() -> Path:
    return shared_path("fixtures", "x12-835")


@pytest.fixture
def cms_dir() -> Path:
    return shared_path("cms", "rvu25d")
