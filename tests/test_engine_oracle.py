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
    # longest match matters: with Lark's dynamic lexer "ab" is one WORD, never WORD + ALNUM
    "longest_match": r"""
        start: WORD "-"? ALNUM ("," WORD)*
        WORD: /[a-c]+/
        ALNUM: /[a-c0-9]+/
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
    out.append(("lark-complete:longest_match", lark_to_ir(LARK["longest_match"], lexer="dynamic_complete")))
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


CALLING = [(n, g) for n, g in GRAMMARS if n.startswith(("lark", "builtin", "ir:nested"))]


@pytest.mark.parametrize("name,g", CALLING, ids=[n for n, _ in CALLING])
def test_precomputed_rows_match_oracle(name, g, small_vocab):
    """Everything precomputed (state rows, then continuation rows by stack shape) and nothing
    precomputed must both give the oracle's masks."""
    cg = structgen.compile_grammar(g, small_vocab, cache=False, precompute_budget_s=60)
    assert any(isinstance(k, tuple) for k in cg._state_cache) or not cg.tables.has_calls
    _walk_and_compare(g, small_vocab, seed=7, cache=False, precompute_budget_s=60)
    _walk_and_compare(g, small_vocab, seed=7, cache=False, precompute_budget_s=0)


@pytest.mark.parametrize("name,g", GRAMMARS, ids=[n for n, _ in GRAMMARS])
def test_random_sentences_accepted(name, g, toy_bpe_vocab):
    """Every string of the language is accepted byte for byte and ends accepting."""
    from tests.oracle import random_sentence

    cg = structgen.compile_grammar(g, toy_bpe_vocab)
    rng = random.Random(1)
    oracle = oracle_for(g)
    for _ in range(15):
        s = random_sentence(g, rng, max_depth=6)
        if g.greedy and not oracle.accepts(s):
            continue  # the sentence generator ignores longest match
        m = cg.matcher()
        assert m.accept_string(s), s
        assert m.is_accepting(), s


def test_longest_match_changes_the_language(small_vocab):
    """Lark's dynamic lexer: WORD cannot end before a letter, so "ab" alone is incomplete."""
    greedy = structgen.compile_lark(LARK["longest_match"], small_vocab)
    complete = structgen.compile_lark(LARK["longest_match"], small_vocab, lexer="dynamic_complete")
    for cg, ends in ((greedy, False), (complete, True)):
        m = cg.matcher()
        assert m.accept_string("ab")
        assert m.is_accepting() is ends
        assert m.accept_string("1") and m.is_accepting()
    m = greedy.matcher()
    assert not m.accept_string("ab,c")  # "ab" cannot be WORD "a" + ALNUM "b"
    assert complete.matcher().accept_string("ab,c")
    with pytest.raises(structgen.errors.GrammarError):
        structgen.compile_lark(LARK["longest_match"], small_vocab, lexer="basic")


def test_longest_match_dead_end_is_warned(small_vocab):
    stuck = structgen.compile_lark('start: INT INT\nINT: /[0-9]+/\n', small_vocab, cache=False)
    assert any("__lex__INT" in w and "longest match" in w for w in stuck.warnings)
    for text in ('start: INT INT\nINT: /[0-9]+/\n%ignore " "\n', 'start: INT "x"? INT\nINT: /[0-9]+/\n'):
        assert structgen.compile_lark(text, small_vocab, cache=False).warnings == []
    assert structgen.compile_lark('start: INT INT\nINT: /[0-9]+/\n', small_vocab, cache=False,
                                  lexer="dynamic_complete").warnings == []
