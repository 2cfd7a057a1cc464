"""`structgen.generate`: constrained generation with structgen's own decode loop.

One forward pass per step for the whole batch, the KV cache reused across steps. Each row has its
own constraint (or none), its own matcher and status. Rows advance by different numbers of tokens
per step (jump-forward appends several at once, finished rows append none): a step feeds a chunk
as wide as the longest row's new tokens, shorter rows padded with masked positions ("holes" that
no later token attends to). Rolled-back tokens become holes too, or are cropped from the cache
when the batch has one row. Positions are tracked per row, so holes never shift them.

Statuses: ``complete`` (the model stopped, or the constraint allows nothing but EOS, and the text
fits), ``truncated`` (``max_new_tokens`` reached first: the text is partial, ``json`` is None),
``error`` (the constraint reached a dead end, or the model stopped before the trigger).
"""
from __future__ import annotations

import codecs
import json as _json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from structgen.errors import StructgenError
from structgen.integrations.jump_forward import JumpForward
from structgen.integrations.transformers import (  # noqa: F401  (GenerationError re-exported)
    GenerationError,
    apply_token_bitmask_,
    stop_token_ids,
    vocabulary_for,
)

StreamFn = Callable[[int, str], None]


@dataclass
class GenerationResult:
    """Outcome of one row. `text` is the constrained output (after the trigger, if any)."""

    text: str
    json: Any = None
    n_tokens: int = 0
    status: str = "complete"
    error: str | None = None
    prefix: str = ""
    token_ids: list[int] = field(default_factory=list)
    n_model_steps: int = 0
    n_forced_tokens: int = 0
    n_rolled_back: int = 0
    elapsed_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    @property
    def full_text(self) -> str:
        return self.prefix + self.text


# ---------------------------------------------------------------------------------------------
# constraints
# ---------------------------------------------------------------------------------------------

def _schema_value(schema: Any) -> Any:
    """A JSON Schema from a dict/bool, JSON text, or a pydantic model class."""
    if hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    if isinstance(schema, (bytes, str)):
        try:
            return _json.loads(schema)
        except ValueError as e:
            raise StructgenError(f"schema is not valid JSON: {e}") from None
    return schema


def compile_constraint(vocab: Any, *, schema: Any = None, regex: str | None = None,
                       grammar: Any = None, compiled: Any = None, options: dict[str, Any] | None = None) -> Any:
    """A CompiledGrammar from exactly one of the constraint kinds, or None for free text.
    `options` go to the compile function (e.g. ``{"whitespace": "compact"}`` for schemas)."""
    opts = dict(options or {})
    given = [k for k, v in (("schema", schema), ("regex", regex), ("grammar", grammar), ("compiled", compiled))
             if v is not None]
    if len(given) > 1:
        raise StructgenError(f"give one constraint per row, got {', '.join(given)}")
    import structgen

    if compiled is not None:
        return compiled
    if schema is not None:
        # Generation default: the layout of json.dumps(indent=2). A fixed layout keeps small models
        # out of whitespace loops and turns all whitespace into jump-forward bytes.
        opts.setdefault("whitespace", {"indent": 2})
        return structgen.compile_json_schema(_schema_value(schema), vocab, **opts)
    opts.pop("lenient", None)  # a schema-only option
    if regex is not None:
        return structgen.compile_regex(regex, vocab, **opts)
    if grammar is not None:
        if isinstance(grammar, str):
            return structgen.compile_lark(grammar, vocab, **opts)
        return structgen.compile_grammar(grammar, vocab, **opts)
    return None


def _per_row(value: Any, n: int, name: str, batched: bool) -> list[Any]:
    if batched and isinstance(value, (list, tuple)):
        if len(value) != n:
            raise StructgenError(f"{name}: {len(value)} values for a batch of {n} prompts")
        return list(value)
    return [value] * n


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------

def _is_messages(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(m, dict) for m in x)


def _split_batch(prompt_or_messages: Any) -> tuple[list[Any], bool]:
    if isinstance(prompt_or_messages, str) or _is_messages(prompt_or_messages):
        return [prompt_or_messages], False
    if isinstance(prompt_or_messages, (list, tuple)) and prompt_or_messages:
        for p in prompt_or_messages:
            if not (isinstance(p, str) or _is_messages(p)):
                raise StructgenError("each prompt must be a string or a list of chat messages (dicts)")
        return list(prompt_or_messages), True
    raise StructgenError("prompt_or_messages must be a string, a list of chat messages, or a list of those")


def encode_prompt(tokenizer: Any, prompt: Any, *, chat: bool | None = None, system: str | None = None) -> list[int]:
    """Token ids of a prompt. Messages (or `chat=True`) go through the tokenizer's chat template."""
    use_chat = _is_messages(prompt) or bool(chat)
    if use_chat:
        msgs = list(prompt) if _is_messages(prompt) else [{"role": "user", "content": prompt}]
        if system is not None and not any(m.get("role") == "system" for m in msgs):
            msgs = [{"role": "system", "content": system}] + msgs
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            return list(tokenizer.encode(text, add_special_tokens=False))
        text = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in msgs) + "\nassistant: "
        return list(tokenizer.encode(text))
    return list(tokenizer.encode(prompt))


# ---------------------------------------------------------------------------------------------
# per-row state
# ---------------------------------------------------------------------------------------------

class _Row:
    def __init__(self, index: int, compiled: Any, trigger: bytes | None):
        self.index = index
        self.compiled = compiled
        self.matcher = compiled.matcher() if compiled is not None else None
        self.trigger = trigger
        self.free = trigger is not None  # generating the free-text prefix
        self.ids: list[int] = []         # generated tokens (prefix + constrained)
        self.cons_start = 0 if trigger is None else None
        self.pending: list[int] = []     # committed but not yet fed to the model
        self.cols: list[int] = []        # cache column of each fed generated token
        self.next_pos = 0                # position id of the next fed token
        self.done = False
        self.status = "complete"
        self.error: str | None = None
        self.n_steps = 0
        self.n_forced = 0
        self.n_rolled_back = 0
        self.free_bytes = bytearray()
        self.prefix_end: int | None = None  # byte length of the prefix (trigger included)
        self.only_eos = False
        self.streamed = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def constrained_ids(self) -> list[int]:
        return self.ids[self.cons_start:] if self.cons_start is not None else []


def _forward_kwargs(model: Any) -> dict[str, Any]:
    """Which forward() arguments this model takes (transformers renamed `past_key_values` to `cache`)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        params = {}
    return {"cache": "cache" if "cache" in params else "past_key_values",
            "cache_position": "cache_position" in params,
            "logits_to_keep": "logits_to_keep" in params}


class _Decoder:
    """The shared decode state of a batch: KV cache, attention mask, rows."""

    def __init__(self, model: Any, tokenizer: Any, vocab: Any, rows: list[_Row], pad_id: int,
                 stop_ids: Sequence[int], jf: JumpForward | None, max_new_tokens: int,
                 stream: StreamFn | None):
        self.model = model
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.rows = rows
        self.pad_id = pad_id
        self.stop_ids = set(int(i) for i in stop_ids)
        self.jf = jf
        self.max_new = max_new_tokens
        self.stream = stream
        self.device = next(model.parameters()).device
        self.cache: Any = None
        self.attn = torch.zeros((len(rows), 0), dtype=torch.long, device=self.device)
        self.bitmask = np.zeros((len(rows), vocab.n_words), dtype=np.int32)
        self.eos_words = [(int(e) // 32, np.int32(np.uint32(1 << (int(e) % 32)).view(np.int32)))
                          for e in vocab.eos_token_ids]
        self.t = {"forward": 0.0, "mask": 0.0, "mask_wait": 0.0, "mask_sync": 0.0, "apply": 0.0, "sample": 0.0,
                  "accept": 0.0, "jump_forward": 0.0, "steps": 0}
        self._kw = _forward_kwargs(model)
        self._bytes_cache: dict[int, bytes] = {}

    # -- token bytes -----------------------------------------------------------------------
    def tok_bytes(self, t: int) -> bytes:
        b = self.vocab.token_bytes[t] if t < len(self.vocab.token_bytes) else None
        if b is not None:
            return b
        hit = self._bytes_cache.get(t)
        if hit is None:
            hit = self._bytes_cache[t] = self.tokenizer.decode([t], skip_special_tokens=False).encode("utf-8")
        return hit

    # -- model -----------------------------------------------------------------------------
    def forward(self, chunks: list[list[int]], positions: list[int], left: bool) -> dict[int, torch.Tensor]:
        """Feed each row its chunk; returns the last-token logits of rows with a non-empty chunk."""
        b = len(chunks)
        width = max(len(c) for c in chunks)
        ids = torch.full((b, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((b, width), dtype=torch.long)
        pos = torch.zeros((b, width), dtype=torch.long)
        last_col: dict[int, int] = {}
        for i, c in enumerate(chunks):
            if not c:
                continue
            off = width - len(c) if left else 0
            ids[i, off:off + len(c)] = torch.tensor(c, dtype=torch.long)
            mask[i, off:off + len(c)] = 1
            pos[i, off:off + len(c)] = torch.arange(positions[i], positions[i] + len(c))
            last_col[i] = off + len(c) - 1
        start = self.attn.shape[1]
        self.attn = torch.cat([self.attn, mask.to(self.device)], dim=1)
        cols = sorted(set(last_col.values()))
        kwargs: dict[str, Any] = dict(input_ids=ids.to(self.device), attention_mask=self.attn,
                                      position_ids=pos.to(self.device), use_cache=True)
        kwargs[self._kw["cache"]] = self.cache
        if self._kw["cache_position"]:
            kwargs["cache_position"] = torch.arange(start, start + width, device=self.device)
        keep_index = None
        if self._kw["logits_to_keep"]:
            if cols == [width - 1]:
                kwargs["logits_to_keep"] = 1
                keep_index = {width - 1: 0}
            else:
                kwargs["logits_to_keep"] = torch.tensor(cols, dtype=torch.long, device=self.device)
                keep_index = {c: j for j, c in enumerate(cols)}
        out = self.model(**kwargs)
        self.cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        logits = out.logits
        res = {}
        for i, c in last_col.items():
            j = keep_index[c] if keep_index is not None else c
            res[i] = logits[i, j]
        for i, c in enumerate(chunks):
            row = self.rows[i]
            if c:
                off = width - len(c) if left else 0
                if not left:  # prompt columns are never rolled back: only generated ones are tracked
                    row.cols.extend(range(start + off, start + off + len(c)))
                row.next_pos = positions[i] + len(c)
        return res

    def rollback(self, row: _Row, n: int) -> None:
        """Forget the last `n` generated tokens of `row` (pending ones first, then cached ones)."""
        if n <= 0:
            return
        del row.ids[len(row.ids) - n:]
        k = min(n, len(row.pending))
        if k:
            del row.pending[len(row.pending) - k:]
        fed = n - k
        if fed:
            drop = row.cols[len(row.cols) - fed:]
            del row.cols[len(row.cols) - fed:]
            row.next_pos -= fed
            first = drop[0]
            can_crop = (len(self.rows) == 1 and drop == list(range(first, self.attn.shape[1]))
                        and hasattr(self.cache, "crop"))
            if can_crop:
                try:
                    self.cache.crop(first)
                    self.attn = self.attn[:, :first]
                    return
                except Exception:
                    pass
            self.attn[row.index, drop] = 0
        row.n_rolled_back += n

    # -- constraint bookkeeping ------------------------------------------------------------
    def refresh_mask(self, row: _Row) -> None:
        """Fill the row's bitmask for its next token; finish the row when only EOS is allowed."""
        if row.matcher is None or row.free or row.done:
            return
        t0 = time.perf_counter()
        bm = self.bitmask[row.index]
        row.matcher.fill_next_token_bitmask(self.bitmask, row.index)
        self.t["mask"] += time.perf_counter() - t0
        if not bm.any():
            self.finish(row, "error", "the constraint allows no next token (dead end)")
            return
        if self.eos_words:
            saved = [(w, bm[w]) for w, _ in self.eos_words]
            for w, bit in self.eos_words:
                bm[w] &= ~bit
            only_eos = not bm.any()
            for w, v in saved:
                bm[w] = v
            if only_eos:
                self.finish(row, "complete")

    def jump(self, row: _Row) -> bool:
        """Append the forced bytes as tokens (see jump_forward.py); True when it did."""
        if self.jf is None or row.matcher is None or row.free or row.done:
            return False
        t0 = time.perf_counter()
        try:
            forced = row.matcher.jump_forward_bytes()
            if not forced:
                return False
            plan = self.jf.plan(row.constrained_ids, forced)
            if plan is None:
                return False
            budget = self.max_new - len(row.ids) + plan.rollback
            tokens = list(plan.tokens[:max(0, budget)])
            if len(tokens) <= plan.rollback:
                return False
            removed = row.ids[len(row.ids) - plan.rollback:] if plan.rollback else []
            if plan.rollback:
                row.matcher.rollback(plan.rollback)
            accepted = 0
            for t in tokens:
                if not row.matcher.accept_token(t):
                    break
                accepted += 1
            if accepted < len(tokens):  # should not happen: undo and continue without jumping
                row.matcher.rollback(accepted)
                for t in removed:
                    row.matcher.accept_token(t)
                return False
            self.rollback(row, plan.rollback)
            row.ids.extend(tokens)
            row.pending.extend(tokens)
            row.n_forced += len(tokens)
            return True
        finally:
            self.t["jump_forward"] += time.perf_counter() - t0

    def finish(self, row: _Row, status: str, error: str | None = None) -> None:
        row.done = True
        row.status = status
        row.error = error
        row.pending = []

    # -- streaming ------------------------------------------------------------------------
    def emit(self, row: _Row, final: bool = False) -> None:
        """Stream the row's new text. While free, the last token is held back (the trigger may cut it)."""
        if self.stream is None:
            return
        ids = row.ids[:-1] if (row.free and not final and row.ids) else row.ids
        all_bytes = self.row_bytes(row, ids)
        new = all_bytes[row.streamed:]
        text = ""
        if new:
            row.streamed = len(all_bytes)
            text = row.decoder.decode(new, final=False)
        if final:
            text += row.decoder.decode(b"", final=True)
        if text:
            self.stream(row.index, text)

    def row_bytes(self, row: _Row, ids: Sequence[int]) -> bytes:
        return b"".join(self.tok_bytes(t) for t in ids)

    # -- one token -------------------------------------------------------------------------
    def take(self, row: _Row, token: int) -> None:
        """Commit a sampled token to `row`."""
        if token in self.stop_ids:
            if row.free:
                self.finish(row, "error", "the model stopped before the trigger")
            elif row.matcher is not None and not row.matcher.is_terminated():
                if not row.matcher.accept_token(token):
                    self.finish(row, "error", "EOS sampled where the constraint does not allow it")
                    return
                self.finish(row, "complete")
            else:
                self.finish(row, "complete")
            return
        row.ids.append(token)
        row.pending.append(token)
        if row.free:
            self.check_trigger(row)
        elif row.matcher is not None:
            t0 = time.perf_counter()
            ok = row.matcher.accept_token(token)
            self.t["accept"] += time.perf_counter() - t0
            if not ok:
                self.finish(row, "error", f"token {token} rejected by the constraint")
                return

    def check_trigger(self, row: _Row) -> None:
        before = len(row.free_bytes)
        tb = self.tok_bytes(row.ids[-1])
        row.free_bytes += tb
        trig = row.trigger
        at = bytes(row.free_bytes).find(trig, max(0, before - len(trig) + 1))
        if at < 0:
            return
        end = at + len(trig)
        row.free = False
        leftover = bytes(row.free_bytes[end:])
        if leftover:
            # Cut the last token at the trigger end, re-tokenized the way the tokenizer would.
            part = bytes(row.free_bytes[before:end])
            try:
                new = self.tokenizer.encode(part.decode("utf-8"), add_special_tokens=False) if part else []
            except UnicodeDecodeError:
                new = None
            if new is not None and b"".join(self.tok_bytes(t) for t in new) == part:
                self.rollback(row, 1)
                row.n_rolled_back -= 1
                row.ids.extend(new)
                row.pending.extend(new)
                leftover = b""
        del row.free_bytes[end:]
        row.prefix_end = end
        row.cons_start = len(row.ids)
        if leftover and row.matcher is not None:
            # The trigger ends inside a token the tokenizer cannot split: the rest goes to the constraint.
            row.cons_start = len(row.ids)  # constrained text starts after this token
            row.prefix_end = len(row.free_bytes)
            row.free_bytes += leftover
            if not row.matcher.accept_string(leftover):
                self.finish(row, "error", f"text after the trigger ({leftover!r}) does not fit the constraint")

    def result(self, row: _Row, want_json: bool, elapsed: float) -> GenerationResult:
        if row.cons_start is None:
            prefix_b, body_b = self.row_bytes(row, row.ids), b""
        else:
            prefix_b = self.row_bytes(row, row.ids[:row.cons_start])
            body_b = self.row_bytes(row, row.ids[row.cons_start:])
            if row.prefix_end is not None and len(prefix_b) > row.prefix_end:  # leftover inside a token
                body_b = prefix_b[row.prefix_end:] + body_b
                prefix_b = prefix_b[:row.prefix_end]
        text = body_b.decode("utf-8", errors="replace")
        res = GenerationResult(text=text, n_tokens=len(row.ids), status=row.status, error=row.error,
                               prefix=prefix_b.decode("utf-8", errors="replace"), token_ids=list(row.ids),
                               n_model_steps=row.n_steps, n_forced_tokens=row.n_forced,
                               n_rolled_back=row.n_rolled_back, elapsed_s=elapsed, timings=dict(self.t))
        if want_json and res.status == "complete":
            try:
                res.json = _json.loads(text)
            except ValueError as e:
                res.status, res.error = "error", f"output is not valid JSON: {e}"
        return res


# ---------------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------------

def _sample(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator | None) -> list[int]:
    if temperature <= 0:
        return logits.argmax(dim=-1).tolist()
    scores = logits.float() / temperature
    probs = torch.softmax(scores, dim=-1)
    if top_p < 1.0:
        sp, si = probs.sort(dim=-1, descending=True)
        cum = sp.cumsum(dim=-1)
        drop = (cum - sp) > top_p  # keep the smallest prefix whose mass reaches top_p
        sp = sp.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, si, sp)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1).tolist()


# ---------------------------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------------------------

def generate(
    model: Any,
    tokenizer: Any,
    prompt_or_messages: Any,
    *,
    schema: Any = None,
    regex: Any = None,
    grammar: Any = None,
    compiled: Any = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    trigger: str | None = None,
    jump_forward: bool = True,
    chat: bool | None = None,
    system: str | None = None,
    stream: StreamFn | None = None,
    vocab: Any = None,
    overlap: bool = True,
    compile_options: dict[str, Any] | None = None,
) -> GenerationResult | list[GenerationResult]:
    """Generate text that fits a constraint, with structgen's own decode loop.

    `prompt_or_messages`: a prompt string, a list of chat messages (rendered with the tokenizer's
    chat template; `chat=True` does the same for a string), or a list of those for a batch (then a
    list of results comes back). Constraints (`schema=` JSON Schema dict/text/pydantic class,
    `regex=`, `grammar=` Lark text, `compiled=` CompiledGrammar) may be a list with one entry per
    batch row (None = free text). With `trigger`, each row generates freely until the trigger
    string appears, then the constraint applies. `stream(row, text)` receives text as it comes.
    Greedy when `temperature` is 0. With `overlap`, masks are computed in a worker thread while
    the model runs (the mask kernels release the GIL). `compile_options` go to the compiler
    (e.g. ``{"whitespace": "compact"}`` for JSON Schema; the default layout for schemas is
    ``{"indent": 2}``, the one ``json.dumps(indent=2)`` writes).
    """
    if max_new_tokens < 1:
        raise StructgenError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise StructgenError(f"bad sampling settings: temperature={temperature}, top_p={top_p}")
    t_start = time.perf_counter()
    prompts, batched = _split_batch(prompt_or_messages)
    n = len(prompts)
    vocab = vocab if vocab is not None else vocabulary_for(model, tokenizer)
    kinds = {"schema": _per_row(schema, n, "schema", batched), "regex": _per_row(regex, n, "regex", batched),
             "grammar": _per_row(grammar, n, "grammar", batched),
             "compiled": _per_row(compiled, n, "compiled", batched)}
    cache: dict[tuple, Any] = {}
    rows: list[_Row] = []
    want_json: list[bool] = []
    trig = trigger.encode("utf-8") if trigger else None
    for i in range(n):
        spec = {k: v[i] for k, v in kinds.items()}
        key = tuple((k, _json.dumps(v, sort_keys=True) if k == "schema" and isinstance(v, (dict, list, bool))
                     else (id(v) if k == "compiled" or not isinstance(v, (str, bytes)) else v))
                    for k, v in spec.items() if v is not None)
        if key not in cache:
            cache[key] = compile_constraint(vocab, options=compile_options, **spec)
        rows.append(_Row(i, cache[key], trig))
        want_json.append(spec["schema"] is not None)

    prompt_ids = [encode_prompt(tokenizer, p, chat=chat, system=system) for p in prompts]
    if any(len(p) == 0 for p in prompt_ids):
        raise StructgenError("empty prompt (the tokenizer produced no tokens)")
    stops = sorted(set(vocab.eos_token_ids) | set(stop_token_ids(model, tokenizer)))
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = stops[0] if stops else 0
    jf = JumpForward(tokenizer, vocab) if jump_forward else None
    dec = _Decoder(model, tokenizer, vocab, rows, pad_id, stops, jf, max_new_tokens, stream)
    overlap = overlap and any(r.matcher is not None for r in rows)
    gen = None
    if temperature > 0:
        gen = torch.Generator(device="cpu")
        if seed is not None:
            gen.manual_seed(int(seed))
        else:
            gen.seed()

    deferred: list[_Row] = []  # rows whose next mask is computed while the model runs

    def after_token(r: _Row) -> None:
        """Jump forward, then the next mask: now when EOS may be next (the row may end here
        without another model step), else deferred to overlap with the forward pass."""
        if r.done:
            return
        dec.jump(r)
        if r.matcher is not None and not r.free:
            if not overlap or r.matcher.is_accepting():
                t0 = time.perf_counter()
                dec.refresh_mask(r)
                dec.t["mask_sync"] += time.perf_counter() - t0
            else:
                deferred.append(r)
        if not r.done and len(r.ids) >= max_new_tokens:
            dec.finish(r, "truncated", f"max_new_tokens={max_new_tokens} reached before the output was complete")
            if r in deferred:
                deferred.remove(r)

    for row in rows:  # the constraint may force the opening bytes before any model step
        after_token(row)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="structgen-mask") if overlap else None

    def fill_deferred(batch_rows: list[_Row]) -> None:
        for r in batch_rows:
            dec.refresh_mask(r)

    with torch.inference_mode():
        chunks = [list(p) + (r.pending if not r.done else []) for p, r in zip(prompt_ids, rows)]
        for r in rows:
            r.pending = []
        first = True
        while True:
            if all(r.done for r in rows):
                break
            if first:
                positions = [0] * n
            else:
                for r in rows:
                    if not r.done and not r.pending:  # cannot happen; never spin on it
                        dec.finish(r, "error", "internal: row has no token to feed")
                chunks = [r.pending if not r.done else [] for r in rows]
                positions = [r.next_pos for r in rows]
                for r in rows:
                    r.pending = []
            if all(not c for c in chunks):
                break
            job = None
            if deferred:
                todo, deferred = list(deferred), []
                if pool is not None:
                    job = pool.submit(fill_deferred, todo)
                else:
                    fill_deferred(todo)
            t0 = time.perf_counter()
            logits = dec.forward(chunks, positions, left=first)
            if job is not None:
                tw = time.perf_counter()
                job.result()
                dec.t["mask_wait"] += time.perf_counter() - tw
            if first:  # forced opening tokens were fed with the prompt: track their columns
                for r in rows:
                    if r.ids:
                        end = dec.attn.shape[1]
                        r.cols = list(range(end - len(r.ids), end))
                first = False
            dec.t["forward"] += time.perf_counter() - t0
            dec.t["steps"] += 1
            live = [r for r in rows if not r.done and r.index in logits]
            if not live:
                break
            sel = torch.stack([logits[r.index] for r in live]).float()
            cons = [j for j, r in enumerate(live) if r.matcher is not None and not r.free]
            t0 = time.perf_counter()
            if cons:
                bm = dec.bitmask[[live[j].index for j in cons]]
                apply_token_bitmask_(sel, bm, indices=cons)
            dec.t["apply"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            toks = _sample(sel, temperature, top_p, gen)
            dec.t["sample"] += time.perf_counter() - t0
            for r, tok in zip(live, toks):
                r.n_steps += 1
                dec.take(r, int(tok))
                after_token(r)
                dec.emit(r, final=r.done)
    if pool is not None:
        pool.shutdown(wait=True)
    elapsed = time.perf_counter() - t_start
    results = [dec.result(r, w, elapsed) for r, w in zip(rows, want_json)]
    return results if batched else results[0]
