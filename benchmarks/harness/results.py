"""Results files (JSONL, resumable), the driver loop, statistics and markdown tables."""
from __future__ import annotations

import json
import os
import platform
import queue
import sys
import threading
import time
from typing import Callable, Iterable

import numpy as np

from benchmarks.harness.worker import WorkerRunner

FAIL_STATUSES = ("compile_error", "timeout", "oom", "crash")


# ----------------------------------------------------------------------------- IO

def load_records(path: str) -> list[dict]:
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:  # a line cut by an interrupted run
                continue
    return out


def latest_by_key(records: Iterable[dict]) -> dict[tuple[str, str], dict]:
    """(engine, case) -> the last record written for it."""
    d: dict[tuple[str, str], dict] = {}
    for r in records:
        d[(r["engine"], r["case"])] = r
    return d


def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / (1 << 20):.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    try:
        load = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = ""
    return {"cpu": cpu, "cores": cores, "memory": mem, "os": platform.platform(),
            "python": sys.version.split()[0], "loadavg_at_start": load}


def package_versions() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in ("xgrammar", "llguidance", "outlines-core", "quicktok-v1", "numpy", "numba", "torch"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def update_meta(path: str, **fields) -> dict:
    meta = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                meta = json.load(f)
        except ValueError:
            meta = {}
    for k, v in fields.items():
        if isinstance(v, dict) and isinstance(meta.get(k), dict):
            meta[k].update(v)
        else:
            meta[k] = v
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    return meta


def parse_engine_timeouts(text: str) -> dict[str, float]:
    """`"outlines=10,xgrammar=60"` -> {"outlines": 10.0, "xgrammar": 60.0}."""
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, val = part.rpartition("=")
        if not name:
            raise SystemExit(f"--engine-timeouts: expected ENGINE=SECONDS, got {part!r}")
        out[name] = float(val)
    return out


def default_out(bench_file: str, tokenizer: str) -> str:
    """`results/<bench>.jsonl` for the default Llama-3 tokenization, `results/<bench>-<tok>.jsonl` else."""
    from benchmarks.harness import REPO_ROOT

    stem = bench_file if tokenizer == "llama3" else f"{bench_file}-{tokenizer}"
    return os.path.join(REPO_ROOT, "results", stem + ".jsonl")


def check_tokenizer(meta_path: str, out_path: str, tokenizer: str) -> None:
    """Refuse to resume a results file written with another tokenization (records would mix)."""
    if not os.path.exists(meta_path) or not load_records(out_path):
        return
    try:
        with open(meta_path) as f:
            had = (json.load(f).get("options") or {}).get("tokenizer") or "llama3"
    except ValueError:
        return
    if had != tokenizer:
        raise SystemExit(f"{out_path} holds results made with --tokenizer {had}; pass --tokenizer {had} "
                         f"or another --out for {tokenizer}")


# ----------------------------------------------------------------------------- progress

class Progress:
    """tqdm when installed, else a line every few seconds on stderr."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.n = total, desc, 0
        self.t0 = self.last = time.monotonic()
        self.counts: dict[str, int] = {}
        self.bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="case", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, status: str) -> None:
        self.n += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.bar is not None:
            self.bar.set_postfix(self.counts, refresh=False)
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= 5 or self.n == self.total:
            self.last = now
            rate = self.n / max(now - self.t0, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else 0
            counts = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
            print(f"[{self.desc}] {self.n}/{self.total} ({rate:.1f}/s, eta {eta:.0f}s) {counts}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- driver

def run_cases(engine: str, cases: list[dict], out_path: str, *, bench: str, timeout_s: float, mem_mb: int,
              jobs: int = 1, annotate: Callable[[dict, dict], None] | None = None, vocab: str = "llama3",
              worker_kw: dict | None = None) -> dict:
    """Run `cases` (each with `id`) not yet in `out_path` for `engine`, appending records.

    `worker_kw` goes to `WorkerRunner` (e.g. `task="generate"`, `task_opts`, `phase_timeouts`).
    Returns the worker's hello (engine info; {} when nothing was left to run). Interruptions lose
    at most the cases in flight."""
    done = {r["case"] for r in load_records(out_path) if r.get("engine") == engine and r.get("bench") == bench}
    todo = [c for c in cases if c["id"] not in done]
    if not todo:
        return {}
    runners = [WorkerRunner(engine, timeout_s=timeout_s, mem_mb=mem_mb, vocab=vocab, **(worker_kw or {}))
               for _ in range(max(1, min(jobs, len(todo))))]
    try:
        hello = runners[0].info()
    except RuntimeError:
        for r in runners:
            r.close()
        raise
    if hello.get("warmup"):
        print(f"[{engine}] warm-up did not pass: {hello['warmup']}", file=sys.stderr)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    prog = Progress(len(todo), f"{bench}:{engine}")
    lock = threading.Lock()
    q: queue.Queue = queue.Queue()
    for c in todo:
        q.put(c)

    def work(runner: WorkerRunner, f):
        while True:
            try:
                case = q.get_nowait()
            except queue.Empty:
                return
            payload = {k: v for k, v in case.items() if k not in ("meta",)}
            rec = runner.run(payload)
            out = {"bench": bench, "engine": engine, "case": case["id"], **(case.get("meta") or {}), **rec}
            if annotate:
                annotate(out, case)
            with lock:
                f.write(json.dumps(out) + "\n")
                f.flush()
                prog.update(rec.get("status", "?"))

    with open(out_path, "a") as f:
        threads = [threading.Thread(target=work, args=(r, f), daemon=True) for r in runners]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        finally:
            prog.close()
            for r in runners:
                r.close()
    return hello


# ----------------------------------------------------------------------------- statistics

def pct(values, qs) -> list[float | None]:
    if len(values) == 0:
        return [None] * len(qs)
    a = np.asarray(values, dtype=np.float64)
    return [float(x) for x in np.percentile(a, qs)]


def case_summary(r: dict) -> dict:
    """Counts for one record: valid/invalid totals, rejected valid, accepted invalid, pass."""
    tests = r.get("tests") or []
    nv = sum(1 for t in tests if t["valid"])
    ni = len(tests) - nv
    vr = sum(1 for t in tests if t["valid"] and not t["accepted"])
    ia = sum(1 for t in tests if not t["valid"] and t["accepted"])
    ok = r.get("status") == "ok"
    return {"ok": ok, "n_valid": nv, "n_invalid": ni, "valid_rejected": vr, "invalid_accepted": ia,
            "errors": sum(1 for t in tests if (t.get("fail") or {}).get("why") == "error"),
            "passed": ok and vr == 0 and ia == 0}


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 1000:
        return f"{x / 1000:.2f} s"
    if x >= 10:
        return f"{x:.0f} ms"
    if x >= 1:
        return f"{x:.1f} ms"
    return f"{x * 1000:.0f} µs"


def fmt_us(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 1000:
        return f"{x / 1000:.1f} ms"
    if x >= 10:
        return f"{x:.0f} µs"
    return f"{x:.1f} µs"


def save_percent_bars(fig, ax, x, labels: list[str], *, ylabel: str, title: str, path: str,
                      rotation: int = 30, legend_x: float = 1.0) -> str:
    """Finish a grouped bar chart on a 0-100 % axis (ticks, legend beside it, grid) and save it."""
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=rotation, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(legend_x, 1.0))
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def engine_stats(records: list[dict]) -> dict:
    """Aggregate MaskBench-style statistics over records of one engine."""
    st = {"files": len(records), "compiled": 0, "passed": 0, "valid": 0, "invalid": 0, "valid_rejected": 0,
          "invalid_accepted": 0, "instance_errors": 0}
    for s in FAIL_STATUSES:
        st[s] = 0
    compile_ms, masks = [], []
    for r in records:
        cs = case_summary(r)
        status = r.get("status", "?")
        if status in FAIL_STATUSES:
            st[status] += 1
        if cs["ok"]:
            st["compiled"] += 1
            compile_ms.append(r.get("compile_ms", 0.0))
            masks.extend(r.get("mask_us") or ())
        st["passed"] += cs["passed"]
        st["valid"] += cs["n_valid"]
        st["invalid"] += cs["n_invalid"]
        st["valid_rejected"] += cs["valid_rejected"]
        st["invalid_accepted"] += cs["invalid_accepted"]
        st["instance_errors"] += cs["errors"]
    st["compile_ms"] = dict(zip(("p50", "p90", "p99", "max"), pct(compile_ms, [50, 90, 99, 100])))
    st["compile_ms"]["mean"] = float(np.mean(compile_ms)) if compile_ms else None
    st["mask_us"] = dict(zip(("p50", "p95", "p99", "p99.9", "max"), pct(masks, [50, 95, 99, 99.9, 100])))
    st["mask_us"]["mean"] = float(np.mean(masks)) if masks else None
    st["mask_samples"] = len(masks)
    return st


def common_cases(by_engine: dict[str, list[dict]]) -> set[str]:
    sets = [{r["case"] for r in recs} for recs in by_engine.values() if recs]
    return set.intersection(*sets) if sets else set()


def run_engines(engines: list[str], cases: list[dict], out_path: str, meta_path: str, *, bench: str,
                timeout_s: float, mem_mb: int, jobs: int, annotate=None, vocab: str = "llama3",
                worker_kw: dict | None = None, engine_timeouts: dict[str, float] | None = None) -> list[str]:
    """Run each available engine over the cases and record its info in the meta file.

    `vocab`: the shared tokenizer (`SharedVocab` name); `engine_timeouts`: per-engine limits
    (by spec or engine name) replacing `timeout_s`. Returns the engines that ran (unavailable
    ones are reported on stderr and skipped).
    """
    from benchmarks.harness.engines import engine_available

    ran = []
    for eng in engines:
        ok, why = engine_available(eng)
        if not ok:
            print(f"[{eng}] not available, skipped: {why}", file=sys.stderr)
            continue
        limit = engine_limit(eng, engine_timeouts, timeout_s)
        hello = run_cases(eng, cases, out_path, bench=bench, timeout_s=limit, mem_mb=mem_mb,
                          jobs=jobs, annotate=annotate, vocab=vocab, worker_kw=worker_kw)
        known = update_meta(meta_path).get("engines", {}).get(eng) or {}
        # the engine's own entry: its info (version, settings, language) and the time limit it ran under
        update_meta(meta_path, engines={eng: {**(hello.get("info") or known), "timeout_s": limit}})
        ran.append(eng)
    return ran


def engine_limit(spec: str, engine_timeouts: dict[str, float] | None, timeout_s: float | None) -> float | None:
    """The per-case time limit of one engine spec: `--engine-timeouts` by spec, then by engine name,
    else the common `--timeout`."""
    limits = engine_timeouts or {}
    return limits.get(spec, limits.get(spec.split(":")[0], timeout_s))


def collect_by_engine(out: str, bench: str, engines: list[str] | None, case_ids: list[str] | None,
                      common_only: bool = False) -> dict[str, list[dict]]:
    """The latest record per (engine, case) of one benchmark in a results file, grouped by engine
    (engines in order of appearance unless given), sorted by case; `case_ids` restricts the
    cases; `common_only` keeps only the cases every engine has run (side-by-side tables)."""
    latest = latest_by_key(r for r in load_records(out) if r.get("bench") == bench)
    if engines is None:
        engines = list(dict.fromkeys(e for e, _ in latest))
    by_engine = {}
    for eng in engines:
        recs = ([r for (e, _), r in latest.items() if e == eng] if case_ids is None
                else [latest[(eng, c)] for c in case_ids if (eng, c) in latest])
        if recs:
            by_engine[eng] = sorted(recs, key=lambda r: r["case"])
    if common_only and len(by_engine) > 1:
        common = set.intersection(*[{r["case"] for r in v} for v in by_engine.values()])
        by_engine = {e: [r for r in v if r["case"] in common] for e, v in by_engine.items()}
    return by_engine
