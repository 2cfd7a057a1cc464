"""Write the MaskBench and JSON-Schema-Test-Suite sections of docs/benchmarks.md, with plots.

    python benchmarks/report.py                 # from results/*.jsonl already there
    python benchmarks/report.py --run           # run both benchmarks (full, resumable), then write

Each section sits between `<!-- section:NAME -->` / `<!-- /section:NAME -->` markers (the
`benchmarks/docsection.py` convention), so other sections survive a regeneration. Plots (matplotlib, when
installed): mask-latency and compile-time CDFs per engine, MaskBench pass rate per dataset group.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import jsts, maskbench  # noqa: E402
from benchmarks.harness import REPO_ROOT  # noqa: E402
from benchmarks.harness.results import engine_stats, fmt_ms, fmt_us  # noqa: E402

def _meta(path: str) -> dict:
    p = os.path.splitext(path)[0] + ".meta.json"
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return {}


def _setup_section(meta: dict, engines: list[str]) -> str:
    m = meta.get("machine", {})
    lines = []
    if m:
        lines.append(f"- Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores available, {m.get('memory', '?')} "
                     f"RAM, {m.get('os', '')}, Python {m.get('python', '')}; load average at start "
                     f"{m.get('loadavg_at_start', '?')} (a shared machine inflates tail latencies).")
    pk = meta.get("packages", {})
    if pk:
        lines.append("- Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(pk.items())))
    opts = meta.get("options") or {}
    if any(opts.get(k) for k in ("limit", "limit_groups", "categories", "groups", "files")):
        lines.append("- **A slice, not the full benchmark** (see the selection below); rerun the command "
                     "without the limiting options for the full tables.")
    sel = meta.get("selection", {})
    if sel:
        lines.append("- Selection and limits: " + ", ".join(f"{k}={v}" for k, v in sel.items() if v not in ("", None)))
    info = meta.get("engines", {})
    for eng in engines:
        e = info.get(eng, {})
        if e:
            lines.append(f"- `{eng}` {e.get('version', '')}: {e.get('language', '')}; settings "
                         f"`{json.dumps(e.get('settings', {}), sort_keys=True)}`")
    cmd = _reproduce(meta, engines)
    if cmd:
        lines.append(f"- Reproduce: `{cmd}`")
    return "\n".join(lines)


def _tokenization(meta: dict) -> str:
    tok = (meta.get("options") or {}).get("tokenizer") or "llama3"
    if tok == "smollm2":
        return "SmolLM2-135M-Instruct's 49,152-token vocabulary, BPE via its Hugging Face tokenizer"
    return "Llama-3 128k from `quicktok-v1`, BPE via quicktok"


def _reproduce(meta: dict, engines: list[str]) -> str:
    """The command that re-runs this table: the recorded options, with every engine shown."""
    opts = meta.get("options")
    if not opts:
        return meta.get("command", "")
    script = "benchmarks/maskbench.py" if meta.get("bench") == "maskbench" else "benchmarks/jsts.py"
    parts = ["python", script, "--engines", ",".join(engines)]
    for k, v in opts.items():
        if v is None or v is False or v == "" or k in ("engines", "out", "data", "report_only"):
            continue
        if k == "tokenizer" and v == "llama3":  # the default
            continue
        flag = "--" + k.replace("_", "-")
        parts += [flag] if v is True else [flag, str(v)]
    return " ".join(parts)


# ----------------------------------------------------------------------------- plots

def _plots(by_engine: dict[str, list[dict]], plot_dir: str, rel_to: str) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return ["(matplotlib is not installed: no plots)"]
    os.makedirs(plot_dir, exist_ok=True)
    out = []

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for eng, recs in by_engine.items():
        masks = np.sort(np.array([x for r in recs if r.get("status") == "ok" for x in (r.get("mask_us") or ())]))
        comp = np.sort(np.array([r["compile_ms"] for r in recs if r.get("status") == "ok" and "compile_ms" in r]))
        if masks.size:
            axes[0].plot(masks, np.arange(1, masks.size + 1) / masks.size, label=eng)
        if comp.size:
            axes[1].plot(comp, np.arange(1, comp.size + 1) / comp.size, label=eng)
    for ax, title, unit in ((axes[0], "mask computation (per token)", "µs"),
                            (axes[1], "compile (per schema that compiled)", "ms")):
        ax.set_xscale("log")
        ax.set_xlabel(unit)
        ax.set_ylabel("fraction ≤ x")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    p = os.path.join(plot_dir, "bench_latency_cdf.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out.append(f"![latency CDFs]({os.path.relpath(p, rel_to)})")

    groups = sorted({r.get("group", "?") for recs in by_engine.values() for r in recs})
    if groups:
        fig, ax = plt.subplots(figsize=(max(8, len(groups) * 0.9), 4))
        width = 0.8 / max(1, len(by_engine))
        x = np.arange(len(groups))
        for i, (eng, recs) in enumerate(by_engine.items()):
            vals = []
            for g in groups:
                s = engine_stats([r for r in recs if r.get("group") == g])
                vals.append(100.0 * s["passed"] / s["files"] if s["files"] else 0.0)
            ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=eng)
        ax.set_xticks(x)
        ax.set_xticklabels(groups, rotation=35, ha="right")
        ax.set_ylabel("% files passed")
        ax.set_ylim(0, 100)
        ax.set_title("MaskBench: files passed per dataset group")
        ax.legend()
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        p = os.path.join(plot_dir, "bench_maskbench_coverage.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        out.append(f"![MaskBench coverage]({os.path.relpath(p, rel_to)})")
    return out


# ----------------------------------------------------------------------------- sections

def behind_note(by_engine: dict[str, list[dict]]) -> str:
    """Where structgen is behind the best peer on MaskBench (losses shown as losses)."""
    sg = next((e for e in by_engine if e.split(":")[0] == "structgen"), None)
    if sg is None:
        return "structgen was not measured in this run, so no comparison is made."
    stats = {e: engine_stats(r) for e, r in by_engine.items()}
    s = stats[sg]
    peers = {e: v for e, v in stats.items() if e != sg}
    if not peers:
        return "No peer was measured in this run."
    items = []

    def worse(label, key, higher_better, fmt=str, sub=None):
        get = (lambda st: st[key][sub]) if sub else (lambda st: st[key])
        mine = get(s)
        vals = {e: get(v) for e, v in peers.items() if get(v) is not None}
        if mine is None or not vals:
            return
        best_e = max(vals, key=vals.get) if higher_better else min(vals, key=vals.get)
        best = vals[best_e]
        if (mine < best) if higher_better else (mine > best):
            items.append(f"- {label}: structgen {fmt(mine)} vs {best_e} {fmt(best)}")

    worse("files passed", "passed", True)
    worse("valid instances rejected", "valid_rejected", False)
    worse("invalid instances accepted", "invalid_accepted", False)
    worse("compile p50", "compile_ms", False, fmt_ms, "p50")
    worse("compile p99", "compile_ms", False, fmt_ms, "p99")
    worse("mask p50", "mask_us", False, fmt_us, "p50")
    worse("mask p99", "mask_us", False, fmt_us, "p99")
    worse("mask p99.9", "mask_us", False, fmt_us, "p99.9")
    if not items:
        return "On these files structgen is not behind the best peer on any headline metric."
    return "structgen is behind the best peer on:\n\n" + "\n".join(items)


def maskbench_section(path: str, plot_dir: str, doc_dir: str) -> str:
    meta = _meta(path)
    engines = list(meta.get("engines", {})) or None
    by_engine = maskbench.collect(path, engines, None)
    if not by_engine:
        return "## MaskBench, engines side by side\n\nNo results yet (`python benchmarks/maskbench.py`)."
    common = set.intersection(*[{r["case"] for r in v} for v in by_engine.values()])
    by_engine = {e: [r for r in v if r["case"] in common] for e, v in by_engine.items()}
    parts = ["## MaskBench (development split), engines side by side", "",
             "Written by `python benchmarks/report.py` from `benchmarks/maskbench.py` results. All engines share one "
             f"tokenization ({_tokenization(meta)}), one measurement loop "
             "(`benchmarks/harness/worker.py`) and run single-threaded, one worker process per engine with a "
             "per-case time limit and an address-space cap.", "",
             f"{len(common)} files run by every engine listed. pass = compiled, every valid instance accepted and "
             "every invalid one blocked. compile = wall clock until a matcher is ready (percentiles over files that "
             "compiled); mask = one mask computation, over every token step of every valid instance plus the "
             "final EOS step.", "", _setup_section(meta, list(by_engine)), "",
             maskbench.summary_table(by_engine), "", maskbench.group_tables(by_engine), ""]
    expected = maskbench.load_expected()
    if expected:
        parts += ["Against llguidance's published per-file results "
                  "(`llguidance_expected_maskbench.dev.json`; the llguidance row validates the harness):", "",
                  maskbench.expected_comparison(by_engine, expected), ""]
    et = maskbench.error_types_table(by_engine)
    if et:
        parts += [et, ""]
    parts += _plots(by_engine, plot_dir, doc_dir)
    parts += ["", "### Where structgen is behind", "", behind_note(by_engine)]
    return "\n".join(parts)


def jsts_section(path: str) -> str:
    meta = _meta(path)
    engines = list(meta.get("engines", {})) or None
    by_engine = jsts.collect(path, engines, None)
    if not by_engine:
        return "## JSON-Schema-Test-Suite, engines side by side\n\nNo results yet (`python benchmarks/jsts.py`)."
    parts = ["## JSON-Schema-Test-Suite, engines side by side", "",
             "Paper protocol: a test group passes when every valid instance is accepted (token by token, EOS at the "
             "end) and every invalid one blocked; a compile error passes only when all instances are invalid. "
             "over = a valid instance rejected, under = an invalid instance accepted.", "",
             _setup_section(meta, list(by_engine)), "", jsts.totals_table(by_engine), "",
             "Per category (passed/groups; ce compile error, to timeout/oom/crash, o over-, u under-constrained):",
             "", jsts.category_table(by_engine)]
    baseline = jsts.load_baseline()
    for eng, recs in by_engine.items():
        if eng.split(":")[0] == "llguidance" and baseline:
            text, _ = jsts.baseline_comparison(recs, baseline)
            parts += ["", f"`{eng}` against llguidance's published baseline (harness check): {text}"]
    return "\n".join(parts)


SECTIONS = {"maskbench": "maskbench-side-by-side", "jsts": "jsts-side-by-side"}


def write_section(path: str, name: str, body: str) -> None:
    """Replace one section of the doc (the project's `<!-- section:NAME -->` convention)."""
    from benchmarks.docsection import update_section

    update_section(name, body, path=path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maskbench", default=os.path.join(REPO_ROOT, "results", "maskbench.jsonl"))
    ap.add_argument("--jsts", default=os.path.join(REPO_ROOT, "results", "jsts.jsonl"))
    ap.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--plots", default=None, help="plot folder (default: the doc's folder)")
    ap.add_argument("--run", action="store_true", help="run (or resume) both benchmarks first")
    ap.add_argument("--engines", default=maskbench.DEFAULT_ENGINES)
    ap.add_argument("--limit", type=int, default=None, help="with --run: MaskBench sample size")
    args = ap.parse_args(argv)
    if args.run:
        mb = ["--engines", args.engines, "--out", args.maskbench]
        if args.limit is not None:
            mb += ["--limit", str(args.limit)]
        maskbench.main(mb)
        jsts.main(["--engines", args.engines, "--out", args.jsts])
    doc_dir = os.path.dirname(os.path.abspath(args.doc))
    plot_dir = args.plots or doc_dir
    os.makedirs(doc_dir, exist_ok=True)
    write_section(args.doc, SECTIONS["maskbench"], maskbench_section(args.maskbench, plot_dir, doc_dir))
    write_section(args.doc, SECTIONS["jsts"], jsts_section(args.jsts))
    print(f"wrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
