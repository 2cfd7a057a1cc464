"""Bundled vocabularies: real ones read from the `quicktok-v1` package's data files, and small
synthetic ones (SentencePiece-style, byte-level-BPE-style) for tests.

quicktok data layout (little-endian, found by inspection and checked against quicktok's own
`token_byte_values()` / `decode_single_token_bytes()` in the tests):

- `<name>.vocab`:   u32 count, then count x (u16 length, `length` raw bytes, u32 rank);
- `<name>.special`: u32 count, then count x (u32 id, u16 length, `length` UTF-8 bytes).

The rank of an ordinary token is its id; special ids follow (with gaps, e.g. cl100k).
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

from structgen.errors import VocabularyError
from structgen.vocab.families import bytes_to_byte_level, sentencepiece_to_bytes
from structgen.vocab.vocabulary import Vocabulary

# name -> (quicktok file stem, EOS token strings, special strings that are ordinary text).
# Qwen's tokenizer marks its tool/think/FIM tokens "special": false: they decode to their text
# and the model writes them as text, so they keep their bytes.
_QWEN_TEXT_TOKENS = (
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
_BUILTINS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "llama3": ("llama3", ("<|end_of_text|>", "<|eot_id|>"), ()),
    "qwen3": ("qwen3", ("<|endoftext|>", "<|im_end|>"), _QWEN_TEXT_TOKENS),
    "cl100k": ("cl100k", ("<|endoftext|>",), ()),
    "o200k": ("o200k", ("<|endoftext|>",), ()),
}
_ALIASES = {"cl100k_base": "cl100k", "o200k_base": "o200k", "llama-3": "llama3", "qwen": "qwen3",
            "qwen2.5": "qwen3"}

BUILTIN_NAMES = tuple(_BUILTINS)


def quicktok_data_dir() -> str:
    """quicktok's data folder, found without importing its compiled extension."""
    spec = importlib.util.find_spec("quicktok")
    if spec is None or not spec.submodule_search_locations:
        raise VocabularyError("built-in vocabularies need the 'quicktok-v1' package (pip install quicktok-v1)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise VocabularyError(f"cannot read quicktok data file {path!r}: {e}") from e


def read_quicktok_vocab(path: str) -> list[bytes]:
    """Ordinary tokens of a quicktok `.vocab` file, indexed by rank (= id)."""
    buf = _read(path)
    if len(buf) < 4:
        raise VocabularyError(f"{path}: truncated header")
    n = int.from_bytes(buf[:4], "little")
    out: list[bytes | None] = [None] * n
    p = 4
    end = len(buf)
    try:
        for _ in range(n):
            q = p + 2 + (buf[p] | buf[p + 1] << 8)
            r = buf[q] | buf[q + 1] << 8 | buf[q + 2] << 16 | buf[q + 3] << 24
            if r >= n or out[r] is not None:
                raise VocabularyError(f"{path}: rank {r} out of range or repeated (count {n})")
            out[r] = buf[p + 2:q]
            p = q + 4
    except IndexError:
        raise VocabularyError(f"{path}: truncated record") from None
    if p != end:
        raise VocabularyError(f"{path}: {end - p} trailing bytes after {n} records")
    return out  # type: ignore[return-value]  # every rank in [0, n) was filled exactly once


def read_quicktok_special(path: str) -> dict[str, int]:
    """Special tokens of a quicktok `.special` file: text -> id."""
    buf = _read(path)
    n = int.from_bytes(buf[:4], "little")
    out: dict[str, int] = {}
    p = 4
    for _ in range(n):
        if p + 6 > len(buf):
            raise VocabularyError(f"{path}: truncated record")
        tid = int.from_bytes(buf[p:p + 4], "little")
        ln = int.from_bytes(buf[p + 4:p + 6], "little")
        out[buf[p + 6:p + 6 + ln].decode("utf-8")] = tid
        p += 6 + ln
    if p != len(buf):
        raise VocabularyError(f"{path}: {len(buf) - p} trailing bytes after {n} records")
    return out


def load_builtin(name: str, *, vocab_size: int | None = None) -> Vocabulary:
    """One of "llama3", "qwen3", "cl100k", "o200k" (memoized: the same object comes back).

    `vocab_size` pads to the model's logit count (e.g. 151936 for Qwen3 models)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _BUILTINS:
        raise VocabularyError(f"unknown built-in vocabulary {name!r}; known: {', '.join(BUILTIN_NAMES)}")
    base = _load(key)
    if vocab_size is None or vocab_size == base.size:
        return base
    return _padded(key, int(vocab_size))


@lru_cache(maxsize=None)
def _padded(key: str, vocab_size: int) -> Vocabulary:
    base = _load(key)
    return Vocabulary(base.token_bytes, eos_token_ids=base.eos_token_ids, special_token_ids=base.special_token_ids,
                      size=vocab_size, name=key, family=base.family)


@lru_cache(maxsize=None)
def _load(key: str) -> Vocabulary:
    stem, eos_names, text_names = _BUILTINS[key]
    data = quicktok_data_dir()
    tokens: list[bytes | None] = list(read_quicktok_vocab(os.path.join(data, stem + ".vocab")))
    specials = read_quicktok_special(os.path.join(data, stem + ".special"))
    top = max(len(tokens), max(specials.values(), default=-1) + 1)
    tokens.extend([None] * (top - len(tokens)))
    control = []
    for text, tid in specials.items():
        if tokens[tid] is not None:
            raise VocabularyError(f"built-in {key!r}: special {text!r} id {tid} collides with an ordinary token")
        if text in text_names:
            tokens[tid] = text.encode("utf-8")
        else:
            control.append(tid)
    missing = [e for e in eos_names if e not in specials]
    if missing:
        raise VocabularyError(f"built-in {key!r}: EOS token(s) {missing} not in {stem}.special")
    return Vocabulary(tokens, eos_token_ids=[specials[e] for e in eos_names], special_token_ids=control,
                      name=key, family="byte_level")


# --------------------------------------------------------------------------- toy vocabularies

# SentencePiece-style: <unk>, <s>, </s>, the 256 byte-fallback pieces, then ordinary pieces
# (so "a" exists both as <0x61> and as a piece: ids sharing bytes, as in Llama-2), then two
# added control tokens.
TOY_SP_PIECES: tuple[str, ...] = (
    "<unk>", "<s>", "</s>",
    *(f"<0x{b:02X}>" for b in range(256)),
    "\u2581", "\u2581\u2581", "\u2581\u2581\u2581\u2581",
    *"abcdefghijklmnopqrstuvwxyz", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"0123456789",
    *'{}[]":,.-+_/\\', "é", "ü", "日", "本", "語", "—", "€", "\U0001f680",
    "\u2581the", "\u2581a", "\u2581is", "\u2581of", "\u2581to", "\u2581and", "\u2581in", "the", "an", "in",
    "er", "on", "\u2581Hello", "\u2581world", "Hello", "world", "\u2581name", "name", "\u2581age", "age",
    "\u2581{", "\u2581}", "\u2581\"", "\":", "\",", "{\"", "\"}", "\u2581[", "],", "\u2581true", "\u2581false",
    "\u2581null", "true", "false", "null", "12", "123", "00", "\u25810", "\u25811", ".5",
    "caf", "café", "\u2581café", "日本", "\u2581日本語", "—\u2581", "\u2581€",
)
TOY_SP_CONTROL = ("<|im_start|>", "<|im_end|>")


def toy_sentencepiece_vocab() -> Vocabulary:
    """Small SentencePiece-style vocabulary: ids 0-2 `<unk>`/`<s>`/`</s>` (EOS = 2), byte-fallback
    pieces `<0x00>`..`<0xFF>` at ids 3-258, `▁`-prefixed words and multi-byte UTF-8 pieces, then
    two control tokens. No padding."""
    return _toy_sp()


@lru_cache(maxsize=None)
def _toy_sp() -> Vocabulary:
    pieces = list(TOY_SP_PIECES) + list(TOY_SP_CONTROL)
    if len(set(pieces)) != len(pieces):
        raise VocabularyError("toy SentencePiece vocabulary lists a piece twice")
    control = {0, 1, *range(len(TOY_SP_PIECES), len(pieces))}
    tb = [None if i in control or i == 2 else sentencepiece_to_bytes(p) for i, p in enumerate(pieces)]
    return Vocabulary(tb, eos_token_ids=[2], special_token_ids=control, name="toy-sentencepiece",
                      family="sentencepiece", strips_leading_space=True)


# Byte-level-BPE-style: ids 0-255 are the single bytes (id == byte), then merges, including
# JSON punctuation runs and tokens that cut UTF-8 sequences (lead bytes only, continuation
# bytes only, a whole character plus the next lead byte).
TOY_BPE_MERGES: tuple[bytes, ...] = (
    b" t", b" the", b"th", b"he", b"in", b"er", b"an", b" a", b" is", b"on", b"re", b"at", b"en",
    b"Hello", b" world", b" Hello", b"world",
    b'{"', b'":', b'",', b'"}', b'":"', b'", "', b'": ', b'":{', b"},", b"}}", b"[{", b'"]', b'["', b"],",
    b"[]", b"{}", b'""', b" {", b" [", b' "',
    b"true", b"false", b"null", b" true", b" false", b" null", b"name", b'"name', b'{"name', b"age", b"id",
    b"value", b"00", b"12", b"123", b"1.", b".5", b"-1", b"e+", b"E-", b" 1", b" 0",
    b"  ", b"    ", b"\n", b"\n\n", b"\n  ", b"\n    ", b"\t", b" \n", b"\r\n",
    b"\\n", b'\\"', b"\\u", b"\\\\", b"\\u00",
    "é".encode(), "café".encode(), b" caf\xc3", "日".encode(), "日本".encode(), b"\xe6\x97",
    b"\xe6\x97\xa5\xe6", b"\x97\xa5", "—".encode(), b"\xe2\x80", b"\x80\x94", "🚀".encode(), b"\xf0\x9f",
    b"\x9f\x9a\x80", b"<", b"<|", b"|>", b"<|endoftext",
)
TOY_BPE_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def toy_byte_bpe_vocab() -> Vocabulary:
    """Small byte-level-BPE-style vocabulary: 256 single bytes (id == byte), common merges,
    then `<|endoftext|>` (EOS), `<|im_start|>`, `<|im_end|>`; `size` adds padding ids past the
    tokens so that it is not a multiple of 32 (partial last bitmask word)."""
    return _toy_bpe()


@lru_cache(maxsize=None)
def _toy_bpe() -> Vocabulary:
    merges = [m for m in TOY_BPE_MERGES if len(m) > 1]  # b"<" is already a single byte
    tb: list[bytes | None] = [bytes((b,)) for b in range(256)] + merges
    if len(set(tb)) != len(tb):
        raise VocabularyError("toy byte-level vocabulary lists a token twice")
    first_special = len(tb)
    tb += [None] * len(TOY_BPE_SPECIAL)
    size = len(tb) + 5
    if size % 32 == 0:
        size += 1
    return Vocabulary(tb, eos_token_ids=[first_special],
                      special_token_ids=range(first_special, first_special + len(TOY_BPE_SPECIAL)),
                      size=size, name="toy-byte-bpe", family="byte_level")


def toy_byte_bpe_hf_vocab() -> dict[str, int]:
    """The toy byte-level vocabulary as a Hugging Face `vocab.json` mapping (GPT-2 spelling)."""
    v = _toy_bpe()
    return {bytes_to_byte_level(b): i for i, b in enumerate(v.token_bytes) if b is not None}
