"""JSONSchemaBench empirical coverage: real generation with the embedded SmolLM2, engines side by side.

    python benchmarks/jsonschemabench.py                       # defaults below, writes docs/benchmarks.md
    python benchmarks/jsonschemabench.py --n 2 --no-write      # a tiny run

For every sampled schema and every engine: compile the schema (timed), then generate one output
with the embedded SmolLM2-135M-Instruct (greedy, float32, CPU) with the JSONSchemaBench paper's
zero-shot prompt (system: "You need to generate a JSON object that matches the schema below.",
user: `json.dumps(schema)`, the model's chat template), through ONE decode loop shared by all
engines (`benchmarks/harness/generation.py`: KV cache, the engine only fills the bitmask and
accepts tokens). The output is parsed and validated with `jsonschema` (the schema's declared
draft, Draft 2020-12 when none, format checking on).

- declared coverage = the schema compiled (within the compile time limit);
- empirical coverage = the output parses and validates;
- compliance rate = empirical / declared.

Each engine runs in its own worker process (`benchmarks/harness/worker.py`: time limits per
phase, address-space cap, crash isolation), one process computing at a time: the cases run
case by case, each engine in turn, so load from other processes hits every engine alike.
Results are appended to a JSONL file (re-running resumes).

Layout: by default every engine is set to the same compact JSON layout (no whitespace:
`{"a":1,"b":[2]}`), so engines differ only in the schemas and keywords they handle and a small
model cannot loop on whitespace; `--layout engine-default` uses each adapter's default
(unbounded whitespace for the peers, bounded runs for structgen) instead.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import DATA_ROOT, REPO_ROOT  # noqa: E402
from benchmarks.harness.engines import engine_available, parse_spec  # noqa: E402
from benchmarks.harness.results import (Progress, collect_by_engine, fmt_ms, fmt_us, load_records,  # noqa: E402
                                        machine_info, md_table, package_versions, pct, save_percent_bars,
                                        update_meta)
from benchmarks.harness.worker import WorkerRunner  # noqa: E402

BENCH = "jsonschemabench"
JSB_DIR = os.path.join(DATA_ROOT, "jsonschemabench")
DEFAULT_ENGINES = "structgen,xgrammar,llguidance,outlines"
#: the 8 datasets of the paper's coverage experiments (Github_trivial and Github_ultra left out)
PAPER_DATASETS = ["Glaiveai2K", "Github_easy", "Snowplow", "Github_medium", "Kubernetes", "WashingtonPost",
                  "Github_hard", "JsonSchemaStore"]
ALL_DATASETS = ["Github_trivial"] + PAPER_DATASETS + ["Github_ultra"]
#: engine options giving every engine the same compact layout (no whitespace anywhere)
COMPACT = {
    "structgen": {"whitespace": "compact"},
    "xgrammar": {"any_whitespace": False, "separators": [",", ":"]},
    "llguidance": {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"},
    "outlines": {"whitespace_pattern": ""},
}
SYSTEM_PROMPT_TOKENS_MARGIN = 16  # chat-template tokens around the two messages (estimate for the selection)
DOC_SECTION = "jsonschemabench"
PLOT = os.path.join(REPO_ROOT, "docs", "bench_jsonschemabench_coverage.png")


# ----------------------------------------------------------------------------- selection

def load_index(root: str = JSB_DIR) -> list[dict]:
    with open(os.path.join(root, "index.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_schema(row: dict, root: str = JSB_DIR):
    with open(os.path.join(root, row["file"]), encoding="utf-8") as f:
        return json.load(f)


class PromptLength:
    """Estimated prompt tokens (system + json.dumps(schema) + template) with the shared tokenizer."""

    def __init__(self, tokenizer: str):
        from benchmarks.harness.engines import SharedVocab
        from benchmarks.harness.generation import PAPER_SYSTEM_PROMPT

        self.vocab = SharedVocab(tokenizer)
        self.base = len(self.vocab.encode(PAPER_SYSTEM_PROMPT)) + SYSTEM_PROMPT_TOKENS_MARGIN

    def __call__(self, schema) -> int:
        return self.base + len(self.vocab.encode(json.dumps(schema)))


def select_cases(index: list[dict], datasets: list[str], n: int, seed: int, max_prompt_tokens: int,
                 prompt_len=None, root: str = JSB_DIR, files: list[str] | None = None) -> tuple[list[dict], dict]:
    """A seeded sample of `n` schemas per dataset whose prompt fits in `max_prompt_tokens`.

    Per dataset the files are shuffled with a seed derived from (`seed`, dataset) and taken in
    that order, skipping schemas whose prompt is too long (counted, so the share of the dataset
    that does not fit can be reported). Returns (cases, {dataset: {"taken", "too_long"}})."""
    by_ds: dict[str, list[dict]] = {}
    for r in sorted(index, key=lambda r: r["file"]):
        by_ds.setdefault(r["dataset"], []).append(r)
    cases, counts = [], {}
    want = set(files or ())
    for ds in datasets:
        rows = list(by_ds.get(ds, []))
        if want:
            rows = [r for r in rows if r["file"] in want or r["key"] in want]
        else:
            random.Random(f"{BENCH}:{seed}:{ds}").shuffle(rows)
        c = counts[ds] = {"available": len(by_ds.get(ds, [])), "taken": 0, "too_long": 0}
        for r in rows:
            if c["taken"] >= n:
                break
            schema = load_schema(r, root)
            if max_prompt_tokens and prompt_len is not None:
                # a token has at least one byte: a schema this long cannot fit, skip the tokenizer
                if len(json.dumps(schema)) > 40 * max_prompt_tokens or prompt_len(schema) > max_prompt_tokens:
                    c["too_long"] += 1
                    continue
            cases.append({"id": r["file"], "schema": schema, "meta": {"dataset": ds}})
            c["taken"] += 1
    return cases, counts


def engine_spec(name_or_spec: str, layout: str) -> str:
    """The worker spec for an engine: its name plus the layout options (explicit options win)."""
    name, opts = parse_spec(name_or_spec)
    if layout == "compact":
        opts = {**COMPACT.get(name, {}), **opts}
    if not opts:
        return name
    return name + ":" + ";".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in opts.items())


# ----------------------------------------------------------------------------- running

def run(engines: list[str], cases: list[dict], out: str, meta_path: str, *, layout: str, tokenizer: str,
        task_opts: dict, compile_timeout: float, gen_timeout: float, mem_mb: int, verbose: bool) -> list[str]:
    """Case-major: for each case, each engine in turn (one live worker per engine, one computing)."""
    done = {(r["engine"], r["case"]) for r in load_records(out) if r.get("bench") == BENCH}
    ready: dict[str, WorkerRunner] = {}
    for eng in engines:
        ok, why = engine_available(eng)
        if not ok:
            print(f"[{eng}] not available, skipped: {why}", file=sys.stderr)
            continue
        if all((eng, c["id"]) in done for c in cases):
            ready[eng] = None  # type: ignore[assignment]
            continue
        spec = engine_spec(eng, layout)
        runner = WorkerRunner(spec, timeout_s=compile_timeout, mem_mb=mem_mb, vocab=tokenizer, task="generate",
                              task_opts=task_opts, phase_timeouts={"generate": gen_timeout})
        t0 = time.monotonic()
        try:
            hello = runner.info()
        except RuntimeError as e:
            print(f"[{eng}] worker did not start, skipped: {e}", file=sys.stderr)
            runner.close()
            continue
        if hello.get("warmup"):
            print(f"[{eng}] warm-up did not pass: {hello['warmup']}", file=sys.stderr)
        print(f"[{eng}] worker ready in {time.monotonic() - t0:.1f} s ({spec})", file=sys.stderr)
        update_meta(meta_path, engines={eng: {**hello.get("info", {}), "spec": spec}})
        ready[eng] = runner
    todo = [(c, e) for c in cases for e in ready if (e, c["id"]) not in done]
    prog = Progress(len(todo), BENCH)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    try:
        with open(out, "a") as f:
            for case, eng in todo:
                payload = {k: case[k] for k in ("id", "schema", "script", "lm_sleep_s") if k in case}
                rec = ready[eng].run(payload)
                out_rec = {"bench": BENCH, "engine": eng, "case": case["id"], **case["meta"], **rec}
                f.write(json.dumps(out_rec) + "\n")
                f.flush()
                label = outcome(out_rec)
                prog.update(label)
                if verbose:
                    print(f"  {eng:10s} {case['id']}: {label} compile {fmt_ms(rec.get('compile_ms'))} "
                          f"{rec.get('n_tokens', 0)} tok {str(rec.get('text', ''))[:70]!r}", file=sys.stderr)
    finally:
        prog.close()
        for r in ready.values():
            if r is not None:
                r.close()
    return list(ready)


# ----------------------------------------------------------------------------- scoring

def compiled(r: dict) -> bool:
    """Declared coverage: the schema compiled (generation may still have failed or timed out)."""
    return r.get("status") in ("ok", "gen_error") or r.get("phase") == "generate"


def outcome(r: dict) -> str:
    """One label per record: valid, or why not."""
    st = r.get("status")
    if st == "ok":
        if r.get("valid"):
            return "valid"
        stop = r.get("stop")
        if stop != "complete":
            return stop or "?"
        if not r.get("parsed"):
            return "invalid_json"
        return "validator_error" if r.get("validator_error") else "schema_invalid"
    if st in ("timeout", "oom", "crash"):
        return f"{st} ({'generate' if r.get('phase') == 'generate' else 'compile'})"
    return st or "?"


def stats(recs: list[dict]) -> dict:
    n = len(recs)
    comp = [r for r in recs if compiled(r)]
    valid = [r for r in recs if r.get("valid")]
    gen = [r for r in recs if r.get("status") == "ok" and r.get("n_tokens")]
    toks = sum(r["n_tokens"] for r in gen)
    masks = [x for r in gen for x in (r.get("mask_us") or ())]
    mask_total_us = sum(masks)
    accept_us = sum(r.get("accept_us", 0.0) for r in gen)
    decode_ms = sum(r.get("decode_ms", 0.0) for r in gen)
    forward_ms = sum(r.get("forward_ms", 0.0) for r in gen)
    cms = [r["compile_ms"] for r in comp if r.get("compile_ms") is not None]
    return {
        "n": n, "declared": len(comp), "empirical": len(valid),
        "declared_pct": 100.0 * len(comp) / n if n else None,
        "empirical_pct": 100.0 * len(valid) / n if n else None,
        "compliance_pct": 100.0 * len(valid) / len(comp) if comp else None,
        "compile_p50_ms": pct(cms, [50])[0], "compile_p90_ms": pct(cms, [90])[0],
        "tokens": toks,
        "tpot_ms": decode_ms / toks if toks else None,
        "forward_ms_per_tok": forward_ms / toks if toks else None,
        "engine_us_per_tok": (mask_total_us + accept_us) / toks if toks else None,
        "mask_p50_us": pct(masks, [50])[0], "mask_p99_us": pct(masks, [99])[0],
        "overhead_pct": 100.0 * (mask_total_us + accept_us) / 1e3 / decode_ms if decode_ms else None,
        "prefill_ms_p50": pct([r.get("prefill_ms", 0.0) for r in gen], [50])[0],
    }


def _p(x) -> str:
    return "–" if x is None else f"{x:.0f}%"


def collect(out: str, engines: list[str] | None, case_ids: list[str] | None) -> dict[str, list[dict]]:
    return collect_by_engine(out, BENCH, engines, case_ids, common_only=True)


def summary_table(by_engine: dict[str, list[dict]]) -> str:
    header = ["engine", "schemas", "declared coverage", "empirical coverage", "compliance", "compile p50",
              "compile p90", "output tokens", "time/output token", "model forward/token", "engine µs/token",
              "mask p50", "mask p99", "engine share"]
    rows = []
    for eng, recs in by_engine.items():
        s = stats(recs)
        rows.append([eng, s["n"], f"{s['declared']} ({_p(s['declared_pct'])})",
                     f"{s['empirical']} ({_p(s['empirical_pct'])})", _p(s["compliance_pct"]),
                     fmt_ms(s["compile_p50_ms"]), fmt_ms(s["compile_p90_ms"]), s["tokens"],
                     fmt_ms(s["tpot_ms"]), fmt_ms(s["forward_ms_per_tok"]), fmt_us(s["engine_us_per_tok"]),
                     fmt_us(s["mask_p50_us"]), fmt_us(s["mask_p99_us"]),
                     "–" if s["overhead_pct"] is None else f"{s['overhead_pct']:.1f}%"])
    return md_table(header, rows)


def dataset_table(by_engine: dict[str, list[dict]]) -> str:
    datasets = [d for d in ALL_DATASETS if any(r.get("dataset") == d for v in by_engine.values() for r in v)]
    rows = []
    for d in datasets:
        row = [d, max(len([r for r in v if r.get("dataset") == d]) for v in by_engine.values())]
        for eng, recs in by_engine.items():
            s = stats([r for r in recs if r.get("dataset") == d])
            row.append(f"{_p(s['declared_pct'])} / {_p(s['empirical_pct'])} / {_p(s['compliance_pct'])}")
        rows.append(row)
    return md_table(["dataset", "schemas"] + [f"{e}: declared / empirical / compliance" for e in by_engine], rows)


def timing_table(by_engine: dict[str, list[dict]]) -> str:
    datasets = [d for d in ALL_DATASETS if any(r.get("dataset") == d for v in by_engine.values() for r in v)]
    rows = []
    for d in datasets:
        row = [d]
        for eng, recs in by_engine.items():
            s = stats([r for r in recs if r.get("dataset") == d])
            row.append(f"{fmt_ms(s['compile_p50_ms'])} / {fmt_ms(s['tpot_ms'])} / {fmt_us(s['engine_us_per_tok'])}")
        rows.append(row)
    return md_table(["dataset"] + [f"{e}: compile p50 / time per token / engine µs per token" for e in by_engine],
                    rows)


def outcome_table(by_engine: dict[str, list[dict]]) -> str:
    counts: dict[str, dict[str, int]] = {}
    for eng, recs in by_engine.items():
        for r in recs:
            counts.setdefault(outcome(r), {}).setdefault(eng, 0)
            counts[outcome(r)][eng] += 1
    order = ["valid", "schema_invalid", "invalid_json", "validator_error", "truncated", "dead_end", "rejected"]
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    return md_table(["outcome"] + list(by_engine), [[k] + [counts[k].get(e, 0) for e in by_engine] for k in keys])


def _inline(text: str, n: int) -> str:
    """Text safe inside a markdown code span on one line."""
    t = str(text).replace("`", "'").replace("\n", "\\n").replace("|", "\\|")
    return t[:n] + ("…" if len(t) > n else "")


def failure_examples(by_engine: dict[str, list[dict]], limit: int = 3) -> str:
    lines = []
    for eng, recs in by_engine.items():
        bad = [r for r in recs if compiled(r) and not r.get("valid")]
        for r in bad[:limit]:
            lines.append(f"- `{eng}` {r['case']}: {outcome(r)}: {_inline(r.get('error', ''), 120)} — output "
                         f"`{_inline(r.get('text', ''), 90)}`")
    return "\n".join(lines)


def behind_note(by_engine: dict[str, list[dict]]) -> str:
    sg = next((e for e in by_engine if e.split(":")[0] == "structgen"), None)
    if sg is None or len(by_engine) < 2:
        return "structgen and at least one peer are needed for a comparison."
    st = {e: stats(v) for e, v in by_engine.items()}
    items = []
    for label, key, higher, fmt in (("declared coverage", "declared_pct", True, _p),
                                    ("empirical coverage", "empirical_pct", True, _p),
                                    ("compliance", "compliance_pct", True, _p),
                                    ("compile p50", "compile_p50_ms", False, fmt_ms),
                                    ("engine time per output token", "engine_us_per_tok", False, fmt_us),
                                    ("mask p99", "mask_p99_us", False, fmt_us)):
        mine = st[sg][key]
        peers = {e: s[key] for e, s in st.items() if e != sg and s[key] is not None}
        if mine is None or not peers:
            continue
        best = max(peers, key=peers.get) if higher else min(peers, key=peers.get)
        if (mine < peers[best]) if higher else (mine > peers[best]):
            items.append(f"- {label}: structgen {fmt(mine)} vs {best} {fmt(peers[best])}")
    per_ds = []
    for d in ALL_DATASETS:
        recs = {e: [r for r in v if r.get("dataset") == d] for e, v in by_engine.items()}
        if not recs[sg]:
            continue
        mine = stats(recs[sg])["empirical"]
        best_e, best = max(((e, stats(v)["empirical"]) for e, v in recs.items() if e != sg), key=lambda x: x[1])
        if best > mine:
            per_ds.append(f"{d} ({mine} vs {best_e} {best})")
    if per_ds:
        items.append("- empirical coverage per dataset: " + ", ".join(per_ds))
    if not items:
        return "On this sample structgen is not behind the best peer on any of these metrics."
    return "structgen is behind the best peer on:\n\n" + "\n".join(items)


def plot(by_engine: dict[str, list[dict]], path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return None
    datasets = [d for d in ALL_DATASETS if any(r.get("dataset") == d for v in by_engine.values() for r in v)]
    groups = datasets + ["all"]
    fig, ax = plt.subplots(figsize=(max(9, 1.2 * len(groups)), 4.2))
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(by_engine))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (eng, recs) in enumerate(by_engine.items()):
        dec, emp = [], []
        for g in groups:
            s = stats(recs if g == "all" else [r for r in recs if r.get("dataset") == g])
            dec.append(s["declared_pct"] or 0.0)
            emp.append(s["empirical_pct"] or 0.0)
        pos = x + i * width - 0.4 + width / 2
        c = colors[i % len(colors)]
        ax.bar(pos, dec, width, color=c, alpha=0.25, edgecolor=c)
        ax.bar(pos, emp, width, color=c, label=eng)
    return save_percent_bars(
        fig, ax, x, groups, ylabel="% of sampled schemas", path=path,
        title="JSONSchemaBench with SmolLM2-135M: empirical coverage (solid) within declared coverage (light)")


def command_line(args) -> str:
    parts = ["python benchmarks/jsonschemabench.py"]
    defaults = vars(build_parser().parse_args([]))
    for k, v in vars(args).items():
        if k in ("out", "doc", "plot", "report_only", "no_write", "verbose", "data") or v == defaults.get(k):
            continue
        flag = "--" + k.replace("_", "-")
        parts += [flag] if v is True else [flag, str(v)]
    return " ".join(parts)


def reading_notes(by_engine: dict[str, list[dict]]) -> str:
    """Data-driven notes on what drives the differences (token cap, open objects, layout quirks)."""
    lines = []
    trunc = {e: sum(outcome(r) == "truncated" for r in v) for e, v in by_engine.items()}
    lines.append("- Outputs cut at the token cap: " + ", ".join(f"{e} {n}" for e, n in trunc.items()) + ". With "
                 "`additionalProperties` left open (the spec's default, kept by structgen, XGrammar with "
                 "`strict_mode=False` and llguidance), the greedy 135M model often keeps inventing keys or repeating "
                 "array items until the cap.")
    cases = {e: {r["case"]: r for r in v} for e, v in by_engine.items()}
    if "outlines" in cases and len(cases) > 1:
        others = [e for e in cases if e != "outlines"]
        alone = [c for c, r in cases["outlines"].items() if r.get("valid")
                 and all(outcome(cases[e][c]) == "truncated" for e in others if c in cases[e])]
        emp = {e: sum(1 for r in cases[e].values() if r.get("valid")) for e in cases}
        lead = emp["outlines"] - max(emp[e] for e in others)
        lines.append(f"- outlines-core's regex never allows keys beyond `properties` (it has no "
                     f"`additionalProperties`), which ends objects early: on {len(alone)} schemas it is valid where "
                     f"every other engine ran into the cap (its lead in valid outputs over the next engine: {lead}). "
                     "Its declared coverage (compile errors, compile timeouts) is the lowest.")
    sg = next((e for e in cases if e.split(":")[0] == "structgen"), None)
    if sg is not None and len(cases) > 1:
        same = {e: sum(1 for c, r in cases[e].items() if c in cases[sg] and r.get("status") == "ok"
                       and cases[sg][c].get("status") == "ok" and r.get("text") == cases[sg][c].get("text"))
                for e in cases if e != sg}
        both = {e: sum(1 for c, r in cases[e].items() if c in cases[sg] and r.get("status") == "ok"
                       and cases[sg][c].get("status") == "ok") for e in cases if e != sg}
        lines.append("- Same greedy model, same loop: where two engines allow the same tokens at every step the "
                     "outputs are identical. Outputs identical to structgen's: " + ", ".join(
                         f"{e} {same[e]} of {both[e]}" for e in same) + " (schemas both generated for).")
    if "llguidance" in cases:
        lines.append("- llguidance also allows fewer token splits: where the next text is forced it only allows the "
                     "token that spells it canonically (e.g. `{\"` but not `{` first, and for a first key `dimensions` "
                     "only the token `dimensions`, not `d` or `dim`), and it never allows an unescaped DEL (0x7f) in strings. So its greedy trajectories "
                     "differ from the others' even on schemas all of them handle alike.")
    if "xgrammar" in cases:
        lines.append("- XGrammar with `any_whitespace=False, separators=(',', ':')` still writes `, ` inside values "
                     "of unconstrained type (its built-in any-JSON rule) and between additional properties, so its "
                     "outputs can leave the others' trajectory there.")
    return "\n".join(lines)


def section(by_engine: dict[str, list[dict]], meta: dict, plot_rel: str | None) -> str:
    o = meta.get("options", {})
    m = meta.get("machine", {})
    sel = meta.get("selection", {})
    parts = ["## JSONSchemaBench: empirical coverage with SmolLM2-135M, engines side by side", "",
             f"Written by `{meta.get('command', 'python benchmarks/jsonschemabench.py')}` "
             "(`benchmarks/jsonschemabench.py`; `python benchmarks/run_all.py` runs it with these settings).", "",
             "Per sampled schema and engine: compile (timed), then one output from the embedded "
             "SmolLM2-135M-Instruct (float32, CPU, greedy) with the JSONSchemaBench paper's zero-shot prompt "
             "(system \"You need to generate a JSON object that matches the schema below.\", user "
             "`json.dumps(schema)`, the model's chat template), through one decode loop shared by all engines "
             "(`benchmarks/harness/generation.py`: KV cache; the engine only fills the bitmask and accepts "
             "tokens). The output is validated with `jsonschema` (the schema's `$schema` draft, 2020-12 when "
             "none; format checking on; remote `$ref`s are not fetched and count as not valid).", "",
             "- declared coverage = compiled within the compile limit; empirical coverage = the output parses and "
             "validates; compliance = empirical / declared. Percentages are of the sampled schemas.",
             f"- Sample: {o.get('n', '?')} schemas per dataset (seed {o.get('seed', '?')}), drawn in a seeded order "
             f"among those whose prompt fits in {o.get('max_prompt_tokens', '?')} tokens (the model has 8192; "
             "prefill on this CPU bounds the rest, so large schemas are under-represented). Datasets: " + ", ".join(
                 f"{d} ({sel[d]['taken']} taken, {sel[d]['too_long']} skipped as too long)"
                 for d in sorted(sel, key=lambda d: ALL_DATASETS.index(d) if d in ALL_DATASETS else 99)) + ".",
             f"- Limits: max {o.get('max_new_tokens', '?')} new tokens (reaching it = truncated, not valid); "
             f"compile {o.get('compile_timeout', '?')} s and generation {o.get('gen_timeout', '?')} s per case "
             f"(paper harness: 40 s / 60 s on GPUs); address space +{o.get('mem_mb', '?')} MiB per worker.",
             "- Layout: " + ("every engine set to the same compact JSON (no whitespace), so they differ in the "
                             "schemas and keywords they handle, not in whitespace" if o.get("layout") == "compact"
                             else "each engine's default whitespace"),
             "- time/output token = decode wall time (model forward + mask + apply + accept) per generated token; "
             "model forward/token = the forward passes alone; engine µs/token = the engine's mask fills + token "
             "accepts per generated token (the final EOS mask included); engine share = that time / decode time; "
             "mask p50/p99 over every mask fill.",
        ]
    if m:
        parts.append(f"- Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory', '?')} RAM, "
                     f"Python {m.get('python', '')}, torch with 1 thread per worker; load average at start "
                     f"{m.get('loadavg_at_start', '?')} (the machine was shared: absolute times are pessimistic, "
                     "compare engines within the table).")
    pk = meta.get("packages", {})
    if pk:
        parts.append("- Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(pk.items())))
    for eng in by_engine:
        e = meta.get("engines", {}).get(eng, {})
        if e:
            parts.append(f"- `{eng}` {e.get('version', '')}: worker spec `{e.get('spec', eng)}`")
    n_common = len(next(iter(by_engine.values()))) if by_engine else 0
    parts += ["", f"{n_common} schemas run by every engine listed.", "", summary_table(by_engine), "",
              "Per dataset (declared / empirical / compliance):", "", dataset_table(by_engine), "",
              "Per dataset timings:", "", timing_table(by_engine), "", "Outcomes:", "", outcome_table(by_engine),
              "", "Reading the results:", "", reading_notes(by_engine)]
    ex = failure_examples(by_engine)
    if ex:
        parts += ["", "Compiled but no valid output (first few per engine):", "", ex]
    if plot_rel:
        parts += ["", f"![JSONSchemaBench coverage]({plot_rel})"]
    parts += ["", "### Where structgen is behind", "", behind_note(by_engine)]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default=DEFAULT_ENGINES, help="comma-separated engine names (default: %(default)s)")
    ap.add_argument("--datasets", default="paper",
                    help="comma-separated datasets, 'paper' (the paper's 8) or 'all' (default: %(default)s)")
    ap.add_argument("--n", type=int, default=6, help="schemas per dataset (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", default="", help="comma-separated files (Dataset/id.json) instead of a sample")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--max-prompt-tokens", type=int, default=1024)
    ap.add_argument("--layout", choices=("compact", "engine-default"), default="compact")
    ap.add_argument("--model", choices=("smollm2", "scripted"), default="smollm2",
                    help="scripted = a fake model over a byte vocabulary (harness tests)")
    ap.add_argument("--compile-timeout", type=float, default=40.0, help="seconds per compile")
    ap.add_argument("--gen-timeout", type=float, default=120.0, help="seconds per generation (after the compile)")
    ap.add_argument("--mem-mb", type=int, default=8192)
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "results", "jsonschemabench.jsonl"))
    ap.add_argument("--doc", default=None, help="markdown file to update (default: docs/benchmarks.md)")
    ap.add_argument("--plot", default=PLOT)
    ap.add_argument("--no-write", action="store_true", help="print the tables only; leave the doc and plot alone")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per case and engine")
    ap.add_argument("--data", default=JSB_DIR)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    datasets = (PAPER_DATASETS if args.datasets == "paper" else ALL_DATASETS if args.datasets == "all"
                else [d for d in args.datasets.split(",") if d])
    tokenizer = "smollm2" if args.model == "smollm2" else "bytes"
    meta_path = os.path.splitext(args.out)[0] + ".meta.json"
    files = [f for f in args.files.split(",") if f] or None
    t0 = time.monotonic()
    plen = PromptLength(tokenizer) if args.max_prompt_tokens else None
    cases, counts = select_cases(load_index(args.data), datasets, args.n, args.seed, args.max_prompt_tokens,
                                 plen, args.data, files)
    print(f"{len(cases)} schemas selected in {time.monotonic() - t0:.1f} s: "
          + ", ".join(f"{d} {c['taken']} (+{c['too_long']} too long)" for d, c in counts.items()), file=sys.stderr)
    if not args.report_only:
        prev = {}
        if os.path.exists(meta_path) and load_records(args.out):
            with open(meta_path) as f:
                prev = json.load(f).get("options", {})
        for k in ("layout", "model", "max_new_tokens", "max_prompt_tokens"):
            if prev and prev.get(k) != getattr(args, k):
                raise SystemExit(f"{args.out} holds results made with --{k.replace('_', '-')} {prev.get(k)}; "
                                 "use the same setting or another --out")
        update_meta(meta_path, bench=BENCH, machine=machine_info(), packages=package_versions(), options=vars(args),
                    command=command_line(args), selection=counts)
        task_opts = {"model": args.model, "max_new_tokens": args.max_new_tokens,
                     "max_prompt_tokens": args.max_prompt_tokens, "threads": 1}
        engines = run(engines, cases, args.out, meta_path, layout=args.layout, tokenizer=tokenizer,
                      task_opts=task_opts, compile_timeout=args.compile_timeout, gen_timeout=args.gen_timeout,
                      mem_mb=args.mem_mb, verbose=args.verbose)
    by_engine = collect(args.out, engines, [c["id"] for c in cases])
    if not by_engine:
        print("no results")
        return 0
    print("\n## JSONSchemaBench summary\n")
    print(summary_table(by_engine))
    print("\nPer dataset (declared / empirical / compliance):\n")
    print(dataset_table(by_engine))
    print("\nOutcomes:\n")
    print(outcome_table(by_engine))
    ex = failure_examples(by_engine)
    if ex:
        print("\n" + ex)
    if not args.no_write:
        from benchmarks.docsection import DOC, update_section

        doc = args.doc or DOC
        with open(meta_path) as f:
            meta = json.load(f)
        p = plot(by_engine, args.plot)
        rel = os.path.relpath(p, os.path.dirname(os.path.abspath(doc))) if p else None
        update_section(DOC_SECTION, section(by_engine, meta, rel), path=doc)
        print(f"updated the '{DOC_SECTION}' section of {doc}" + (f" and {p}" if p else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
