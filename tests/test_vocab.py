"""Vocabulary layer: exact token bytes per tokenizer family, built-ins, and the token trie."""
from __future__ import annotations

import base64
import importlib.util
import random
import time

import numpy as np
import pytest

from structgen.errors import VocabularyError
from structgen.vocab import TokenTrie, Vocabulary
from structgen.vocab.builtin import (
    TOY_BPE_SPECIAL,
    TOY_SP_CONTROL,
    TOY_SP_PIECES,
    load_builtin,
    toy_byte_bpe_hf_vocab,
)
from structgen.vocab.families import (
    BYTE_TO_UNICODE,
    UNICODE_TO_BYTE,
    byte_level_to_bytes,
    bytes_to_byte_level,
    sentencepiece_to_bytes,
)

HAVE_QUICKTOK = importlib.util.find_spec("quicktok") is not None
HAVE_TOKENIZERS = importlib.util.find_spec("tokenizers") is not None
needs_quicktok = pytest.mark.skipif(not HAVE_QUICKTOK, reason="quicktok-v1 is not installed")
needs_tokenizers = pytest.mark.skipif(not HAVE_TOKENIZERS, reason="tokenizers is not installed")


# --------------------------------------------------------------------------- byte-level table

def test_byte_to_unicode_table_is_a_bijection_of_printable_chars():
    assert len(BYTE_TO_UNICODE) == 256 and len(set(BYTE_TO_UNICODE.values())) == 256
    assert BYTE_TO_UNICODE[ord("A")] == "A" and BYTE_TO_UNICODE[ord("!")] == "!"
    assert BYTE_TO_UNICODE[ord(" ")] == "\u0120"   # 'Ġ'
    assert BYTE_TO_UNICODE[ord("\n")] == "\u010a"  # 'Ċ'
    assert BYTE_TO_UNICODE[0] == "\u0100" and BYTE_TO_UNICODE[0xAD] == "\u0143"
    assert all(c.isprintable() and not c.isspace() for c in BYTE_TO_UNICODE.values())
    assert {UNICODE_TO_BYTE[c] for c in BYTE_TO_UNICODE.values()} == set(range(256))


def test_byte_level_round_trip():
    data = bytes(range(256)) + " café 日本 🚀\n\t".encode()
    spelled = bytes_to_byte_level(data)
    assert byte_level_to_bytes(spelled) == data
    assert byte_level_to_bytes("\u0120world") == b" world"
    assert byte_level_to_bytes("Ã©") == "é".encode()
    # a character outside the table (an added token): its own UTF-8, as the HF decoder does
    assert byte_level_to_bytes("a b") == b"a b"


def test_sentencepiece_piece_bytes():
    assert sentencepiece_to_bytes("\u2581Hello") == b" Hello"
    assert sentencepiece_to_bytes("\u2581\u2581") == b"  "
    assert sentencepiece_to_bytes("<0x0A>") == b"\n"
    assert sentencepiece_to_bytes("<0xE6>") == b"\xe6"
    assert sentencepiece_to_bytes("<0xe6>") == b"\xe6"
    assert sentencepiece_to_bytes("<0x0A>", byte_fallback=False) == b"<0x0A>"
    assert sentencepiece_to_bytes("日本") == "日本".encode()
    assert sentencepiece_to_bytes("<0x0A0>") == b"<0x0A0>"


# --------------------------------------------------------------------------- toy vocabularies

def test_toy_sentencepiece_vocab(toy_sp_vocab):
    v = toy_sp_vocab
    assert v.size == len(TOY_SP_PIECES) + len(TOY_SP_CONTROL)
    assert v.eos_token_ids == (2,)
    assert v.token_bytes[0] is None and v.token_bytes[1] is None and v.token_bytes[2] is None
    assert [v.token_bytes[3 + b] for b in range(256)] == [bytes((b,)) for b in range(256)]
    idx = {p: i for i, p in enumerate(TOY_SP_PIECES)}
    assert v.token_bytes[idx["\u2581the"]] == b" the"
    assert v.token_bytes[idx["\u2581日本語"]] == " 日本語".encode()
    assert v.token_bytes[idx["\U0001f680"]] == "🚀".encode()
    assert v.token_bytes[idx["a"]] == v.token_bytes[3 + ord("a")] == b"a"  # two ids, same bytes
    assert all(v.token_bytes[i] is None for i in range(len(TOY_SP_PIECES), v.size))
    assert v.strips_leading_space and v.family == "sentencepiece"


def test_toy_byte_bpe_vocab(toy_bpe_vocab):
    v = toy_bpe_vocab
    assert [v.token_bytes[b] for b in range(256)] == [bytes((b,)) for b in range(256)]
    present = set(v.token_bytes)
    for tok in (b'":', b'",', b'{"', b"\xe6\x97", b"\x97\xa5", b"\xf0\x9f", "é".encode()):
        assert tok in present
    n_text = sum(b is not None for b in v.token_bytes)
    eos = v.eos_token_ids[0]
    assert eos == n_text and v.special_token_ids == tuple(range(eos, eos + len(TOY_BPE_SPECIAL)))
    assert v.size > eos + len(TOY_BPE_SPECIAL) and v.size % 32 != 0
    assert all(b is None for b in v.token_bytes[eos:])
    assert v.n_words == (v.size + 31) // 32


def test_small_vocab_matrix(small_vocab):
    assert small_vocab.eos_token_ids
    assert all(small_vocab.token_bytes[i] is None for i in small_vocab.special_token_ids)
    for data in (b'{"a": 1}', " café 日本 🚀".encode()):
        assert _greedy_tokenize(small_vocab, data) is not None  # every string is spellable


def _greedy_tokenize(vocab: Vocabulary, data: bytes) -> list[int] | None:
    lookup = {}
    for i, b in enumerate(vocab.token_bytes):
        if b is not None:
            lookup.setdefault(b, i)
    out, pos = [], 0
    longest = max(len(b) for b in lookup)
    while pos < len(data):
        for ln in range(min(longest, len(data) - pos), 0, -1):
            if data[pos:pos + ln] in lookup:
                out.append(lookup[data[pos:pos + ln]])
                pos += ln
                break
        else:
            return None
    return out


# --------------------------------------------------------------------------- Vocabulary core

def test_vocabulary_padding_and_specials():
    v = Vocabulary([b"a", b"b", b"<eos>", b""], eos_token_ids=[2], special_token_ids=[1], size=40)
    assert v.size == 40 and len(v) == 40 and v.n_words == 2
    assert v.token_bytes[:4] == [b"a", None, None, None]
    assert all(b is None for b in v.token_bytes[4:])
    with pytest.raises(VocabularyError):
        Vocabulary([b"a", b"b"], size=1)
    with pytest.raises(VocabularyError):
        Vocabulary([b"a"], eos_token_ids=[5])
    with pytest.raises(VocabularyError):
        Vocabulary(["a"])


# --------------------------------------------------------------------------- tiktoken

def _write_ranks(path, tokens):
    path.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(tokens)) + "\n")


def test_from_tiktoken_file(tmp_path):
    tokens = [bytes((b,)) for b in range(256)] + [b" the", b"\xe6\x97", b'":', b"\x00\x00"]
    f = tmp_path / "tiny.tiktoken"
    _write_ranks(f, tokens)
    eot = len(tokens) + 2  # a gap before the special id
    v = Vocabulary.from_tiktoken(f, special_tokens={"<|endoftext|>": eot}, eos_token_ids=[eot])
    assert v.size == eot + 1 and v.family == "tiktoken"
    assert v.token_bytes[:len(tokens)] == tokens
    assert v.token_bytes[len(tokens)] is None and v.token_bytes[eot] is None
    assert v.eos_token_ids == (eot,)
    v2 = Vocabulary.from_tiktoken(str(f), vocab_size=300)
    assert v2.size == 300 and v2.token_bytes[299] is None and v2.eos_token_ids == ()
    v3 = Vocabulary.from_tiktoken({t: i for i, t in enumerate(tokens)}, {"<eot>": 999}, [999])
    assert v3.size == 1000 and v3.token_bytes[256] == b" the"
    assert v.fingerprint != v2.fingerprint


@pytest.mark.parametrize("content", ["!!notbase64 0\n", "YQ== 0\nYQ== 1\n", "YQ==\n", "YQ== x\n"])
def test_from_tiktoken_rejects_malformed(tmp_path, content):
    f = tmp_path / "bad.tiktoken"
    f.write_text(content)
    with pytest.raises(VocabularyError):
        Vocabulary.from_tiktoken(f)


def test_from_tiktoken_rejects_collisions(tmp_path):
    with pytest.raises(VocabularyError):
        Vocabulary.from_tiktoken({b"a": 0, b"b": 0})
    with pytest.raises(VocabularyError):
        Vocabulary.from_tiktoken({b"a": 0, b"b": 1}, {"<s>": 1})
    with pytest.raises(VocabularyError):
        Vocabulary.from_tiktoken(tmp_path / "missing.tiktoken")


# --------------------------------------------------------------------------- built-ins (quicktok)

@needs_quicktok
def test_llama3_builtin_sizes_and_eos(llama3_vocab):
    v = llama3_vocab
    assert v.size == 128256 and v.n_words == 4008
    assert sum(b is not None for b in v.token_bytes) == 128000
    assert v.eos_token_ids == (128001, 128009)
    assert set(v.special_token_ids) == set(range(128000, 128256))
    assert all(v.token_bytes[i] is None for i in range(128000, 128256))
    assert load_builtin("llama3") is v  # memoized


@needs_quicktok
def test_llama3_builtin_matches_quicktok(llama3_vocab):
    import quicktok

    enc = quicktok.get_encoding("llama3")
    v = llama3_vocab
    assert all(enc.decode_single_token_bytes(i) == v.token_bytes[i] for i in range(128000))
    assert sorted(b for b in v.token_bytes if b) == enc.token_byte_values()  # (sorted by bytes)
    assert enc.encode_with_special("<|begin_of_text|><|end_of_text|><|eot_id|>") == [128000, 128001, 128009]
    text = ' {"name": "café 日本", "n": 12}\n'
    ids = enc.encode_ordinary(text)
    assert b"".join(v.token_bytes[i] for i in ids) == text.encode()
    assert enc.encode_ordinary("Hello world") == [9906, 1917]
    assert v.token_bytes[9906] == b"Hello" and v.token_bytes[1917] == b" world"
    assert v.token_bytes[enc.encode_single_token(b'":')] == b'":'


@needs_quicktok
@pytest.mark.parametrize("name,encoding,size,eos", [
    ("cl100k", "cl100k_base", 100277, (100257,)),
    ("o200k", "o200k_base", 200019, (199999,)),
    ("qwen3", "qwen3", 151669, (151643, 151645)),
])
def test_other_builtins(name, encoding, size, eos):
    import quicktok

    v = load_builtin(name)
    enc = quicktok.get_encoding(encoding)
    assert v.size == size == enc.n_vocab and v.eos_token_ids == eos
    assert enc.eot_token == eos[0]
    ids = enc.encode_ordinary("Hello, 世界! {\"k\": [1, 2]}")
    assert b"".join(v.token_bytes[i] for i in ids) == "Hello, 世界! {\"k\": [1, 2]}".encode()
    n_normal = sum(b is not None for b in v.token_bytes) - (12 if name == "qwen3" else 0)
    for i in range(0, n_normal, 997):
        assert v.token_bytes[i] == enc.decode_single_token_bytes(i)
    for i in range(n_normal, size):
        if v.token_bytes[i] is None:
            continue
        assert name == "qwen3" and enc.is_special_token(i)  # Qwen's text-like added tokens
        assert v.token_bytes[i] == enc.decode_single_token_bytes(i)


@needs_quicktok
def test_qwen3_text_added_tokens_and_padding():
    v = load_builtin("qwen3", vocab_size=151936)
    assert v.size == 151936 and all(b is None for b in v.token_bytes[151669:])
    assert v.token_bytes[151667] == b"<think>" and v.token_bytes[151657] == b"<tool_call>"
    assert v.token_bytes[151644] is None and v.token_bytes[151645] is None  # <|im_start|>, <|im_end|>
    assert load_builtin("qwen3", vocab_size=151936) is v


def test_unknown_builtin():
    with pytest.raises(VocabularyError):
        load_builtin("gpt5")


# --------------------------------------------------------------------------- from_hf (duck-typed)

class _Added:
    def __init__(self, content, special):
        self.content, self.special = content, special


class _FakeSlowTokenizer:
    """Just the attributes from_hf reads, the way a slow transformers tokenizer has them."""

    def __init__(self, pieces, *, specials=(), eos=None, added=None, **attrs):
        self._pieces = list(pieces)
        self.all_special_ids = list(specials)
        self.eos_token_id = eos
        self.added_tokens_decoder = {i: _Added(c, s) for i, (c, s) in (added or {}).items()}
        self.name_or_path = "fake"
        for k, val in attrs.items():
            setattr(self, k, val)

    def __len__(self):
        return len(self._pieces)

    def get_vocab(self):
        return {p: i for i, p in enumerate(self._pieces)}

    def convert_ids_to_tokens(self, ids):
        return [self._pieces[i] for i in ids]


class _FakeSpModel:
    def __init__(self, pieces, control, unknown):
        self.pieces, self.control, self.unknown = pieces, control, unknown

    def get_piece_size(self):
        return len(self.pieces)

    def IsControl(self, i):  # noqa: N802 (sentencepiece's names)
        return i in self.control

    def IsUnknown(self, i):  # noqa: N802
        return i in self.unknown

    def IsUnused(self, i):  # noqa: N802
        return False

    def IsByte(self, i):  # noqa: N802
        return self.pieces[i].startswith("<0x") and len(self.pieces[i]) == 6


def test_from_hf_slow_sentencepiece():
    pieces = list(TOY_SP_PIECES) + ["<think>", "<|im_end|>"]
    n = len(TOY_SP_PIECES)
    tok = _FakeSlowTokenizer(pieces, specials=[0, 1, 2, n + 1], eos=2,
                             added={n: ("<think>", False), n + 1: ("<|im_end|>", True)},
                             sp_model=_FakeSpModel(TOY_SP_PIECES, {1, 2}, {0}))
    v = Vocabulary.from_hf(tok, eos_token_ids=[n + 1], vocab_size=n + 10)
    assert v.family == "sentencepiece" and v.strips_leading_space
    assert v.size == n + 10 and v.eos_token_ids == (2, n + 1)
    assert v.token_bytes[:3] == [None, None, None]
    assert v.token_bytes[3 + 0x0A] == b"\n" and v.token_bytes[3 + 0xFF] == b"\xff"
    assert v.token_bytes[TOY_SP_PIECES.index("\u2581the")] == b" the"
    assert v.token_bytes[n] == b"<think>" and v.token_bytes[n + 1] is None
    assert all(b is None for b in v.token_bytes[n + 2:])


def test_from_hf_slow_byte_level():
    hf_vocab = toy_byte_bpe_hf_vocab()
    pieces = [p for p, _ in sorted(hf_vocab.items(), key=lambda kv: kv[1])] + ["<|endoftext|>", "<x>"]
    eot = len(pieces) - 2
    byte_decoder = {c: b for b, c in BYTE_TO_UNICODE.items()}
    tok = _FakeSlowTokenizer(pieces, specials=[eot], eos=eot, byte_decoder=byte_decoder,
                             added={eot: ("<|endoftext|>", True), eot + 1: ("<x>", False)})
    v = Vocabulary.from_hf(tok)
    assert v.family == "byte_level" and v.size == len(pieces)
    assert v.token_bytes[eot] is None and v.eos_token_ids == (eot,) and v.token_bytes[eot + 1] == b"<x>"
    for piece, i in hf_vocab.items():
        assert v.token_bytes[i] == byte_level_to_bytes(piece)
    # the same pieces without byte_decoder are recognised from the spelling alone
    del tok.byte_decoder
    assert Vocabulary.from_hf(tok).token_bytes == v.token_bytes


def test_from_hf_wordpiece_is_ambiguous():
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "##ing", "world", "##s", "."]
    tok = _FakeSlowTokenizer(pieces, specials=[0, 1, 2, 3], wordpiece_tokenizer=object())
    with pytest.raises(VocabularyError, match="ambiguous ids") as e:
        Vocabulary.from_hf(tok)
    assert "'hello'" in str(e.value) and "[PAD]" not in str(e.value)


def test_from_hf_plain_probe():
    class Plain(_FakeSlowTokenizer):
        def convert_tokens_to_string(self, toks):
            return "".join(toks)

    pieces = ["<eos>", "a", "b", "{", "}", "é"]
    v = Vocabulary.from_hf(Plain(pieces, specials=[0], eos=0))
    assert v.family == "plain" and v.token_bytes == [None, b"a", b"b", b"{", b"}", "é".encode()]

    class Spaced(_FakeSlowTokenizer):
        def convert_tokens_to_string(self, toks):
            return " ".join(toks)

    with pytest.raises(VocabularyError, match="ambiguous"):
        Vocabulary.from_hf(Spaced(pieces, specials=[0], eos=0))


# --------------------------------------------------------------------------- from_hf (real `tokenizers`)

class _FastWrapper:
    """What a transformers PreTrainedTokenizerFast exposes, over a real `tokenizers.Tokenizer`."""

    def __init__(self, backend, eos_token=None):
        self.backend_tokenizer = backend
        self.added_tokens_decoder = backend.get_added_tokens_decoder()
        self.all_special_ids = [i for i, t in self.added_tokens_decoder.items() if t.special]
        self.eos_token_id = backend.token_to_id(eos_token) if eos_token else None

    def __len__(self):
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self):
        return self.backend_tokenizer.get_vocab(with_added_tokens=True)

    def convert_ids_to_tokens(self, ids):
        return [self.backend_tokenizer.id_to_token(i) for i in ids]


def _byte_level_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tk = Tokenizer(models.BPE(vocab=toy_byte_bpe_hf_vocab(), merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    tk.add_tokens([AddedToken("<think>", special=False), AddedToken("  ", special=False)])
    return tk


@needs_tokenizers
def test_from_hf_fast_byte_level():
    tk = _byte_level_tokenizer()
    tok = _FastWrapper(tk, "<|endoftext|>")
    v = Vocabulary.from_hf(tok, vocab_size=400)
    eot, think, spaces = (tk.token_to_id(t) for t in ("<|endoftext|>", "<think>", "  "))
    assert v.family == "byte_level" and v.size == 400 and v.eos_token_ids == (eot,)
    assert v.token_bytes[eot] is None and v.token_bytes[think] == b"<think>" and v.token_bytes[spaces] == b"  "
    assert all(b is None for b in v.token_bytes[spaces + 1:])
    text = ' {"name": "café 日本 🚀"}\n\t'
    ids = tk.encode(text).ids
    assert b"".join(v.token_bytes[i] for i in ids) == text.encode()
    for i in range(0, spaces + 1):  # token by token, exactly what the real decoder produces
        if v.token_bytes[i] is not None and i != eot:
            assert tk.decode([i], skip_special_tokens=False) == v.token_bytes[i].decode("utf-8", "replace")
    # a bare tokenizers.Tokenizer works too (no eos known: pass it)
    v2 = Vocabulary.from_hf(tk, eos_token_ids=[eot])
    assert v2.token_bytes == v.token_bytes[:v2.size] and v2.eos_token_ids == (eot,)


def _sentencepiece_tokenizer(decoder="llama"):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    pieces = [(p, -float(len(p))) for p in TOY_SP_PIECES]
    tk = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    if decoder == "llama":
        tk.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                        decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    else:
        tk.decoder = decoders.Sequence([decoders.Metaspace(), decoders.ByteFallback(), decoders.Fuse()])
    tk.add_special_tokens([AddedToken(t, special=True) for t in ("<unk>", "<s>", "</s>", *TOY_SP_CONTROL)])
    return tk


@needs_tokenizers
@pytest.mark.parametrize("decoder", ["llama", "metaspace"])
def test_from_hf_fast_sentencepiece(decoder):
    tk = _sentencepiece_tokenizer(decoder)
    v = Vocabulary.from_hf(_FastWrapper(tk, "</s>"))
    assert v.family == "sentencepiece" and v.strips_leading_space and v.eos_token_ids == (2,)
    assert v.token_bytes[:3] == [None, None, None]
    assert v.token_bytes[3 + 0x41] == b"A" and v.token_bytes[3 + 0xE6] == b"\xe6"
    text = 'Hello world {"name": "café 日本語 ∑"}\nok'  # '∑' and '\n' need byte fallback
    ids = tk.encode(text).ids
    assert any(3 <= i < 259 for i in ids)
    joined = b"".join(v.token_bytes[i] for i in ids)
    assert joined == b" " + text.encode()  # the dummy prefix stays in the token bytes
    assert tk.decode(ids) == text        # ... and decode() drops it
    assert v.token_bytes[tk.token_to_id("<|im_end|>")] is None


@needs_tokenizers
def test_from_hf_fast_context_dependent_decoders_raise():
    from tokenizers import Tokenizer, decoders, models

    vocab = {"[UNK]": 0, "hello": 1, "##ing": 2, "world": 3}
    tk = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tk.decoder = decoders.WordPiece()
    with pytest.raises(VocabularyError, match="WordPiece.*ambiguous ids"):
        Vocabulary.from_hf(tk)
    tk2 = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))  # no decoder: space-joined
    with pytest.raises(VocabularyError, match="ambiguous ids"):
        Vocabulary.from_hf(tk2)


# --------------------------------------------------------------------------- trie

def _reference_trie(token_bytes):
    """Straightforward dict-of-children trie flattened in DFS order with sorted children."""
    root: dict = {}
    for i, b in enumerate(token_bytes):
        if not b:
            continue
        node = root
        for c in b:
            node = node.setdefault(c, {})
        node.setdefault(None, []).append(i)
    byte, depth, end, toks, sub = [], [], [], [], []

    def visit(node, c, d):
        me = len(byte)
        byte.append(c)
        depth.append(d)
        end.append(0)
        toks.append(sorted(node.get(None, [])))
        sub.append(set())
        for k in sorted(k for k in node if k is not None):
            child = visit(node[k], k, d + 1)
            sub[me] |= {k} | sub[child]
        end[me] = len(byte)
        return me

    visit(root, 0, 0)
    return byte, depth, end, toks, sub


def _bitset(arr_row):
    return {w * 64 + b for w in range(4) for b in range(64) if int(arr_row[w]) >> b & 1}


def _check_trie(token_bytes):
    t = TokenTrie.build(token_bytes)
    byte, depth, end, toks, sub = _reference_trie(token_bytes)
    assert t.n_nodes == len(byte)
    assert t.byte.dtype == np.uint8 and t.depth.dtype == np.int32 and t.subtree_end.dtype == np.int32
    assert t.tok_start.dtype == np.int32 and t.tok_ids.dtype == np.int32 and t.subtree_bytes.dtype == np.uint64
    assert t.subtree_bytes.shape == (len(byte), 4) and t.tok_start.shape == (len(byte) + 1,)
    assert t.byte[1:].tolist() == byte[1:] and t.depth.tolist() == depth and t.subtree_end.tolist() == end
    assert [t.tok_ids[t.tok_start[n]:t.tok_start[n + 1]].tolist() for n in range(t.n_nodes)] == toks
    assert [_bitset(t.subtree_bytes[n]) for n in range(t.n_nodes)] == sub
    # every token is reachable by walking its bytes with the documented child rule
    for i, b in enumerate(token_bytes):
        if not b:
            continue
        node = 0
        for c in b:
            child = node + 1
            while child < t.subtree_end[node] and t.byte[child] != c:
                child = t.subtree_end[child]
            assert child < t.subtree_end[node], (i, b)
            node = child
        assert i in t.tok_ids[t.tok_start[node]:t.tok_start[node + 1]]
    return t


def test_trie_on_toy_vocabs(small_vocab):
    t = _check_trie(small_vocab.token_bytes)
    assert small_vocab.trie.n_nodes == t.n_nodes


def test_trie_random_and_edge_cases():
    rng = random.Random(7)
    alphabet = b"ab\x00\xff"
    toks = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)]
    toks += [None, b"", b"a", b"a", b"\x00", b"a\x00"]
    _check_trie(toks)
    # long tokens sharing 8-byte chunks, differing late or only by trailing NULs
    long_toks = [bytes(rng.choice(b"a\x00") for _ in range(rng.randint(1, 20))) for _ in range(300)]
    _check_trie(long_toks + [b"a" * 17, b"a" * 17 + b"\x00", b"a" * 16, b"a" * 8 + b"\x00" * 9])
    _check_trie([b"abc"])
    t = _check_trie([None, b""])
    assert t.n_nodes == 1 and t.subtree_end.tolist() == [1] and t.tok_ids.size == 0


@needs_quicktok
def test_trie_llama3(llama3_vocab):
    start = time.perf_counter()
    t = TokenTrie.build(llama3_vocab.token_bytes)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.5, f"trie build took {elapsed:.2f}s"
    prefixes = {b[:k] for b in llama3_vocab.token_bytes if b for k in range(1, len(b) + 1)}
    assert t.n_nodes == len(prefixes) + 1
    assert t.tok_ids.size == 128000 and np.array_equal(np.sort(t.tok_ids), np.arange(128000))
    # subtree ranges nest: a node's range holds exactly the nodes deeper than it until the next one
    n = np.arange(t.n_nodes)
    assert np.all(t.subtree_end > n) and t.subtree_end[0] == t.n_nodes
    last = t.subtree_end - 1
    assert np.all(t.depth[last] >= t.depth)
    nxt = t.subtree_end[t.subtree_end < t.n_nodes]
    assert np.all(t.depth[nxt] <= t.depth[t.subtree_end < t.n_nodes])
    root_bytes = _bitset(t.subtree_bytes[0])
    assert root_bytes == {c for b in llama3_vocab.token_bytes if b for c in b}
