"""Per-sequence matcher: fill the next-token bitmask, accept tokens, roll back, jump forward.

Bitmask format (shared with vLLM, SGLang, XGrammar, llguidance): int32 array (batch, ceil(V/32));
bit t % 32 of word t // 32 set means token t is allowed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from structgen.errors import StructgenError


def allocate_token_bitmask(batch: int, vocab_size: int) -> np.ndarray:
    """A (batch, ceil(vocab_size/32)) int32 bitmask with every token allowed (-1 words)."""
    return np.full((batch, (vocab_size + 31) // 32), -1, dtype=np.int32)


def bitmask_to_token_ids(row: np.ndarray, vocab_size: int | None = None) -> np.ndarray:
    """Allowed token ids of one bitmask row, ascending."""
    bits = np.unpackbits(np.ascontiguousarray(row).view(np.uint8), bitorder="little")
    ids = np.flatnonzero(bits)
    if vocab_size is not None:
        ids = ids[ids < vocab_size]
    return ids


class Matcher:
    """State of one sequence under a compiled constraint. Not thread-safe (one per sequence)."""

    def __init__(self, compiled):
        self.compiled = compiled
        self._history: list[tuple] = [compiled.initial_configs()]
        self._terminated = False
        self._terminated_at: int | None = None

    # ------------------------------------------------------------------ state
    @property
    def _configs(self) -> tuple:
        return self._history[-1]

    def reset(self) -> None:
        self._history = [self.compiled.initial_configs()]
        self._terminated = False
        self._terminated_at = None

    def is_terminated(self) -> bool:
        """True once EOS was accepted."""
        return self._terminated

    def is_accepting(self) -> bool:
        """True if the text so far is a complete string of the language."""
        return self._terminated or self.compiled.can_end(self._configs)

    @property
    def num_tokens(self) -> int:
        return len(self._history) - 1 + (1 if self._terminated else 0)

    # ------------------------------------------------------------------ masks
    def next_token_mask(self) -> np.ndarray:
        """The allowed-token row as uint32 words (a view: do not modify)."""
        if self._terminated:
            return np.zeros(self.compiled.vocab.n_words, dtype=np.uint32)
        return self.compiled.configs_mask(self._configs)

    def fill_next_token_bitmask(self, bitmask: np.ndarray, index: int = 0) -> None:
        row = bitmask[index] if bitmask.ndim == 2 else bitmask
        mask = self.next_token_mask()
        if row.shape[0] < mask.shape[0]:
            raise StructgenError(f"bitmask row has {row.shape[0]} words; the vocabulary needs {mask.shape[0]}")
        row[: mask.shape[0]] = mask.view(np.int32)
        row[mask.shape[0]:] = 0

    def allowed_token_ids(self) -> np.ndarray:
        return bitmask_to_token_ids(self.next_token_mask().view(np.int32), self.compiled.vocab.size)

    # ------------------------------------------------------------------ transitions
    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (state unchanged) if the token is not allowed."""
        if self._terminated:
            return False
        vocab = self.compiled.vocab
        token_id = int(token_id)
        if not 0 <= token_id < vocab.size:
            return False
        if token_id in vocab.eos_token_ids:
            if self.compiled.can_end(self._configs):
                self._terminated = True
                return True
            return False
        data = vocab.token_bytes[token_id]
        if data is None:
            return False
        nxt = self.compiled.advance(self._configs, data)
        if not nxt:
            return False
        self._history.append(nxt)
        return True

    def accept_tokens(self, token_ids: Sequence[int]) -> bool:
        """Accept several tokens; all or nothing."""
        done = 0
        for t in token_ids:
            if not self.accept_token(t):
                self.rollback(done)
                return False
            done += 1
        return True

    def accept_string(self, text: str | bytes) -> bool:
        """Advance by raw text (not tokens; counts as one step for rollback)."""
        if self._terminated:
            return False
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        nxt = self.compiled.advance(self._configs, data)
        if not nxt:
            return False
        self._history.append(nxt)
        return True

    def rollback(self, n_tokens: int = 1) -> None:
        if n_tokens < 0:
            raise ValueError("n_tokens must be >= 0")
        if n_tokens == 0:
            return
        if self._terminated:
            self._terminated = False
            n_tokens -= 1
        if n_tokens > len(self._history) - 1:
            raise StructgenError(f"cannot roll back {n_tokens} tokens: only {len(self._history) - 1} accepted")
        if n_tokens:
            del self._history[-n_tokens:]

    # ------------------------------------------------------------------ fast-forward
    def jump_forward_bytes(self, limit: int = 4096) -> bytes:
        """Bytes the constraint forces next (empty if there is a choice or the text may end).

        Works per byte class: a byte is forced when exactly one class can move and that class
        holds a single byte.
        """
        cg = self.compiled
        if self._terminated:
            return b""
        reps, sizes = cg.class_representatives()
        configs = self._configs
        out = bytearray()
        while len(out) < limit and not cg.can_end(configs):
            alive = None
            for rep, size in zip(reps, sizes):
                nxt = cg.advance(configs, bytes((rep,)))
                if nxt:
                    if alive is not None or size != 1:
                        alive = None
                        break
                    alive = (rep, nxt)
            if alive is None:
                break
            out.append(alive[0])
            configs = alive[1]
        return bytes(out)


def fill_next_token_bitmasks(matchers: Sequence[Matcher | None], bitmask: np.ndarray) -> None:
    """Fill row i of `bitmask` from matchers[i]; None rows are left all-allowed."""
    for i, m in enumerate(matchers):
        if m is None:
            bitmask[i] = -1
        else:
            m.fill_next_token_bitmask(bitmask, i)
