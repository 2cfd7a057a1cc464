"""Masks checked bit for bit against the Earley oracle, over the small-vocabulary matrix.

For each grammar, random walks pick allowed tokens; at every step the engine's allowed set
must equal the brute-force set (token t allowed iff prefix + bytes(t) is a viable prefix;
EOS iff the prefix is complete).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import structgen
from structgen.grammar.ir import Alt, And, Chars, Grammar, Not, Ref, Regex, Repeat, alt, chars, lit, repeat, seq
from structgen.grammar.lark_frontend import lark_to_ir
from structgen.grammar.builtin import load_builtin_grammar
from tests.oracle import brute_force_mask, oracle_for

REGEXES = [
    r"[a-c]+",
    r"(ab|c)+",
    r"\d{1,3}(\.\d+)?",
    r"[^\"\\]*",
    r"héllo|h.llo wörld",
    r"[\u0400-\u04ff]{1,4}x",
    r'"([^"\\]|\\.)*"',
    r"(a|b)*abb",
    r"[a-z]{2,5}\s?[0-9]*",
    r"\{\"a\": (true|false)\}",
]

LARK = {
    "left_recursive": r"""
        start: expr
        ?expr: expr "+" term | expr "-" term | term
        ?term: term "*" atom | atom
        ?atom: NUMBER | "(" expr ")" | "-" atom
        %import common.NUMBER
        %import common.WS
        %ignore WS
    """,
    "ambiguous": r"""
        start: e
        e: e e | "a" | "(" e ")" | "b"?  "c"
    """,
    "nullable_mix": r"""
        start: x* "!" y?
        x: "a" | "b" x? | "c" y
        y: ("d" | "e")* "f"
    """,
}

IR = {
    "and_not": Grammar({"start": seq(lit("k"), And((repeat(chars("ac"), 1, 6), Not(seq(repeat(chars("ac")), lit("bb"), repeat(chars("ac")))))))}),
    "nested_calls": Grammar({
        "start": seq(Ref("v")),
        "v": alt(lit("a"), seq(lit("["), Ref("items"), lit("]"))),
        "items": alt(lit(""), seq(Ref("v"), repeat(seq(lit(","), Ref("v"))))),
    }),
    "utf8": Grammar({"start": repeat(alt(chars((0x41, 0x5A)), chars((0xE9, 0xE9)), chars((0x4E00, 0x4E10)), chars((0x1F600, 0x1F602))), 1, 8)}),
}


def _grammars():
    out = []
    for p in REGEXES:
        out.append((f"re:{p}", Grammar({"start": Regex(p)})))
    for name, text in LARK.items():
        out.append((f"lark:{name}", lark_to_ir(text)))
    for name in ["json", "arithmetic"]:
        out.append((f"builtin:{name}", lark_to_ir(load_builtin_grammar(name))))
    for name, g in IR.items():
        out.append((f"ir:{name}", g))
    return out


GRAMMARS = _grammars()


def _walk_and_compare(g: Grammar, vocab, seed: int, walks: int = 6, steps: int = 10, **compile_kw):
    cg = structgen.compile_grammar(g, vocab, **compile_kw)
    oracle = oracle_for(g)
    rng = random.Random(seed)
    m = cg.matcher()
    bitmask = structgen.allocate_token_bitmask(1, vocab.size)
    for _ in range(walks):
        m.reset()
        prefix = b""
        for _ in range(steps):
            m.fill_next_token_bitmask(bitmask)
            got = set(structgen.bitmask_to_token_ids(bitmask[0], vocab.size).tolist())
            want = brute_force_mask(oracle, prefix, vocab)
            assert got == want, (prefix, sorted(got - want)[:10], sorted(want - got)[:10])
            assert m.is_accepting() == oracle.accepts(prefix)
            choices = sorted(got - set(vocab.eos_token_ids))
            if not choices:
                break
            t = rng.choice(choices)
            assert m.accept_token(t)
            prefix += vocab.token_bytes[t]


@pytest.mark.parametrize("name,g", GRAMMARS, ids=[n for n, _ in GRAMMARS])
def test_masks_match_oracle(name, g, small_vocab):
    _walk_and_compare(g, small_vocab, seed=hash(name) & 0xFFFF)


@pytest.mark.parametrize("name,g", GRAMMARS, ids=[n for n, _ in GRAMMARS])
def test_random_sentences_accepted(name, g, toy_bpe_vocab):
    """Every string of the language is accepted byte for byte and ends accepting."""
    from tests.oracle import random_sentence

    cg = structgen.compile_grammar(g, toy_bpe_vocab)
    rng = random.Random(1)
    for _ in range(15):
        s = random_sentence(g, rng, max_depth=6)
        m = cg.matcher()
        assert m.accept_string(s), s
        assert m.is_accepting(), s
