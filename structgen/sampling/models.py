"""The model side of the sampler: anything that gives next-token logits for a token-id prefix."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class LogitsModel(Protocol):
    """Next-token logits (or log-probs: only differences matter) for a prefix of token ids.

    `prefix_ids` is the full context: prompt ids followed by the generated ids. The result is a
    1-D array with one entry per vocabulary id (it may be longer than the constraint's
    vocabulary; the extra ids keep their probability mass but are never allowed). `-inf` means
    probability 0. The sampler upcasts to float64 before its log_softmax.
    """

    def next_logits(self, prefix_ids: Sequence[int]) -> np.ndarray: ...


def log_softmax64(logits) -> np.ndarray:
    """float64 log_softmax; NaN counts as -inf. All -inf stays all -inf."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1).copy()
    x[np.isnan(x)] = -np.inf
    mx = np.max(x) if x.size else -np.inf
    if not np.isfinite(mx):
        if mx == np.inf:  # +inf logits: uniform over them
            out = np.where(x == np.inf, 0.0, -np.inf)
            return out - np.log(np.count_nonzero(x == np.inf))
        return np.full_like(x, -np.inf)
    z = x - mx
    return z - np.log(np.sum(np.exp(z)))


def warp_logits(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None) -> np.ndarray:
    """Deterministic logit transforms applied *before* the log_softmax.

    Each one changes the target distribution to the warped model's (the sampler is then exact
    for that warped model, not for the raw one).
    """
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    if temperature != 1.0:
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        x = x / temperature
    if top_k is not None and 0 < top_k < x.size:
        kth = np.partition(x, -top_k)[-top_k]
        x = np.where(x >= kth, x, -np.inf)
    if top_p is not None and top_p < 1.0:
        lp = log_softmax64(x)
        order = np.argsort(-lp, kind="stable")
        cum = np.cumsum(np.exp(lp[order]))
        keep = int(np.searchsorted(cum, top_p, side="left")) + 1
        cut = np.full(x.size, True)
        cut[order[:keep]] = False
        x = np.where(cut, -np.inf, x)
    return x


class FunctionLogitsModel:
    """Wrap a plain function `prefix_ids -> logits` as a LogitsModel."""

    def __init__(self, fn: Callable[[Sequence[int]], Any]):
        self.fn = fn

    def next_logits(self, prefix_ids):
        return np.asarray(self.fn(prefix_ids))


class HFLogitsModel:
    """Adapter for a Hugging Face causal LM (`model(input_ids=...).logits`). torch is imported lazily.

    With `use_cache=True` the KV cache of the previous call is kept and cropped to the longest
    common prefix with the next request (the prompt's KV is therefore computed once), so
    consecutive prefixes of one sample cost one token each. Requires a cache object with
    `crop()` (transformers' DynamicCache); otherwise it falls back to full recomputation.
    """

    def __init__(self, model: Any, *, device: Any = None, use_cache: bool = True):
        self.model = model
        self.device = device
        self.use_cache = use_cache
        self._ids: list[int] = []
        self._cache: Any = None
        self._last: np.ndarray | None = None
        self.forward_calls = 0
        self.forward_tokens = 0
        self._kw: str | None = None

    def reset(self) -> None:
        self._ids, self._cache, self._last = [], None, None

    def _device(self):
        if self.device is not None:
            return self.device
        try:
            return next(self.model.parameters()).device
        except (AttributeError, StopIteration):
            return "cpu"

    def _cache_kw(self) -> str:
        # transformers renamed forward(past_key_values=) to forward(cache=)
        if self._kw is None:
            import inspect

            try:
                params = inspect.signature(self.model.forward).parameters
            except (TypeError, ValueError, AttributeError):
                params = {}
            self._kw = "cache" if "cache" in params else "past_key_values"
        return self._kw

    def _forward(self, new_ids: list[int], cache: Any):
        import torch

        inp = torch.tensor([new_ids], dtype=torch.long, device=self._device())
        self.forward_calls += 1
        self.forward_tokens += len(new_ids)
        with torch.no_grad():
            if self.use_cache:
                kwargs = {self._cache_kw(): cache} if cache is not None else {}
                return self.model(input_ids=inp, use_cache=True, **kwargs)
            return self.model(input_ids=inp, use_cache=False)

    @staticmethod
    def _crop(cache: Any, keep: int) -> bool:
        """Cut the cache to its first `keep` positions; False if that is not possible."""
        if not hasattr(cache, "crop") or not hasattr(cache, "get_seq_length"):
            return False
        try:
            cur = int(cache.get_seq_length())
            if cur > keep:
                cache.crop(-(cur - keep))  # negative: remove that many (old and new transformers)
            return int(cache.get_seq_length()) == keep
        except Exception:
            return False

    def next_logits(self, prefix_ids):
        ids = [int(t) for t in prefix_ids]
        if not ids:
            raise ValueError("HFLogitsModel needs a non-empty prefix (pass a prompt, e.g. the BOS id)")
        if self.use_cache and self._cache is not None:
            k = 0
            lim = min(len(ids), len(self._ids))
            while k < lim and ids[k] == self._ids[k]:
                k += 1
            if k == len(ids) == len(self._ids) and self._last is not None:
                return self._last
            k = min(k, len(ids) - 1)
            if k > 0 and self._crop(self._cache, k):
                out = self._forward(ids[k:], self._cache)
            else:
                out = self._forward(ids, None)
        else:
            out = self._forward(ids, None)
        logits = out.logits[0, -1].detach().to("cpu").double().numpy()
        if self.use_cache:
            self._cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            self._ids = ids
            self._last = logits
        return logits
