"""Decode speed with SmolLM2-135M-Instruct on CPU: unconstrained vs constrained, per-token overhead.

Two parts, same prompts, greedy decoding:

1. structgen's own decode loop (`structgen.generate`): unconstrained, constrained without
   jump-forward, constrained with jump-forward. The loop times its phases, so the constraint
   overhead per token (mask fill + mask apply + token accept) is measured directly and compared
   with the model step time of the unconstrained run.
2. ``model.generate`` with a logits processor: none, structgen's, XGrammar's
   (``xgrammar.contrib.hf.LogitsProcessor``) and llguidance's (llguidance ships no HF processor
   class: a minimal one over ``llguidance.torch`` is used). Each processor call is timed.

Runs are interleaved round by round and medians reported, so load from other processes hits every
variant alike. Writes the "generation" section of docs/benchmarks.md.

    python benchmarks/bench_generation.py --rounds 3 --tokens 48
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import transformers  # noqa: E402

import structgen  # noqa: E402
from structgen.integrations.generate import generate  # noqa: E402
from structgen.integrations.models import load_default_model  # noqa: E402
from structgen.integrations.transformers import StructgenLogitsProcessor, vocabulary_for  # noqa: E402

TASKS = [
    ("person JSON (regex)", "Give me a JSON object describing a person: name, age and city.",
     r'\{"name": "[A-Za-z ]{1,24}", "age": [0-9]{1,3}, "city": "[A-Za-z ]{1,24}"\}'),
    ("list of numbers (regex)", "List a few small prime numbers as a JSON array.",
     r"\[[0-9]{1,3}(, [0-9]{1,3}){2,6}\]"),
]
# Own-loop only (the engines lay out JSON differently, so the HF comparison uses the regexes).
SCHEMA_TASKS = [
    ("city JSON (schema)", "Describe a city in JSON with its name, country and whether it is a capital.",
     {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                       "country": {"enum": ["France", "Japan", "Peru"]},
                                       "capital": {"type": "boolean"}},
      "required": ["city", "country", "capital"], "additionalProperties": False}),
]


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


class Timed(transformers.LogitsProcessor):
    """Wraps a logits processor and accumulates the time spent in it."""

    def __init__(self, inner: Callable):
        self.inner = inner
        self.total = 0.0
        self.calls = 0

    def __call__(self, input_ids, scores):
        t0 = time.perf_counter()
        out = self.inner(input_ids, scores)
        self.total += time.perf_counter() - t0
        self.calls += 1
        return out


class LLGuidanceProcessor(transformers.LogitsProcessor):
    """Minimal HF processor over llguidance.torch (one matcher, batch 1)."""

    def __init__(self, lltok: Any, grammar: str, vocab_size: int):
        import llguidance
        import llguidance.torch as lt

        self.lt = lt
        self.matcher = llguidance.LLMatcher(lltok, grammar)
        self.bitmask = lt.allocate_token_bitmask(1, vocab_size)
        self.started = False

    def __call__(self, input_ids, scores):
        if self.started:
            self.matcher.consume_token(int(input_ids[0, -1]))
        self.started = True
        self.lt.fill_next_token_bitmask(self.matcher, self.bitmask, 0)
        self.lt.apply_token_bitmask_inplace(scores, self.bitmask)
        return scores


def _has_schema() -> bool:
    try:
        structgen.compile_json_schema  # noqa: B018
        return True
    except (AttributeError, ImportError):
        return False


def own_loop(model, tok, rounds: int, n_tokens: int) -> list[dict]:
    rows = []
    tasks = [(n, p, {"regex": c}) for n, p, c in TASKS]
    if _has_schema():
        tasks += [(n, p, {"schema": c}) for n, p, c in SCHEMA_TASKS]
    for name, prompt, cons in tasks:
        msgs = [{"role": "user", "content": prompt}]
        variants = {"unconstrained": dict(), "constrained": dict(cons, jump_forward=False),
                    "constrained + jump-forward": dict(cons, jump_forward=True)}
        for kw in variants.values():  # warm-up: numba JIT, mask caches, allocator
            generate(model, tok, msgs, max_new_tokens=4, **kw)
        stats: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
        for _ in range(rounds):
            for v, kw in variants.items():
                r = generate(model, tok, msgs, max_new_tokens=n_tokens, **kw)
                t = r.timings
                steps = max(1, t["steps"])
                # Masks filled while the model runs only cost the wait after the forward pass.
                over = (t["mask"] if kw.get("overlap") is False else t["mask_wait"] + t["mask_sync"]) \
                    + t["apply"] + t["accept"]
                d = stats[v]
                for k, val in (("tokens", r.n_tokens), ("steps", r.n_model_steps), ("status", r.status == "complete"),
                               ("wall_per_tok", r.elapsed_s / max(1, r.n_tokens)),
                               ("step", t["forward"] / steps), ("overhead", over / steps),
                               ("jf", t["jump_forward"] / steps), ("fill", t["mask"] / steps)):
                    d.setdefault(k, []).append(float(val))
        base = _med(stats["unconstrained"]["step"])
        for v, d in stats.items():
            rows.append({"task": name, "variant": v, "tokens": _med(d["tokens"]), "steps": _med(d["steps"]),
                         "wall_ms_per_tok": 1e3 * _med(d["wall_per_tok"]), "step_ms": 1e3 * _med(d["step"]),
                         "overhead_us": 1e6 * _med(d["overhead"]), "jf_us": 1e6 * _med(d["jf"]),
                         "fill_us": 1e6 * _med(d["fill"]),
                         "overhead_pct": 100 * _med(d["overhead"]) / base if v != "unconstrained" else 0.0})
    return rows


def hf_processors(model, tok, rounds: int, n_tokens: int) -> tuple[list[dict], dict[str, float]]:
    vocab = vocabulary_for(model, tok)
    v = vocab.size
    makers: dict[str, Callable[[str], Any]] = {}
    compile_s: dict[str, float] = {}

    def sg_maker(rx):
        return StructgenLogitsProcessor([structgen.compile_regex(rx, vocab)], eos_token_id=tok.eos_token_id)

    makers["structgen"] = sg_maker
    try:
        import xgrammar as xgr
        import xgrammar.contrib.hf as xhf

        info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=v)
        xcomp = xgr.GrammarCompiler(info)
        makers["xgrammar"] = lambda rx: xhf.LogitsProcessor(xcomp.compile_regex(rx))
    except Exception as e:  # not installed or incompatible
        print(f"xgrammar unavailable: {type(e).__name__}: {e}", file=sys.stderr)
    try:
        import llguidance
        import llguidance.hf

        lltok = llguidance.hf.from_tokenizer(tok, n_vocab=v)
        makers["llguidance"] = lambda rx: LLGuidanceProcessor(lltok, llguidance.LLMatcher.grammar_from_regex(rx), v)
    except Exception as e:
        print(f"llguidance unavailable: {type(e).__name__}: {e}", file=sys.stderr)

    rows = []
    for name, prompt, rx in TASKS:
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        n_prompt = ids["input_ids"].shape[1]
        for eng, mk in makers.items():
            t0 = time.perf_counter()
            mk(rx)
            compile_s[f"{eng}: {name}"] = time.perf_counter() - t0

        def run(proc):
            kw = dict(max_new_tokens=n_tokens, do_sample=False, pad_token_id=tok.eos_token_id)
            if proc is None:
                kw["min_new_tokens"] = n_tokens
            else:
                kw["logits_processor"] = transformers.LogitsProcessorList([proc])
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**ids, **kw)
            wall = time.perf_counter() - t0
            return out[0, n_prompt:].tolist(), wall

        for eng, mk in makers.items():  # warm-up
            run(Timed(mk(rx)))
        run(None)
        stats: dict[str, dict[str, list[float]]] = {}
        texts: dict[str, str] = {}
        for _ in range(rounds):
            for eng in ["none", *makers]:
                proc = None if eng == "none" else Timed(makers[eng](rx))
                toks, wall = run(proc)
                n = max(1, len([t for t in toks if t != tok.eos_token_id]))
                d = stats.setdefault(eng, {})
                d.setdefault("wall_per_tok", []).append(wall / n)
                d.setdefault("tokens", []).append(n)
                if proc is not None:
                    d.setdefault("proc", []).append(proc.total / max(1, proc.calls))
                texts[eng] = tok.decode(toks, skip_special_tokens=True)
        base = _med(stats["none"]["wall_per_tok"])
        for eng, d in stats.items():
            p = _med(d.get("proc", []))
            rows.append({"task": name, "engine": "unconstrained" if eng == "none" else eng,
                         "tokens": _med(d["tokens"]), "wall_ms_per_tok": 1e3 * _med(d["wall_per_tok"]),
                         "proc_us": 1e6 * p if d.get("proc") else 0.0,
                         "proc_pct": 100 * p / base if d.get("proc") else 0.0,
                         "text": texts[eng][:60]})
    return rows, compile_s


def render(own: list[dict], hf: list[dict], compile_s: dict[str, float], args, load_s: float) -> str:
    lines = ["## Generation with SmolLM2-135M-Instruct (CPU)", "",
             f"`python benchmarks/bench_generation.py --rounds {args.rounds} --tokens {args.tokens}` on "
             f"{platform.machine()} with {os.cpu_count()} CPUs, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads), transformers {transformers.__version__}; "
             f"median of {args.rounds} interleaved rounds, greedy, fp32. Model load from cache: {load_s:.1f}s. "
             f"Load average at the end: {os.getloadavg()[0]:.1f} (other processes share the CPUs: compare "
             "variants within one table, not across runs).", "",
             "Overhead = time per model step spent on the constraint and not hidden behind the model "
             "(mask fill not overlapped + mask apply + token accept), as a share of the unconstrained model "
             "step time measured in the same run; mask-fill µs is the worker thread's time, overlapped "
             "with the forward pass.", "",
             "### structgen's decode loop (`structgen.generate`)", "",
             "| task | variant | tokens | model steps | wall ms/token | model step ms | mask fill µs/step (overlapped) | constraint µs/step | overhead | jump-forward µs/step |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in own:
        lines.append(f"| {r['task']} | {r['variant']} | {r['tokens']:.0f} | {r['steps']:.0f} | {r['wall_ms_per_tok']:.1f} | "
                     f"{r['step_ms']:.1f} | {r['fill_us']:.0f} | {r['overhead_us']:.0f} | {r['overhead_pct']:.2f}% | {r['jf_us']:.0f} |")
    lines += ["", "### `model.generate` with logits processors", "",
              "| task | processor | tokens | wall ms/token | processor µs/call | processor / unconstrained token |",
              "|---|---|---:|---:|---:|---:|"]
    for r in hf:
        lines.append(f"| {r['task']} | {r['engine']} | {r['tokens']:.0f} | {r['wall_ms_per_tok']:.1f} | "
                     f"{r['proc_us']:.0f} | {r['proc_pct']:.2f}% |")
    lines += ["", "Compile time (first compile, this process):", ""]
    for k, v in compile_s.items():
        lines.append(f"- {k}: {1e3 * v:.1f} ms")
    lines += ["", "Sample outputs (constrained, greedy):", ""]
    seen = set()
    for r in hf:
        key = (r["task"], r["engine"])
        if key not in seen:
            seen.add(key)
            lines.append(f"- {r['task']} / {r['engine']}: `{r['text']}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    ap.add_argument("--skip-hf", action="store_true", help="only structgen's own loop")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, tok = load_default_model(quiet=True)
    load_s = time.perf_counter() - t0
    own = own_loop(model, tok, args.rounds, args.tokens)
    hf, comp = ([], {}) if args.skip_hf else hf_processors(model, tok, args.rounds, args.tokens)
    md = render(own, hf, comp, args, load_s)
    print(md)
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from benchmarks.docsection import update_section

        update_section("generation", md)
        print("updated the 'generation' section of docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
