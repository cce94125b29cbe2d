"""Stress check: kill -9 workers mid-stream, trial after trial; does every trial end as with no crash?

Each trial is the scenario of tests/integration/test_kill9.py (tests/integration/
kill9_scenario.py), with its own events (seed = trial number) under a fresh topic and
key prefix on one embedded stack: 60 customers load snapshot rows with a months table,
6,000 transactions arrive, paced, while the workers run, and a worker is killed with
SIGKILL 4, 5 and 6 s after the group has taken every worker in (with two workers the
kills alternate, so each crash is a rebalance). Then every customer's latest state, each
partition's acceptance book and every cross-sell, retention and churn alert are compared
byte for byte with a no-crash reference computed by the worker's pure steps.

One line per trial: OK or FAIL, its seconds, and per kill the group's committed offsets
over the events sent by then, the transactions the killed worker had taken, and "mid"
when events were still unread at the kill. The workers' stdout and stderr and a timeline
of starts and kills go to a folder per trial, kept (with differences.txt) when the trial
fails. The last line: how many trials differ, how many kills landed mid-stream.

XSELL_* variables from the shell are ignored: the reference assumes the default settings
(`--standby-replicas` sets the one the steps do not read).
A trial takes one to two minutes on 2 cores (a worker needs ~6 s to start); the first
also trains the bundle and fits its ranker (~6 s).

Run: .venv/bin/python bench/kill9.py [--trials 30] [--workers 2] [--ranker blend] [--logs DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.integration

from rules_store.domain.ranking import SERVABLE, RankerName
from rules_store.settings import Settings
from tests.integration.kill9_scenario import KILLS_AFTER_S, Kill9Result, run_kill9
from xsell.embedded import EmbeddedStack


def _line(trial: int, result: Kill9Result) -> str:
    kills = ", ".join(
        f"{k.committed}/{k.sent} took {k.taken} {'mid' if k.mid_stream else 'done'}"
        for k in result.kills
    )
    verdict = "FAIL" if result.differs else "OK"
    line = f"trial {trial:2d} {verdict:4s} {result.seconds:3.0f} s  kills (committed/sent): {kills}"
    if result.kinds != {"cross_sell", "churn", "retention"}:
        line += f"  (alert kinds only {sorted(result.kinds)})"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=30, help="how many trials (default 30)")
    parser.add_argument(
        "--workers", type=int, choices=(1, 2), default=2, help="workers at once (default 2)"
    )
    parser.add_argument(
        "--ranker",
        choices=SERVABLE,
        help="the ranker the bundle serves (default: blend with two workers, rules with one)",
    )
    parser.add_argument(
        "--logs", type=Path, help="where the trials' folders go (default: a new temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs of trials that pass too")
    parser.add_argument(
        "--standby-replicas",
        type=int,
        help="XSELL_STANDBY_REPLICAS for the workers (default: the setting's, 1): with 0 a"
        " survivor recovers the killed worker's partitions from their changelogs",
    )
    args = parser.parse_args()
    ranker: RankerName | None = args.ranker or ("blend" if args.workers == 2 else None)
    if ranker == "rules":
        ranker = None  # the bundle's own rules, as the one-worker test serves them
    logs: Path = args.logs or Path(tempfile.mkdtemp(prefix="xsell-kill9-logs-"))
    for name in [n for n in os.environ if n.startswith("XSELL_")]:
        del os.environ[name]
    if args.standby_replicas is not None:  # the steps, and so the reference, do not read it
        os.environ["XSELL_STANDBY_REPLICAS"] = str(args.standby_replicas)

    print(
        f"{args.trials} trials, {args.workers} worker(s), ranker {ranker or 'rules'}; logs in {logs}"
    )
    failed = unfinished = mid_stream = 0
    state = Path(tempfile.mkdtemp(prefix="xsell-kill9-"))
    with EmbeddedStack(Settings(state_dir=state)) as stack:
        for trial in range(1, args.trials + 1):
            folder = logs / f"trial-{trial:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            try:
                result = run_kill9(
                    stack, workers=args.workers, ranker=ranker, seed=trial, log_dir=folder
                )
            except Exception as exc:  # a trial that could not finish fails; the loop goes on
                failed += 1
                unfinished += 1
                (folder / "differences.txt").write_text(traceback.format_exc())
                print(f"trial {trial:2d} FAIL did not finish: {exc}; logs in {folder}", flush=True)
                continue
            mid_stream += sum(k.mid_stream for k in result.kills)
            line = _line(trial, result)
            if result.differs:
                failed += 1
                (folder / "differences.txt").write_text(result.report())
                line += f"\n  {result.summary()}; logs in {folder}"
            elif not args.keep:
                shutil.rmtree(folder)
            print(line, flush=True)
    shutil.rmtree(state, ignore_errors=True)
    kills = len(KILLS_AFTER_S) * args.trials
    note = f" ({unfinished} did not finish)" if unfinished else ""
    print(
        f"{failed} of {args.trials} trials differ{note}; {mid_stream} of {kills} kills mid-stream"
    )


if __name__ == "__main__":
    main()
