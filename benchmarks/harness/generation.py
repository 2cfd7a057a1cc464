"""Constrained generation through one shared decode loop (the JSONSchemaBench task of the worker).

One loop for every engine: greedy decoding, batch 1, the model's KV cache reused across steps.
Each step: the engine fills the packed int32 bitmask (`fill_mask`, timed), the loop applies it to
the logits (the same NumPy code for every engine), takes the arg max, and the engine accepts the
token (`accept`, timed). The loop stops when the model picks EOS, when the mask allows nothing
but EOS (no extra model step for that), when the mask allows nothing (a dead end), or at
`max_new_tokens` (truncated). Then the output is parsed and validated with `jsonschema`
(format checking on, remote references never fetched).

Language models:

- `HFModelLM` ("smollm2"): the embedded SmolLM2-135M-Instruct
  (`structgen.integrations.models.load_default_model`), float32 on CPU; prompts go through its
  chat template.
- `ScriptedLM` ("scripted"): a fake model for harness tests: it prefers, at each step, the token
  that continues a script text (per case `script`, default `{"a":1}`); off the script it prefers
  EOS, then `}` `]` `"` `1`, then lower ids (so a constrained output closes quickly). A case's
  `lm_sleep_s` makes every step sleep (tests of the generation time limit). No torch.
"""
from __future__ import annotations

import json
from itertools import islice
from time import perf_counter_ns
from typing import Any

import numpy as np

#: the JSONSchemaBench paper's zero-shot system prompt (the user turn is `json.dumps(schema)`)
PAPER_SYSTEM_PROMPT = "You need to generate a JSON object that matches the schema below."
DEFAULT_SCRIPT = '{"a":1}'
MAX_TEXT_CHARS = 2000


def paper_messages(schema: Any, system: str = PAPER_SYSTEM_PROMPT) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": json.dumps(schema)}]


# ----------------------------------------------------------------------------- language models

class ScriptedLM:
    """Deterministic fake LM over any SharedVocab: continue `script`, then EOS."""

    name = "scripted"

    def __init__(self, vocab, **_):
        self.vocab = vocab
        self.script = DEFAULT_SCRIPT.encode()
        self.pos = 0
        self.sleep_s = 0.0
        # off-script preference: EOS, then closing bytes, then lower ids (fixed and deterministic)
        self.base = -np.arange(vocab.size, dtype=np.float32) / vocab.size
        for rank, b in enumerate((b"}", b"]", b'"', b"1")):
            for i, tb in enumerate(vocab.token_bytes):
                if tb == b:
                    self.base[i] = 5.0 - rank
        for e in vocab.eos_ids:
            self.base[e] = 6.0

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        return self.vocab.encode("".join(m["content"] for m in messages))[:8] or [0]

    def reset(self, case: dict) -> None:
        self.script = str(case.get("script", DEFAULT_SCRIPT)).encode("utf-8")
        self.pos = 0
        self.sleep_s = float(case.get("lm_sleep_s", 0.0))

    def _logits(self) -> np.ndarray:
        out = self.base.copy()
        rest = self.script[self.pos:]
        if not rest:
            return out
        best, best_len = None, 0
        for i, b in enumerate(self.vocab.token_bytes):
            if b and rest.startswith(b) and len(b) > best_len:
                best, best_len = i, len(b)
        if best is not None:
            out[best] = 10.0
        for e in self.vocab.eos_ids:  # EOS only once the script is done
            out[e] = -1.0
        return out

    def start(self, prompt_ids: list[int]) -> np.ndarray:
        return self._logits()

    def step(self, token: int) -> np.ndarray:
        if self.sleep_s:
            import time

            time.sleep(self.sleep_s)
        b = self.vocab.token_bytes[token] or b""
        if self.script[self.pos:].startswith(b):
            self.pos += len(b)
        else:  # off script: the rest of the script no longer applies
            self.pos = len(self.script)
        return self._logits()


class HFModelLM:
    """A local Hugging Face causal LM (default: the embedded SmolLM2-135M-Instruct), KV-cached."""

    name = "smollm2"

    def __init__(self, vocab, model: str | None = None, threads: int = 1, **_):
        import torch

        from benchmarks.harness import ensure_repo_on_path

        ensure_repo_on_path()
        from structgen.integrations.models import load_model

        if threads:
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.model, self.tok = load_model(model, quiet=True)
        self.vocab = vocab
        self.cache = None
        self.n_logits = int(self.model.get_output_embeddings().weight.shape[0])
        if self.n_logits < vocab.size:
            raise RuntimeError(f"model has {self.n_logits} logits, the shared vocabulary {vocab.size} tokens")

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        text = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(self.tok.encode(text, add_special_tokens=False))

    def reset(self, case: dict) -> None:
        self.cache = None

    def _run(self, ids: list[int]) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], dtype=torch.long), past_key_values=self.cache,
                             use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        return out.logits[0, -1, :self.vocab.size].float().numpy()

    def start(self, prompt_ids: list[int]) -> np.ndarray:
        self.cache = None
        return self._run(prompt_ids)

    def step(self, token: int) -> np.ndarray:
        return self._run([token])


LMS = {"smollm2": HFModelLM, "scripted": ScriptedLM}


def make_lm(name: str, vocab, **opts):
    if name not in LMS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(LMS)}")
    return LMS[name](vocab, **opts)


# ----------------------------------------------------------------------------- validation

def _no_remote(uri: str):
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


def validate_output(schema: Any, text: str) -> dict:
    """{"parsed": bool, "valid": bool, "error": str}: JSON parse, then the schema's own draft
    (`$schema`; Draft 2020-12 when absent) with format checking. A schema the validator cannot
    use (unresolvable reference, broken keyword) counts as not valid, with `validator_error`."""
    try:
        inst = json.loads(text)
    except ValueError as e:
        return {"parsed": False, "valid": False, "error": f"JSON: {e}"[:200]}
    import jsonschema
    from jsonschema import validators
    from referencing import Registry

    try:
        cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        v = cls(schema, format_checker=cls.FORMAT_CHECKER, registry=Registry(retrieve=_no_remote))
        errs = list(islice(v.iter_errors(inst), 1))
    except Exception as e:  # noqa: BLE001 - the validator itself failed on this schema
        return {"parsed": True, "valid": False, "validator_error": True,
                "error": f"{type(e).__name__}: {e}"[:200]}
    if errs:
        e = errs[0]
        where = "/".join(str(p) for p in e.absolute_path)
        return {"parsed": True, "valid": False, "error": f"{where or '<root>'}: {e.message}"[:200]}
    return {"parsed": True, "valid": True}


# ----------------------------------------------------------------------------- the decode loop

def _allowed(bitmask: np.ndarray, size: int) -> np.ndarray:
    return np.unpackbits(bitmask[0].view(np.uint8), bitorder="little")[:size].astype(bool)


def decode(engine, vocab, lm, state, prompt_ids: list[int], bitmask: np.ndarray, max_new_tokens: int) -> dict:
    """Greedy constrained decoding of one output; returns ids, stop reason and timings."""
    m = engine.new_matcher(state)
    fill, accept = engine.fill_mask, engine.accept
    eos = np.array(vocab.eos_ids, dtype=np.int64)
    size = vocab.size
    t0 = perf_counter_ns()
    logits = lm.start(prompt_ids)
    prefill_ns = perf_counter_ns() - t0
    ids: list[int] = []
    mask_ns: list[int] = []
    accept_ns = apply_ns = forward_ns = 0
    stop = None
    t_dec = perf_counter_ns()
    while True:
        t = perf_counter_ns()
        fill(m, bitmask)
        mask_ns.append(perf_counter_ns() - t)
        t = perf_counter_ns()
        allowed = _allowed(bitmask, size)
        n_allowed = int(allowed.sum())
        n_eos = int(allowed[eos].sum()) if eos.size else 0
        apply_ns += perf_counter_ns() - t
        if n_allowed == 0:
            stop = "dead_end"
            break
        if n_allowed == n_eos:  # only EOS left: the output is complete, no model step needed
            stop = "complete"
            break
        if len(ids) >= max_new_tokens:
            stop = "truncated"
            break
        t = perf_counter_ns()
        tok = int(np.argmax(np.where(allowed, logits, -np.inf)))
        apply_ns += perf_counter_ns() - t
        if tok in vocab.eos_ids:
            stop = "complete"
            break
        t = perf_counter_ns()
        ok = accept(m, tok)
        accept_ns += perf_counter_ns() - t
        if not ok:
            stop = "rejected"  # the engine's mask allowed a token its matcher then refused
            break
        ids.append(tok)
        t = perf_counter_ns()
        logits = lm.step(tok)
        forward_ns += perf_counter_ns() - t
    decode_ns = perf_counter_ns() - t_dec
    return {"ids": ids, "stop": stop, "prefill_ns": prefill_ns, "decode_ns": decode_ns, "mask_ns": mask_ns,
            "accept_ns": accept_ns, "apply_ns": apply_ns, "forward_ns": forward_ns}


def measure_generation(engine, vocab, lm, case: dict, bitmask: np.ndarray, opts: dict, progress=None) -> dict:
    """Compile (timed), generate one output through `decode`, validate it; the result record.

    `progress(dict)` is called once the schema compiled (the parent then switches to the
    generation time limit and keeps the compile time when generation times out)."""
    from benchmarks.harness.worker import _is_oom_error, _short

    rec: dict = {"status": "ok"}
    schema = case["schema"]
    messages = paper_messages(schema, opts.get("system") or PAPER_SYSTEM_PROMPT)
    prompt = lm.prompt_ids(messages)
    rec["prompt_tokens"] = len(prompt)
    max_prompt = int(opts.get("max_prompt_tokens") or 0)
    if max_prompt and len(prompt) > max_prompt:
        rec.update(status="prompt_too_long", error=f"{len(prompt)} prompt tokens > {max_prompt}")
        return rec
    t0 = perf_counter_ns()
    try:
        state = engine.compile(schema)
    except BaseException as e:  # engines raise anything from ValueError to RuntimeError
        if isinstance(e, KeyboardInterrupt):
            raise
        rec.update(status="oom" if _is_oom_error(e) else "compile_error", error_type=type(e).__name__,
                   error=_short(e), compile_ms=(perf_counter_ns() - t0) / 1e6)
        return rec
    rec["compile_ms"] = (perf_counter_ns() - t0) / 1e6
    if progress is not None:
        progress({"phase": "generate", "compile_ms": rec["compile_ms"]})
    lm.reset(case)
    try:
        d = decode(engine, vocab, lm, state, prompt, bitmask, int(opts.get("max_new_tokens") or 256))
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        rec.update(status="oom" if _is_oom_error(e) else "gen_error", error_type=type(e).__name__,
                   error=_short(e))
        return rec
    raw = vocab.decode(d["ids"])
    text = raw.decode("utf-8", errors="replace")
    n = len(d["ids"])
    rec.update(stop=d["stop"], n_tokens=n, text=text[:MAX_TEXT_CHARS], prefill_ms=d["prefill_ns"] / 1e6,
               decode_ms=d["decode_ns"] / 1e6, forward_ms=d["forward_ns"] / 1e6, accept_us=d["accept_ns"] / 1e3,
               apply_us=d["apply_ns"] / 1e3, mask_us=[round(x / 1e3, 2) for x in d["mask_ns"]])
    if d["stop"] == "complete":
        try:
            raw.decode("utf-8")
            rec.update(validate_output(schema, text))
        except UnicodeDecodeError as e:
            rec.update(parsed=False, valid=False, error=f"UTF-8: {e}"[:200])
    else:
        rec.update(parsed=False, valid=False, error={"truncated": "max_new_tokens reached",
                                                     "dead_end": "the mask allowed no token",
                                                     "rejected": "a token allowed by the mask was refused"}
                   .get(d["stop"], d["stop"]))
    return rec


def warmup_case() -> dict:
    from benchmarks.harness.worker import WARMUP_SCHEMA

    return {"schema": WARMUP_SCHEMA, "script": '{"a": 12}'}
