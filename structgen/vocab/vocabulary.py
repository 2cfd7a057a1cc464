"""Token id -> exact bytes, for any tokenizer family, plus the token trie the mask kernels walk."""
from __future__ import annotations

import base64
import os
from functools import cached_property
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from structgen.errors import VocabularyError
from structgen.vocab.trie import TokenTrie


class Vocabulary:
    """The model's vocabulary as raw bytes.

    `size` is the number of logits the model produces (may exceed the tokenizer's vocabulary:
    padding ids are never allowed). `token_bytes[i]` is None for ids with no text (special,
    added control tokens, padding): a constraint never produces those. EOS ids are allowed
    exactly when the text so far is a complete string of the language.
    """

    def __init__(
        self,
        token_bytes: Sequence[bytes | None],
        *,
        eos_token_ids: Iterable[int] = (),
        special_token_ids: Iterable[int] = (),
        size: int | None = None,
        name: str = "",
        family: str = "custom",
        strips_leading_space: bool = False,
    ):
        tb: list[bytes | None] = list(token_bytes)
        self.size = int(size if size is not None else len(tb))
        if self.size < len(tb):
            raise VocabularyError(f"size {self.size} is smaller than the {len(tb)} tokens given")
        tb.extend([None] * (self.size - len(tb)))
        self.eos_token_ids = tuple(sorted({int(i) for i in eos_token_ids}))
        self.special_token_ids = tuple(sorted({int(i) for i in special_token_ids} | set(self.eos_token_ids)))
        for i in self.special_token_ids:
            if not 0 <= i < self.size:
                raise VocabularyError(f"special/EOS token id {i} is outside the vocabulary (size {self.size})")
            tb[i] = None
        for i, b in enumerate(tb):
            if b is not None and not isinstance(b, (bytes, bytearray)):
                raise VocabularyError(f"token {i}: expected bytes or None, got {type(b).__name__}")
            if b == b"":
                tb[i] = None
        self.token_bytes: list[bytes | None] = [bytes(b) if b is not None else None for b in tb]
        self.name = name
        # Tokenizer family ("byte_level", "sentencepiece", "tiktoken", "plain", "custom"): informative.
        self.family = family
        # True when the tokenizer's decode() drops the leading space of the first token of a
        # sequence (SentencePiece dummy prefix). token_bytes keep that space; integrations that
        # compare decoded text with the constrained bytes need to know.
        self.strips_leading_space = bool(strips_leading_space)

    @classmethod
    def from_token_bytes(cls, token_bytes, *, eos_token_ids=(), special_token_ids=(), size=None, name=""):
        return cls(token_bytes, eos_token_ids=eos_token_ids, special_token_ids=special_token_ids,
                   size=size, name=name)

    @classmethod
    def from_hf(
        cls,
        tokenizer: Any,
        *,
        eos_token_ids: Iterable[int] | None = None,
        vocab_size: int | None = None,
        name: str | None = None,
    ) -> "Vocabulary":
        """From a Hugging Face tokenizer (fast or slow, or a bare `tokenizers.Tokenizer`), duck-typed.

        `eos_token_ids` are added to `tokenizer.eos_token_id`; `vocab_size` is the model's number
        of logits when it exceeds the tokenizer's (the extra ids are padding, never allowed).
        Special/control tokens get no bytes; added normal tokens keep their text. Raises
        VocabularyError when some ids' bytes depend on context (e.g. WordPiece).
        """
        from structgen.vocab.families import recover_hf

        rec = recover_hf(tokenizer)
        eos = set(rec.eos_token_ids) | {int(i) for i in (eos_token_ids or ())}
        return cls(rec.token_bytes, eos_token_ids=eos, special_token_ids=rec.special_ids,
                   size=vocab_size, name=name if name is not None else rec.name,
                   family=rec.family, strips_leading_space=rec.strips_leading_space)

    @classmethod
    def builtin(cls, name: str, *, vocab_size: int | None = None) -> "Vocabulary":
        """A bundled vocabulary ("llama3", "qwen3", "cl100k", "o200k"); see `structgen.vocab.builtin`."""
        from structgen.vocab.builtin import load_builtin

        return load_builtin(name, vocab_size=vocab_size)

    @classmethod
    def from_tiktoken(
        cls,
        ranks_or_path: Mapping[bytes, int] | str | os.PathLike,
        special_tokens: Mapping[str, int] | None = None,
        eos_token_ids: Iterable[int] = (),
        *,
        vocab_size: int | None = None,
        name: str = "",
    ) -> "Vocabulary":
        """From tiktoken mergeable ranks: a `{token_bytes: rank}` dict or a rank file whose lines
        are `base64(token) rank`. The rank is the token id; special tokens get no bytes; ids in
        neither (gaps, padding up to `vocab_size`) get none either."""
        if isinstance(ranks_or_path, Mapping):
            ranks = {bytes(k): int(v) for k, v in ranks_or_path.items()}
            if not name:
                name = "tiktoken"
        else:
            ranks = _read_tiktoken_file(ranks_or_path)
            if not name:
                name = os.path.basename(os.fspath(ranks_or_path))
        specials = {str(k): int(v) for k, v in (special_tokens or {}).items()}
        top = max([*ranks.values(), *specials.values(), -1]) + 1
        tb: list[bytes | None] = [None] * top
        for b, r in ranks.items():
            if r < 0:
                raise VocabularyError(f"negative rank {r} for token {b!r}")
            if tb[r] is not None:
                raise VocabularyError(f"rank {r} is given to two tokens: {tb[r]!r} and {b!r}")
            tb[r] = b
        for s, i in specials.items():
            if i < 0:
                raise VocabularyError(f"special token {s!r} has negative id {i}")
            if tb[i] is not None:
                raise VocabularyError(f"special token {s!r} id {i} collides with ordinary token {tb[i]!r}")
        return cls(tb, eos_token_ids=eos_token_ids, special_token_ids=specials.values(),
                   size=vocab_size, name=name, family="tiktoken")

    @property
    def n_words(self) -> int:
        """Width of one packed bitmask row: ceil(size / 32) int32 words."""
        return (self.size + 31) // 32

    @cached_property
    def trie(self) -> TokenTrie:
        return TokenTrie.build(self.token_bytes)

    @cached_property
    def eos_array(self) -> np.ndarray:
        return np.array(self.eos_token_ids, dtype=np.int32)

    @cached_property
    def fingerprint(self) -> str:
        """Stable hash of the vocabulary (cache key for compiled grammars)."""
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        h.update(str(self.size).encode())
        h.update(repr(self.eos_token_ids).encode())
        for b in self.token_bytes:
            if b is None:
                h.update(b"\xff\x00")
            else:
                h.update(len(b).to_bytes(4, "little"))
                h.update(b)
        return h.hexdigest()

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        n = sum(b is not None for b in self.token_bytes)
        return f"Vocabulary({self.name or 'custom'}: size={self.size}, text tokens={n}, eos={list(self.eos_token_ids)})"


def _read_tiktoken_file(path: str | os.PathLike) -> dict[bytes, int]:
    """Parse a tiktoken rank file (`base64token rank` per line, blank lines ignored)."""
    ranks: dict[bytes, int] = {}
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise VocabularyError(f"cannot read tiktoken rank file {os.fspath(path)!r}: {e}") from e
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise VocabularyError(f"{os.fspath(path)}:{lineno}: expected 'base64token rank', got {line[:60]!r}")
        try:
            tok = base64.b64decode(parts[0], validate=True)
            rank = int(parts[1])
        except ValueError as e:
            raise VocabularyError(f"{os.fspath(path)}:{lineno}: {e}") from e
        if tok in ranks:
            raise VocabularyError(f"{os.fspath(path)}:{lineno}: token {tok!r} listed twice")
        ranks[tok] = rank
    return ranks
