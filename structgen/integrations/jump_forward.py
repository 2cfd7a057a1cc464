"""Tokenization-safe jump-forward.

When the constraint forces the next bytes (``matcher.jump_forward_bytes()`` is non-empty, e.g.
``{"name": "`` after the model opened an object with fixed keys), those bytes can be appended
without asking the model. Appending them naively (greedy longest tokens, or continuing from the
current token boundary) leaves token sequences the tokenizer never produces (``{`` + ``"name``
where the tokenizer writes ``{"`` + ``name``), which puts the model off-distribution.

The rule (see docs/jump_forward.md):

1. Let E be the constrained tokens so far and F the forced bytes (cut to whole UTF-8 characters).
   X = bytes(E) + F.
2. Re-tokenize from a safe start s: the last pre-token boundary of X (the tokenizer's own
   pre-tokenizer splits X into pieces that BPE never merges across) at or before the end of E that
   is also a token boundary of E, and at most `max_rollback` tokens back. Without a pre-tokenizer,
   s is the start of E's last token.
3. R = tokenizer(X[s:]). It must reproduce X[s:] byte for byte (checked against the vocabulary),
   else no jump (tokenizers that add a dummy prefix or normalize text are left alone).
4. Commit only the tokens of R that end at or before the start of X's last pre-token, and never
   R's last token: bytes after F may still merge with them, so the model chooses that token itself
   (its mask still forces the remaining bytes).
5. The tokens of E after s that differ from R are rolled back (matcher and KV cache) and replaced.
   The jump is taken only when it commits more tokens than it rolls back.

Result: the sequence ends in tokens the tokenizer would produce for that text, whatever follows;
the model sees the same kind of token boundaries it saw in training. Token ids that the model
itself chose are only replaced when they sit inside the pre-token that the forced bytes extend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class JumpPlan:
    """Replace the last `rollback` constrained tokens by `tokens` (all forced, no model step)."""

    rollback: int
    tokens: tuple[int, ...]
    forced_bytes: int


def _utf8_prefix(b: bytes) -> bytes:
    """Longest prefix of `b` that does not end inside a UTF-8 character."""
    n = len(b)
    i = n - 1
    # Walk back over at most 3 continuation bytes to the lead byte of the last character.
    while i >= 0 and n - i <= 4 and (b[i] & 0xC0) == 0x80:
        i -= 1
    if i < 0:
        return b
    lead = b[i]
    need = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
    return b if n - i >= need else b[:i]


class JumpForward:
    """Plans tokenization-safe jumps for one (tokenizer, vocabulary) pair. Stateless per call."""

    def __init__(self, tokenizer: Any, vocab: Any, *, max_rollback: int = 4, max_context: int = 12):
        self.vocab = vocab
        self.max_rollback = max_rollback
        self.max_context = max_context
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None and hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "pre_tokenizer"):
            backend = tokenizer  # a bare `tokenizers.Tokenizer`
        self._backend = backend
        self._pre = getattr(backend, "pre_tokenizer", None) if backend is not None else None
        if backend is not None and getattr(backend, "normalizer", None) is not None:
            self._pre = None  # offsets of a normalized string do not map back to our bytes
        self._tokenizer = tokenizer
        self.enabled = True

    # -- tokenizer access -------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        if self._backend is not None:
            return list(self._backend.encode(text, add_special_tokens=False).ids)
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def _pretoken_starts(self, text: str) -> list[int] | None:
        """Byte offsets where the pre-tokenizer starts a piece, or None without a pre-tokenizer."""
        if self._pre is None:
            return None
        try:
            pieces = self._pre.pre_tokenize_str(text)
        except Exception:
            return None
        # Offsets are in characters: map to byte offsets.
        char_to_byte = [0]
        for ch in text:
            char_to_byte.append(char_to_byte[-1] + len(ch.encode("utf-8")))
        return [char_to_byte[start] for _, (start, _end) in pieces]

    def _bytes(self, ids: Sequence[int]) -> bytes | None:
        tb = self.vocab.token_bytes
        out = []
        for t in ids:
            b = tb[t] if 0 <= t < len(tb) else None
            if b is None:
                return None
            out.append(b)
        return b"".join(out)

    # -- planning ---------------------------------------------------------------------------
    def plan(self, tokens: Sequence[int], forced: bytes) -> JumpPlan | None:
        """How to append `forced` after the constrained tokens `tokens`; None when no safe jump."""
        if not self.enabled or not forced:
            return None
        ctx = list(tokens[-self.max_context:])
        ctx_bytes = self._bytes(ctx)
        while ctx_bytes is None and ctx:  # drop leading tokens with no bytes (special tokens)
            ctx = ctx[1:]
            ctx_bytes = self._bytes(ctx)
        if ctx_bytes is None:
            ctx, ctx_bytes = [], b""
        # Token boundaries of the context, as byte offsets (0 .. len(ctx_bytes)).
        bounds = [0]
        for t in ctx:
            bounds.append(bounds[-1] + len(self.vocab.token_bytes[t]))
        x = _utf8_prefix(ctx_bytes + forced)
        if len(x) <= len(ctx_bytes):
            return None  # the forced bytes are an unfinished character
        # Start at a boundary where the context is valid UTF-8 on its own.
        text = None
        first = 0
        while first < len(ctx):
            try:
                text = x[bounds[first]:].decode("utf-8")
                break
            except UnicodeDecodeError:
                first += 1
        if text is None:
            first = len(ctx)
            try:
                text = x[bounds[first]:].decode("utf-8")
            except UnicodeDecodeError:
                return None
        base = bounds[first]
        junction = len(ctx_bytes)
        starts = self._pretoken_starts(text)
        min_start_idx = max(first, len(ctx) - self.max_rollback)
        if starts is None:
            s_idx = max(min_start_idx, len(ctx) - 1)
            last_piece = None
        else:
            piece_starts = {base + s for s in starts}
            s_idx = len(ctx)
            for i in range(len(ctx), min_start_idx - 1, -1):
                if bounds[i] in piece_starts and bounds[i] <= junction:
                    s_idx = i
                    break
            last_piece = base + starts[-1] if starts else None
        s = bounds[s_idx]
        try:
            r = self._encode(x[s:].decode("utf-8"))
        except UnicodeDecodeError:
            return None
        rb = self._bytes(r)
        if rb is None or rb != x[s:]:
            return None  # the tokenizer does not reproduce these bytes exactly: no jump
        # Which of R's tokens may be committed.
        ends = []
        off = s
        for t in r:
            off += len(self.vocab.token_bytes[t])
            ends.append(off)
        limit = len(r) - 1  # never the last token
        if last_piece is not None:
            while limit > 0 and ends[limit - 1] > last_piece:
                limit -= 1
        window = ctx[s_idx:]
        lcp = 0
        while lcp < min(len(window), limit) and window[lcp] == r[lcp]:
            lcp += 1
        rollback = len(window) - lcp
        new = r[lcp:limit]
        if len(new) <= rollback or ends[limit - 1] <= junction:
            return None
        new_end = ends[limit - 1]
        return JumpPlan(rollback=rollback, tokens=tuple(new), forced_bytes=max(0, new_end - junction))
