"""regex -> IR: compared against Python's `re` (the definition of the python flavor), hand-written
ECMA expectations, every error path, `utf8_sequences` against the UTF-8 encoder, and the oracle.
"""
from __future__ import annotations

import itertools
import random
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from structgen.errors import LimitExceeded, RegexSyntaxError, UnsupportedRegex
from structgen.grammar.ir import (
    EMPTY,
    NOTHING,
    Alt,
    And,
    ByteRange,
    Chars,
    Lit,
    Not,
    Repeat,
    Seq,
)
from structgen.regex import parse_regex, utf8_sequences

try:
    from tests.ir_interp import ir_fullmatch, ir_prefix_viable
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from ir_interp import ir_fullmatch, ir_prefix_viable

ALLOWED_NODES = (Lit, Chars, Seq, Alt, Repeat)

# Characters that exercise case folding (Kelvin sign, long s, sharp s, dotless i, Deseret),
# Unicode digits/spaces, newlines and multi-byte UTF-8.
ALPHABET = ["a", "b", "A", "k", "K", "\u212a", "s", "\u017f", "\n", "1", "\u0663", " ",
            "\u00a0", "\u00e9", "\u00c9", "\u00df", "\u0131", "I", "\U00010400", "\U00010428",
            "-", "_", "x", "\r"]
FIXED = ["", "a", "b", "ab", "a\n", "\n", "\na", "ba", "aa", "abab", "A", "k\n", "\n\n"]

_ALL_TEXT = None


def all_text() -> str:
    global _ALL_TEXT
    if _ALL_TEXT is None:
        _ALL_TEXT = "".join(map(chr, range(0x110000)))
    return _ALL_TEXT


def walk(e):
    yield e
    for attr in ("items",):
        for x in getattr(e, attr, ()) or ():
            yield from walk(x)
    if isinstance(e, Repeat):
        yield from walk(e.item)


def assert_clean_ir(e) -> None:
    for node in walk(e):
        assert isinstance(node, ALLOWED_NODES), node
        if isinstance(node, Chars):
            assert node.ranges, node
            for lo, hi in node.ranges:
                assert 0 <= lo <= hi <= 0x10FFFF
                assert hi < 0xD800 or lo > 0xDFFF, "surrogates in Chars"
            assert list(node.ranges) == sorted(node.ranges)


def sample_strings(seed, n: int = 60) -> list[str]:
    rng = random.Random(seed)
    out = set(FIXED)
    while len(out) < n:
        out.add("".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 6))))
    return sorted(out)


def compare_python(pattern: str, strings=None, search_too: bool = True) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rx = re.compile(pattern)
    strings = strings if strings is not None else sample_strings(pattern)
    modes = (False, True) if search_too else (False,)
    for search in modes:
        e = parse_regex(pattern, search=search)
        assert_clean_ir(e)
        for s in strings:
            want = (rx.search(s) if search else rx.fullmatch(s)) is not None
            got = ir_fullmatch(e, s.encode("utf-8"))
            assert got == want, (pattern, search, s, want, e)


# ============================================================================ python flavor

HAND_PICKED = [
    "", "a", "abc", "a|b|c", "ab|ac", "a*", "a+?", "a??", "(ab)*", "(?:ab|a)+b",
    "a{2}", "a{2,}", "a{,2}", "a{1,3}", "a{0}", "a{}", "a{,}", "x{a}", "a{1,2}{", "{", "}", "]",
    ".", "(?s).", ".*", "(?s:.)a.", "[abc]", "[^abc]", "[a-c]+", "[^a-c\\n]", "[]a]", "[^]a]",
    "[a-]", "[-a]", "[\\d-]", "[\\w\\s]", "[^\\W\\d]", "\\d+", "\\D", "\\w", "\\W", "\\s", "\\S",
    "\\n", "\\t\\r", "\\x41", "\\u00e9", "\\U0001F600", "\\N{LATIN SMALL LETTER E WITH ACUTE}",
    "\\0", "\\012", "\\101", "[\\101-\\103]", "\\.", "\\\\", "\\-", "\\ud800", "[\\ud800-\\ue000]",
    "(a)(b)", "(?P<n>a)b", "(?#comment)a", "a(?#c)*",
    # anchors
    "^", "$", "^$", "^a", "a$", "^a$", "\\Aa\\Z", "a\\Z", "a$\\n", "a$\\n?", "a\\Z\\n?", "$\\n",
    "^a|b$", "(^a|b)c", "a(b|$)", "(a|^)b", "a^b", "a$b", "(^|x)a($|y)", "(a$)?\\n?", "(^a){1,2}",
    "^a*", "(?:^)?a", "(?:^a)*", "(?:^a)+b", "(a|$)*\\n", "(^|a)+b", "(?:a$|\\n)*", "(?:$\\n?)*",
    "(?:\\n$)+", "(?:x|^){2,}y", "\\A\\n", "\\n$", "\\n\\Z", "(?:a$)|(?:a\\n)",
    # flags
    "(?i)k", "(?i)s", "(?i)i", "(?i)\u00df", "(?i)[a-z]+", "(?i)[^k]", "(?i:a)b", "a(?i:b)",
    "(?i)[\\W]", "(?i)[\\Wk]", "(?i)\\w", "(?i)\U00010400", "(?i)[\U00010400x]",
    "(?i)\U00010400|x", "(?i)a\U00010400|ax", "(?i)[^\U00010400]", "(?a)\\w+", "(?a)\\d",
    "(?ai)k", "(?i)(?a:k)", "(?x) a b # comment\n c", "(?x)[ ]a", "(?x)a\\ b", "(?x)a *",
    "(?s)a.b", "(?-s:.)", "(?i)(?-i:a)A", "(?m)^a$", "(?m)a$", "(?m)^$", "(?m:^a)",
]


@pytest.mark.parametrize("pattern", HAND_PICKED)
def test_python_hand_picked(pattern):
    try:
        compare_python(pattern)
    except UnsupportedRegex:
        # only multi-line anchors away from the ends may be unsupported here (search mode)
        assert "(?m" in pattern
        compare_python(pattern, search_too=False)


def test_dollar_before_final_newline_is_exact():
    assert parse_regex("a$") == Lit(b"a")
    assert parse_regex("^abc$") == Lit(b"abc")
    assert parse_regex("a$\n") == Lit(b"a\n")
    e = parse_regex("a$", search=True)
    assert ir_fullmatch(e, b"xa\n") and not ir_fullmatch(e, b"a\nx")
    assert parse_regex("a\\Z\n") == NOTHING
    assert parse_regex("a^b") == NOTHING


def test_casefold_brute_force_all_code_points():
    """The Chars set of a one-character item equals what `re` matches over every code point."""
    text = all_text()
    for flags, item in [("i", "k"), ("i", "s"), ("i", "i"), ("i", "\u00b5"), ("i", "[a-z]"),
                        ("i", "[^k]"), ("i", "[\\W\\d]"), ("i", "[\u0100-\U00010500]"),
                        ("i", "[\U00010400a]"), ("i", "\u03c3"), ("ia", "[k-s]"), ("", "\\w"),
                        ("", "\\d"), ("", "\\s"), ("s", "."), ("", ".")]:
        # maximal runs of matching code points = the exact range list
        runs = [(m.start(), m.end() - 1) for m in re.finditer(f"(?{flags})(?:{item})+" if flags else f"(?:{item})+", text)]
        want = []
        for lo, hi in runs:
            for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):
                if a <= b:
                    want.append((a, b))
        e = parse_regex(f"(?{flags}){item}" if flags else item)
        got = [(ord(e.value.decode()),) * 2] if isinstance(e, Lit) else list(e.ranges)
        assert got == want, (flags, item)


# Random regexes over a small alphabet, checked against `re` on random strings.
_ATOMS = ["a", "b", "A", "k", "\\n", ".", "[ab]", "[^a]", "[a-c]", "\\d", "\\w", "\\s", "\\W",
          "^", "$", "\\A", "\\Z", "(?:)", "\u00e9", "\\u212a", "[\\s\\d]", "x", "\u017f"]
_QUANTS = ["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "{,2}", "??"]


def _regexes():
    base = st.sampled_from(_ATOMS)

    def extend(inner):
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map("|".join),
            inner.map(lambda x: f"({x})"),
            st.tuples(inner, st.sampled_from(_QUANTS)).map(lambda t: f"(?:{t[0]}){t[1]}"),
            st.tuples(st.sampled_from(["i", "s", "-i", "x"]), inner).map(lambda t: f"(?{t[0]}:{t[1]})"),
        )

    body = st.recursive(base, extend, max_leaves=8)
    return st.tuples(st.sampled_from(["", "", "(?i)", "(?s)", "(?m)"]), body).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_regexes(), seed=st.integers(0, 2**16))
def test_python_random_regexes(pattern, seed):
    strings = sample_strings(seed, 40)
    try:
        compare_python(pattern, strings)
    except UnsupportedRegex as exc:
        # the only gap reachable here: multi-line anchors away from the ends of the match
        assert pattern.startswith("(?m)") and "multi-line" in str(exc), (pattern, exc)


def test_syntax_errors_agree_with_re():
    """Patterns `re` rejects raise RegexSyntaxError, and patterns it accepts never do."""
    rng = random.Random(7)
    pieces = ["a", "(", ")", "[", "]", "{", "}", "1", ",", "*", "+", "?", "|", "^", "$", "\\",
              "-", "(?", "(?:", "(?P<g>", "\\1", "{2,1}", "{,}", "\\x4", "i", "#", ":", "<", "=",
              "(?#", "\\)", "(?P=g)", "(?i)", "(?x)", "\\N{", "DIGIT ONE}", "\\0", "\\9", " ", "\\b"]
    for _ in range(1500):
        p = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 7)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                re.compile(p)
                ok = True
            except (re.error, OverflowError, RecursionError, ValueError):
                ok = False
        try:
            parse_regex(p)
            mine = "ok"
        except RegexSyntaxError:
            mine = "syntax"
        except UnsupportedRegex:
            mine = "unsupported"
        assert (mine == "syntax") == (not ok), (p, mine, ok)


# ============================================================================ errors

@pytest.mark.parametrize("pattern,construct,position", [
    ("a(?=b)", "lookahead", 1), ("a(?!b)", "lookahead", 1), ("(?<=a)b", "lookbehind", 0),
    ("(?<!a)b", "lookbehind", 0), ("(a)\\1", "backreference", 3), ("(?P<x>a)(?P=x)", "backreference", 8),
    ("(a)?(?(1)b|c)", "conditional", 4), ("a\\bc", "word boundary", 1), ("\\Ba", "word boundary", 0),
    ("a*+", "possessive", 1), ("(?>ab)", "atomic", 0), ("(?m)a^b", "multi-line", 5),
    ("(?m)a$b", "multi-line", 5), ("(?:^a){100}", "repetition", 6),
    ("(?:a$){2,70}", "repetition", 6), ("(?t)a", "template", 0),
])
def test_unsupported_python(pattern, construct, position):
    with pytest.raises(UnsupportedRegex) as info:
        parse_regex(pattern)
    assert not isinstance(info.value, RegexSyntaxError)
    assert construct in str(info.value)
    assert info.value.position == position
    assert info.value.pattern == pattern


@pytest.mark.parametrize("pattern", [
    "(", ")", "a)", "[a", "[b-a]", "*a", "a**", "a{2}{3}", "\\", "\\q", "\\x4", "\\u12",
    "\\U00110000", "(?P<1>a)", "(?P<a>x)(?P<a>y)", "(?Q)", "a{3,2}", "\\1", "(a\\1)",
    "\\N{NO SUCH NAME}", "[\\A]", "[\\d-z]", "\\400", "a|*", "^*", "(?i", "(?-x)", "a(?i)b",
    "(?P=nope)", "(?#unterminated", "a{4294967295}", "(?a)(?u)x", "(?t:a)", "(?(0)a)", "(?(2)a)(b)",
    "[\\8]", "\\8",
])
def test_python_syntax_errors(pattern):
    with pytest.raises(RegexSyntaxError) as info:
        parse_regex(pattern)
    assert info.value.position is not None
    with pytest.raises((re.error, OverflowError, ValueError)):
        re.compile(pattern)


def test_explosion_limit():
    with pytest.raises(LimitExceeded):
        parse_regex("(a{1000}){1000}")
    with pytest.raises(LimitExceeded):
        parse_regex("((a{100}){100}){100}", flavor="ecma")
    with pytest.raises(LimitExceeded):
        parse_regex("a{50}", max_repeat_expansion=10)
    e = parse_regex("(a{100}){100}")  # 10k: fine, kept as Repeat nodes
    assert isinstance(e, Repeat)
    with pytest.raises(LimitExceeded):
        parse_regex("(" * 500 + ")" * 500)


def test_bad_arguments():
    with pytest.raises(ValueError):
        parse_regex("a", flavor="perl")
    with pytest.raises(RegexSyntaxError):
        parse_regex("a", flags="q")
    with pytest.raises(RegexSyntaxError):
        parse_regex("a", flavor="ecma", flags="x")


# ============================================================================ ECMA flavor

def ecma(pattern, *accept, reject=(), search=False, flags=""):
    e = parse_regex(pattern, flavor="ecma", search=search, flags=flags)
    assert_clean_ir(e)
    for s in accept:
        assert ir_fullmatch(e, s.encode()), (pattern, s, e)
    for s in reject:
        assert not ir_fullmatch(e, s.encode()), (pattern, s, e)
    return e


def test_ecma_classes_and_escapes():
    ecma("\\d+", "0123", reject=["\u0663", "a"])
    ecma("\\w", "a", "Z", "_", "5", reject=["\u00e9", "\u212a", "-"])
    ecma("\\s", " ", "\t", "\n", "\r", "\u00a0", "\u2028", "\ufeff", "\u3000", reject=["\u0085", "a", "\u200b"])
    ecma("\\S", "a", "\u0085", reject=[" ", "\u2029"])
    ecma(".", "a", "\u00e9", "\U0001F600", reject=["\n", "\r", "\u2028", "\u2029", "", "ab"])
    ecma(".", "\n", "\r", flags="s")
    ecma("[^]", "\n", "a", reject=[""])
    ecma("a[]b", reject=["ab", "a]b"])
    ecma("\\cJ\\cm", "\n\r")
    ecma("\\u00e9\\u{1F600}", "\u00e9\U0001F600")
    ecma("\\uD83D\\uDE00", "\U0001F600")
    ecma("[\\uD83D\\uDE00-\\uD83D\\uDE4F]", "\U0001F600", "\U0001F64F", reject=["\U0001F650"])
    ecma("a/b", "a/b")
    ecma("\\/\\-\\.", "/-.")
    ecma("[\\d-z]", "1", "-", "z", reject=["a"])  # Annex B: "-" is literal next to \d
    ecma("[\\b]", "\b")
    ecma("\\0", "\0")
    ecma("\\101", "A")  # legacy octal (no groups)
    ecma("(a)\\8", "a8")
    ecma("\\p{Lu}+", "AÉ", reject=["a"])
    ecma("\\P{L}", "1", reject=["a"])
    ecma("\\p{Letter}\\p{gc=Nd}", "a\u0663")
    ecma("[\\p{N}x]", "x", "\u0663", reject=["a"])


def test_ecma_quantifiers_and_braces():
    ecma("a{2}", "aa", reject=["a", "aaa"])
    ecma("a{2,}", "aa", "aaaa", reject=["a"])
    ecma("a{1,2}", "a", "aa", reject=["aaa"])
    ecma("a{,2}", "a{,2}", reject=["", "aa"])  # not a quantifier in ECMA
    ecma("a{", "a{")
    ecma("a{x}", "a{x}")
    ecma("}", "}")
    ecma("]", "]")
    ecma("a*?b+?c??", "bc", "aabbc")
    for bad in ["*", "a**", "a{2}{3}", "a*+", "{2}", "a{3,2}", "(", "a)", "[a", "[z-a]", "\\",
                "(?<n>a)(?<n>b)", "(?x:a)", "\\q", "\\cй", "\\u12", "\\x4", "\\k", "\\p{2,1}",
                "\\u{110000}", "(?<1a>x)"]:
        with pytest.raises(RegexSyntaxError) as info:
            parse_regex(bad, flavor="ecma")
        assert info.value.position is not None or bad in ("\\k",)


def test_ecma_groups_and_flags():
    ecma("(?<year>\\d{4})-(?:\\d\\d)", "2024-01")
    ecma("(?i:ab)c", "ABc", "abc", reject=["abC"])
    ecma("k", "K", "k", reject=["\u212a"], flags="i")  # non-unicode Canonicalize
    ecma("\u017f", "\u017f", reject=["s", "S"], flags="i")
    ecma("[a-z]+", "ABC", "abc", reject=["\u212a"], flags="i")
    ecma("[^a]", "b", reject=["a", "A"], flags="i")
    ecma("\\w", "A", reject=["\u017f"], flags="i")


def test_ecma_search_semantics():
    any_s = ["", "x", "\n", "abc\nxyz"]
    ecma("a", "a", "xa", "ax", "\na\n", reject=["", "b"], search=True)
    ecma("^a", "a", "ab", "a\n", reject=["ba", "\na"], search=True)
    ecma("a$", "a", "ba", "\na", reject=["ab", "a\n"], search=True)
    ecma("^a$", "a", reject=["a\n", "aa", "ba"], search=True)
    ecma("^a|b$", "a", "ax", "b", "xb", "a\nb", reject=["xa", "bx", "x"], search=True)
    ecma("(^|,)x(,|$)", "x", "a,x", "x,b", "a,x,b", reject=["ax", "xa", "x\n"], search=True)
    ecma("", *any_s, search=True)
    ecma("^", *any_s, search=True)
    ecma("$", *any_s, search=True)
    ecma("^$", "", reject=["x", "\n"], search=True)
    ecma("^[a-z]+$", "abc", reject=["abc\n", "ab1"], search=True)
    # multiline anchors only at the ends
    ecma("^a$", "a", reject=["b\na"], flags="m")
    with pytest.raises(UnsupportedRegex):
        parse_regex("^a$", flavor="ecma", flags="m", search=True)


@pytest.mark.parametrize("pattern,construct", [
    ("a(?=b)", "lookahead"), ("(?!b)", "lookahead"), ("(?<=a)b", "lookbehind"),
    ("(?<!a)b", "lookbehind"), ("(a)\\1", "backreference"), ("\\1(a)", "backreference"),
    ("(?<x>a)\\k<x>", "backreference"), ("a\\b", "word boundary"), ("\\Bx", "word boundary"),
    ("\\p{Script=Latin}", "property"), ("(?:^a){65,}", "repetition"),
])
def test_unsupported_ecma(pattern, construct):
    with pytest.raises(UnsupportedRegex) as info:
        parse_regex(pattern, flavor="ecma", search=True)
    assert not isinstance(info.value, RegexSyntaxError)
    assert construct in str(info.value) and info.value.position is not None


# ============================================================================ utf8_sequences

def _expand(seqs):
    out = []
    for seq in seqs:
        out.extend(bytes(t) for t in itertools.product(*[range(a, b + 1) for a, b in seq]))
    return out


def test_utf8_sequences_exhaustive():
    rng = random.Random(3)
    cases = [(0, 0x7F), (0x7F, 0x80), (0x7FF, 0x800), (0xD7FF, 0xE000), (0xD800, 0xDFFF),
             (0xFFFF, 0x10000), (0x10FFFF, 0x10FFFF), (0, 0x3FF), (0xFFC0, 0x1003F)]
    for _ in range(150):
        lo = rng.choice([rng.randrange(0x110000), rng.randrange(0x800), rng.randrange(0xD000, 0xE100)])
        cases.append((lo, min(0x10FFFF, lo + rng.randrange(0, rng.choice([3, 100, 2000])))))
    for lo, hi in cases:
        got = _expand(utf8_sequences(lo, hi))
        want = [chr(c).encode() for c in range(lo, hi + 1) if not 0xD800 <= c <= 0xDFFF]
        assert len(got) == len(set(got)), (lo, hi)  # disjoint
        assert set(got) == set(want), (lo, hi)
    assert utf8_sequences(5, 4) == [] and utf8_sequences(0xD800, 0xDFFF) == []
    assert len(utf8_sequences(0, 0x10FFFF)) == 9  # the canonical minimal split


def test_utf8_sequences_large_ranges_are_rectangular():
    rng = random.Random(4)
    for _ in range(200):
        lo = rng.randrange(0x110000)
        hi = rng.randrange(lo, 0x110000)
        seqs = utf8_sequences(lo, hi)
        assert len(seqs) <= 20
        for cp in {lo, hi, (lo + hi) // 2, rng.randrange(lo, hi + 1)}:
            if 0xD800 <= cp <= 0xDFFF:
                continue
            b = chr(cp).encode()
            hits = [s for s in seqs if len(s) == len(b) and all(x <= y <= z for (x, z), y in zip(s, b))]
            assert len(hits) == 1, (lo, hi, cp)


# ============================================================================ the oracle itself

def test_ir_interp_basics():
    e = Seq((Lit(b"a"), Repeat(Chars(((0x61, 0x62),)), 1, None), Alt((Lit(b"c"), EMPTY))))
    assert ir_fullmatch(e, b"aab") and ir_fullmatch(e, b"abbc") and not ir_fullmatch(e, b"a")
    assert ir_prefix_viable(e, b"") and ir_prefix_viable(e, b"ab") and not ir_prefix_viable(e, b"ac")
    assert not ir_fullmatch(NOTHING, b"") and not ir_prefix_viable(NOTHING, b"")
    multi = Chars(((0xE9, 0xE9), (0x1F600, 0x1F600)))
    assert ir_fullmatch(multi, "é".encode()) and ir_prefix_viable(multi, "😀".encode()[:2])
    assert not ir_prefix_viable(multi, b"\xc3\x00")
    br = Seq((ByteRange(((0x80, 0xFF),)), Lit(b"x")))
    assert ir_fullmatch(br, b"\xffx") and ir_prefix_viable(br, b"\x80")
    rep = Repeat(Lit(b"ab"), 2, 3)
    assert [ir_fullmatch(rep, b"ab" * k) for k in range(5)] == [False, False, True, True, False]
    assert ir_prefix_viable(rep, b"aba") and not ir_prefix_viable(rep, b"abababa")
    big = Repeat(Alt((Lit(b"a"), EMPTY)), 10**6, None)  # min far beyond the data: fixed point
    assert ir_fullmatch(big, b"aaa")
    assert ir_fullmatch(Repeat(Lit(b"a"), 0, 0), b"") and not ir_fullmatch(Repeat(Lit(b"a"), 0, 0), b"a")


def test_ir_interp_and_not():
    any_ = Repeat(Chars(((0, 0xD7FF), (0xE000, 0x10FFFF))), 0, None)
    has_a = Seq((any_, Lit(b"a"), any_))
    no_a = Not(has_a)
    assert ir_fullmatch(no_a, b"bcd") and not ir_fullmatch(no_a, b"bad")
    assert not ir_fullmatch(no_a, b"\xff")  # complement is within valid UTF-8
    both = And((has_a, Seq((any_, Lit(b"z")))))
    assert ir_fullmatch(both, b"az") and not ir_fullmatch(both, b"a") and not ir_fullmatch(both, b"bz")
    assert ir_fullmatch(Seq((Not(Lit(b"x")), Lit(b"y"))), b"zzy")
    with pytest.raises(NotImplementedError):
        ir_prefix_viable(no_a, b"b")


def test_oracle_prefix_agrees_with_re_on_regex_languages():
    """Prefix viability equals "is a byte prefix of some member" (members of length <= 6 suffice
    for these patterns: every viable prefix of <= 3 characters completes within 3 more)."""
    for pattern in ["a(bc)*d", "[ab]{2,3}c?", "(x|yz)+", "\u00e9+\\d", "(?:ab|\u00e9\U0001F600)?c"]:
        e = parse_regex(pattern)
        alphabet = sorted({c for c in pattern if c.isalnum() or ord(c) > 127} | {"1"})
        members = [t for n in range(7) for t in map("".join, itertools.product(alphabet, repeat=n))
                   if re.fullmatch(pattern, t)]
        prefixes = {m.encode()[:k] for m in members for k in range(len(m.encode()) + 1)}
        for n in range(4):
            for t in map("".join, itertools.product(alphabet, repeat=n)):
                b = t.encode()
                for k in range(len(b) + 1):
                    assert ir_prefix_viable(e, b[:k]) == (b[:k] in prefixes), (pattern, b[:k])
    assert not ir_prefix_viable(parse_regex("ab"), b"abc")
    assert ir_prefix_viable(parse_regex("a{3}"), b"aa") and not ir_prefix_viable(parse_regex("a{3}"), b"aaaa")


# Differential check against a real ECMA-262 engine when one is installed. Matching is per code
# point, so node's "u" mode is the reference (our syntax is a little more lenient than "u").
_NODE_SCRIPT = r"""
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(c => {
  const full = new RegExp('^(?:' + c.p + ')$', 'u'), srch = new RegExp(c.p, 'u');
  return [c.s.map(s => full.test(s)), c.s.map(s => srch.test(s))];
});
process.stdout.write(JSON.stringify(out));
"""


def test_ecma_against_node_when_available():
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    rng = random.Random(11)
    atoms = ["a", "b", "A", "\\n", ".", "[ab]", "[^a]", "\\d", "\\w", "\\s", "\\W", "^", "$", "é",
             "\\u{1F600}", "[😀-😂]", "[^]", "\\r", "\\u2028", "\\/", "\\cJ", "\\p{Lu}", "\\0", "x"]
    quants = ["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?"]

    def gen(d=0):
        k = rng.random()
        if d > 3 or k < 0.35:
            return rng.choice(atoms)
        if k < 0.55:
            return gen(d + 1) + gen(d + 1)
        if k < 0.7:
            return gen(d + 1) + "|" + gen(d + 1)
        if k < 0.8:
            return "(" + gen(d + 1) + ")"
        return "(?:" + gen(d + 1) + ")" + rng.choice(quants)

    alphabet = ["a", "b", "A", "\n", "\r", "\u2028", "1", "\u0663", " ", "\u00a0", "é", "\U0001F600",
                "x", "\t", "\ufeff", "\u0085", "\x00"]
    cases = []
    for _ in range(120):
        strings = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randrange(5))) for _ in range(25)})
        cases.append({"p": gen(), "s": strings})
    proc = subprocess.run([node, "-e", _NODE_SCRIPT], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for case, (full, found) in zip(cases, json.loads(proc.stdout)):
        for search, expected in ((False, full), (True, found)):
            e = parse_regex(case["p"], flavor="ecma", search=search)
            for s, want in zip(case["s"], expected):
                assert ir_fullmatch(e, s.encode()) == want, (case["p"], search, s, want)
