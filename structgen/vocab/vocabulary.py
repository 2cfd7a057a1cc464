"""Token id -> exact bytes, for any tokenizer family, plus the token trie the mask kernels walk."""
from __future__ import annotations

from functools import cached_property
from typing import Iterable, Sequence

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

    @classmethod
    def from_token_bytes(cls, token_bytes, *, eos_token_ids=(), special_token_ids=(), size=None, name=""):
        return cls(token_bytes, eos_token_ids=eos_token_ids, special_token_ids=special_token_ids,
                   size=size, name=name)

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
