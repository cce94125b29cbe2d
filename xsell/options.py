"""Click options that more than one command takes, each declared once, with one meaning.

An option name means the same in every command: `--rate` is always a replay speed in
events per second, `--seed` always a random seed. A command may choose the default and
add a detail to the help (what its `--out` holds), never change the meaning or the kind
of value; tests/unit/test_cli_options.py walks every command to keep it so.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from rules_store.bundle.schema import RETAIL_SCHEMA, Schema, load_schema

F = TypeVar("F", bound=Callable[..., Any])


class Decorator(Protocol):
    """What `click.option(...)` returns: it adds the option to any command function."""

    def __call__(self, func: F, /) -> F: ...


class SharedOption(click.Option):
    """An option declared in this module: its help opens with `meaning` in every command."""

    def __init__(self, *args: Any, meaning: str, detail: str = "", **kwargs: Any) -> None:
        kwargs["help"] = f"{meaning} {detail}".strip()
        super().__init__(*args, **kwargs)
        self.meaning = meaning


def _shared(*decls: str, meaning: str, detail: str = "", **attrs: Any) -> Decorator:
    if attrs.get("default", ...) is None:
        del attrs["default"]  # an explicit None would count as a value: `required` never fails
    return click.option(*decls, cls=SharedOption, meaning=meaning, detail=detail, **attrs)


def apply_options(options: Sequence[Decorator]) -> Decorator:
    """One decorator for several options, listed in the order `--help` shows them."""

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


# Inputs


def check_encoding(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Click callback: `value` must name a codec Python knows."""
    if value is None:
        return None
    try:
        codecs.lookup(value)
    except LookupError:
        msg = f"unknown encoding {value!r}; try utf-8, gb18030 or gbk"
        raise click.BadParameter(msg) from None
    return value


def schema_from(path: Path | None) -> Schema:
    """The schema in the `--schema` file, or the default retail layout."""
    return load_schema(path) if path else RETAIL_SCHEMA


def encoding_option(*, default: str | None = None) -> Decorator:
    """`--encoding`: of the file read (default: detect) or written (give a default)."""
    return _shared(
        "--encoding",
        meaning="Text encoding of .del/.csv data, e.g. gb18030 like many bank exports.",
        default=default,
        show_default=True if default else "detect UTF-8 or GB18030/GBK",
        callback=check_encoding,
    )


schema_option: Decorator = _shared(
    "--schema",
    "schema_path",
    type=click.Path(path_type=Path, dir_okay=False),
    meaning="JSON schema file (names, order, kinds, value lists) instead of the default "
    "retail layout.",
)


def with_input_options(func: F) -> F:
    """`--schema` and `--encoding` for a command that reads the bank's retail layout."""
    return apply_options([schema_option, encoding_option()])(func)


def unknown_category_option(detail: str = "") -> Decorator:
    return _shared(
        "--unknown-category",
        "unknown",
        type=click.Choice(["stop", "code"]),
        default="stop",
        show_default=True,
        meaning="Category values outside a field's list: stop with a report, or encode them "
        "as a reserved code ('unknown').",
        detail=detail,
    )


missing_option: Decorator = _shared(
    "--missing",
    type=click.Choice(["drop", "impute"]),
    default="drop",
    show_default=True,
    meaning="Rows with empty fields: drop them (counted; as seed 001) or impute them "
    "(median / most frequent / balance 0).",
)


# Outputs


def out_option(detail: str, *, directory: bool = False, default: Path | None = None) -> Decorator:
    """`--out`: the file (or, with `directory`, the directory) a command writes."""
    return _shared(
        "--out",
        "out_dir" if directory else "out_path",
        type=click.Path(path_type=Path, dir_okay=directory, file_okay=not directory),
        required=default is None,
        default=default,
        show_default=default is not None,
        meaning="Where to write:",
        detail=detail,
    )


json_option: Decorator = _shared(
    "--json",
    "as_json",
    is_flag=True,
    meaning="Print JSON instead of readable text.",
)


# Synthetic data


def customers_option(*, default: int | None = None, minimum: int = 1) -> Decorator:
    return _shared(
        "--customers",
        "-n",
        type=click.IntRange(min=minimum),
        required=default is None,
        default=default,
        show_default=default is not None,
        meaning="How many synthetic customers.",
    )


def seed_option(detail: str = "") -> Decorator:
    return _shared(
        "--seed",
        type=int,
        default=7,
        show_default=True,
        meaning="Random seed: the same seed gives the same output.",
        detail=detail,
    )


def dirty_share_option(default: float) -> Decorator:
    return _shared(
        "--dirty-share",
        type=click.FloatRange(0, 1),
        default=default,
        show_default=True,
        meaning="Share of rows given one empty field.",
    )


days_option: Decorator = _shared(
    "--days",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    meaning="Days of events to generate.",
)

drainers_option: Decorator = _shared(
    "--drainers",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    meaning="Customers who move 90% of their financial assets out over the first three "
    "days, then go silent: the churn alerts the stream must raise.",
)


def malformed_option(default: int) -> Decorator:
    return _shared(
        "--malformed",
        type=click.IntRange(min=0),
        default=default,
        show_default=True,
        meaning="Invalid records to mix into the events (bad JSON, missing field, unknown "
        "product, ...); the workers send them to the dead-letter topic.",
    )


def rate_option(default: float | None) -> Decorator:
    """`--rate`: how fast events are sent to the broker, not how many are generated."""
    return _shared(
        "--rate",
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=True if default is not None else "as fast as possible",
        meaning="Replay speed, events per second.",
    )


# Training and scoring


def min_support_option(default: float | None) -> Decorator:
    return _shared(
        "--min-support",
        type=click.FloatRange(0, 1, min_open=True),
        required=default is None,
        default=default,
        show_default=default is not None,
        meaning="Keep itemsets held together by at least this share of customers.",
    )


def min_confidence_option(default: float | None) -> Decorator:
    return _shared(
        "--min-confidence",
        type=click.FloatRange(0, 1),
        required=default is None,
        default=default,
        show_default=default is not None,
        meaning="Keep rules whose confidence is at least this.",
    )


def min_lift_option(default: float) -> Decorator:
    return _shared(
        "--min-lift",
        type=click.FloatRange(0),
        default=default,
        show_default=True,
        meaning="Drop rules whose lift is below this (1.1 drops rules that merely restate a "
        "product almost everyone holds).",
    )


prune_option: Decorator = _shared(
    "--prune",
    is_flag=True,
    meaning="Split off redundant rules (a more general rule is at least as confident) "
    "into rules_pruned.csv.",
)


def check_recall(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    """Click callback: a recall in (0, 1], or None."""
    if value is not None and not 0 < value <= 1:
        msg = f"{value} is not a recall in (0, 1]"
        raise click.BadParameter(msg)
    return value


threads_option: Decorator = _shared(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    meaning="CPU threads for fitting (gradient boosting, BLAS); more helps only on idle cores.",
)

model_selection_options: list[Decorator] = [
    _shared(
        "--folds",
        type=click.IntRange(min=2),
        default=5,
        show_default=True,
        meaning="Stratified cross-validation folds for the model comparison.",
    ),
    _shared(
        "--target-recall",
        type=float,
        callback=check_recall,
        meaning="Choose the highest threshold whose recall reaches this (default: best F1).",
    ),
    _shared(
        "--test-size",
        type=click.FloatRange(0.05, 0.5),
        default=0.25,
        show_default=True,
        meaning="Share held out to measure the chosen model.",
    ),
    seed_option("Used for splits and models."),
    _shared(
        "--trees",
        type=click.IntRange(min=1),
        default=200,
        show_default=True,
        meaning="Random forest size.",
    ),
    _shared(
        "--iterations",
        type=click.IntRange(min=1),
        default=200,
        show_default=True,
        meaning="Gradient boosting iterations (at most; early stopping on large data).",
    ),
    threads_option,
]
"""What `xsell train churn` and `xsell train potential` share: how models are compared."""

_MODEL = "A directory written by `xsell train ... --out`"
_BUNDLE = "A published bundle (`active` or a version id from `xsell bundles list`)"


def _model(detail: str) -> Decorator:
    return _shared(
        "--model",
        "model_dir",
        type=click.Path(path_type=Path, file_okay=False),
        meaning=_MODEL,
        detail=detail,
    )


def _bundle(detail: str) -> Decorator:
    return _shared("--bundle", "bundle_ref", meaning=_BUNDLE, detail=detail)


model_option = _model("to score with (default: train on the input first).")
bundle_option = _bundle("to score with (its rules, or the model attached to it).")
# Commands that only need a bundle's columns and products (its schema).
schema_model_option = _model("to take the columns and products from (else --schema).")
schema_bundle_option = _bundle("to take the columns and products from (else --schema).")

top_k_option: Decorator = _shared(
    "--top-k",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    meaning="Offers per customer.",
)


# The rules store and the stack


def activate_option(detail: str = "") -> Decorator:
    return _shared(
        "--activate",
        is_flag=True,
        meaning="Make the published bundle the active one right away (workers reload it "
        "within a second).",
        detail=detail,
    )


def wait_option(detail: str, *, default: float | None = None, min_open: bool = False) -> Decorator:
    return _shared(
        "--wait",
        "wait_s",
        type=click.FloatRange(min=0, min_open=min_open),
        default=default,
        show_default=default is not None,
        meaning="Wait up to this many seconds",
        detail=detail,
    )


# Rankers and their evaluation


def _segment_count(_ctx: click.Context, _param: click.Parameter, value: str) -> int | None:
    if value == "auto":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    msg = f"{value!r} is neither a positive integer nor 'auto'"
    raise click.BadParameter(msg)


segments_option: Decorator = _shared(
    "--segments",
    default="auto",
    callback=_segment_count,
    show_default=True,
    meaning="Number of segments, or 'auto' (best silhouette for k in 2..8).",
)

rankers_option: Decorator = _shared(
    "--rankers",
    default="popular,rules,itemcf,usercf,propensity,blend",
    show_default=True,
    meaning="Rankers to train and compare, comma-separated.",
)

events_truth_option: Decorator = _shared(
    "--events",
    "events_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    meaning="Events after the snapshot (JSON lines, `xsell generate events`): their `open` "
    "events are the forward-in-time truth.",
)

later_option: Decorator = _shared(
    "--later",
    "later_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    meaning="A later snapshot of the same customers: products held there and not in INPUT "
    "are the forward-in-time truth.",
)

sample_option: Decorator = _shared(
    "--sample",
    type=click.IntRange(min=100),
    default=100_000,
    show_default=True,
    meaning="Customers scored per evaluation protocol, at most (drawn at random).",
)
