"""MaskBench side by side: compile time, per-token mask time and correctness per engine.

    python benchmarks/maskbench.py --engines structgen,xgrammar,llguidance,outlines \
        --limit 200 --seed 0 --out results/maskbench.jsonl

Each file: compile (timed); every valid instance (`json.dumps(data, ensure_ascii=False)`,
Llama-3 BPE tokens, or SmolLM2's with `--tokenizer smollm2`) walked token by token, timing
each mask; every invalid instance must be blocked. pass = compiled, every valid accepted,
every invalid blocked. Results are appended to the JSONL file (re-running resumes); the tables
are printed at the end (`--report-only` prints them without running). `benchmarks/report.py`
writes the docs section from one or more results files.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import DATA_ROOT  # noqa: E402
from benchmarks.harness.results import (case_summary, check_tokenizer, collect_by_engine, default_out,  # noqa: E402
                                        engine_stats, fmt_ms, fmt_us, machine_info, md_table,
                                        package_versions, parse_engine_timeouts, run_engines, update_meta)

BENCH = "maskbench"
MASKBENCH_DIR = os.path.join(DATA_ROOT, "maskbench")
DEFAULT_ENGINES = "structgen,xgrammar,llguidance,outlines"


def load_index(root: str = MASKBENCH_DIR) -> list[dict]:
    with open(os.path.join(root, "index.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def select_files(index: list[dict], *, groups=None, limit=None, seed=0, files=None) -> list[dict]:
    """Filter by group / explicit files, then a seeded sample of `limit` (sorted by path)."""
    rows = sorted(index, key=lambda r: r["file"])
    if groups:
        gs = set(groups)
        rows = [r for r in rows if r["group"] in gs]
    if files:
        want = set(files)
        rows = [r for r in rows if r["file"] in want or r["source_name"] in want or r["key"] in want]
    if limit is not None and limit < len(rows):
        rows = sorted(random.Random(seed).sample(rows, limit), key=lambda r: r["file"])
    return rows


def load_case(row: dict, root: str = MASKBENCH_DIR) -> dict:
    with open(os.path.join(root, row["file"])) as f:
        doc = json.load(f)
    return {"id": row["file"], "schema": doc["schema"], "tests": doc.get("tests") or [], "ensure_ascii": False,
            "meta": {"group": row["group"], "source_name": row["source_name"]}}


def load_expected(root: str = MASKBENCH_DIR) -> dict:
    p = os.path.join(root, "llguidance_expected_maskbench.dev.json")
    if not os.path.exists(p):
        return {}
    with open(p) as f:
        return json.load(f)


# ----------------------------------------------------------------------------- tables

def _files_cell(n: int, total: int | None) -> str:
    return f"{n}" if total is None or n >= total else f"{n} of {total}"


def summary_table(by_engine: dict[str, list[dict]], total: int | None = None,
                  limits: dict[str, float | None] | None = None) -> str:
    """One row per engine. `total`: the files of the selection (an engine that ran fewer shows
    "n of total"); `limits`: each engine's per-file time limit in seconds (a column when given)."""
    header = ["engine", "files", "compiled", "passed", "valid rejected", "invalid accepted", "timeouts",
              "oom / crash"] + (["time limit"] if limits is not None else []) + [
              "compile p50", "p90", "p99", "max", "mask p50", "p95", "p99", "p99.9", "mean"]
    rows = []
    for eng, recs in by_engine.items():
        s = engine_stats(recs)
        c, m = s["compile_ms"], s["mask_us"]
        lim = (limits or {}).get(eng)
        rows.append([eng, _files_cell(s["files"], total), s["compiled"], s["passed"],
                     f"{s['valid_rejected']} / {s['valid']}", f"{s['invalid_accepted']} / {s['invalid']}",
                     s["timeout"], f"{s['oom']} / {s['crash']}"]
                    + ([f"{lim:g} s" if lim else "–"] if limits is not None else [])
                    + [fmt_ms(c["p50"]), fmt_ms(c["p90"]), fmt_ms(c["p99"]), fmt_ms(c["max"]),
                       fmt_us(m["p50"]), fmt_us(m["p95"]), fmt_us(m["p99"]), fmt_us(m["p99.9"]), fmt_us(m["mean"])])
    return md_table(header, rows)


def group_tables(by_engine: dict[str, list[dict]], group_sizes: dict[str, int] | None = None) -> str:
    """Passes and latencies per dataset group. `group_sizes`: files per group in the selection (an
    engine that ran fewer of a group's files says so in its cell)."""
    groups = sorted(set(group_sizes or ()) | {r.get("group", "?") for recs in by_engine.values() for r in recs})
    engines = list(by_engine)
    rows_pass, rows_time = [], []
    for g in groups:
        rp, rt = [g], [g]
        n = (group_sizes or {}).get(g, 0)
        for eng in engines:
            recs = [r for r in by_engine[eng] if r.get("group", "?") == g]
            if group_sizes is None:
                n = max(n, len(recs))
            s = engine_stats(recs)
            ran = "" if group_sizes is None or len(recs) >= n else f"; {len(recs)} of {n} run"
            if not recs and n:
                rp.append("– (not run)")
            else:
                rp.append(f"{s['passed']} ({s['compiled']} c, {s['valid_rejected']} vr, {s['invalid_accepted']} ia"
                          + (f", {s['timeout']} to" if s["timeout"] else "") + f"{ran})")
            rt.append(f"{fmt_ms(s['compile_ms']['p50'])} / {fmt_us(s['mask_us']['p50'])} / "
                      f"{fmt_us(s['mask_us']['p99'])}")
        rp.insert(1, n)
        rows_pass.append(rp)
        rows_time.append(rt)
    t1 = md_table(["group", "files"] + [f"{e}: passed" for e in engines], rows_pass)
    t2 = md_table(["group"] + [f"{e}: compile p50 / mask p50 / mask p99" for e in engines], rows_time)
    return ("Passed files per group (c = compiled, vr = valid instances rejected, ia = invalid instances "
            "accepted, to = timed out):\n\n" + t1 + "\n\nLatency per group:\n\n" + t2)


def expected_comparison(by_engine: dict[str, list[dict]], expected: dict) -> str:
    """Each engine's per-file outcome against llguidance's published expected results."""
    header = ["engine", "files with expectation", "exp. pass", "exp. json_error", "exp. validation_error",
              "agree", "we pass / exp. fail", "we fail / exp. pass"]
    rows = []
    for eng, recs in by_engine.items():
        n = ep = ej = ev = agree = better = worse = 0
        for r in recs:
            e = expected.get(r.get("source_name", os.path.basename(r["case"])))
            if e is None:
                continue
            n += 1
            exp_pass = not e
            ep += exp_pass
            ej += "json_error" in e
            ev += "validation_error" in e
            ours = case_summary(r)["passed"]
            agree += ours == exp_pass
            better += ours and not exp_pass
            worse += exp_pass and not ours
        rows.append([eng, n, ep, ej, ev, agree, better, worse])
    return md_table(header, rows)


def error_types_table(by_engine: dict[str, list[dict]]) -> str:
    """Files not compiled, by outcome and exception type (e.g. UnsupportedSchema vs. an internal bug)."""
    counts: dict[str, dict[str, int]] = {}
    for eng, recs in by_engine.items():
        for r in recs:
            if r.get("status") == "ok":
                continue
            key = r.get("status", "?") + (f": {r['error_type']}" if r.get("error_type") else "")
            counts.setdefault(key, {}).setdefault(eng, 0)
            counts[key][eng] += 1
    if not counts:
        return ""
    engines = list(by_engine)
    rows = [[k] + [counts[k].get(e, 0) for e in engines] for k in sorted(counts)]
    return md_table(["not compiled: outcome / exception"] + engines, rows)


def failure_list(by_engine: dict[str, list[dict]], limit: int = 15) -> str:
    lines = []
    for eng, recs in by_engine.items():
        bad = []
        for r in recs:
            cs = case_summary(r)
            if cs["passed"]:
                continue
            if r.get("status") != "ok":
                err = str(r.get("error", ""))[:140]
                bad.append(f"  {r['case']}: {r.get('status')} {r.get('error_type', '')} {err}")
                continue
            for t in r.get("tests") or []:
                if t["valid"] != t["accepted"]:
                    f = t.get("fail") or {}
                    if t["valid"]:
                        bad.append(f"  {r['case']}: valid rejected ({f.get('why', '')}) at token {f.get('pos', '')} "
                                   f"after {f.get('prefix', '')!r} next {f.get('token', '')!r} {f.get('error', '')}")
                    else:
                        bad.append(f"  {r['case']}: invalid accepted: {t.get('text', '')[:100]!r} "
                                   f"({t.get('description', '')[:80]})")
                    break
        if bad:
            lines.append(f"{eng}: {len(bad)} files not passed" + (f" (first {limit})" if len(bad) > limit else ""))
            lines.extend(bad[:limit])
    return "\n".join(lines)


def collect(out: str, engines: list[str] | None, case_ids: list[str] | None) -> dict[str, list[dict]]:
    return collect_by_engine(out, BENCH, engines, case_ids)


def print_report(by_engine, expected) -> None:
    if not by_engine:
        print("no results")
        return
    print("\n## MaskBench summary\n")
    print(summary_table(by_engine))
    print("\ncompile = wall clock to a ready matcher over files that compiled; mask = one mask computation, "
          "over every token step of every valid instance plus the final (EOS) step.\n")
    print(group_tables(by_engine))
    if expected:
        print("\n## Against llguidance's expected results (llguidance_expected_maskbench.dev.json)\n")
        print(expected_comparison(by_engine, expected))
    et = error_types_table(by_engine)
    if et:
        print("\n" + et)
    fl = failure_list(by_engine)
    if fl:
        print("\n## Files not passed\n")
        print(fl)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default=DEFAULT_ENGINES,
                    help="comma-separated engine specs, each name[:key=value;...] (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="seeded random sample of N files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--groups", default="", help="comma-separated dataset groups (default: all)")
    ap.add_argument("--files", default="", help="comma-separated file paths/names (e.g. Github_easy/x.json)")
    ap.add_argument("--out", default=None, help="results JSONL (default: results/maskbench.jsonl, "
                                                "results/maskbench-smollm2.jsonl for smollm2)")
    ap.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per file per engine")
    ap.add_argument("--mem-mb", type=int, default=8192, help="address-space cap per worker over its warm size")
    ap.add_argument("--engine-timeouts", default="",
                    help="per-engine limits replacing --timeout, e.g. outlines=10 (timeouts are recorded as such)")
    ap.add_argument("--tokenizer", default="llama3", choices=("llama3", "smollm2"),
                    help="shared tokenization: llama3 (quicktok, 128k) or smollm2 (the embedded SmolLM2-135M, 49k)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel workers per engine (timings need 1)")
    ap.add_argument("--report-only", action="store_true", help="print tables from --out without running")
    ap.add_argument("--data", default=MASKBENCH_DIR)
    args = ap.parse_args(argv)

    engines = [e for e in (s.strip() for s in split_specs(args.engines)) if e]
    rows = select_files(load_index(args.data), groups=[g for g in args.groups.split(",") if g] or None,
                        limit=args.limit, seed=args.seed, files=[f for f in args.files.split(",") if f] or None)
    case_ids = [r["file"] for r in rows]
    if args.out is None:
        args.out = default_out("maskbench", args.tokenizer)
    meta_path = os.path.splitext(args.out)[0] + ".meta.json"
    if not args.report_only:
        check_tokenizer(meta_path, args.out, args.tokenizer)
        update_meta(meta_path, bench=BENCH, machine=machine_info(), packages=package_versions(), options=vars(args),
                    command="python benchmarks/maskbench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                    selection={"files": len(rows), "limit": args.limit, "seed": args.seed, "groups": args.groups,
                               "timeout_s": args.timeout, "engine_timeouts": args.engine_timeouts,
                               "mem_mb": args.mem_mb, "jobs": args.jobs})
        print(f"{len(rows)} MaskBench files; engines: {', '.join(engines)}; results -> {args.out}", file=sys.stderr)
        cases = [load_case(r, args.data) for r in rows]
        engines = run_engines(engines, cases, args.out, meta_path, bench=BENCH, timeout_s=args.timeout,
                              mem_mb=args.mem_mb, jobs=args.jobs, vocab=args.tokenizer,
                              engine_timeouts=parse_engine_timeouts(args.engine_timeouts))
    print_report(collect(args.out, engines, case_ids), load_expected(args.data))
    return 0


def split_specs(s: str) -> list[str]:
    """Engines are comma-separated; options inside a spec use ';' (`xgrammar:any_order=true;max_threads=1`)."""
    return s.split(",")


if __name__ == "__main__":
    sys.exit(main())
