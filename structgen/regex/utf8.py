"""Code-point ranges -> UTF-8 byte-range sequences.

The automata work on bytes, but `Chars` is a set of code points. `utf8_sequences(lo, hi)` returns
sequences of byte ranges whose products are exactly the UTF-8 encodings of [lo, hi] (surrogates
excluded, since UTF-8 cannot encode them). Each sequence is "rectangular": every byte position is
an independent range, which is what a byte automaton needs.
"""
from __future__ import annotations

_SURROGATES = (0xD800, 0xDFFF)
# Largest code point for each encoded length 1..4.
_LENGTH_LIMITS = (0x7F, 0x7FF, 0xFFFF, 0x10FFFF)


def _encoded_len(cp: int) -> int:
    for n, limit in enumerate(_LENGTH_LIMITS, 1):
        if cp <= limit:
            return n
    raise ValueError(f"code point {cp:#x} is out of range")


def _encode(cp: int, n: int) -> list[int]:
    """UTF-8 bytes of cp forced to length n (cp must need exactly n bytes)."""
    if n == 1:
        return [cp]
    lead = (0xC0, 0xE0, 0xF0)[n - 2]
    out = []
    for _ in range(n - 1):
        out.append(0x80 | (cp & 0x3F))
        cp >>= 6
    out.append(lead | cp)
    return out[::-1]


def _split_same_length(lo: int, hi: int, n: int, out: list[list[tuple[int, int]]]) -> None:
    """[lo, hi] all encode to n bytes. Split until each piece is a byte-wise product.

    A piece is rectangular when lo and hi differ only in a prefix of bytes, and every byte after
    the first differing one spans the full continuation range 0x80..0xBF. We find the lowest
    6-bit block boundary that lo or hi is not aligned to, and cut there.
    """
    for k in range(1, n):  # k trailing continuation bytes = 6*k low bits
        mask = (1 << (6 * k)) - 1
        if (lo & ~mask) != (hi & ~mask):
            if lo & mask:
                _split_same_length(lo, lo | mask, n, out)
                _split_same_length((lo | mask) + 1, hi, n, out)
                return
            if (hi & mask) != mask:
                _split_same_length(lo, (hi & ~mask) - 1, n, out)
                _split_same_length(hi & ~mask, hi, n, out)
                return
    a, b = _encode(lo, n), _encode(hi, n)
    out.append([(x, y) for x, y in zip(a, b)])


def utf8_sequences(lo: int, hi: int) -> list[list[tuple[int, int]]]:
    """Byte-range sequences whose products are exactly the UTF-8 encodings of code points [lo, hi].

    Surrogates (U+D800..U+DFFF) are skipped. An empty or surrogate-only range gives [].
    """
    if lo < 0 or hi > 0x10FFFF:
        raise ValueError(f"code point range [{lo:#x}, {hi:#x}] is outside 0..0x10FFFF")
    pieces: list[tuple[int, int]] = []
    if lo <= hi:
        for a, b in ((lo, min(hi, _SURROGATES[0] - 1)), (max(lo, _SURROGATES[1] + 1), hi)):
            if a <= b:
                pieces.append((a, b))
    out: list[list[tuple[int, int]]] = []
    for a, b in pieces:
        while a <= b:  # split at encoded-length boundaries
            n = _encoded_len(a)
            top = min(b, _LENGTH_LIMITS[n - 1])
            _split_same_length(a, top, n, out)
            a = top + 1
    return out


def utf8_sequences_for_ranges(ranges) -> list[list[tuple[int, int]]]:
    """`utf8_sequences` over several (sorted, disjoint) code-point ranges."""
    out: list[list[tuple[int, int]]] = []
    for lo, hi in ranges:
        out.extend(utf8_sequences(lo, hi))
    return out
