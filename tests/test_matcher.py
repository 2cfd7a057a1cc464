"""Matcher API, EOS rules, rollback, jump-forward, error paths and the real Llama-3 vocabulary."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

import structgen
import structgen.automata.compiled as C
from structgen.errors import GrammarError, LimitExceeded, RegexSyntaxError, UnsupportedRegex
from structgen.grammar.builtin import load_builtin_grammar
from structgen.grammar.ir import Grammar, Ref, alt, lit, seq
from structgen.vocab import Vocabulary


def tiny_vocab(tokens, eos=True):
    toks = [t.encode() if isinstance(t, str) else t for t in tokens]
    return Vocabulary(toks + ([None] if eos else []), eos_token_ids=[len(toks)] if eos else [], size=len(toks) + 40)


def allowed(m):
    return {m.compiled.vocab.token_bytes[i] if m.compiled.vocab.token_bytes[i] is not None else "EOS"
            for i in m.allowed_token_ids().tolist()}


def test_eos_only_when_complete_and_padding_masked():
    v = tiny_vocab(["a", "b", "ab", "c"])
    m = structgen.compile_regex("ab?", v).matcher()
    assert allowed(m) == {b"a", b"ab"}
    assert m.accept_token(0)
    assert allowed(m) == {b"b", "EOS"}
    assert m.is_accepting() and not m.is_terminated()
    ids = m.allowed_token_ids()
    assert ids.max() < 5  # padding ids (5..44) never allowed
    assert m.accept_token(4) and m.is_terminated()
    assert not m.accept_token(1)
    assert m.allowed_token_ids().size == 0


def test_rejected_token_leaves_state_unchanged_and_rollback():
    v = tiny_vocab(["a", "b", "c", "ab"])
    m = structgen.compile_regex("(ab|c)+", v).matcher()
    assert not m.accept_token(1)
    assert m.accept_token(0) and m.accept_token(1) and m.accept_token(2)
    before = allowed(m)
    assert m.accept_token(3)
    m.rollback(1)
    assert allowed(m) == before
    m.rollback(3)
    assert allowed(m) == {b"a", b"c", b"ab"}
    with pytest.raises(structgen.errors.StructgenError):
        m.rollback(1)
    assert m.accept_tokens([0, 1, 4]) and m.is_terminated()
    m.rollback(1)
    assert not m.is_terminated() and m.is_accepting()


def test_rollback_equivalence_random(small_vocab):
    cg = structgen.compile_lark(load_builtin_grammar("json"), small_vocab)
    rng = random.Random(3)
    m = cg.matcher()
    masks = [m.next_token_mask().copy()]
    for _ in range(12):
        choices = [t for t in m.allowed_token_ids().tolist() if t not in small_vocab.eos_token_ids]
        if not choices:
            break
        assert m.accept_token(rng.choice(choices))
        masks.append(m.next_token_mask().copy())
    for k in range(len(masks) - 1, 0, -1):
        m.rollback(1)
        assert np.array_equal(m.next_token_mask(), masks[k - 1])


def test_multibyte_character_split_across_tokens():
    e_acute = "é".encode()  # c3 a9
    v = tiny_vocab([b"\xc3", b"\xa9", b"x", b"\xc3\xa9x", b"\xa9x"])
    m = structgen.compile_regex("(é|x)+", v).matcher()
    assert allowed(m) == {b"\xc3", b"x", b"\xc3\xa9x"}
    assert m.accept_token(0)
    assert allowed(m) == {b"\xa9", b"\xa9x"}  # no EOS mid-character
    assert m.accept_token(4) and m.is_accepting()
    assert e_acute == b"\xc3\xa9"


def test_tokens_spanning_terminals_and_ignore_at_edges():
    v = tiny_vocab([" ", "1", "+", " 1", "1 +", "+ ", "  ", "1+1"])
    cg = structgen.compile_lark('start: NUM ("+" NUM)*\nNUM: /[0-9]/\n%ignore " "', v)
    m = cg.matcher()
    assert m.accept_string("  1 + 1  ") and m.is_accepting()
    m = cg.matcher()
    assert allowed(m) == {b" ", b"1", b" 1", b"1 +", b"  ", b"1+1"}
    assert m.accept_token(4)   # "1 +" spans NUM, ignore, "+"
    assert allowed(m) == {b" ", b"1", b" 1", b"  ", b"1 +", b"1+1"}
    assert m.accept_token(7)   # "1+1"
    assert "EOS" in allowed(m)


def test_jump_forward_bytes():
    v = tiny_vocab(list("abcdefghijklmnopqrstuvwxyz{}\":, "))
    m = structgen.compile_regex(r'\{"name": "[a-z]+", "kind": "(cat|cow)"\}', v).matcher()
    assert m.jump_forward_bytes() == b'{"name": "'
    assert m.accept_string(b'{"name": "x')
    assert m.jump_forward_bytes() == b""
    assert m.accept_string(b'", "kind": "c')
    assert m.jump_forward_bytes() == b""
    assert m.accept_string(b"a")
    assert m.jump_forward_bytes() == b't"}'


def test_batch_fill():
    v = tiny_vocab(["a", "b"])
    ms = [structgen.compile_regex("a+", v).matcher(), None, structgen.compile_regex("b", v).matcher()]
    bm = structgen.allocate_token_bitmask(3, v.size)
    bm[:] = 0
    structgen.fill_next_token_bitmasks(ms, bm)
    assert structgen.bitmask_to_token_ids(bm[0], v.size).tolist() == [0]
    assert bm[1].tolist() == [-1] * bm.shape[1]
    assert structgen.bitmask_to_token_ids(bm[2], v.size).tolist() == [1]


@pytest.mark.parametrize("pattern,construct", [(r"a(?=b)", "look"), (r"(a)\1", "backreference"), (r"\bx", r"\b")])
def test_unsupported_regex_names_construct(pattern, construct):
    v = tiny_vocab(["a", "b"])
    with pytest.raises(UnsupportedRegex) as ei:
        structgen.compile_regex(pattern, v)
    assert ei.value.position is not None


def test_regex_syntax_error():
    with pytest.raises(RegexSyntaxError):
        structgen.compile_regex("a(b", tiny_vocab(["a"]))


def test_state_explosion_is_a_clear_error_not_a_hang():
    v = tiny_vocab(["a", "b"])
    with pytest.raises(LimitExceeded):
        structgen.compile_regex("(a|b)*a(a|b){18}", v, max_states=5000)


def test_grammar_errors():
    v = tiny_vocab(["a"])
    with pytest.raises(GrammarError):
        structgen.compile_grammar(Grammar({"start": Ref("missing")}), v)
    with pytest.raises(GrammarError):  # empty language
        structgen.compile_grammar(Grammar({"start": seq(lit("a"), Ref("start"))}), v)
    with pytest.raises(GrammarError):
        structgen.compile_lark("start: UNDEFINED_TERM", v)


def test_left_recursion_and_ambiguity_accept_long_inputs():
    v = tiny_vocab(["1", "+", "*", "(", ")"])
    g = Grammar({"e": alt(seq(Ref("e"), lit("+"), Ref("e")), seq(Ref("e"), lit("*"), Ref("e")), lit("1"),
                          seq(lit("("), Ref("e"), lit(")")))}, "e")
    m = structgen.compile_grammar(g, v).matcher()
    text = "+".join(["1*(1+1)"] * 12)
    assert m.accept_string(text) and m.is_accepting()


def test_llama3_vocabulary_real_tokens(llama3_vocab):
    quicktok = pytest.importorskip("quicktok")
    enc = quicktok.get_encoding("llama3")
    cg = structgen.compile_lark(load_builtin_grammar("json"), llama3_vocab)
    text = '{"name": "Zoë", "tags": ["α", "β"], "n": -1.5e3, "ok": [true, false, null]}'
    m = cg.matcher()
    bm = structgen.allocate_token_bitmask(1, llama3_vocab.size)
    for tok in enc.encode(text):
        m.fill_next_token_bitmask(bm)
        assert (bm[0, tok >> 5] >> (tok & 31)) & 1
        assert m.accept_token(tok)
    assert m.is_accepting()
    m.fill_next_token_bitmask(bm)
    ids = set(structgen.bitmask_to_token_ids(bm[0]).tolist())
    assert set(llama3_vocab.eos_token_ids) <= ids
    assert not ids & (set(llama3_vocab.special_token_ids) - set(llama3_vocab.eos_token_ids))


def test_string_slice_is_used_and_exact(toy_bpe_vocab):
    """Inside a JSON string the slice row is OR-ed in; the mask still equals the oracle's."""
    from structgen.grammar.ir import Grammar, Regex
    from tests.oracle import brute_force_mask, oracle_for

    g = Grammar({"start": Regex(r'"([^"\\\x00-\x1f]|\\["\\/bfnrtu])*"[,}]')})
    cg = structgen.compile_grammar(g, toy_bpe_vocab, precompute_budget_s=0, cache=False)
    m = cg.matcher()
    assert m.accept_string('"ab')
    (state, _), = m._configs
    assert cg.state_mask(state).slice_k == C.FULL_SLICE
    got = set(m.allowed_token_ids().tolist())
    assert got == brute_force_mask(oracle_for(g), b'"ab', toy_bpe_vocab)


@pytest.mark.parametrize("pattern", [r'"[^"\\\x00-\x1f]{2,12}"', r'"[^"\\\x00-\x1f]{0,40}"x?'])
def test_bounded_string_slice_is_exact(pattern, small_vocab):
    """A maxLength-style string takes the slice strings of at most k characters in one go; the
    masks along random walks (multi-byte characters included) still equal the oracle's."""
    from structgen.grammar.ir import Grammar, Regex
    from tests.test_engine_oracle import _walk_and_compare

    g = Grammar({"start": Regex(pattern)})
    cg = structgen.compile_grammar(g, small_vocab, precompute_budget_s=0, cache=False)
    m = cg.matcher()
    assert m.accept_string('"ab')
    (state, _), = m._configs
    assert 2 <= cg.state_mask(state).slice_k < C.FULL_SLICE
    _walk_and_compare(g, small_vocab, seed=3, walks=4, steps=16, precompute_budget_s=0, cache=False)


@pytest.mark.parametrize("pattern,prefix", [
    (r'"[^,"\\\x00-\x1f]{0,9}"', '"ab'),      # a pattern class with a maxLength: a class slice, bounded and exact
    (r'"[a-z0-9._%+-]+@[a-z]+"', '"ab'),          # an email-like local part: a class slice it loops on
    (r'"(?:[^"\\\x00-\x1f]|\\.){0,5}"', '"abc'),  # near a maxLength: exact bound, rejected subtrees skipped
])
def test_class_slices_are_exact(pattern, prefix, small_vocab):
    """A state's own character class becomes a slice (built per vocabulary); with an exact
    bound the walk also skips subtrees it rejects. Masks along random walks equal the oracle's."""
    from structgen.grammar.ir import Grammar, Regex
    from tests.test_engine_oracle import _walk_and_compare

    g = Grammar({"start": Regex(pattern)})
    cg = structgen.compile_grammar(g, small_vocab, precompute_budget_s=0, cache=False)
    m = cg.matcher()
    assert m.accept_string(prefix)
    (state, _), = m._configs
    assert cg.state_mask(state).slice is not None
    _walk_and_compare(g, small_vocab, seed=7, walks=4, steps=14, precompute_budget_s=0, cache=False)


def test_suffix_trie_holds_each_exit_token_once_under_its_suffix(small_vocab):
    """Every token that leaves the JSON-string slice sits in the slice's suffix trie exactly
    once, at the node spelling its text from the first byte outside the slice."""
    from structgen.automata.slices import JSON_STRING_BODY, build_slice

    sl = build_slice("json", JSON_STRING_BODY, small_vocab)
    st = sl.suffixes
    assert st is not None
    path = [b""] * len(st.byte)
    open_nodes: list[int] = []
    for i in range(1, len(st.byte)):
        while open_nodes and st.subtree_end[open_nodes[-1]] <= i:
            open_nodes.pop()
        path[i] = (path[open_nodes[-1]] if open_nodes else b"") + bytes([st.byte[i]])
        open_nodes.append(i)
    at = [(int(t), path[i]) for i in range(len(st.byte)) for t in st.tok_ids[st.tok_start[i]:st.tok_start[i + 1]]]
    where = dict(at)
    assert len(where) == len(at)  # once each
    leaving = [t for t, b in enumerate(small_vocab.token_bytes) if b and sl.tok_chars[t] < 0]
    assert sorted(where) == leaving
    for t in leaving:
        text = small_vocab.token_bytes[t]
        cut = len(text) - len(where[t])
        assert text[cut:] == where[t]
        assert not any(b in (0x22, 0x5C) or b < 0x20 for b in text[:cut])  # slice text before the cut


def test_exit_root_walks_only_for_states_that_loop_back():
    """A state that loops on the whole JSON-string slice walks from the slice's exit nodes
    only; one that merely contains the slice (here "a" leads elsewhere) must walk from the
    root: `a"y` is allowed only through the state after "a"."""
    tokens = [bytes([b]) for b in range(256)] + [b'a"y', b'a"z', b'bc"z']
    vocab = Vocabulary.from_token_bytes(tokens)
    ids = {t: i for i, t in enumerate(tokens)}
    for pattern, allowed, blocked in [
        (r'a"y|[^"\\\x00-\x1f]*"z', [b'a"y', b'a"z', b'bc"z'], []),  # contains the slice
        (r'[^"\\\x00-\x1f]*"z', [b'a"z', b'bc"z'], [b'a"y']),       # loops back on it
    ]:
        cg = structgen.compile_regex(pattern, vocab, precompute_budget_s=0, cache=False)
        plain = C.CompiledGrammar(cg.tables, vocab, use_slices=False)
        start = cg.initial_configs()[0][0]
        assert cg.state_mask(start).slice_k == C.FULL_SLICE
        mask, plain_mask = cg.matcher().next_token_mask(), plain.matcher().next_token_mask()
        assert np.array_equal(mask, plain_mask), pattern
        for t, want in [(t, True) for t in allowed] + [(t, False) for t in blocked]:
            assert bool(mask[ids[t] >> 5] >> (ids[t] & 31) & 1) == want, (pattern, t)


def test_exit_root_walks_skip_states_that_may_end_their_frame():
    """A frame that loops on slice text but may end anywhere in it (here before the "q" of
    `bq"`) is walked from the root: the exits inside slice text count."""
    from structgen.automata.slices import JSON_STRING_BODY
    from structgen.grammar.ir import Repeat

    tokens = [bytes([b]) for b in range(256)] + [b'bq"']
    vocab = Vocabulary.from_token_bytes(tokens)
    g = Grammar({"start": seq(Ref("w"), lit('q"')), "w": Repeat(JSON_STRING_BODY, 0, None)}, "start",
                frames=frozenset({"w"}))
    cg = structgen.compile_grammar(g, vocab, precompute_budget_s=0, cache=False)
    plain = C.CompiledGrammar(cg.tables, vocab, use_slices=False)
    fast, slow = cg.matcher(), plain.matcher()
    assert fast.accept_string("a") and slow.accept_string("a")
    (state, stack), = fast._configs
    assert stack and cg.state_mask(state).slice_k == C.FULL_SLICE  # inside the frame, on the slice
    assert np.array_equal(fast.next_token_mask(), slow.next_token_mask())
    assert fast.next_token_mask()[256 >> 5] >> (256 & 31) & 1


def test_slices_do_not_change_llama3_masks(llama3_vocab):
    """With the real vocabulary, masks with slices (JSON body, class slices, exact bounds)
    equal plain trie walks along valid instances of string-heavy schemas."""
    quicktok = pytest.importorskip("quicktok")
    enc = quicktok.get_encoding("llama3")
    cases = [
        ({"type": "string", "pattern": '^[^,"]+$', "maxLength": 40}, "Doe; Jane Doe-Smith"),
        ({"type": "string", "minLength": 36, "maxLength": 36}, "12345678-1234-1234-1234-123456789012"),
        ({"type": "string", "format": "email"}, "john.doe+tag@example.com"),
        ({"type": "object", "properties": {"code": {"type": "string", "maxLength": 8}}}, {"code": "5.1.1"}),
    ]
    for schema, value in cases:
        cg = structgen.compile_json_schema(schema, llama3_vocab, cache=False)
        plain = C.CompiledGrammar(cg.tables, llama3_vocab, use_slices=False)
        fast, slow = cg.matcher(), plain.matcher()
        for tok in enc.encode(json.dumps(value)):
            assert np.array_equal(fast.next_token_mask(), slow.next_token_mask()), (schema, fast.num_tokens)
            assert fast.accept_token(tok) and slow.accept_token(tok)
        assert np.array_equal(fast.next_token_mask(), slow.next_token_mask())


def test_exit_heavy_states_use_full_walk_and_stay_exact(toy_bpe_vocab, monkeypatch):
    """With a tiny exit budget every context-dependent state takes the full-walk path."""
    import structgen.automata.compiled as C
    from structgen.grammar.lark_frontend import lark_to_ir
    from tests.test_engine_oracle import _walk_and_compare

    monkeypatch.setattr(C, "MAX_EXITS", 1)
    g = lark_to_ir(load_builtin_grammar("json"))
    _walk_and_compare(g, toy_bpe_vocab, seed=5, walks=1, steps=12, precompute_budget_s=0, cache=False)


def test_pathologically_deep_grammar_is_a_limit_not_a_crash(small_vocab):
    from structgen.grammar.ir import Alt, Lit, Seq

    deep = Lit(b"x")
    for _ in range(5000):  # raw constructors: the folding helpers would compare deep trees
        deep = Alt((Lit(b"a"), Seq((Lit(b"("), deep, Lit(b")")))))
    with pytest.raises(LimitExceeded):
        structgen.compile_grammar(Grammar({"start": deep}), small_vocab, cache=False)
