"""Shared vocabulary fixtures: the tokenizer matrix other tests run against."""
from __future__ import annotations

import importlib.util

import pytest

from structgen.vocab.builtin import load_builtin, toy_byte_bpe_vocab, toy_sentencepiece_vocab


@pytest.fixture(scope="session")
def toy_bpe_vocab():
    """Byte-level-BPE-style toy vocabulary (padding ids included, size not a multiple of 32)."""
    return toy_byte_bpe_vocab()


@pytest.fixture(scope="session")
def toy_sp_vocab():
    """SentencePiece-style toy vocabulary with `<0xNN>` byte-fallback pieces."""
    return toy_sentencepiece_vocab()


@pytest.fixture(scope="session")
def llama3_vocab():
    """The real Llama-3 vocabulary (128256 ids), from the quicktok-v1 package."""
    if importlib.util.find_spec("quicktok") is None:
        pytest.skip("quicktok-v1 is not installed")
    return load_builtin("llama3")


@pytest.fixture(scope="session", params=["toy_bpe", "toy_sp"])
def small_vocab(request):
    """Each small vocabulary in turn."""
    return request.getfixturevalue(f"{request.param}_vocab")
