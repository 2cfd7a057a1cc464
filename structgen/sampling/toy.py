"""Hand-defined LMs over tiny vocabularies and the exactly solvable cases A-D of the ASAp spec.

Used by the tests and by benchmarks/bench_asap.py. Each case gives a LogitsModel, a compiled
constraint and the token cap (EOS counted) under which the spec's figures hold.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NEG = -math.inf


class BigramLM:
    """P(next | last token), a row per previous token plus a start row; EOS forced at `force_eos_at`."""

    def __init__(self, table: dict[Any, Sequence[float]], n_tokens: int, eos_id: int,
                 force_eos_at: int | None = None, prompt_len: int = 0):
        self.table = {k: np.asarray(v, dtype=np.float64) for k, v in table.items()}
        self.n_tokens, self.eos_id = n_tokens, eos_id
        self.force_eos_at = force_eos_at
        self.prompt_len = prompt_len
        self.calls = 0

    def next_logits(self, prefix_ids):
        self.calls += 1
        gen = list(prefix_ids)[self.prompt_len:]
        if self.force_eos_at is not None and len(gen) >= self.force_eos_at:
            out = np.full(self.n_tokens, NEG)
            out[self.eos_id] = 0.0
            return out
        row = self.table[gen[-1] if gen else "start"]
        with np.errstate(divide="ignore"):
            return np.log(row)


class FairBitsLM:
    """Case A: `n_bits` fair bits (EOS impossible before), then EOS with probability 1."""

    def __init__(self, n_bits: int = 5):
        self.n_bits = n_bits
        self.calls = 0

    def next_logits(self, prefix_ids):
        self.calls += 1
        if len(prefix_ids) >= self.n_bits:
            return np.array([NEG, NEG, 0.0])
        return np.array([math.log(0.5), math.log(0.5), NEG])


# the spec's case C bigram table over (a, b, c, EOS)
BIGRAM_C = {
    "start": [0.50, 0.30, 0.15, 0.05],
    0: [0.20, 0.50, 0.20, 0.10],
    1: [0.30, 0.30, 0.20, 0.20],
    2: [0.25, 0.25, 0.25, 0.25],
}


@dataclass
class ToyCase:
    name: str
    model: Any
    compiled: Any
    max_new_tokens: int
    description: str

    def sampler(self, policy: str = "asap", seed: int | None = None, **kw):
        from structgen.sampling.sampler import GrammarAlignedSampler

        return GrammarAlignedSampler(self.model, None, self.compiled, policy,
                                     max_new_tokens=self.max_new_tokens, seed=seed, **kw)


def abc_vocab():
    from structgen.vocab.vocabulary import Vocabulary

    return Vocabulary.from_token_bytes([b"a", b"b", b"c", None], eos_token_ids=[3])


def case(name: str) -> ToyCase:
    """Build spec case "A", "B", "C" or "D"."""
    import structgen
    from structgen.grammar.ir import And, Grammar, Regex

    name = name.upper()
    if name == "A":
        vocab = structgen.Vocabulary.from_token_bytes([b"0", b"1", None], eos_token_ids=[2])
        grammar = 'start: "00000" | "1" a a a a\na: "0" | "1"\n'
        return ToyCase("A", FairBitsLM(5), structgen.compile_lark(grammar, vocab), 6,
                       "skewed binary: 00000 | 1xxxx, 5 fair bits then EOS")
    vocab = abc_vocab()
    if name == "B":
        # a^n b^n | c within 6 tokens: a finite language, so the mask is exact and length-aware
        cg = structgen.compile_regex("ab|aabb|aaabbb|c", vocab)
        return ToyCase("B", BigramLM(BIGRAM_C, 4, 3, force_eos_at=6), cg, 7,
                       "a^n b^n | c, bigram LM, 6-token cap")
    if name == "C":
        # (ab|c)+ intersected with length <= 6: the exact length-aware viable-prefix mask
        g = Grammar({"start": And((Regex("(ab|c)+"), Regex("[abc]{1,6}")))})
        return ToyCase("C", BigramLM(BIGRAM_C, 4, 3, force_eos_at=6), structgen.compile_grammar(g, vocab), 7,
                       "(ab|c)+, bigram LM, 6-token cap (EOS forced)")
    if name == "D":
        return ToyCase("D", BigramLM(BIGRAM_C, 4, 3), structgen.compile_regex("(ab|c)+", vocab), 7,
                       "(ab|c)+, bigram LM never forces EOS, unbounded mask, max_new=7 (truncation)")
    raise ValueError(f"unknown case {name!r}")
