"""Hugging Face transformers integration: packed-bitmask kernel and a batched LogitsProcessor.

`apply_token_bitmask_(logits, bitmask)` sets the logits of disallowed tokens to -inf in place.
The bitmask is the shared int32 ``(batch, ceil(V/32))`` format (bit ``t % 32`` of word ``t // 32``
set = token t allowed). On accelerators bits are unpacked with one broadcast shift over all words
(a handful of vectorized torch ops whatever the vocabulary size; no Python loop over tokens). CPU
float logits take a numpy path (``np.unpackbits`` + masked copy, single-threaded): torch's
intra-op thread pool costs milliseconds per call on a loaded machine.

`StructgenLogitsProcessor` plugs structgen matchers into ``model.generate``: one matcher per
batch row; on every call it feeds each row's newest token to its matcher, fills the bitmask and
masks the scores.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from structgen.errors import StructgenError

try:  # transformers is optional for the kernel itself
    from transformers import LogitsProcessor as _HFLogitsProcessor
except ImportError:  # pragma: no cover
    _HFLogitsProcessor = object  # type: ignore[assignment,misc]

_SHIFTS: dict[torch.device, torch.Tensor] = {}


class GenerationError(StructgenError):
    """The decode loop cannot continue (a matcher rejected a token, no token is allowed, ...)."""


def _shifts(device: torch.device) -> torch.Tensor:
    s = _SHIFTS.get(device)
    if s is None:
        s = _SHIFTS[device] = torch.arange(32, dtype=torch.int32, device=device)
    return s


def _bits(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """int32 ``(batch, vocab_size)`` of 0/1 from the packed words: one broadcast shift, one and."""
    if bitmask.dim() == 1:
        bitmask = bitmask.unsqueeze(0)
    bits = (bitmask.unsqueeze(-1) >> _shifts(bitmask.device)) & 1  # arithmetic shift: bit 31 ok
    return bits.reshape(bitmask.shape[0], -1)[:, :vocab_size]


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Bool ``(batch, vocab_size)`` allowed-matrix from a packed int32 ``(batch, words)`` bitmask."""
    return _bits(bitmask, vocab_size).bool()


def as_torch_bitmask(bitmask: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """A torch view of a numpy int32 bitmask (shared memory on CPU, copied to `device` otherwise)."""
    t = torch.from_numpy(bitmask) if isinstance(bitmask, np.ndarray) else bitmask
    if t.dtype != torch.int32:
        raise TypeError(f"bitmask must be int32, got {t.dtype}")
    if device is not None and t.device != torch.device(device):
        t = t.to(device, non_blocking=True)
    return t


def apply_token_bitmask_(logits: torch.Tensor, bitmask: Any, indices: Sequence[int] | None = None) -> torch.Tensor:
    """Set disallowed logits to -inf in place and return `logits`.

    `logits` is ``(batch, V)`` (or ``(V,)``); `bitmask` a numpy or torch int32 ``(batch, words)``
    array. Logit columns beyond ``32 * words`` are disallowed; mask columns beyond V are ignored.
    `indices` picks which logits rows get masked (rows of the bitmask in the same order).
    """
    squeeze = logits.dim() == 1
    if squeeze:
        logits = logits.unsqueeze(0)
    bm = as_torch_bitmask(bitmask, logits.device)
    if bm.dim() == 1:
        bm = bm.unsqueeze(0)
    v = logits.shape[-1]
    covered = min(v, bm.shape[-1] * 32)
    if _numpy_ok(logits, bm):
        _apply_numpy(logits, bm.numpy(), covered, indices)
        return logits.squeeze(0) if squeeze else logits
    if indices is None:
        if bm.shape[0] != logits.shape[0]:
            raise ValueError(f"bitmask has {bm.shape[0]} rows for {logits.shape[0]} logits rows")
        logits[:, :covered].masked_fill_(_bits(bm, covered) == 0, float("-inf"))
        if covered < v:
            logits[:, covered:] = float("-inf")
    else:
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=logits.device)
        rows = logits[idx, :covered].masked_fill(_bits(bm[: len(idx)], covered) == 0, float("-inf"))
        logits[idx, :covered] = rows
        if covered < v:
            logits[idx, covered:] = float("-inf")
    return logits.squeeze(0) if squeeze else logits


def _numpy_ok(logits: torch.Tensor, bm: torch.Tensor) -> bool:
    """CPU float32/float64 logits are masked with numpy: single-threaded, so no thread-pool
    wake-ups per step (torch's intra-op threads cost milliseconds on busy machines)."""
    return (logits.device.type == "cpu" and bm.device.type == "cpu" and not logits.requires_grad
            and logits.dtype in (torch.float32, torch.float64) and logits.stride(-1) == 1)


def _apply_numpy(logits: torch.Tensor, bm: np.ndarray, covered: int, indices: Sequence[int] | None) -> None:
    ln = logits.numpy()  # shares memory with the tensor
    rows = range(ln.shape[0]) if indices is None else list(indices)
    if indices is None and bm.shape[0] != ln.shape[0]:
        raise ValueError(f"bitmask has {bm.shape[0]} rows for {ln.shape[0]} logits rows")
    for j, i in enumerate(rows):  # over batch rows only; each row is one vectorized unpack
        bits = np.unpackbits(np.ascontiguousarray(bm[j]).view(np.uint8), bitorder="little")[:covered]
        np.copyto(ln[i, :covered], -np.inf, where=bits == 0)
        if covered < ln.shape[1]:
            ln[i, covered:] = -np.inf


def model_vocab_size(model: Any, tokenizer: Any = None) -> int:
    """Number of logits the model produces (may exceed the tokenizer's size)."""
    try:
        n = model.get_output_embeddings().weight.shape[0]
        return int(n)
    except Exception:
        pass
    cfg = getattr(model, "config", None)
    n = getattr(cfg, "vocab_size", None)
    if n is None:
        cfg_text = getattr(cfg, "get_text_config", None)
        n = getattr(cfg_text(), "vocab_size", None) if cfg_text else None
    if n is None and tokenizer is not None:
        n = len(tokenizer)
    if n is None:
        raise GenerationError("cannot tell the model's vocabulary size")
    return int(n)


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends generation: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    for src in (getattr(tokenizer, "eos_token_id", None),
                getattr(getattr(model, "generation_config", None), "eos_token_id", None),
                getattr(getattr(model, "config", None), "eos_token_id", None)):
        if src is None:
            continue
        ids.update(int(i) for i in (src if isinstance(src, (list, tuple)) else [src]))
    return sorted(ids)


_VOCAB_CACHE: dict[tuple, Any] = {}


def vocabulary_for(model: Any, tokenizer: Any) -> Any:
    """The structgen Vocabulary of (model, tokenizer): exact token bytes, EOS ids, logits size.

    Cached per tokenizer object and size, so repeated calls are free."""
    from structgen.vocab import Vocabulary

    size = model_vocab_size(model, tokenizer)
    eos = tuple(stop_token_ids(model, tokenizer))
    key = (id(tokenizer), size, eos)
    hit = _VOCAB_CACHE.get(key)
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    vocab = Vocabulary.from_hf(tokenizer, eos_token_ids=eos, vocab_size=max(size, len(tokenizer)))
    _VOCAB_CACHE[key] = (tokenizer, vocab)
    return vocab


class StructgenLogitsProcessor(_HFLogitsProcessor):
    """Constrain ``model.generate`` with structgen matchers, one per batch row.

    Pass matchers (or compiled grammars, a matcher is made from each). A row whose matcher is
    None is unconstrained. Rows whose matcher has terminated may only produce EOS. The first call
    records the prompt length; each later call feeds the row's newest token to its matcher.
    Use a fresh processor (or `reset()`) for each generate call.
    """

    def __init__(self, matchers: Sequence[Any], vocab_size: int | None = None, *, eos_token_id: int | None = None):
        self.matchers = [m.matcher() if hasattr(m, "matcher") else m for m in matchers]
        self.vocab_size = vocab_size
        self.eos_token_id = eos_token_id
        self._prompt_len: int | None = None
        self._bitmask: np.ndarray | None = None
        self.rejected_rows: set[int] = set()

    def reset(self) -> None:
        self._prompt_len = None
        self.rejected_rows.clear()
        for m in self.matchers:
            if m is not None:
                m.reset()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, v = scores.shape
        if batch != len(self.matchers):
            raise GenerationError(f"{batch} rows in the batch but {len(self.matchers)} matchers "
                                  "(beam search and num_return_sequences need one matcher per row)")
        if self._prompt_len is None:
            self._prompt_len = input_ids.shape[1]
        elif input_ids.shape[1] > self._prompt_len:
            last = input_ids[:, -1].tolist()
            for i, m in enumerate(self.matchers):
                if m is None or i in self.rejected_rows or m.is_terminated():
                    continue
                if not m.accept_token(int(last[i])):
                    self.rejected_rows.add(i)
        words = (v + 31) // 32
        if self._bitmask is None or self._bitmask.shape != (batch, words):
            self._bitmask = np.zeros((batch, words), dtype=np.int32)
        bm = self._bitmask
        rows = []
        for i, m in enumerate(self.matchers):
            if m is None:
                continue
            rows.append(i)
            if i in self.rejected_rows or m.is_terminated():
                bm[i] = 0
                eos = self.eos_token_id
                if eos is not None:
                    bm[i, eos // 32] = np.int32(np.uint32(1 << (eos % 32)).view(np.int32))
            else:
                m.fill_next_token_bitmask(bm, i)
        if not rows:
            return scores
        if len(rows) == batch:
            apply_token_bitmask_(scores, bm)
        else:
            apply_token_bitmask_(scores, bm[rows], indices=rows)
        return scores
