"""Reproduce every table and plot of docs/benchmarks.md with one command.

    python benchmarks/run_all.py               # everything, with the settings the doc records (hours)
    python benchmarks/run_all.py --quick       # a small slice of each benchmark (minutes); the doc is left alone
    python benchmarks/run_all.py --dry-run     # print the commands only
    python benchmarks/run_all.py --only jsts,report

The steps run one after the other (one benchmark process at a time, so they do not disturb each
other's timings): core, MaskBench side by side, JSON-Schema-Test-Suite side by side,
JSONSchemaBench, ASAp, generation, monitors, then `report.py` (MaskBench / test-suite sections and
their plots). Each step's commands are those its section of docs/benchmarks.md names (read from
the doc, so the two cannot drift apart; built-in defaults are used when the doc has no such
section yet); a step may run several, e.g. the MaskBench section's two runs (structgen with
`property_order=flexible`, then the three peers with `--engine-timeouts outlines=10`, each into
its own results file) and the `report.py` command of each side-by-side section. Results files
under results/ are resumed, so an interrupted run picks up where it stopped. `--quick` shrinks
every step, moves every results file into a temporary folder (same file names) and never touches
docs/ (the report goes to that folder).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.docsection import DOC  # noqa: E402
from benchmarks.harness import REPO_ROOT  # noqa: E402


class InTmp:
    """A `--quick` override for a path option: each path (comma-separated) moved into the quick run's
    folder under its own file name; when the option is absent, `default` there (or nothing when
    `default` is None)."""

    def __init__(self, default: str | None = None):
        self.default = default

    def value(self, old: str | None, tmp: str) -> str | None:
        if old:
            return ",".join(os.path.join(tmp, os.path.basename(p)) for p in old.split(",") if p)
        return os.path.join(tmp, self.default) if self.default else None


# name, doc sections, pattern of the command(s) in those sections (every match runs, in order),
# default commands (when the doc names none), quick overrides
STEPS: list[tuple[str, tuple[str, ...], str, list[str], dict]] = [
    ("core", ("core",), r"Reproduce: `(python benchmarks/bench_core\.py[^`]*)`",
     ["python benchmarks/bench_core.py"], {"--repeat": "1", "--no-write": True}),
    # the MaskBench section: one run per results file (structgen with flexible key order; the peers)
    ("maskbench", ("maskbench-side-by-side",), r"Reproduce: `(python benchmarks/maskbench\.py[^`]*)`",
     ["python benchmarks/maskbench.py --engines structgen:property_order=flexible --jobs 1 --limit 800 "
      "--mem-mb 8192 --seed 0 --timeout 30.0 --out results/mb800_structgen.jsonl",
      "python benchmarks/maskbench.py --engines llguidance,xgrammar,outlines --engine-timeouts outlines=10 "
      "--jobs 1 --limit 800 --mem-mb 8192 --seed 0 --timeout 30.0 --out results/mb800_peers.jsonl"],
     {"--limit": "4", "--out": InTmp("maskbench.jsonl")}),
    # the whole development split, structgen alone (about two hours)
    ("maskbench-dev", ("maskbench-dev-split",), r"Reproduce: `(python benchmarks/maskbench\.py[^`]*)`",
     ["python benchmarks/maskbench.py --engines structgen:property_order=flexible --jobs 1 --mem-mb 8192 "
      "--timeout 30.0 --out results/dev_structgen.jsonl"],
     {"--limit": "4", "--out": InTmp("dev_structgen.jsonl")}),
    ("jsts", ("jsts-side-by-side",), r"Reproduce: `(python benchmarks/jsts\.py[^`]*)`",
     ["python benchmarks/jsts.py --engines llguidance,structgen,xgrammar,outlines --drafts draft2020-12 --jobs 1 "
      "--mem-mb 8192 --optional none --timeout 20.0 --engine-timeouts outlines=10 --out results/jsts2020.jsonl"],
     {"--limit-groups": "8", "--out": InTmp("jsts.jsonl")}),
    ("jsonschemabench", ("jsonschemabench",), r"Written by `(python benchmarks/jsonschemabench\.py[^`]*)`",
     ["python benchmarks/jsonschemabench.py"],
     {"--n": "1", "--datasets": "Glaiveai2K", "--max-new-tokens": "24", "--out": "{tmp}/jsonschemabench.jsonl",
      "--no-write": True}),
    ("asap", ("asap",), r"`(python benchmarks/bench_asap\.py[^`]*)`",
     ["python benchmarks/bench_asap.py --seeds 5 --n 3000 --smollm2 1000"],
     {"--seeds": "1", "--n": "200", "--smollm2": "20", "--no-write": True, "--png": "{tmp}/asap_kl.png"}),
    ("generation", ("generation",), r"`(python benchmarks/bench_generation\.py[^`]*)`",
     ["python benchmarks/bench_generation.py --rounds 2 --tokens 24"],
     {"--rounds": "1", "--tokens": "6", "--no-write": True}),
    ("monitors", ("monitors",), r"Command: `(python benchmarks/bench_monitors\.py[^`]*)`",
     ["python benchmarks/bench_monitors.py --sites 48 --max-new 12"],
     {"--sites": "3", "--max-new": "4", "--no-write": True}),
    # each side-by-side section names the report.py command that writes it (and its plots)
    ("report", ("maskbench-side-by-side", "maskbench-dev-split", "jsts-side-by-side"),
     r"`(python benchmarks/report\.py[^`]*)`",
     ["python benchmarks/report.py --maskbench results/mb800_structgen.jsonl,results/mb800_peers.jsonl "
      "--engines structgen:property_order=flexible,llguidance,xgrammar,outlines",
      "python benchmarks/report.py --maskbench results/dev_structgen.jsonl --engines structgen:property_order=flexible "
      "--section maskbench-dev-split",
      "python benchmarks/report.py --jsts results/jsts2020.jsonl"],
     {"--maskbench": InTmp(), "--jsts": InTmp(), "--doc": "{tmp}/benchmarks.md"}),
]

#: flags the doc states apart from the command (the ASAp section: "(`--seeds 5 --n 3000`)", "(`--smollm2 N`)")
EXTRA_FLAGS = {"asap": [r"\(`(--seeds \d+ --n \d+)`\)", r"\(`(--smollm2 \d+)`\)"]}


def section_text(doc: str, name: str) -> str | None:
    m = re.search(re.escape(f"<!-- section:{name} -->") + r"(.*?)" + re.escape(f"<!-- /section:{name} -->"),
                  doc, re.S)
    return m.group(1) if m else None


def documented_commands(doc: str, step: tuple) -> tuple[list[list[str]], str]:
    """([argv, ...], where they came from): every command the step's sections name (each once, in
    order), else the built-in defaults."""
    name, sections, pattern, defaults, _ = step
    found, origins = [], []
    for sec in sections:
        body = section_text(doc, sec)
        for m in re.finditer(pattern, body or ""):
            argv = shlex.split(m.group(1))
            for extra in EXTRA_FLAGS.get(name, []):
                e = re.search(extra, body)
                if e:
                    argv = with_overrides(argv, _as_overrides(shlex.split(e.group(1))))
            if argv not in found:
                found.append(argv)
                if sec not in origins:
                    origins.append(sec)
    if not found:
        return [shlex.split(d) for d in defaults], "default (no command in the doc)"
    return found, "docs/benchmarks.md section " + ", ".join(f"'{s}'" for s in origins)


def documented_command(doc: str, step: tuple) -> tuple[list[str], str]:
    """The first of `documented_commands`."""
    cmds, origin = documented_commands(doc, step)
    return cmds[0], origin


def _as_overrides(args: list[str]) -> dict:
    out: dict = {}
    i = 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[args[i]] = args[i + 1]
            i += 2
        else:
            out[args[i]] = True
            i += 1
    return out


def _value(argv: list[str], flag: str) -> str | None:
    if flag in argv:
        i = argv.index(flag)
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            return argv[i + 1]
    return None


def with_overrides(argv: list[str], overrides: dict, tmp: str = "") -> list[str]:
    """Set each `--flag` of `overrides` (value True = a bare flag, an `InTmp` = the path(s) moved
    into `tmp`), replacing a value already there."""
    argv = list(argv)
    for flag, value in overrides.items():
        if isinstance(value, InTmp):
            value = value.value(_value(argv, flag), tmp)
            if value is None:
                continue
        if flag in argv:
            i = argv.index(flag)
            if value is True:
                continue
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                argv[i + 1] = str(value)
            else:
                argv.insert(i + 1, str(value))
        else:
            argv += [flag] if value is True else [flag, str(value)]
    return argv


def plan(doc_path: str, quick: bool, tmp: str, only: list[str] | None = None) -> list[tuple[str, list[str], str]]:
    """(step name, argv, origin) for every command to run, in order (a step may run several)."""
    doc = open(doc_path, encoding="utf-8").read() if os.path.exists(doc_path) else ""
    steps = []
    for step in STEPS:
        if only and step[0] not in only:
            continue
        cmds, origin = documented_commands(doc, step)
        for argv in cmds:
            if quick:
                argv = with_overrides(argv, {k: (v.format(tmp=tmp) if isinstance(v, str) else v)
                                             for k, v in step[4].items()}, tmp)
            if argv and argv[0] == "python":
                argv[0] = sys.executable
            steps.append((step[0], argv, origin))
    return steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small slice of every benchmark; docs/ left alone")
    ap.add_argument("--only", default="", help="comma-separated steps: " + ",".join(s[0] for s in STEPS))
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--doc", default=DOC, help="where the commands are read from (default: docs/benchmarks.md)")
    ap.add_argument("--tmp", default=None, help="--quick: results folder (default: a new temporary folder)")
    ap.add_argument("--keep-going", action="store_true", help="run the remaining steps after a failure")
    args = ap.parse_args(argv)
    tmp = args.tmp or (tempfile.mkdtemp(prefix="structgen-bench-") if args.quick else "")
    only = [s for s in args.only.split(",") if s] or None
    skip = {s for s in args.skip.split(",") if s}
    unknown = (set(only or ()) | skip) - {s[0] for s in STEPS}
    if unknown:
        ap.error(f"unknown step(s) {sorted(unknown)}")
    steps = [s for s in plan(args.doc, args.quick, tmp, only) if s[0] not in skip]
    results = []
    for name, cmd, origin in steps:
        shown = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
        print(f"\n=== [{name}] {shown}\n    (from {origin})", flush=True)
        if args.dry_run:
            continue
        t0 = time.monotonic()
        rc = subprocess.call(cmd, cwd=REPO_ROOT)
        dt = time.monotonic() - t0
        results.append((name, rc, dt))
        print(f"=== [{name}] exit {rc} after {dt / 60:.1f} min", flush=True)
        if rc != 0 and not args.keep_going:
            break
    if results:
        print("\nsummary: " + ", ".join(f"{n} {'ok' if rc == 0 else f'FAILED ({rc})'} {dt / 60:.1f} min"
                                        for n, rc, dt in results))
        if args.quick:
            print(f"quick results in {tmp}")
    failed = [n for n, rc, _ in results if rc != 0]
    return 1 if failed or (len(results) < len(steps) and not args.dry_run) else 0


if __name__ == "__main__":
    sys.exit(main())
