"""One embedded broker and Redis for the whole test session, on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rules_store.settings import Settings
from xsell.embedded import EmbeddedStack
from xsell.processes import free_port

# Tests that run a Faust worker on the embedded broker: `make test-stream` runs only these.
STREAM_FILES = (
    "test_worker.py",
    "test_recovery.py",
    "test_stream_commands.py",
    "test_demo.py",
    "test_kill9.py",
    "test_churn_stream.py",
    "test_web_api.py",
    "test_dashboard_browser.py",
    "test_poison_records.py",
    "test_own_catalog.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid:
            item.add_marker(pytest.mark.integration)
            if item.nodeid.split("::")[0].endswith(STREAM_FILES):
                item.add_marker(pytest.mark.stream)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("stack-state"))
    with EmbeddedStack(settings) as running:
        yield running


@pytest.fixture
def stack_env(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point `xsell` at the session stack the way another terminal would: its run file."""
    monkeypatch.setenv("XSELL_STATE_DIR", str(stack.settings.state_dir))
    monkeypatch.setenv("XSELL_WEB_PORT", str(free_port()))  # each test's worker its own
    return stack.settings.state_dir


@pytest.fixture
def isolated(stack: EmbeddedStack, stack_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Own topic and key prefixes, so this worker's group and bundles are its own."""
    prefix = f"w{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XSELL_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", prefix)
    return prefix
