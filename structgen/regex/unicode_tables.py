"""Unicode character tables for the regex front end, derived by brute force from the running Python.

Why generated: Python's `re` gives `\\d`, `\\w`, `\\s` Unicode meanings that are not spelled out
anywhere else; the only exact definition is "what `re` does". We test every code point once with
`re` (one `finditer` over a string of all code points, so it takes well under a second) and store
the result as inclusive range lists in `unicode_data.json`, so importing is fast.

The stored tables are tied to a Unicode version. If the running interpreter has a different
`unicodedata.unidata_version`, the tables are rebuilt in memory on first use (a second or two),
because stale tables would silently change the language.

Regenerate the data file with:  python -m structgen.regex.unicode_tables
"""
from __future__ import annotations

import functools
import json
import re
import unicodedata
from pathlib import Path

DATA_FILE = Path(__file__).with_name("unicode_data.json")
FORMAT = 1

Ranges = tuple[tuple[int, int], ...]

# ECMA-262 WhiteSpace + LineTerminator (\s): fixed by the spec, not derived from Unicode data
# except Zs, which ECMA lists explicitly as of ES2015+ (U+0020, U+00A0, U+1680, U+2000-200A,
# U+202F, U+205F, U+3000), plus U+FEFF.
ECMA_SPACE: Ranges = (
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)
ECMA_DIGIT: Ranges = ((0x30, 0x39),)
ECMA_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
ECMA_LINE_TERMINATORS: Ranges = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))

# Python `re` with the ASCII flag.
PY_ASCII_DIGIT: Ranges = ((0x30, 0x39),)
PY_ASCII_WORD: Ranges = ECMA_WORD
PY_ASCII_SPACE: Ranges = ((0x09, 0x0D), (0x20, 0x20))


def _runs(pattern: str, text: str) -> list[list[int]]:
    """Maximal runs of code points matched by a one-char pattern `X+`, skipping surrogates."""
    out: list[list[int]] = []
    for m in re.finditer(pattern, text):
        lo, hi = m.start(), m.end() - 1
        for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):
            if a <= b:
                out.append([a, b])
    return out


def _to_ranges(points: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for c in sorted(set(points)):
        if out and c == out[-1][1] + 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def _case_candidates() -> list[int]:
    """Every code point whose case-insensitive matching in `re` can differ from exact matching.

    For a code point outside this set, `re`'s IGNORECASE machinery lowers it to itself, its
    upper case is itself, and no other code point lowers to it, so `(?i)` cannot change
    whether it matches. The parser probes `re` only for these (about 3k code points).
    """
    pts: set[int] = set()
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        lo, up = ch.lower(), ch.upper()
        if lo != ch or up != ch:
            pts.add(c)
            pts.update(ord(x) for x in lo + up)
    try:  # the engine's own simple case tables, when this interpreter exposes them
        import _sre

        for c in range(0x110000):
            if 0xD800 <= c <= 0xDFFF:
                continue
            low = _sre.unicode_tolower(c)
            if low != c or _sre.unicode_iscased(c):
                pts.add(c)
                pts.add(low)
    except (ImportError, AttributeError):
        pass
    try:
        from re._casefix import _EXTRA_CASES  # type: ignore[import-not-found]

        for k, vs in _EXTRA_CASES.items():
            pts.add(k)
            pts.update(vs)
    except ImportError:
        pass
    return sorted(p for p in pts if not 0xD800 <= p <= 0xDFFF)


def _ecma_canonicalize(c: int) -> int:
    """ECMA-262 Canonicalize for ignoreCase without the u flag (BMP code units)."""
    up = chr(c).upper()
    if len(up) != 1:
        return c
    u = ord(up)
    if u > 0xFFFF or (c >= 128 and u < 128):
        return c
    return u


def _ecma_case_classes() -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for c in range(0x10000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        groups.setdefault(_ecma_canonicalize(c), []).append(c)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _general_categories() -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = {}
    prev = None
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            prev = None
            continue
        g = unicodedata.category(chr(c))
        if g == prev:
            out[g][-1][1] = c
        else:
            out.setdefault(g, []).append([c, c])
            prev = g
    return out


def build() -> dict:
    """Compute every table from the running interpreter (about 2 s)."""
    every = "".join(map(chr, range(0x110000)))
    return {
        "format": FORMAT,
        "unidata_version": unicodedata.unidata_version,
        "py_digit": _runs(r"\d+", every),
        "py_word": _runs(r"\w+", every),
        "py_space": _runs(r"\s+", every),
        "py_case_candidates": _to_ranges(_case_candidates()),
        "ecma_case_classes": _ecma_case_classes(),
        "general_category": _general_categories(),
    }


class Tables:
    """Loaded tables as tuples of inclusive ranges."""

    def __init__(self, raw: dict):
        def rs(key: str) -> Ranges:
            return tuple((a, b) for a, b in raw[key])

        self.unidata_version: str = raw["unidata_version"]
        self.py_digit = rs("py_digit")
        self.py_word = rs("py_word")
        self.py_space = rs("py_space")
        self.py_case_candidate_ranges = rs("py_case_candidates")
        self.py_case_candidates: tuple[int, ...] = tuple(
            c for a, b in self.py_case_candidate_ranges for c in range(a, b + 1)
        )
        self.ecma_case_classes: tuple[tuple[int, ...], ...] = tuple(
            tuple(g) for g in raw["ecma_case_classes"]
        )
        self.general_category: dict[str, Ranges] = {
            k: tuple((a, b) for a, b in v) for k, v in raw["general_category"].items()
        }


@functools.lru_cache(maxsize=1)
def tables() -> Tables:
    """The tables for this interpreter: the stored file if its Unicode version matches, else rebuilt."""
    raw = None
    try:
        raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = None
    if (
        raw is None
        or raw.get("format") != FORMAT
        or raw.get("unidata_version") != unicodedata.unidata_version
    ):
        raw = build()
    return Tables(raw)


def write_data_file(path: Path = DATA_FILE) -> None:
    path.write_text(json.dumps(build(), separators=(",", ":")) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_data_file()
    print(f"wrote {DATA_FILE} (Unicode {unicodedata.unidata_version})")
