"""Hugging Face `generate()` adapter: a LogitsProcessor applying one monitor per batch row.

Feeds each row's new token ids to its monitor (`update`), applies the monitor's mask with a
boolean tensor (`masked_fill`, never per-token Python membership), clears EOS while a monitor is
constrained, and, for greedy decoding, runs the exact "argmax -> verify -> mask" loop for tokens
with a trigger inside (`.name` tokens). With sampling, the tokens of the top-`verify_top_k` that
fail `verify` are masked (an approximation; `monitored_greedy` with a sampler is exact).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from structgen.monitors.base import Monitor, mask_to_bool

try:  # transformers >= 4 wants LogitsProcessor instances in LogitsProcessorList
    from transformers import LogitsProcessor as _Base
except Exception:  # pragma: no cover - transformers missing
    _Base = object


class MonitorLogitsProcessor(_Base):
    def __init__(self, monitors: Sequence[Monitor | None], vocab, prompt_length: int,
                 greedy: bool = True, verify_top_k: int = 16):
        self.monitors = list(monitors)
        self.vocab = vocab
        self.prompt_length = prompt_length
        self.greedy = greedy
        self.verify_top_k = verify_top_k
        self._seen = [0] * len(self.monitors)
        self.rejections = 0

    def __call__(self, input_ids, scores):
        import torch
        if input_ids.shape[0] != len(self.monitors):
            raise ValueError(f"{input_ids.shape[0]} rows but {len(self.monitors)} monitors (one per row; no beams)")
        V = scores.shape[-1]
        for row, mon in enumerate(self.monitors):
            if mon is None:
                continue
            gen = input_ids[row, self.prompt_length:].tolist()
            for t in gen[self._seen[row]:]:
                mon.update(int(t))
            self._seen[row] = len(gen)
            m = mon.allowed_mask()
            if m is not None:
                allowed = mask_to_bool(m, min(V, m.size * 32))
                if allowed.shape[0] < V:
                    allowed = np.concatenate([allowed, np.zeros(V - allowed.shape[0], dtype=bool)])
                for e in self.vocab.eos_token_ids:
                    if e < V:
                        allowed[e] = False
                scores[row] = scores[row].masked_fill(~torch.from_numpy(allowed).to(scores.device), float("-inf"))
            eos = set(self.vocab.eos_token_ids)
            if self.greedy:
                while True:
                    t = int(torch.argmax(scores[row]))
                    if not torch.isfinite(scores[row, t]) or t in eos or mon.verify(t):
                        break
                    self.rejections += 1
                    scores[row, t] = float("-inf")
            else:
                k = min(self.verify_top_k, V)
                for t in torch.topk(scores[row], k).indices.tolist():
                    if t not in eos and not mon.verify(int(t)):
                        self.rejections += 1
                        scores[row, t] = float("-inf")
        return scores
