"""Progress bars and tables for long commands (rich), kept out of the pure training code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from training.stages import Stages


@contextmanager
def stage_progress(console: Console) -> Iterator[Stages]:
    """Stages whose start and end show as one progress line each, with elapsed time."""
    with Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def start(name: str) -> None:
            tasks[name] = progress.add_task(name, total=1)

        def end(name: str, _seconds: float) -> None:
            progress.update(tasks[name], completed=1)

        yield Stages(on_start=start, on_end=end)
