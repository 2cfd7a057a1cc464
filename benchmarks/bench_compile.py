"""JSON Schema compile time over a seeded MaskBench sample (cold process caches per run).

    python benchmarks/bench_compile.py --limit 30 --seed 0 [--timeout 30] [--check] [--profile out.prof]

Each schema: `compile_json_schema(schema, llama3, precompute_budget_s=0, cache=False)`, timed
(wall clock). Prints p50/p90/p99/max over the compiled files, and counts of unsupported schemas,
limit errors and timeouts (a timeout counts as `timeout` seconds in the percentiles).
`--check` also verifies every test instance is accepted iff it is valid.
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
    files = a.files or sample_files(a.limit, a.seed)
    # warm up imports / numba kernels outside the timings
    structgen.compile_json_schema({"type": "object", "properties": {"a": {"type": "string"}}}, vocab,
                                  precompute_budget_s=0, cache=False)
    prof = None
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
    signal.signal(signal.SIGALRM, _alarm)
    times: list[float] = []
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
            cg = structgen.compile_json_schema(doc["schema"], vocab, precompute_budget_s=0, cache=False)
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
    if enc is not None:
        print(f"instance mismatches: {mismatches}")
    if prof:
        prof.dump_stats(a.profile)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
