"""Running `xsell` in-process the way the console script does, for tests."""

from __future__ import annotations

import pytest

from xsell.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and everything printed (stdout + stderr)."""
    try:
        main(args)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    else:
        code = 0
    captured = capsys.readouterr()
    return code, captured.out + captured.err
