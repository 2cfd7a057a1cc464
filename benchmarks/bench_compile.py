"""JSON Schema compile time over a seeded MaskBench sample (cold process caches per run).

    python benchmarks/bench_compile.py --limit 30 --seed 0 [--timeout 30] [--check] [--profile out.prof]
    python benchmarks/bench_compile.py --maskbench --limit 100 --seed 0 --phases [--budget 0.05]

Each schema: `compile_json_schema(schema, llama3, precompute_budget_s=BUDGET, cache=False)`, timed
(wall clock; BUDGET defaults to 0). Prints p50/p90/p99/max over the compiled files, and counts of
unsupported schemas, limit errors and timeouts (a timeout counts as `timeout` seconds in the
percentiles). `--check` also verifies every test instance is accepted iff it is valid.
`--maskbench`: the same seeded file selection as `benchmarks/maskbench.py --limit N --seed S`.
`--phases`: time each phase separately (schema -> IR, IR passes, rule DFAs, table flattening,
CompiledGrammar set-up, precompute) and print their totals and percentiles.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import signal
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ../shared/data beside the checkout (override with STRUCTGEN_BENCH_DATA)
MASKBENCH = os.path.join(os.environ.get("STRUCTGEN_BENCH_DATA", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "data")), "maskbench")


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def sample_files(limit: int, seed: int) -> list[str]:
    files = sorted(glob.glob(os.path.join(MASKBENCH, "*", "*.json")))
    files = [f for f in files if not os.path.basename(f).startswith("llguidance_")]
    if limit and limit < len(files):
        files = sorted(random.Random(seed).sample(files, limit))
    return files


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def maskbench_files(limit: int, seed: int) -> list[str]:
    """The files `benchmarks/maskbench.py --limit LIMIT --seed SEED` runs, in its order."""
    from benchmarks.maskbench import load_index, select_files

    rows = select_files(load_index(MASKBENCH), limit=limit or None, seed=seed)
    return [os.path.join(MASKBENCH, r["file"]) for r in rows]


PHASES = ("schema", "prepare", "dfas", "tables", "setup", "precompute")


def compile_phased(schema, vocab, budget: float, times: dict) -> object:
    """compile_json_schema(schema, vocab, precompute_budget_s=budget, cache=False), phase by phase;
    adds each phase's seconds to `times` (keys: PHASES)."""
    from structgen.automata import fsm
    from structgen.automata import tables as T
    from structgen.automata.compiled import CompiledGrammar
    from structgen.grammar.passes import prepare
    from structgen.schema import json_schema_to_grammar

    t = time.perf_counter
    t0 = t()
    g, _ = json_schema_to_grammar(schema)
    t1 = t()
    times["schema"] += t1 - t0
    rules, start = prepare(g)
    t2 = t()
    times["prepare"] += t2 - t1
    dfa_s = [0.0]
    orig = T.expr_to_dfa

    def timed(e, **kw):
        a = t()
        try:
            return orig(e, **kw)
        finally:
            dfa_s[0] += t() - a

    T.expr_to_dfa = timed
    try:
        tabs = T.build_tables(rules, start, max_states=200_000)
    finally:
        T.expr_to_dfa = orig
        t3 = t()
        times["dfas"] += dfa_s[0]
        times["tables"] += t3 - t2 - dfa_s[0]
    cg = CompiledGrammar(tabs, vocab)
    t4 = t()
    times["setup"] += t4 - t3
    if budget > 0:
        cg.precompute(budget)
    times["precompute"] += t() - t4
    del fsm
    return cg


def check_instances(cg, tests, enc) -> tuple[int, int]:
    ok = bad = 0
    for t in tests:
        text = json.dumps(t["data"], ensure_ascii=False)
        m = cg.matcher()
        acc = all(m.accept_token(tok) for tok in enc.encode(text)) and m.is_accepting()
        if acc == bool(t["valid"]):
            ok += 1
        else:
            bad += 1
    return ok, bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--maskbench", action="store_true", help="maskbench.py's seeded selection")
    ap.add_argument("--phases", action="store_true", help="time each compile phase")
    ap.add_argument("--budget", type=float, default=0.0, help="precompute_budget_s (default 0)")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args(argv)

    import structgen
    from structgen.errors import LimitExceeded
    from structgen.vocab.builtin import load_builtin

    vocab = load_builtin("llama3")
    enc = None
    if a.check:
        import quicktok

        enc = quicktok.get_encoding("llama3")
    files = a.files or (maskbench_files(a.limit, a.seed) if a.maskbench else sample_files(a.limit, a.seed))
    # warm up imports / numba kernels outside the timings
    structgen.compile_json_schema({"type": "object", "properties": {"a": {"type": "string"}}}, vocab,
                                  precompute_budget_s=0, cache=False)
    prof = None
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
    signal.signal(signal.SIGALRM, _alarm)
    times: list[float] = []
    phase_tot = {k: 0.0 for k in PHASES}
    phase_per: dict[str, list[float]] = {k: [] for k in PHASES}
    counts = {"ok": 0, "unsupported": 0, "limit": 0, "timeout": 0, "error": 0}
    mismatches = 0
    for f in files:
        with open(f) as fh:
            doc = json.load(fh)
        name = os.path.relpath(f, MASKBENCH)
        signal.setitimer(signal.ITIMER_REAL, a.timeout)
        t0 = time.perf_counter()
        status = "ok"
        cg = None
        try:
            if prof:
                prof.enable()
            if a.phases:
                ph = {k: 0.0 for k in PHASES}
                try:
                    cg = compile_phased(doc["schema"], vocab, a.budget, ph)
                finally:
                    for k in PHASES:
                        phase_tot[k] += ph[k]
                        phase_per[k].append(ph[k])
            else:
                cg = structgen.compile_json_schema(doc["schema"], vocab, precompute_budget_s=a.budget, cache=False)
        except _Timeout:
            status = "timeout"
        except LimitExceeded:
            status = "limit"
        except Exception as e:  # noqa: BLE001
            status = "unsupported" if type(e).__name__ in ("UnsupportedSchema", "SchemaError") else "error"
            if status == "error" and a.verbose:
                print(f"  {name}: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            if prof:
                prof.disable()
            signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.perf_counter() - t0
        counts[status] += 1
        if status in ("ok", "timeout", "limit"):
            times.append(min(dt, a.timeout))
        extra = ""
        if cg is not None and enc is not None:
            ok, bad = check_instances(cg, doc.get("tests") or [], enc)
            mismatches += bad
            extra = f" tests ok={ok} bad={bad}"
        if a.verbose:
            print(f"{dt * 1e3:10.1f} ms  {status:11s} {name}{extra}", flush=True)
    print(f"files={len(files)} " + " ".join(f"{k}={v}" for k, v in counts.items()))
    p50, p90, p99 = (pct(times, q) * 1e3 for q in (50, 90, 99))
    print(f"compile ms: p50={p50:.1f} p90={p90:.1f} p99={p99:.1f} max={max(times, default=0) * 1e3:.1f} "
          f"total={sum(times):.1f}s")
    if a.phases:
        for k in PHASES:
            xs = phase_per[k]
            print(f"  {k:10s} total={phase_tot[k]:8.2f}s  p50={pct(xs, 50) * 1e3:8.1f} ms  "
                  f"p90={pct(xs, 90) * 1e3:8.1f} ms  p99={pct(xs, 99) * 1e3:8.1f} ms")
    if enc is not None:
        print(f"instance mismatches: {mismatches}")
    if prof:
        prof.dump_stats(a.profile)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
