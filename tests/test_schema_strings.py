"""String contents: the JSON-encoding map (escapes), and the `format` languages."""
from __future__ import annotations

import datetime
import glob
import ipaddress
import json
import os
import random
import uuid

import jsonschema
import pytest

from structgen.grammar.ir import ANY_CHAR, And, Chars, Not, repeat
from structgen.regex import parse_regex
from structgen.schema._formats import KNOWN_FORMATS, format_language, negation
from structgen.schema._jsontext import StringEncoder

try:
    from tests.ir_interp import ir_fullmatch
except ImportError:
    from ir_interp import ir_fullmatch

_ALPHABET = ["a", "b", '"', "\\", "/", "\n", "\t", "\x01", "\x7f", "é", "€", "😀", "\u2028", "Z", "0"]
_LANGS = {
    "ab*": parse_regex("^ab*$", flavor="ecma", search=True),
    "has-quote": parse_regex('"', flavor="ecma", search=True),
    "len2-3": repeat(ANY_CHAR, 2, 3),
    "not-len2": Not(repeat(ANY_CHAR, 2, 2)),
    "emoji+": parse_regex("^😀+$", flavor="ecma", search=True),
    "and": And((parse_regex("a", flavor="ecma", search=True), repeat(ANY_CHAR, 0, 3))),
    "non-ascii": Chars(((0x80, 0x10FFFF),)),
}


def _encodings(s: str, mode: str) -> set[str]:
    out = {json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1]}
    if mode == "any":
        def esc(c):
            cp = ord(c)
            if cp < 0x10000:
                return f"\\u{cp:04x}"
            cp -= 0x10000
            return f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}"
        out.add("".join(esc(c) for c in s))
        out.add(json.dumps(s).replace("/", "\\/")[1:-1])
    return out


@pytest.mark.parametrize("mode", ["canonical", "any"])
@pytest.mark.parametrize("name", sorted(_LANGS))
def test_encoding_commutes_with_membership(mode, name):
    enc = StringEncoder(mode)
    lang = _LANGS[name]
    encoded = enc.encode(lang)
    rng = random.Random(hash(name) & 0xFFFF)
    for _ in range(150):
        s = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 4)))
        want = ir_fullmatch(lang, s.encode("utf-8"))
        for text in _encodings(s, mode):
            assert ir_fullmatch(encoded, text.encode("utf-8")) == want, (s, text)
    for text in ["\\ud800", "\\x", "\\u12", '"', "\\", "\x01"]:  # never an encoding of anything
        assert not ir_fullmatch(encoded, text.encode("utf-8"))


def test_canonical_mode_rejects_gratuitous_escapes():
    enc = StringEncoder("canonical")
    e = enc.encode(repeat(ANY_CHAR, 0, None))
    for text in ["\\u0061", "\\/", "\\u0022"]:
        assert not ir_fullmatch(e, text.encode())
    for text in ["a", "\\\"", "\\u00e9", "\\u00E9", "é", "\\ud83d\\ude00", "😀", "\\u001f", "\x7f", "\\u007f"]:
        assert ir_fullmatch(e, text.encode()), text


# ---------------------------------------------------------------- formats

# ../shared/data beside the checkout (CI lays it out the same way)
SUITE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "shared", "data", "json-schema-test-suite", "tests")
_CHECKERS = {"2020-12": jsonschema.Draft202012Validator.FORMAT_CHECKER,
             "7": jsonschema.Draft7Validator.FORMAT_CHECKER}


def _accepts(name: str, s: str) -> bool:
    try:
        data = s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return ir_fullmatch(format_language(name), data)


def _suite_strings():
    out = []
    for draft, folder in (("2020-12", "draft2020-12"), ("7", "draft7")):
        for f in sorted(glob.glob(os.path.join(SUITE, folder, "optional", "format", "*.json"))):
            name = os.path.basename(f)[:-5]
            if format_language(name) is None:
                continue
            with open(f) as fh:
                for g in json.load(fh):
                    for t in g["tests"]:
                        if isinstance(t["data"], str) and g["schema"].get("format") == name:
                            out.append((draft, name, t["data"], t["valid"]))
    return out


@pytest.mark.skipif(not os.path.isdir(SUITE), reason="test suite data missing")
def test_formats_never_accept_what_jsonschema_rejects():
    cases = _suite_strings()
    assert len(cases) > 500
    agree = 0
    for draft, name, s, valid in cases:
        got = _accepts(name, s)
        if got:
            assert _CHECKERS[draft].conforms(s, name), (name, s)
            assert valid, (name, s)  # and never what the RFC-minded suite rejects
        agree += got == valid
    assert agree / len(cases) > 0.85


def test_format_positive_examples():
    rng = random.Random(7)
    for _ in range(200):
        d = datetime.date(1, 1, 1) + datetime.timedelta(days=rng.randint(0, 3_652_058))
        assert _accepts("date", d.isoformat()), d
        t = datetime.datetime(d.year, d.month, d.day, rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                              rng.choice([0, rng.randint(1, 999999)]))
        assert _accepts("date-time", t.isoformat() + "Z")
        assert _accepts("date-time", t.isoformat() + rng.choice(["+05:30", "-00:00", "z"]))
        assert _accepts("time", t.time().isoformat() + "Z")
        a4 = ipaddress.IPv4Address(rng.getrandbits(32))
        assert _accepts("ipv4", str(a4))
        a6 = ipaddress.IPv6Address(rng.getrandbits(128) if rng.random() < 0.5 else rng.getrandbits(16) << 64)
        for text in (str(a6), a6.exploded, a6.exploded.upper()):
            assert _accepts("ipv6", text), text
        assert _accepts("uuid", str(uuid.UUID(int=rng.getrandbits(128))))
    for ok in ["::", "::1", "1::", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7::"]:
        assert _accepts("ipv6", ok), ok
    for ok in ["example.com", "a-b.c-d.e", "x" * 63 + ".com", "a.b.c.d.e.f.g.h"]:
        assert _accepts("hostname", ok), ok
        assert _accepts("idn-hostname", ok), ok
    for ok in ["a@b.co", "first.last+tag@example.org", '"a b"@x.io', "x@[1.2.3.4]", "x@[IPv6:::1]"]:
        assert _accepts("email", ok), ok
    for ok in ["https://a.b/c?d=e#f", "urn:isbn:123", "mailto:x@y.z", "http://[::1]:80/"]:
        assert _accepts("uri", ok) and _accepts("uri-reference", ok), ok
    for ok in ["P1Y2M3DT4H5M6S", "PT0S", "P2W"]:
        assert _accepts("duration", ok), ok


def test_format_random_strings_are_subsets():
    """Mutated near-valid strings: anything accepted must pass jsonschema and a reference check."""
    rng = random.Random(3)
    seeds = {"ipv4": "192.168.0.1", "ipv6": "2001:db8::8a2e:370:7334", "date": "2020-02-29",
             "date-time": "2020-02-29T23:59:59.5+01:00", "uuid": "123e4567-e89b-12d3-a456-426614174000",
             "email": "a.b@c-d.example", "hostname": "a-b.example.com", "time": "12:34:56Z"}
    refs = {"ipv4": lambda s: ipaddress.IPv4Address(s),
            "ipv6": lambda s: ipaddress.IPv6Address(s),
            "date": lambda s: datetime.date.fromisoformat(s),
            "uuid": lambda s: uuid.UUID(s)}
    chars = "0123456789abcdefABCDEF:.-@TZ+ x"
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    accepted = 0
    for name, seed in seeds.items():
        for _ in range(300):
            s = list(seed)
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                i = rng.randrange(len(s) + 1)
                if op < 0.4 and s:
                    s[min(i, len(s) - 1)] = rng.choice(chars)
                elif op < 0.7:
                    s.insert(i, rng.choice(chars))
                elif s:
                    del s[min(i, len(s) - 1)]
            text = "".join(s)
            if _accepts(name, text):
                accepted += 1
                assert checker.conforms(text, name), (name, text)
                if name in refs:
                    refs[name](text)  # raises if the reference parser disagrees
    assert accepted > 100


def test_format_negations_are_disjoint():
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for name in sorted(KNOWN_FORMATS):
        neg = negation(name)
        if neg is None:
            continue
        for s in ["1.2.3.4", "2020-01-01", "a@b", "x", "", "0000-01-01", "1.2.3.04"]:
            if ir_fullmatch(neg, s.encode()):
                assert not checker.conforms(s, name), (name, s)
                assert not _accepts(name, s) if format_language(name) is not None else True
