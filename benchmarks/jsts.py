"""JSON-Schema-Test-Suite side by side, with the JSONSchemaBench paper's protocol.

    python benchmarks/jsts.py --engines structgen,xgrammar,llguidance,outlines --out results/jsts.jsonl

Each test group (one schema + instances) is one case, run through the same worker and loop as
MaskBench. A group passes when it compiles, every valid instance is accepted (walked token by
token, EOS allowed at the end) and every invalid one blocked; a compile error passes only when
all its instances are invalid (the schema is unsatisfiable). Per test the outcome is `pass`,
`false_negative` (valid rejected: over-constrained), `false_positive` (invalid accepted:
under-constrained) or `compile_error` (also `timeout`/`oom`/`crash`). The llguidance engine's
per-test outcomes are compared with llguidance's published baseline.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import DATA_ROOT  # noqa: E402
from benchmarks.harness.results import (check_tokenizer, collect_by_engine, default_out, machine_info,  # noqa: E402
                                        md_table, package_versions, parse_engine_timeouts, run_engines,
                                        update_meta)

BENCH = "jsts"
JSTS_DIR = os.path.join(DATA_ROOT, "json-schema-test-suite")
DEFAULT_ENGINES = "structgen,xgrammar,llguidance,outlines"
DRAFT_URI = {"draft7": "http://json-schema.org/draft-07/schema#",
             "draft2020-12": "https://json-schema.org/draft/2020-12/schema"}
#: categories the paper left out (format assertions are optional; remote refs need a server)
PAPER_EXCLUDED = {"format", "refRemote"}


def list_files(root: str, draft: str, optional: str) -> list[str]:
    """Relative paths (`type.json`, `optional/format/date.json`) of the selected test files."""
    base = os.path.join(root, "tests", draft)
    out = sorted(os.path.relpath(p, base) for p in glob.glob(os.path.join(base, "*.json")))
    if optional in ("format", "all"):
        out += sorted(os.path.relpath(p, base) for p in glob.glob(os.path.join(base, "optional", "format", "*.json")))
    if optional == "all":
        out += sorted(os.path.relpath(p, base) for p in glob.glob(os.path.join(base, "optional", "*.json")))
    return out


def load_cases(root: str, drafts: list[str], optional: str, categories=None, limit_groups=None) -> list[dict]:
    cases = []
    for draft in drafts:
        for rel in list_files(root, draft, optional):
            category = rel[:-5]
            if categories and category not in categories and os.path.basename(category) not in categories:
                continue
            with open(os.path.join(root, "tests", draft, rel)) as f:
                groups = json.load(f)
            for gi, g in enumerate(groups):
                schema = g["schema"]
                if isinstance(schema, dict) and "$schema" not in schema and draft in DRAFT_URI:
                    schema = {"$schema": DRAFT_URI[draft], **schema}
                cases.append({
                    "id": f"{draft}/{category}#{gi}",
                    "schema": schema,
                    "tests": [{"data": t["data"], "valid": bool(t["valid"]), "description": t["description"]}
                              for t in g["tests"]],
                    "ensure_ascii": False,
                    "meta": {"draft": draft, "category": category, "description": g["description"],
                             "test_descriptions": [t["description"] for t in g["tests"]]},
                })
    if limit_groups is not None:
        cases = cases[:limit_groups]
    return cases


# ----------------------------------------------------------------------------- scoring

def test_outcomes(r: dict) -> list[str]:
    """Per-test outcome labels of one group record."""
    n = len(r.get("test_descriptions") or r.get("tests") or [])
    status = r.get("status")
    if status != "ok":
        return [status if status in ("timeout", "oom", "crash") else "compile_error"] * n
    out = []
    for t in r["tests"]:
        if t["valid"]:
            out.append("pass" if t["accepted"] else "false_negative")
        else:
            out.append("false_positive" if t["accepted"] else "pass")
    return out


def group_result(r: dict) -> str:
    """`pass`, `pass_unsat` (compile error, all instances invalid), `compile_error`, `timeout`,
    `oom`, `crash`, `over` (a valid instance rejected), `under` (an invalid one accepted), `both`."""
    status = r.get("status")
    if status != "ok":
        tests = r.get("tests")
        valid_flags = [t["valid"] for t in tests] if tests else r.get("valid_flags", [])
        if status == "compile_error" and valid_flags and not any(valid_flags):
            return "pass_unsat"
        return status if status in ("timeout", "oom", "crash") else "compile_error"
    over = any(t["valid"] and not t["accepted"] for t in r["tests"])
    under = any(not t["valid"] and t["accepted"] for t in r["tests"])
    return "both" if over and under else "over" if over else "under" if under else "pass"


def _tally(recs: list[dict]) -> dict:
    t = {"groups": len(recs), "passed": 0, "compile_error": 0, "failed_run": 0, "over": 0, "under": 0,
         "tests": 0, "tests_passed": 0}
    for r in recs:
        g = group_result(r)
        t["passed"] += g in ("pass", "pass_unsat")
        t["compile_error"] += g == "compile_error"
        t["failed_run"] += g in ("timeout", "oom", "crash")
        t["over"] += g in ("over", "both")
        t["under"] += g in ("under", "both")
        outs = test_outcomes(r)
        t["tests"] += len(outs)
        t["tests_passed"] += sum(o == "pass" for o in outs) if g != "pass_unsat" else len(outs)
    return t


def totals_table(by_engine: dict[str, list[dict]]) -> str:
    header = ["engine", "subset", "groups", "passed", "compile error", "timeout/oom/crash", "over-constrained",
              "under-constrained", "tests passed"]
    rows = []
    for eng, recs in by_engine.items():
        subsets = [("all selected", recs),
                   ("paper (2020-12 required, no format/refRemote)",
                    [r for r in recs if r.get("draft") == "draft2020-12" and "/" not in r.get("category", "")
                     and r.get("category") not in PAPER_EXCLUDED])]
        for name, rs in subsets:
            if not rs:
                continue
            t = _tally(rs)
            rows.append([eng, name, t["groups"], t["passed"], t["compile_error"], t["failed_run"], t["over"],
                         t["under"], f"{t['tests_passed']} / {t['tests']}"])
    return md_table(header, rows, "ll" + "r" * 7)


def category_table(by_engine: dict[str, list[dict]]) -> str:
    """Rows: draft/category; per engine: passed/groups plus failure modes."""
    keys = sorted({(r.get("draft", ""), r.get("category", "")) for recs in by_engine.values() for r in recs})
    engines = list(by_engine)
    rows = []
    for draft, cat in keys:
        row = [f"{draft}/{cat}"]
        for eng in engines:
            rs = [r for r in by_engine[eng] if r.get("draft") == draft and r.get("category") == cat]
            if not rs:
                row.append("–")
                continue
            t = _tally(rs)
            notes = [f"{t[k]}{s}" for k, s in (("compile_error", "ce"), ("failed_run", "to"), ("over", "o"),
                                                 ("under", "u")) if t[k]]
            row.append(f"{t['passed']}/{t['groups']}" + (f" ({' '.join(notes)})" if notes else ""))
        rows.append(row)
    return md_table(["category"] + engines, rows)


def failed_groups(recs: list[dict]) -> list[str]:
    """One line per group not passed: its outcome and the first test that went wrong."""
    out = []
    for r in recs:
        g = group_result(r)
        if g in ("pass", "pass_unsat"):
            continue
        line = f"  {r['case']} {r.get('description', '')!r}: {g}"
        if r.get("status") != "ok":
            line += f" {r.get('error_type', '')} {str(r.get('error', ''))[:120]}"
        else:
            for t, desc in zip(r["tests"], r.get("test_descriptions") or [""] * len(r["tests"])):
                if t["valid"] != t["accepted"]:
                    line += f" — {desc!r}: {t.get('text', '')[:80]!r}"
                    break
        out.append(line)
    return out


def load_baseline(root: str = JSTS_DIR) -> dict:
    p = os.path.join(root, "llguidance_baseline", "expected_json_schema_test_suite.json")
    if not os.path.exists(p):
        return {}
    with open(p) as f:
        return json.load(f)


BASELINE_MAP = {"pass": "pass", "false_negative": "false_negative", "false_positive": "false_positive",
                "skip_compile": "compile_error", "compile_error_valid": "compile_error",
                "compile_error_all_invalid": "compile_error"}


def baseline_comparison(recs: list[dict], baseline: dict) -> tuple[str, list[str]]:
    """Per-test agreement of `recs` with llguidance's baseline (same labels after mapping)."""
    agree = total = missing = 0
    diffs = []
    confusion: dict[tuple[str, str], int] = {}
    for r in recs:
        b = baseline.get(r.get("draft", ""), {}).get(r.get("category", ""), {}).get(r.get("description", ""))
        outs = test_outcomes(r)
        for desc, ours in zip(r.get("test_descriptions") or [], outs):
            exp = (b or {}).get(desc)
            if exp is None:
                missing += 1
                continue
            exp = BASELINE_MAP.get(exp, exp)
            total += 1
            agree += exp == ours
            confusion[(exp, ours)] = confusion.get((exp, ours), 0) + 1
            if exp != ours:
                diffs.append(f"  {r['case']} {r.get('description', '')!r} / {desc!r}: baseline {exp}, ours {ours}")
    rows = [[e, o, n] for (e, o), n in sorted(confusion.items(), key=lambda kv: -kv[1])]
    text = (f"{agree} / {total} tests agree with the baseline ({missing} tests have no baseline entry)\n\n"
            + md_table(["baseline", "ours", "tests"], rows, "llr"))
    return text, diffs


def collect(out: str, engines: list[str] | None, case_ids: list[str] | None) -> dict[str, list[dict]]:
    return collect_by_engine(out, BENCH, engines, case_ids)


def print_report(by_engine: dict[str, list[dict]], baseline: dict) -> None:
    if not by_engine:
        print("no results")
        return
    print("\n## JSON-Schema-Test-Suite totals (groups)\n")
    print(totals_table(by_engine))
    print("\nPer category: passed/groups (ce = compile error, to = timeout/oom/crash, o = over-constrained, "
          "u = under-constrained)\n")
    print(category_table(by_engine))
    for eng, recs in by_engine.items():
        bad = failed_groups(recs)
        if bad:
            print(f"\n{eng}: {len(bad)} groups not passed" + (" (first 15)" if len(bad) > 15 else ""))
            print("\n".join(bad[:15]))
    for eng, recs in by_engine.items():
        if eng.split(":")[0] == "llguidance" and baseline:
            text, diffs = baseline_comparison(recs, baseline)
            print(f"\n## {eng} against llguidance's published baseline\n")
            print(text)
            if diffs:
                print("\nfirst differences:")
                print("\n".join(diffs[:20]))


def annotate(rec: dict, case: dict) -> None:
    """Keep the valid flags so a compile error can still be scored (pass when all are invalid)."""
    rec["valid_flags"] = [t["valid"] for t in case["tests"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default=DEFAULT_ENGINES, help="comma-separated engine specs (default: %(default)s)")
    ap.add_argument("--drafts", default="draft2020-12", help="comma-separated: draft2020-12,draft7")
    ap.add_argument("--optional", choices=("none", "format", "all"), default="format",
                    help="which optional/ tests to include (default: format, as llguidance's baseline)")
    ap.add_argument("--categories", default="", help="comma-separated categories, e.g. type,enum,optional/format/date")
    ap.add_argument("--limit-groups", type=int, default=None, help="only the first N groups (smoke runs)")
    ap.add_argument("--out", default=None,
                    help="results JSONL (default: results/jsts.jsonl, results/jsts-smollm2.jsonl for smollm2)")
    ap.add_argument("--timeout", type=float, default=60.0, help="wall-clock seconds per group per engine")
    ap.add_argument("--mem-mb", type=int, default=8192)
    ap.add_argument("--engine-timeouts", default="",
                    help="per-engine limits replacing --timeout, e.g. outlines=10 (timeouts are recorded as such)")
    ap.add_argument("--tokenizer", default="llama3", choices=("llama3", "smollm2"),
                    help="shared tokenization: llama3 (quicktok, 128k) or smollm2 (the embedded SmolLM2-135M, 49k)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--data", default=JSTS_DIR)
    args = ap.parse_args(argv)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    cases = load_cases(args.data, [d for d in args.drafts.split(",") if d], args.optional,
                       [c for c in args.categories.split(",") if c] or None, args.limit_groups)
    case_ids = [c["id"] for c in cases]
    if args.out is None:
        args.out = default_out("jsts", args.tokenizer)
    meta_path = os.path.splitext(args.out)[0] + ".meta.json"
    if not args.report_only:
        check_tokenizer(meta_path, args.out, args.tokenizer)
        update_meta(meta_path, bench=BENCH, machine=machine_info(), packages=package_versions(), options=vars(args),
                    command="python benchmarks/jsts.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                    selection={"groups": len(cases), "drafts": args.drafts, "optional": args.optional,
                               "categories": args.categories, "timeout_s": args.timeout,
                               "engine_timeouts": args.engine_timeouts})
        print(f"{len(cases)} test groups; engines: {', '.join(engines)}; results -> {args.out}", file=sys.stderr)
        engines = run_engines(engines, cases, args.out, meta_path, bench=BENCH, timeout_s=args.timeout,
                              mem_mb=args.mem_mb, jobs=args.jobs, vocab=args.tokenizer,
                              engine_timeouts=parse_engine_timeouts(args.engine_timeouts), annotate=annotate)
    print_report(collect(args.out, engines, case_ids), load_baseline(args.data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
