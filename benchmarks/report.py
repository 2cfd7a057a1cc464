"""Write the MaskBench and JSON-Schema-Test-Suite sections of docs/benchmarks.md, with plots.

    python benchmarks/report.py --maskbench results/mb800_structgen.jsonl,results/mb800_peers.jsonl \
        --engines structgen:property_order=flexible,llguidance,xgrammar,outlines
    python benchmarks/report.py --jsts results/jsts2020.jsonl
    python benchmarks/report.py                 # both, from results/maskbench.jsonl and results/jsts.jsonl
    python benchmarks/report.py --run           # run both benchmarks (full, resumable), then write

Only the sections whose results are named (or, with neither option, found at the default paths)
are written: a section whose results file is missing is left as it is. Each section sits between
`<!-- section:NAME -->` / `<!-- /section:NAME -->` markers (`benchmarks/docsection.py`), so the
other sections survive a regeneration.

MaskBench: the records of every engine in `--engines` (default: every engine found) are read
from one or more results files (a later file wins for an engine/file pair found twice), over
the selection the runs recorded in their `.meta.json` (e.g. the 800-file seeded sample). No file
is dropped because one engine timed out or crashed on it: that file counts as not passed for that
engine, and the timeouts are shown. An engine that has not run the whole selection (a run still
in progress) is marked with the number of files it covers. Plots (matplotlib, when installed):
mask-latency and compile-time CDFs per engine, MaskBench pass rate per dataset group.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import jsts, maskbench  # noqa: E402
from benchmarks.harness import REPO_ROOT  # noqa: E402
from benchmarks.harness.results import (case_summary, engine_limit, engine_stats, fmt_ms, fmt_us,  # noqa: E402
                                        latest_by_key, load_records, parse_engine_timeouts, save_percent_bars)

SECTIONS = {"maskbench": "maskbench-side-by-side", "jsts": "jsts-side-by-side"}
#: the selection options of a MaskBench run (what decides which files it covers)
SELECTION_KEYS = ("limit", "seed", "groups", "files")


def _meta(path: str) -> dict:
    p = os.path.splitext(path)[0] + ".meta.json"
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return {}


def _rel(path: str) -> str:
    """A path as a command in the docs shows it: relative to the checkout when inside it."""
    ap = os.path.abspath(path)
    return os.path.relpath(ap, REPO_ROOT) if ap.startswith(REPO_ROOT + os.sep) else path


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _machine_line(m: dict) -> str:
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores available, {m.get('memory', '?')} RAM, "
            f"{m.get('os', '')}, Python {m.get('python', '')}; load average at start {m.get('loadavg_at_start', '?')}")


def _setup_section(meta: dict, engines: list[str], out: str | None = None) -> str:
    """Machine, packages, selection, engines and the command (JSON-Schema-Test-Suite section)."""
    m = meta.get("machine", {})
    lines = []
    if m:
        lines.append(f"- Machine: {_machine_line(m)} (a shared machine inflates tail latencies).")
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
    cmd = _reproduce(meta, engines, out)
    if cmd:
        lines.append(f"- Reproduce: `{cmd}`")
    return "\n".join(lines)


def _tokenization(meta: dict) -> str:
    tok = (meta.get("options") or {}).get("tokenizer") or "llama3"
    if tok == "smollm2":
        return "SmolLM2-135M-Instruct's 49,152-token vocabulary, BPE via its Hugging Face tokenizer"
    return "Llama-3 128k from `quicktok-v1`, BPE via quicktok"


def _reproduce(meta: dict, engines: list[str], out: str | None = None) -> str:
    """The command that re-runs a results file: the recorded options, the engines shown, `--out`."""
    opts = meta.get("options")
    if not opts:
        return meta.get("command", "")
    script = "benchmarks/maskbench.py" if meta.get("bench") == "maskbench" else "benchmarks/jsts.py"
    parts = ["python", script, "--engines", shlex.quote(",".join(engines))]
    for k, v in sorted(opts.items()):
        if v is None or v is False or v == "" or k in ("engines", "out", "data", "report_only"):
            continue
        if k == "tokenizer" and v == "llama3":  # the default
            continue
        flag = "--" + k.replace("_", "-")
        parts += [flag] if v is True else [flag, shlex.quote(str(v))]
    if out:
        parts += ["--out", shlex.quote(_rel(out))]
    return " ".join(parts)


# ----------------------------------------------------------------------------- engine settings in words

def _layout(eng: str, info: dict) -> tuple[str, str]:
    """(whitespace, key order) of one engine setting, from its recorded settings."""
    name = info.get("engine") or eng.split(":")[0]
    s = info.get("settings") or {}
    if name == "structgen":
        ws = s.get("whitespace")
        ws = ("JSON whitespace, at most 16 characters per gap (`whitespace=flexible`, the default)"
              if ws in (None, "flexible") else f"`whitespace={ws}`")
        order = {
            "schema": "keys in schema order (`property_order=schema`, the default)",
            "any": "keys in any order, each at most once (`property_order=any`, at most 8 named keys per object)",
            "flexible": "keys in any order (`property_order=flexible`: required and dependency keys tracked "
                        "exactly, the other named keys not deduplicated; an object with more than 8 tracked "
                        "keys, or a schema whose any-order automata exceed a limit, falls back to schema order)",
        }.get(s.get("property_order", "schema"), f"`property_order={s.get('property_order')}`")
        return ws, order
    if name == "llguidance":
        ws = ("unbounded JSON whitespace (`whitespace_flexible=True`)" if s.get("whitespace_flexible", True)
              else f"no free whitespace, separators `{s.get('item_separator')}` / `{s.get('key_separator')}`")
        return ws, "keys in schema order"
    if name == "xgrammar":
        ws = ("unbounded JSON whitespace (`any_whitespace=True`)" if s.get("any_whitespace", True)
              else f"no free whitespace (`any_whitespace=False`, separators {s.get('separators')})")
        if s.get("max_whitespace_cnt"):
            ws += f", at most {s['max_whitespace_cnt']} per gap"
        order = ("keys in any order (`any_order=True`)" if s.get("any_order")
                 else "keys in schema order (`any_order=False`)")
        return ws, order
    if name == "outlines":
        pat = s.get("whitespace_pattern", r"[ \t\n\r]*")
        return f"whitespace pattern `{pat}`", "keys in schema order, no keys beyond `properties`"
    return "?", "?"


# ----------------------------------------------------------------------------- plots

def _plots(by_engine: dict[str, list[dict]], plot_dir: str, rel_to: str,
           group_sizes: dict[str, int] | None = None, suffix: str = "") -> list[str]:
    """Latency CDFs per engine and passes per group; an engine that ran fewer files than the
    selection says so in its legend entry. `suffix` tells one section's plot files from
    another's."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return ["(matplotlib is not installed: no plots)"]
    os.makedirs(plot_dir, exist_ok=True)
    out = []
    total = sum(group_sizes.values()) if group_sizes else None
    label = {e: (f"{e} ({len(r)} of {total} files)" if total and len(r) < total else e) for e, r in by_engine.items()}

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for eng, recs in by_engine.items():
        masks = np.sort(np.array([x for r in recs if r.get("status") == "ok" for x in (r.get("mask_us") or ())]))
        comp = np.sort(np.array([r["compile_ms"] for r in recs if r.get("status") == "ok" and "compile_ms" in r]))
        if masks.size:
            axes[0].plot(masks, np.arange(1, masks.size + 1) / masks.size, label=label[eng])
        if comp.size:
            axes[1].plot(comp, np.arange(1, comp.size + 1) / comp.size, label=label[eng])
    for ax, title, unit in ((axes[0], "mask computation (per token)", "µs"),
                            (axes[1], "compile (files compiled within the time limit)", "ms")):
        ax.set_xscale("log")
        ax.set_xlabel(unit)
        ax.set_ylabel("fraction ≤ x")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p = os.path.join(plot_dir, f"bench_latency_cdf{suffix}.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out.append(f"![latency CDFs]({os.path.relpath(p, rel_to)})")

    groups = sorted(set(group_sizes or ()) | {r.get("group", "?") for recs in by_engine.values() for r in recs})
    if groups:
        fig, ax = plt.subplots(figsize=(max(8, len(groups) * 0.9) + 3, 4))
        width = 0.8 / max(1, len(by_engine))
        x = np.arange(len(groups))
        for i, (eng, recs) in enumerate(by_engine.items()):
            vals = []
            for g in groups:
                grecs = [r for r in recs if r.get("group") == g]
                n = len(grecs) if grecs else (group_sizes or {}).get(g, 0)
                vals.append(100.0 * engine_stats(grecs)["passed"] / n if n else 0.0)
            ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=label[eng])
        p = save_percent_bars(
            fig, ax, x, [f"{g} ({group_sizes[g]})" if group_sizes and g in group_sizes else g for g in groups],
            ylabel="% files passed", title="MaskBench: files passed per dataset group (files in the sample)",
            path=os.path.join(plot_dir, f"bench_maskbench_coverage{suffix}.png"), rotation=35, legend_x=1.01)
        out.append(f"![MaskBench coverage]({os.path.relpath(p, rel_to)})")
    return out


# ----------------------------------------------------------------------------- MaskBench inputs

class MaskbenchInputs:
    """The records, metas and selection of one or more MaskBench results files.

    `by_engine`: engine -> its latest record per file of the selection (sorted by file);
    `source`: engine -> the results file its records came from (the last one holding it);
    `cases`: the selection's files (None when the data index is not available: then the union
    of the files any engine ran); `group_sizes`: files per dataset group of the selection."""

    def __init__(self, paths: list[str], engines: list[str] | None, data: str | None = None,
                 selection: dict | None = None):
        self.paths = paths
        self.index_size: int | None = None
        self.metas = {p: _meta(p) for p in paths}
        self.warnings: list[str] = []
        records = []
        self.source: dict[str, str] = {}
        for p in paths:
            if not os.path.exists(p):
                self.warnings.append(f"results file `{_rel(p)}` not found")
                continue
            recs = [r for r in load_records(p) if r.get("bench") == maskbench.BENCH]
            for r in recs:
                self.source[r["engine"]] = p
            records += recs
        latest = latest_by_key(records)
        found = list(dict.fromkeys(e for e, _ in latest))
        self.missing = [e for e in (engines or []) if e not in found]
        for e in self.missing:
            self.warnings.append(f"no results for `{e}` in " + ", ".join(f"`{_rel(p)}`" for p in paths))
        self.engines = [e for e in (engines or found) if e in found]
        self.selection = self._selection(selection)
        self.rows = self._rows(data) if self.selection is not None else None
        if self.rows is not None:
            self.cases = [r["file"] for r in self.rows]
        else:
            self.cases = sorted({c for (e, c) in latest if e in self.engines})
        want = set(self.cases)
        self.by_engine = {}
        for e in self.engines:
            recs = sorted((r for (eng, c), r in latest.items() if eng == e and c in want), key=lambda r: r["case"])
            if recs:
                self.by_engine[e] = recs
        if self.rows is not None:
            self.group_sizes: dict[str, int] = {}
            for r in self.rows:
                self.group_sizes[r["group"]] = self.group_sizes.get(r["group"], 0) + 1
        else:
            group_of = {r["case"]: r.get("group", "?") for recs in self.by_engine.values() for r in recs}
            self.group_sizes = {}
            for c in self.cases:
                g = group_of.get(c, "?")
                self.group_sizes[g] = self.group_sizes.get(g, 0) + 1

    def _selection(self, override: dict | None) -> dict | None:
        """The selection options the runs recorded (they must agree), overridden by `override`."""
        seen = {}
        for p, meta in self.metas.items():
            opts = meta.get("options") or {}
            if opts:
                seen[p] = {k: opts.get(k) or None for k in SELECTION_KEYS}
        override = {k: v for k, v in (override or {}).items() if v is not None}
        if not seen and not override:
            return None
        distinct = {json.dumps(v, sort_keys=True) for v in seen.values()}
        if len(distinct) > 1 and not override:
            raise SystemExit("the MaskBench results files were run over different selections ("
                             + "; ".join(f"{_rel(p)}: {v}" for p, v in seen.items())
                             + "); pass --limit/--seed to choose the files to report")
        sel = dict(next(iter(seen.values()))) if seen else {k: None for k in SELECTION_KEYS}
        sel.update(override)
        if sel.get("seed") is None:
            sel["seed"] = 0
        return sel

    def _rows(self, data: str | None) -> list[dict] | None:
        data = data or maskbench.MASKBENCH_DIR
        if not os.path.exists(os.path.join(data, "index.jsonl")):
            self.warnings.append("MaskBench index not found: the files are those any engine ran")
            return None
        sel = self.selection
        index = maskbench.load_index(data)
        self.index_size = len(index)
        return maskbench.select_files(index, groups=_split(sel.get("groups")) or None,
                                      limit=sel.get("limit"), seed=sel.get("seed") or 0,
                                      files=_split(sel.get("files")) or None)

    def info(self, eng: str) -> dict:
        """The engine's recorded info (version, settings, language); while its run is still going
        (the info is recorded at its end), the adapter's settings for its spec and the package
        version the run recorded."""
        meta = self.metas.get(self.source.get(eng, ""), {})
        info = (meta.get("engines") or {}).get(eng) or {}
        if info.get("settings"):
            return info
        from benchmarks.harness.engines import engine_class, parse_spec

        try:
            cls = engine_class(eng)
        except ValueError:
            return info
        name, opts = parse_spec(eng)
        dist = {"outlines": "outlines-core", "structgen": ""}.get(name, name)
        version = (meta.get("packages") or {}).get(dist, "") if dist else ""
        return {"engine": name, "version": version, "settings": {**cls.defaults, **opts},
                "language": cls.describe, **info}

    def limit(self, eng: str) -> float | None:
        """The per-file time limit the engine ran under (recorded, else from the run's options)."""
        info = self.info(eng)
        if info.get("timeout_s"):
            return float(info["timeout_s"])
        meta = self.metas.get(self.source.get(eng, ""), {})
        opts, sel = meta.get("options") or {}, meta.get("selection") or {}
        timeouts = parse_engine_timeouts(opts.get("engine_timeouts") or sel.get("engine_timeouts") or "")
        return engine_limit(eng, timeouts, opts.get("timeout") or sel.get("timeout_s"))


# ----------------------------------------------------------------------------- sections

def behind_note(by_engine: dict[str, list[dict]], total: int | None = None) -> str:
    """Where structgen is behind the best peer on MaskBench (losses shown as losses). Counts are
    compared only with peers that ran as many files; latencies with every peer."""
    sg = next((e for e in by_engine if e.split(":")[0] == "structgen"), None)
    if sg is None:
        return "structgen was not measured in this run, so no comparison is made."
    stats = {e: engine_stats(r) for e, r in by_engine.items()}
    s = stats[sg]
    peers = {e: v for e, v in stats.items() if e != sg}
    if not peers:
        return "No peer was measured in this run."
    full = {e: v for e, v in peers.items() if v["files"] >= s["files"]}
    items = []

    def worse(label, key, higher_better, fmt=str, sub=None, among=peers):
        get = (lambda st: st[key][sub]) if sub else (lambda st: st[key])
        mine = get(s)
        vals = {e: get(v) for e, v in among.items() if get(v) is not None}
        if mine is None or not vals:
            return
        best_e = max(vals, key=vals.get) if higher_better else min(vals, key=vals.get)
        best = vals[best_e]
        if (mine < best) if higher_better else (mine > best):
            items.append(f"- {label}: structgen {fmt(mine)} vs {best_e} {fmt(best)}")

    worse("files passed", "passed", True, among=full)
    worse("valid instances rejected", "valid_rejected", False, among=full)
    worse("invalid instances accepted", "invalid_accepted", False, among=full)
    worse("timeouts", "timeout", False, among=full)
    worse("compile p50", "compile_ms", False, fmt_ms, "p50")
    worse("compile p99", "compile_ms", False, fmt_ms, "p99")
    worse("mask p50", "mask_us", False, fmt_us, "p50")
    worse("mask p99", "mask_us", False, fmt_us, "p99")
    worse("mask p99.9", "mask_us", False, fmt_us, "p99.9")
    partial = [e for e in peers if e not in full]
    tail = (f"\n\n(Counts are not compared with {', '.join(partial)}, which ran fewer files.)" if partial else "")
    if not items:
        return "On these files structgen is not behind the best peer on any headline metric." + tail
    return "structgen is behind the best peer on:\n\n" + "\n".join(items) + tail


def _expected_note(inp: MaskbenchInputs, expected: dict) -> str:
    """How many of the selection's files llguidance's published results expect to pass, and how
    far our llguidance run agrees with them (the harness check)."""
    names = ([r["source_name"] for r in inp.rows] if inp.rows is not None else
             sorted({r.get("source_name", os.path.basename(r["case"])) for v in inp.by_engine.values() for r in v}))
    with_exp = [n for n in names if n in expected]
    exp_pass = sum(1 for n in with_exp if not expected[n])
    text = (f"llguidance's published expected results (`llguidance_expected_maskbench.dev.json`) give "
            f"**{exp_pass} passes on these {len(names)} files** ({len(with_exp)} have an expectation).")
    for eng, recs in inp.by_engine.items():
        if eng.split(":")[0] != "llguidance":
            continue
        agree = sum(1 for r in recs
                    if (e := expected.get(r.get("source_name", os.path.basename(r["case"])))) is not None
                    and case_summary(r)["passed"] == (not e))
        text += f" Our `{eng}` run agrees with them on {agree} of its {len(recs)} files (the harness check)."
    return text


def report_command(maskbench_paths: list[str] | None = None, engines: list[str] | None = None,
                   jsts_path: str | None = None, jsts_engines: list[str] | None = None,
                   section: str | None = None) -> str:
    """The `report.py` command that writes a section (as the section names it)."""
    parts = ["python", "benchmarks/report.py"]
    if maskbench_paths:
        parts += ["--maskbench", shlex.quote(",".join(_rel(p) for p in maskbench_paths))]
    if engines:
        parts += ["--engines", shlex.quote(",".join(engines))]
    if section and section != SECTIONS["maskbench"]:
        parts += ["--section", shlex.quote(section)]
    if jsts_path:
        parts += ["--jsts", shlex.quote(_rel(jsts_path))]
    if jsts_engines:
        parts += ["--jsts-engines", shlex.quote(",".join(jsts_engines))]
    return " ".join(parts)


def maskbench_section(paths: str | list[str], plot_dir: str, doc_dir: str, engines: list[str] | None = None,
                      data: str | None = None, selection: dict | None = None,
                      section: str = SECTIONS["maskbench"]) -> str:
    paths = [paths] if isinstance(paths, str) else list(paths)
    inp = MaskbenchInputs(paths, engines, data, selection)
    by_engine = inp.by_engine
    cmd = report_command(paths, engines, section=section)
    if not by_engine:
        return ("## MaskBench, engines side by side\n\nNo results yet (`python benchmarks/maskbench.py`, then "
                f"`{cmd}`).")
    total = len(inp.cases)
    first_meta = next((m for m in inp.metas.values() if m), {})
    sel = inp.selection or {}
    whole = not any(sel.get(k) for k in ("limit", "groups", "files"))
    if whole:
        what = "Every file of the development split" + (f" ({inp.index_size} files)" if inp.index_size else "")
    elif sel.get("limit") and not sel.get("groups") and not sel.get("files"):
        what = (f"The {total}-file seeded sample (seed {sel.get('seed') or 0}) of the development split"
                + (f" ({inp.index_size} files)" if inp.index_size else "")
                + (", the same size as the project's reference measurement" if total == 800 else ""))
    else:
        what = f"{total} files of the development split (" + ", ".join(
            f"{k}={v}" for k, v in sel.items() if v not in (None, "")) + ")"
    limits = {e: inp.limit(e) for e in by_engine}
    partial = {e: len(v) for e, v in by_engine.items() if len(v) < total}

    title = ("## MaskBench, the whole development split" if whole
             else "## MaskBench (development split), engines side by side")
    parts = [title, "",
             f"Written by `{cmd}` from `benchmarks/maskbench.py` results. All engines share one tokenization "
             f"({_tokenization(first_meta)}), one measurement loop (`benchmarks/harness/worker.py`) and run "
             "single-threaded, one worker process per engine with a per-file time limit and an address-space "
             "cap.", "",
             f"{what}. pass = compiled, every valid instance accepted and every invalid one blocked. A file an "
             "engine timed out on (or crashed on, or ran out of memory on) counts as not passed for that engine; "
             "no file is left out of the comparison. compile = wall clock until a matcher is ready (percentiles "
             "over the files that compiled within the limit, so an engine with many timeouts has its slowest "
             "compiles missing from them); mask = one mask computation, over every token step of every valid "
             "instance plus the final EOS step.", ""]
    if len({v for v in limits.values() if v}) > 1:
        parts += ["Time limits differ between engines (see below): a file an engine did not finish within its "
                  "own limit counts as not passed for it, even if it might have finished within another "
                  "engine's limit. " + ", ".join(f"`{e}`: {v:g} s" for e, v in limits.items() if v) + ".", ""]
    for e, n in partial.items():
        parts += [f"**`{e}` covers {n} of the {total} files** (its run had not finished when this was written): "
                  "its counts are over those files only; rerun its command to complete it.", ""]
    for w in inp.warnings:
        parts += [f"Note: {w}.", ""]

    parts += ["Engines and settings (whitespace, key order, time limit per file):", ""]
    for e in by_engine:
        info = inp.info(e)
        ws, order = _layout(e, info)
        lim = limits.get(e)
        lang = info.get("language", "")
        # the adapter's own line (extra keys, EOS, what compile covers); structgen's is the settings above
        extra = f"; adapter: {lang.rstrip('.')}" if lang and info.get("engine", e.split(":")[0]) != "structgen" else ""
        parts.append(f"- `{e}` {info.get('version', '')}: whitespace: {ws}; key order: {order}; time limit "
                     f"{f'{lim:g} s' if lim else '?'} per file; settings "
                     f"`{json.dumps(info.get('settings', {}), sort_keys=True)}`{extra}.")
    parts += [""]
    parts += ["Runs (one results file per run; runs made at different times on a shared machine: compare "
              "latencies across them loosely):", ""]
    for p in paths:
        shown = [e for e in by_engine if inp.source.get(e) == p]
        if not shown:
            continue
        meta = inp.metas.get(p, {})
        m, pk = meta.get("machine", {}), meta.get("packages", {})
        line = f"- `{_rel(p)}` ({', '.join(shown)})"
        if m:
            line += f": {_machine_line(m)}"
        if pk:
            line += "; packages " + ", ".join(f"{k} {v}" for k, v in sorted(pk.items()))
        parts.append(line + ".")
        rep = _reproduce(meta, shown, p)
        if rep:
            parts.append(f"  - Reproduce: `{rep}`")
    step = "maskbench" if section == SECTIONS["maskbench"] else "maskbench-dev"  # run_all.py's step
    parts += [f"- Tables and plots: `{cmd}`; everything in this section, runs included: "
              f"`python benchmarks/run_all.py --only {step},report` (the runs resume from the results files).", ""]

    parts += [maskbench.summary_table(by_engine, total, limits), "",
              maskbench.group_tables(by_engine, inp.group_sizes), ""]
    expected = maskbench.load_expected(data or maskbench.MASKBENCH_DIR)
    if expected:
        parts += ["### Against llguidance's published per-file results", "", _expected_note(inp, expected), "",
                  maskbench.expected_comparison(by_engine, expected), ""]
    et = maskbench.error_types_table(by_engine)
    if et:
        parts += [et, ""]
    parts += _plots(by_engine, plot_dir, doc_dir, inp.group_sizes,
                    "" if section == SECTIONS["maskbench"] else f"_{section}")
    parts += ["", "### Where structgen is behind", "", behind_note(by_engine, total)]
    return "\n".join(parts)


def jsts_section(path: str, engines: list[str] | None = None) -> str:
    meta = _meta(path)
    engines = engines or list(meta.get("engines", {})) or None
    by_engine = jsts.collect(path, engines, None)
    cmd = report_command(jsts_path=path, jsts_engines=engines if engines != list(meta.get("engines", {})) else None)
    if not by_engine:
        return ("## JSON-Schema-Test-Suite, engines side by side\n\nNo results yet (`python benchmarks/jsts.py`, "
                f"then `{cmd}`).")
    parts = ["## JSON-Schema-Test-Suite, engines side by side", "",
             f"Written by `{cmd}` from `benchmarks/jsts.py` results. Paper protocol: a test group passes when every "
             "valid instance is accepted (token by token, EOS at the end) and every invalid one blocked; a compile "
             "error passes only when all instances are invalid. over = a valid instance rejected, under = an "
             "invalid instance accepted.", "",
             _setup_section(meta, list(by_engine), path), "", jsts.totals_table(by_engine), "",
             "Per category (passed/groups; ce compile error, to timeout/oom/crash, o over-, u under-constrained):",
             "", jsts.category_table(by_engine)]
    baseline = jsts.load_baseline()
    for eng, recs in by_engine.items():
        if eng.split(":")[0] == "llguidance" and baseline:
            text, _ = jsts.baseline_comparison(recs, baseline)
            parts += ["", f"`{eng}` against llguidance's published baseline (harness check): {text}"]
    return "\n".join(parts)


def write_section(path: str, name: str, body: str) -> None:
    """Replace one section of the doc (the project's `<!-- section:NAME -->` convention)."""
    from benchmarks.docsection import update_section

    update_section(name, body, path=path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maskbench", action="append", default=None,
                    help="MaskBench results JSONL, comma-separated or repeated (default: results/maskbench.jsonl)")
    ap.add_argument("--jsts", default=None, help="JSON-Schema-Test-Suite results (default: results/jsts.jsonl)")
    ap.add_argument("--engines", default=None,
                    help="MaskBench engines to show, in this order (default: every engine in the files)")
    ap.add_argument("--jsts-engines", default=None, help="test-suite engines to show (default: all recorded)")
    ap.add_argument("--limit", type=int, default=None, help="MaskBench selection (default: what the runs recorded)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--data", default=None, help="MaskBench data folder (index.jsonl, expected results)")
    ap.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--plots", default=None, help="plot folder (default: the doc's folder)")
    ap.add_argument("--section", default=SECTIONS["maskbench"],
                    help=f"doc section the MaskBench tables go to (default {SECTIONS['maskbench']}; e.g. "
                         "maskbench-dev-split for a run over the whole split)")
    ap.add_argument("--run", action="store_true", help="run (or resume) both benchmarks first")
    args = ap.parse_args(argv)
    named = args.maskbench is not None or args.jsts is not None
    mb_paths = [p for a in (args.maskbench or []) for p in _split(a)]
    if not named:  # the defaults, each written only when its file is there
        mb_paths = [p for p in [os.path.join(REPO_ROOT, "results", "maskbench.jsonl")] if os.path.exists(p)]
        jsts_path = os.path.join(REPO_ROOT, "results", "jsts.jsonl")
        args.jsts = jsts_path if os.path.exists(jsts_path) else None
    engines = _split(args.engines) or None
    if args.run:
        if len(mb_paths) > 1:
            ap.error("--run takes one --maskbench file")
        mb_out = mb_paths[0] if mb_paths else os.path.join(REPO_ROOT, "results", "maskbench.jsonl")
        maskbench.main(["--engines", args.engines or maskbench.DEFAULT_ENGINES, "--out", mb_out]
                       + (["--limit", str(args.limit)] if args.limit is not None else []))
        args.jsts = args.jsts or os.path.join(REPO_ROOT, "results", "jsts.jsonl")
        jsts.main(["--engines", args.jsts_engines or jsts.DEFAULT_ENGINES, "--out", args.jsts])
        mb_paths = [mb_out]
    doc_dir = os.path.dirname(os.path.abspath(args.doc))
    plot_dir = args.plots or doc_dir
    os.makedirs(doc_dir, exist_ok=True)
    wrote = []
    if mb_paths:
        if not any(os.path.exists(p) for p in mb_paths):
            print(f"no MaskBench results at {', '.join(mb_paths)}: section left as it is", file=sys.stderr)
        else:
            body = maskbench_section(mb_paths, plot_dir, doc_dir, engines, args.data,
                                     {"limit": args.limit, "seed": args.seed}, args.section)
            write_section(args.doc, args.section, body)
            wrote.append(args.section)
    if args.jsts:
        if not os.path.exists(args.jsts):
            print(f"no test-suite results at {args.jsts}: section left as it is", file=sys.stderr)
        else:
            write_section(args.doc, SECTIONS["jsts"], jsts_section(args.jsts, _split(args.jsts_engines) or None))
            wrote.append(SECTIONS["jsts"])
    if not wrote:
        print("nothing written (no results found)", file=sys.stderr)
        return 1 if named else 0
    print(f"wrote {', '.join(wrote)} in {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
