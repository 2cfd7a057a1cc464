"""JSON-Schema-Test-Suite at the grammar-IR level: is the schema's language exact?

    python benchmarks/json_schema_test_suite.py [--drafts draft2020-12,draft7] [--order any|schema]
                                                [--files type,ref,...] [--json out.json]

For every test group the schema is compiled to IR (`json_schema_to_grammar`, no automata, no
tokenizer); `UnsupportedSchema` (and `InvalidSchema`/`LimitExceeded`) make the group
"unsupported". Every instance is serialized with ``json.dumps`` (ASCII-escaped, and again with
``ensure_ascii=False``) and its membership in the grammar's language is compared with the
instance's `valid` flag. Per test: passed, unsupported, over-constrained (a valid instance
rejected), under-constrained (an invalid instance accepted), and "declared" (an invalid instance
accepted where the compiler returned a warning saying what it does not enforce). Undeclared
under-constrained tests must be zero.

Membership is decided by `structgen.schema._irmatch` (a memoized set-of-positions walk over the
IR); pass `--oracle` to use the project's Earley oracle (tests/oracle.py) instead.

The default key order is "any": the suite's instances list keys in arbitrary order, which
property_order="schema" rejects by design (that mode is a subset, reported with --order schema).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from structgen.errors import (  # noqa: E402
    InvalidSchema,
    LimitExceeded,
    StructgenError,
    UnsupportedSchema,
)
from structgen.schema import json_schema_to_grammar  # noqa: E402

SUITE = os.environ.get("STRUCTGEN_JSTS", os.path.join(os.path.dirname(REPO), "shared", "data",
                                                      "json-schema-test-suite"))
if not os.path.isdir(SUITE):
    SUITE = "/work/shared/data/json-schema-test-suite"
DRAFT_NAMES = {"draft2020-12": "2020-12", "draft7": "7"}


def remote_resources() -> dict:
    """The suite's remotes/ as in-memory resources at http://localhost:1234/<path>."""
    out = {}
    root = os.path.join(SUITE, "remotes")
    for path in glob.glob(os.path.join(root, "**", "*.json"), recursive=True):
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        with open(path) as f:
            out["http://localhost:1234/" + rel] = json.load(f)
    return out


def suite_files(draft: str, optional: bool = True) -> list[str]:
    base = os.path.join(SUITE, "tests", draft)
    files = sorted(glob.glob(os.path.join(base, "*.json")))
    if optional:
        files += sorted(glob.glob(os.path.join(base, "optional", "*.json")))
        files += sorted(glob.glob(os.path.join(base, "optional", "format", "*.json")))
    return [os.path.relpath(f, base)[:-5] for f in files]


class _Timeout(Exception):
    pass


def _alarm(_sig, _frm):
    raise _Timeout()


def make_matcher(use_oracle: bool):
    if use_oracle:
        sys.path.insert(0, os.path.join(REPO, "tests"))
        from oracle import earley_accepts  # type: ignore

        return lambda g, text: earley_accepts(g, text.encode("utf-8"))
    from structgen.schema._irmatch import bytes_match

    return lambda g, text: bytes_match(g.rules[g.start], text.encode("utf-8"), g.rules)


def run_group(schema, tests, draft: str, order: str, accepts, resources, timeout_s: float = 20.0) -> dict:
    """Outcome of one test group: per-test labels plus the compile status."""
    res = {"status": "ok", "tests": [], "error": None}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        try:
            g, warnings = json_schema_to_grammar(schema, draft=DRAFT_NAMES.get(draft, draft),
                                                 property_order=order, resources=resources)
        except (UnsupportedSchema, InvalidSchema, LimitExceeded) as ex:
            res["status"] = "unsupported"
            res["error"] = f"{type(ex).__name__}: {ex}"
            res["tests"] = ["unsupported"] * len(tests)
            return res
        for t in tests:
            texts = {json.dumps(t["data"]), json.dumps(t["data"], ensure_ascii=False)}
            got = {accepts(g, x) for x in texts}
            if len(got) != 1:
                label = "under" if not t["valid"] else "over"
            else:
                a = got.pop()
                label = "pass" if a == t["valid"] else ("over" if t["valid"] else "under")
            if label == "under" and warnings:
                label = "under_declared"  # the compiler said it would not enforce something here
            res["tests"].append(label)
    except _Timeout:
        res["status"] = "timeout"
        res["tests"] = ["timeout"] * len(tests)
    except (StructgenError, RecursionError) as ex:
        res["status"] = "crash"
        res["error"] = f"{type(ex).__name__}: {ex}"
        res["tests"] = ["crash"] * len(tests)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return res


def run_file(draft: str, name: str, order: str, accepts, resources, timeout_s: float = 20.0) -> dict:
    with open(os.path.join(SUITE, "tests", draft, name + ".json")) as f:
        groups = json.load(f)
    rows = []
    for g in groups:
        r = run_group(g["schema"], g["tests"], draft, order, accepts, resources, timeout_s)
        r["description"] = g["description"]
        r["test_descriptions"] = [t["description"] for t in g["tests"]]
        rows.append(r)
    return {"draft": draft, "file": name, "groups": rows}


def counts(file_result: dict) -> dict:
    c = {"tests": 0, "pass": 0, "unsupported": 0, "over": 0, "under": 0, "under_declared": 0, "timeout": 0,
         "crash": 0}
    for g in file_result["groups"]:
        for label in g["tests"]:
            c["tests"] += 1
            c[label] += 1
    return c


def _baseline() -> dict:
    path = os.path.join(SUITE, "llguidance_baseline", "expected_json_schema_test_suite.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def ours_on_baseline_tests(file_result: dict, base: dict) -> tuple[int, int]:
    """(our passes, tests) over exactly the tests llguidance's baseline lists for this file."""
    per = base.get(file_result["draft"], {}).get(file_result["file"], {})
    ours = n = 0
    for g in file_result["groups"]:
        tests = per.get(g["description"], {})
        for desc, label in zip(g["test_descriptions"], g["tests"]):
            if desc in tests:
                n += 1
                ours += label == "pass"
    return ours, n


def baseline_counts(draft: str, name: str) -> dict | None:
    """llguidance's published per-test results for the same file (draft2020-12 only)."""
    path = os.path.join(SUITE, "llguidance_baseline", "expected_json_schema_test_suite.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    per = data.get(draft, {}).get(name)
    if per is None:
        return None
    c = {"tests": 0, "pass": 0}
    for tests in per.values():
        for label in tests.values():
            c["tests"] += 1
            if label in ("pass", "compile_error_all_invalid"):
                c["pass"] += 1
    return c


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drafts", default="draft2020-12,draft7")
    ap.add_argument("--order", default="any", choices=["any", "schema"])
    ap.add_argument("--files", default=None, help="comma-separated file names (e.g. type,optional/format/date)")
    ap.add_argument("--no-optional", action="store_true")
    ap.add_argument("--oracle", action="store_true", help="decide membership with tests/oracle.py")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per test group")
    ap.add_argument("--json", default=None, help="write the detailed results here")
    args = ap.parse_args(argv)
    accepts = make_matcher(args.oracle)
    resources = remote_resources()
    all_results = []
    totals = {}
    print(f"{'file':<44} {'tests':>5} {'pass':>5} {'unsup':>5} {'over':>5} {'under':>5} {'decl':>4} {'t/o':>4}  "
          f"{'llg pass':>8}")
    for draft in args.drafts.split(","):
        names = args.files.split(",") if args.files else suite_files(draft, not args.no_optional)
        tot = {"tests": 0, "pass": 0, "unsupported": 0, "over": 0, "under": 0, "under_declared": 0, "timeout": 0,
               "crash": 0}
        llg_tot = {"tests": 0, "pass": 0}
        for name in names:
            if not os.path.exists(os.path.join(SUITE, "tests", draft, name + ".json")):
                continue
            t0 = time.time()
            fr = run_file(draft, name, args.order, accepts, resources, args.timeout)
            fr["seconds"] = round(time.time() - t0, 2)
            all_results.append(fr)
            c = counts(fr)
            for k in tot:
                tot[k] += c[k]
            b = baseline_counts(draft, name)
            if b:
                llg_tot["tests"] += b["tests"]
                llg_tot["pass"] += b["pass"]
            print(f"{draft + '/' + name:<44} {c['tests']:>5} {c['pass']:>5} {c['unsupported']:>5} {c['over']:>5} "
                  f"{c['under']:>5} {c['under_declared']:>4} {c['timeout'] + c['crash']:>4}  "
                  f"{(b['pass'] if b else '-'):>8}", flush=True)
        totals[draft] = (tot, llg_tot)
    base = _baseline()
    if base:
        ours = n = 0
        for fr in all_results:
            a, b = ours_on_baseline_tests(fr, base)
            ours += a
            n += b
        if n:
            llg_pass = sum(1 for d in base.values() for f in d.values() for g in f.values() for x in g.values()
                           if x in ("pass", "compile_error_all_invalid"))
            print(f"on the {n} tests llguidance's baseline also lists: structgen passes {ours}; llguidance's "
                  f"baseline passes {llg_pass} of its {sum(1 for d in base.values() for f in d.values() for g in f.values() for x in g.values())}")
    for draft, (tot, llg) in totals.items():
        print(f"{draft + ' TOTAL':<44} {tot['tests']:>5} {tot['pass']:>5} {tot['unsupported']:>5} {tot['over']:>5} "
              f"{tot['under']:>5} {tot['under_declared']:>4} {tot['timeout'] + tot['crash']:>4}  "
              f"{llg['pass'] if llg['tests'] else '-':>8}"
              + (f" (of {llg['tests']})" if llg["tests"] else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"order": args.order, "results": all_results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
