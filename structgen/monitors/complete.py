"""Monitor-guided code completion at a file position (library + CLI entry point).

    python -m structgen.monitors.complete FILE --line L --col C [--model DIR] [--max-tokens N]
    python -m structgen.monitors.complete FILE --line L --col C --explain   # legal names at a '.'

`line` is 1-based and `col` 0-based (jedi's convention). The completion is greedy, guided by the
Python dereference monitor, and stops at the end of the line (or after `max_tokens`).
Meant to be wired as `structgen complete` by the main CLI.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from structgen.monitors.base import monitored_greedy
from structgen.monitors.python_deref import DereferenceMonitor, JediAnalysis


def split_at(source: str, line: int, col: int) -> tuple[str, str]:
    lines = source.splitlines(keepends=True)
    if not 1 <= line <= len(lines) + 1:
        raise ValueError(f"line {line} is outside the file (1..{len(lines)})")
    off = sum(len(x) for x in lines[: line - 1])
    cur = lines[line - 1] if line - 1 < len(lines) else ""
    if not 0 <= col <= len(cur.rstrip("\r\n")):
        raise ValueError(f"column {col} is outside line {line}")
    return source[: off + col], source[off + col:]


class HFLogits:
    """logits_fn(generated_ids) over a Hugging Face causal LM, with an incremental KV cache."""

    def __init__(self, model, prompt_ids):
        import torch
        self.torch, self.model, self.prompt = torch, model, list(prompt_ids)
        self.fed: list[int] = []
        self.past = None
        self.last = None

    def __call__(self, gen):
        new = self.prompt + list(gen) if self.past is None else list(gen[len(self.fed) - len(self.prompt):])
        if new:
            with self.torch.no_grad():
                out = self.model(input_ids=self.torch.tensor([new]), past_key_values=self.past, use_cache=True)
            self.past, self.last = out.past_key_values, out.logits[0, -1].float().numpy()
            self.fed += new
        return self.last


def complete(
    path: str,
    line: int,
    col: int,
    *,
    source: str | None = None,
    vocab=None,
    logits_fn: Callable[[list[int]], np.ndarray] | None = None,
    model: Any = None,
    tokenizer: Any = None,
    project_root: str | None = None,
    max_tokens: int = 32,
    context_chars: int = 4000,
    use_monitor: bool = True,
    stop_at_newline: bool = True,
) -> dict:
    """Completion text at (line, col) plus a trace. Either `logits_fn` + `vocab` (any LM, e.g. a
    scripted one in tests) or `model` + `tokenizer` (Hugging Face); neither: the default SmolLM2."""
    if source is None:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    prefix, suffix = split_at(source, line, col)
    if logits_fn is None:
        if model is None or tokenizer is None:
            from structgen.integrations.models import load_default_model
            model, tokenizer = load_default_model(quiet=True)
        if vocab is None:
            from structgen import Vocabulary
            vocab = Vocabulary.from_hf(tokenizer, vocab_size=model.config.vocab_size)
        ids = tokenizer(prefix[-context_chars:], add_special_tokens=False)["input_ids"]
        logits_fn = HFLogits(model, ids)
    root = project_root or os.path.dirname(os.path.abspath(path))
    mons = [DereferenceMonitor(vocab, prefix, suffix, analysis=JediAnalysis(os.path.abspath(path), root))] \
        if use_monitor else []
    stats: dict = {}
    t0 = time.perf_counter()
    newline = [i for i, b in enumerate(vocab.token_bytes) if b and b"\n" in b]
    nl = set(newline)

    def stop(gen):
        return stop_at_newline and gen and gen[-1] in nl and not any(m.constrained for m in mons)

    gen = monitored_greedy(logits_fn, vocab, mons, max_new_tokens=max_tokens, stats=stats, stop=stop)
    text = b"".join(vocab.token_bytes[t] or b"" for t in gen).decode("utf-8", "replace")
    if stop_at_newline and "\n" in text:
        text = text[: text.index("\n")]
    return {"completion": text, "tokens": len(gen), "seconds": time.perf_counter() - t0,
            "triggers": mons[0].triggers if mons else 0, "rejections": stats.get("rejections", 0),
            "constrained_steps": stats.get("constrained_steps", 0)}


def explain(path: str, line: int, col: int, *, source: str | None = None,
            project_root: str | None = None) -> list[str]:
    """The legal attribute names at a position right after a dereference `.` ([] = no constraint)."""
    from structgen.monitors.python_deref import is_deref_dot
    if source is None:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    prefix, suffix = split_at(source, line, col)
    if not is_deref_dot(prefix):
        return []
    root = project_root or os.path.dirname(os.path.abspath(path))
    return JediAnalysis(os.path.abspath(path), root).attributes(prefix, suffix)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="structgen complete", description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--line", type=int, required=True, help="1-based line")
    ap.add_argument("--col", type=int, required=True, help="0-based column")
    ap.add_argument("--model", default=None, help="local Hugging Face model dir (default: SmolLM2)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--no-monitor", action="store_true")
    ap.add_argument("--explain", action="store_true", help="print the legal names at a '.' instead")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.explain:
        names = explain(a.file, a.line, a.col)
        print(json.dumps(names) if a.json else "\n".join(names))
        return 0
    model = tok = None
    if a.model:
        from structgen.integrations.models import load_model
        model, tok = load_model(a.model, quiet=True)
    res = complete(a.file, a.line, a.col, model=model, tokenizer=tok, max_tokens=a.max_tokens,
                   use_monitor=not a.no_monitor)
    if a.json:
        print(json.dumps(res))
    else:
        print(res["completion"])
        print(f"[{res['tokens']} tokens, {res['seconds']:.2f} s, {res['triggers']} triggers, "
              f"{res['rejections']} rejections]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
