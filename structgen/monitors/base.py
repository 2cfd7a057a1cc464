"""Monitor protocol: static analysis that restricts the next token during decoding.

A monitor follows the decoded text (prompt + accepted tokens) and, at each step, returns a token
mask restriction in structgen's packed bitmask format (``uint32`` words, bit ``t % 32`` of word
``t // 32`` set = token ``t`` allowed) or ``None`` for "no constraint". Monitors compose with any
structgen matcher (and with each other) by mask intersection, and with batches by keeping one
monitor per row.

Hooks (the names of the MGD paper / reference, spec ``shared/specs/monitors.md`` §1, §5.1):

- ``allowed_mask()``: trigger test + static-analysis query + mask generation (lazily),
- ``verify(token_bytes)``: lazy check of triggers *inside* a token (``.append`` style tokens),
- ``update(token_id)``: state after an accepted token; ``rollback(n)`` undoes the last n,
- ``fork()``: a cheap copy for beams / n > 1 sampling (analysis caches are shared).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

Mask = Optional[np.ndarray]  # uint32 words, or None = all tokens allowed


class Monitor:
    """Base class of monitors. Subclasses implement `allowed_mask`, `verify` and `_advance`."""

    vocab = None  # structgen.Vocabulary

    def allowed_mask(self) -> Mask:  # pragma: no cover - interface
        raise NotImplementedError

    def verify(self, token_id: int) -> bool:
        """False if token `token_id` would violate the monitor's property *inside* the token."""
        return True

    def update(self, token_id: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def rollback(self, n_tokens: int = 1) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def fork(self) -> Monitor:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def constrained(self) -> bool:
        """True while the monitor restricts the next token (EOS is then never allowed)."""
        return False


def full_mask(vocab_size: int) -> np.ndarray:
    """All tokens allowed (padding bits past vocab_size cleared)."""
    n_words = (vocab_size + 31) // 32
    m = np.full(n_words, 0xFFFFFFFF, dtype=np.uint32)
    rem = vocab_size % 32
    if rem:
        m[-1] = np.uint32((1 << rem) - 1)
    return m


def ids_to_mask(ids, vocab_size: int) -> np.ndarray:
    """Packed uint32 mask with exactly the given token ids set."""
    b = np.zeros(((vocab_size + 31) // 32) * 32, dtype=bool)
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size:
        b[ids] = True
    return bool_to_mask(b)


def bool_to_mask(b: np.ndarray) -> np.ndarray:
    """Boolean vector (length padded to a multiple of 32 internally) -> packed uint32 words."""
    n = b.shape[0]
    pad = (-n) % 32
    if pad:
        b = np.concatenate([b, np.zeros(pad, dtype=bool)])
    return np.packbits(b, bitorder="little").view("<u4").astype(np.uint32, copy=False)


def mask_to_bool(mask: np.ndarray, vocab_size: int) -> np.ndarray:
    """Packed words (int32 or uint32) -> boolean vector of length vocab_size."""
    w = np.ascontiguousarray(mask).view(np.uint32).astype("<u4", copy=False)
    return np.unpackbits(w.view(np.uint8), bitorder="little")[:vocab_size].astype(bool)


def mask_to_ids(mask: np.ndarray, vocab_size: int) -> np.ndarray:
    return np.flatnonzero(mask_to_bool(mask, vocab_size))


def intersect(mask_a: Mask, mask_b: Mask) -> Mask:
    """Intersection of two restrictions; None is "no constraint" (the identity).

    Accepts int32 (structgen matcher bitmask rows) or uint32 words; the result is uint32.
    """
    if mask_a is None:
        return None if mask_b is None else np.asarray(mask_b).view(np.uint32).copy()
    if mask_b is None:
        return np.asarray(mask_a).view(np.uint32).copy()
    return np.bitwise_and(np.asarray(mask_a).view(np.uint32), np.asarray(mask_b).view(np.uint32))


def is_empty(mask: np.ndarray) -> bool:
    return not np.any(mask)


def combined_mask(monitors: Sequence[Monitor], base: Mask = None) -> Mask:
    """AND of a base restriction (e.g. a matcher's mask) and every monitor's mask.

    Joint monitors: if the intersection with some monitor would be empty, that monitor is dropped
    for this step (fail open: a monitor is advisory, the base grammar mask always applies).
    """
    m = None if base is None else np.asarray(base).view(np.uint32).copy()
    for mon in monitors:
        mm = mon.allowed_mask()
        if mm is None:
            continue
        cand = intersect(m, mm)
        if not is_empty(cand):
            m = cand
    return m


def fill_monitor_bitmasks(monitors: Sequence[Monitor | None], bitmask: np.ndarray) -> None:
    """Batched: AND each row's monitor restriction into `bitmask` in place (one monitor per row).

    `bitmask` is a (batch, n_words) int32/uint32 array, e.g. filled first by
    `structgen.fill_next_token_bitmasks(matchers, bitmask)`; rows whose monitor is None or
    unconstrained, or whose intersection would be empty, are left as they are.
    """
    words = bitmask.view(np.uint32)
    for row, mon in enumerate(monitors):
        if mon is None:
            continue
        mm = mon.allowed_mask()
        if mm is None:
            continue
        cand = np.bitwise_and(words[row], mm)
        if np.any(cand):
            words[row] = cand


def apply_mask(logits: np.ndarray, mask: Mask) -> np.ndarray:
    """Logits with every disallowed token set to -inf (a copy). Vectorised, never per-token."""
    out = np.array(logits, dtype=np.float64, copy=True)
    if mask is None:
        return out
    n = out.shape[-1]
    allowed = mask_to_bool(mask, min(n, np.asarray(mask).size * 32))
    if allowed.shape[0] < n:
        allowed = np.concatenate([allowed, np.zeros(n - allowed.shape[0], dtype=bool)])
    out[..., ~allowed] = -np.inf
    return out


def argmax_choice(scores: np.ndarray) -> int:
    return int(np.argmax(scores))


def sampling_choice(rng: np.random.Generator, temperature: float = 1.0) -> Callable[[np.ndarray], int]:
    """A `choose` function for `monitored_greedy`: sample from softmax(scores / temperature)."""
    def choose(scores: np.ndarray) -> int:
        z = scores / temperature
        z = z - np.max(z)
        p = np.exp(z)
        p /= p.sum()
        return int(rng.choice(p.shape[0], p=p))
    return choose


def monitored_greedy(
    logits_fn: Callable[[list[int]], np.ndarray],
    vocab,
    monitors: Sequence[Monitor] = (),
    *,
    matcher=None,
    max_new_tokens: int = 64,
    stats: dict | None = None,
    choose: Callable[[np.ndarray], int] = argmax_choice,
    stop: Callable[[list[int]], bool] | None = None,
) -> list[int]:
    """Monitor-guided decoding (spec §5.3): greedy by default, or any `choose(scores)` sampler.

    `logits_fn(generated_ids)` returns the next-token logits (length >= vocab.size). Each step:
    mask = matcher mask AND monitor masks (EOS cleared while a monitor is constrained), argmax,
    then `verify` (lazy rejection of tokens whose inside violates a monitor: the token is set to
    -inf and the choice is redone on the same logits: under sampling this gives exactly the
    masked distribution), then `update` every monitor / the matcher. `stop(generated_ids)`, if
    given, ends decoding after a step.
    """
    gen: list[int] = []
    eos = set(vocab.eos_token_ids)
    st = stats if stats is not None else {}
    st.setdefault("rejections", 0)
    st.setdefault("constrained_steps", 0)
    for _ in range(max_new_tokens):
        logits = np.asarray(logits_fn(gen), dtype=np.float64)[: vocab.size]
        base = None
        if matcher is not None:
            base = matcher.next_token_mask()
        m = combined_mask(monitors, base)
        if any(mon.constrained for mon in monitors):
            st["constrained_steps"] += 1
            if m is None:
                m = full_mask(vocab.size)
            m = m.copy()
            for e in eos:
                m[e // 32] &= np.uint32(~(1 << (e % 32)) & 0xFFFFFFFF)
        scores = apply_mask(logits, m)
        while True:
            if not np.isfinite(scores).any():  # every candidate rejected: fail open for this step
                t = choose(apply_mask(logits, base))
                break
            t = choose(scores)
            if t in eos or all(mon.verify(t) for mon in monitors):
                break
            st["rejections"] += 1
            scores[t] = -np.inf
        if t in eos:
            break
        gen.append(t)
        if matcher is not None:
            matcher.accept_token(t)
        for mon in monitors:
            mon.update(t)
        if stop is not None and stop(gen):
            break
    return gen
