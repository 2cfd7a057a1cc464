"""`format` languages (char-level IR).

Each language is a SUBSET of both what the format's RFC allows and what jsonschema's
FormatChecker accepts, so a format never lets through an instance a validator would reject.
Where the RFC has length limits outside its ABNF (host names <= 253 octets, labels <= 63,
e-mail local parts <= 64) we enforce them with a union of "tiers" (at most n labels of at most m
characters each, n*m+n-1 within the limit: 3 labels of <= 63 or 8 labels of <= 30 for a host
name) -- exact automata for "total <= 253" would cost tens of thousands of states per field.

Every pattern below is plain ASCII Python regex syntax with explicit classes ([0-9], never \\d),
fed to `structgen.regex.parse_regex` in fullmatch mode.

`negation(name)` answers what ``{"not": {"format": name}}`` may accept: the complement of the
union of the RFC language and jsonschema's accepted set. That is known exactly for a few formats
(and is empty for formats jsonschema does not check, which it treats as always valid); for the
others negation is refused (UnsupportedSchema).
"""
from __future__ import annotations

from functools import cache

from structgen.grammar.ir import (
    NOTHING,
    And,
    Expr,
    Not,
    Repeat,
    alt,
    chars,
    lit,
    repeat,
    seq,
)

# ------------------------------------------------------------------ pieces (Python regex text)
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_D31 = r"(?:0[1-9]|[12][0-9]|3[01])"
_D30 = r"(?:0[1-9]|[12][0-9]|30)"
_D28 = r"(?:0[1-9]|1[0-9]|2[0-8])"
DATE = rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-{_D31}|(?:0[469]|11)-{_D30}|02-{_D28})|{_LEAP}-02-29)"
DATE_YEAR0 = rf"(?:0000-(?:(?:0[13578]|1[02])-{_D31}|(?:0[469]|11)-{_D30}|02-(?:{_D28}|29)))"
_HOUR = r"(?:[01][0-9]|2[0-3])"
_MIN = r"[0-5][0-9]"
TIME = rf"(?:{_HOUR}:{_MIN}:{_MIN}(?:\.[0-9]+)?(?:[Zz]|[+-]{_HOUR}:{_MIN}))"
DATE_TIME = rf"(?:{DATE}[Tt]{TIME})"

_DS = r"[0-9]+S"
_DM = rf"[0-9]+M(?:{_DS})?"
_DH = rf"[0-9]+H(?:{_DM})?"
_DT = rf"T(?:{_DH}|{_DM}|{_DS})"
_DD = r"[0-9]+D"
_DW = r"[0-9]+W"
_DMO = rf"[0-9]+M(?:{_DD})?"
_DY = rf"[0-9]+Y(?:{_DMO})?"
DURATION = rf"P(?:(?:{_DD}|{_DMO}|{_DY})(?:{_DT})?|{_DT}|{_DW})"

_OCT = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
IPV4 = rf"(?:{_OCT}(?:\.{_OCT}){{3}})"
_H16 = r"[0-9A-Fa-f]{1,4}"


def _groups(n: int) -> str:
    """n colon-separated hex groups (n >= 1)."""
    return _H16 if n == 1 else rf"{_H16}(?::{_H16}){{{n - 1}}}"


def _ipv6(max_comp_groups: int = 7, max_comp_groups_v4: int = 5, min_elided: int = 1) -> str:
    """IPv6 text forms: full, "::"-compressed (eliding >= min_elided groups), IPv4-suffixed."""
    forms = [_groups(8), rf"{_groups(6)}:{IPV4}"]
    for a in range(8):
        for b in range(8 - a):
            if a + b > 8 - min_elided or a + b > max_comp_groups:
                continue
            left = _groups(a) if a else ""
            right = _groups(b) if b else ""
            forms.append(rf"{left}::{right}")
    for a in range(6):
        for b in range(6 - a):
            if a + b > 6 - min_elided or a + b > max_comp_groups_v4:
                continue
            left = _groups(a) if a else ""
            right = (_groups(b) + ":") if b else ""
            forms.append(rf"{left}::{right}{IPV4}")
    return "(?:" + "|".join(f"(?:{f})" for f in forms) + ")"


IPV6 = _ipv6()
# RFC 5321 4.1.3: "::" stands for at least 2 groups; at most 6 (4 with IPv4) other groups.
IPV6_SMTP = _ipv6(6, 4, 2)

_AN = r"[A-Za-z0-9]"
_AH = r"[A-Za-z0-9-]"


def _label(maxlen: int) -> str:
    """A host name label of 1..maxlen chars: letters/digits/hyphens, no hyphen at either end, and
    no "--" in positions 3-4 (reserved for IDNA A-labels, whose validity is not regular)."""
    forms = [_AN]
    if maxlen >= 2:
        forms.append(rf"{_AN}{_AH}{{0,{min(1, maxlen - 2)}}}{_AN}")
    if maxlen >= 4:
        forms.append(rf"{_AN}{_AH}{_AH}{_AN}")
    if maxlen >= 5:
        forms.append(rf"{_AN}{_AH}(?:{_AN}{_AH}|-{_AN}){_AH}{{0,{maxlen - 5}}}{_AN}")
    return "(?:" + "|".join(forms) + ")"


def _hostname(total: int) -> str:
    """Dot-separated labels within `total` characters, as two tiers: few long labels (up to 63
    characters, the RFC maximum) or more labels of up to 30 characters."""
    tiers = []
    for maxlen in (63, 30):
        labels = (total + 1) // (maxlen + 1)
        lab = _label(maxlen)
        tiers.append(rf"{lab}(?:\.{lab}){{0,{labels - 1}}}")
    return "(?:" + "|".join(f"(?:{t})" for t in tiers) + ")"


HOSTNAME = _hostname(253)

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = r'"(?:[ !#-\[\]-~]|\\[ -~])*"'
EMAIL_DOMAIN = rf"(?:{_hostname(189)}|\[{IPV4}\]|\[IPv6:{IPV6_SMTP}\])"

def _cls(ranges) -> str:
    return "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


# RFC 3987: ucschar and iprivate (IRIs only)
_UCS = _cls([(0xA0, 0xD7FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF)] +
            [(0x10000 * k, 0x10000 * k + 0xFFFD) for k in range(1, 14)] + [(0xE1000, 0xEFFFD)])
_IPRIVATE = _cls([(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)])
_PCT = r"%[0-9A-Fa-f]{2}"
_SUB = r"[!$&'()*+,;=]"


def _uri_grammar(iri: bool) -> tuple[str, str]:
    """(absolute, reference) patterns of RFC 3986, or of RFC 3987 when iri."""
    unres = rf"[A-Za-z0-9._~{_UCS}-]" if iri else r"[A-Za-z0-9._~-]"
    pchar = rf"(?:{unres}|{_PCT}|{_SUB}|[:@])"
    scheme = r"[A-Za-z][A-Za-z0-9+.-]*"
    userinfo = rf"(?:{unres}|{_PCT}|{_SUB}|:)*"
    ipfuture = rf"[vV][0-9A-Fa-f]+\.(?:[A-Za-z0-9._~-]|{_SUB}|:)+"
    host = rf"(?:\[(?:{IPV6}|{ipfuture})\]|{IPV4}|(?:{unres}|{_PCT}|{_SUB})*)"
    authority = rf"(?:{userinfo}@)?{host}(?::[0-9]*)?"
    seg = rf"{pchar}*"
    seg_nz = rf"{pchar}+"
    seg_nz_nc = rf"(?:{unres}|{_PCT}|{_SUB}|@)+"
    abempty = rf"(?:/{seg})*"
    absolute = rf"/(?:{seg_nz}(?:/{seg})*)?"
    rootless = rf"{seg_nz}(?:/{seg})*"
    noscheme = rf"{seg_nz_nc}(?:/{seg})*"
    query = rf"(?:{pchar}|[/?{_IPRIVATE}])*" if iri else rf"(?:{pchar}|[/?])*"
    frag = rf"(?:{pchar}|[/?])*"
    tail = rf"(?:\?{query})?(?:#{frag})?"
    full = rf"{scheme}:(?://{authority}{abempty}|{absolute}|{rootless}|){tail}"
    rel = rf"(?://{authority}{abempty}|{absolute}|{noscheme}|){tail}"
    return full, rf"(?:{full}|{rel})"


URI, URI_REFERENCE = _uri_grammar(False)
IRI, IRI_REFERENCE = _uri_grammar(True)

UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"

_UT_LITERAL = rf"(?:[!#$&(-;=?-\[\]_a-z~{_UCS}{_IPRIVATE}]|{_PCT})"
_UT_VARCHAR = rf"(?:[A-Za-z0-9_]|{_PCT})"
_UT_VARSPEC = rf"{_UT_VARCHAR}(?:\.?{_UT_VARCHAR})*(?::[1-9][0-9]{{0,3}}|\*)?"
_UT_EXPR = rf"\{{[+#./;?&]?{_UT_VARSPEC}(?:,{_UT_VARSPEC})*\}}"
URI_TEMPLATE = rf"(?:{_UT_LITERAL}|{_UT_EXPR})*"


def _compile(pattern: str) -> Expr:
    from structgen.regex import parse_regex

    return parse_regex(pattern, flavor="python", search=False)


def _email() -> Expr:
    local = alt(_compile(_DOT_STRING), _compile(_QUOTED))
    local64 = And((local, repeat(chars((0x20, 0x7E)), 1, 64)))
    return seq(local64, lit("@"), _compile(EMAIL_DOMAIN))


def _json_pointer() -> Expr:
    not_special = chars((0, 0x2E), (0x30, 0x7D), (0x7F, 0xD7FF), (0xE000, 0x10FFFF))
    token = repeat(alt(not_special, lit("~0"), lit("~1")), 0, None)
    return repeat(seq(lit("/"), token), 0, None)


def _relative_json_pointer() -> Expr:
    # jsonschema rejects any digit that follows a "0" (so "100" fails there): stay inside that
    num = alt(lit("0"), seq(repeat(chars("19"), 1, None), repeat(lit("0"), 0, 1)))
    return seq(num, alt(lit("#"), _json_pointer()))


_BUILDERS = {
    "date": lambda: _compile(DATE),
    "time": lambda: _compile(TIME),
    "date-time": lambda: _compile(DATE_TIME),
    "duration": lambda: _compile(DURATION),
    "email": _email,
    "idn-email": _email,
    "hostname": lambda: _compile(HOSTNAME),
    "idn-hostname": lambda: _compile(HOSTNAME),
    "ipv4": lambda: _compile(IPV4),
    "ipv6": lambda: _compile(IPV6),
    "uri": lambda: _compile(URI),
    "iri": lambda: _compile(IRI),
    "uri-reference": lambda: _compile(URI_REFERENCE),
    "iri-reference": lambda: _compile(IRI_REFERENCE),
    "uuid": lambda: _compile(UUID),
    "json-pointer": _json_pointer,
    "relative-json-pointer": _relative_json_pointer,
    "uri-template": lambda: _compile(URI_TEMPLATE),
}

# Formats defined by some JSON Schema draft that we cannot express (their grammar is not regular
# or not known exactly): an error, or a lenient-mode warning.
UNSUPPORTED_FORMATS = {"regex"}

KNOWN_FORMATS = set(_BUILDERS) | UNSUPPORTED_FORMATS


@cache
def format_language(name: str) -> Expr | None:
    """The char-level language of format `name`, or None when we have none for it."""
    b = _BUILDERS.get(name)
    return b() if b is not None else None


def _jsonschema_checks(name: str, draft: str) -> bool:
    import jsonschema

    cls = jsonschema.Draft7Validator if draft == "7" else jsonschema.Draft202012Validator
    return name in cls.FORMAT_CHECKER.checkers


def negation(name: str, draft: str = "2020-12") -> Expr | None:
    """What ``not: {format: name}`` may accept (char-level), or None when unknown.

    It must be disjoint from both the RFC language and jsonschema's accepted set; when jsonschema
    does not check `name` (no checker installed, or an unknown format), every string is a valid
    `name` for it, so the negation is empty.
    """
    if not _jsonschema_checks(name, draft):
        return NOTHING
    if name == "ipv4":
        return Not(format_language("ipv4"))  # RFC 2673 and ipaddress agree exactly
    if name == "date":
        return Not(alt(format_language("date"), _compile(DATE_YEAR0)))
    if name in ("email", "idn-email"):
        # jsonschema accepts every string with an "@"; every RFC 5321 mailbox has one
        return Repeat(chars((0, 0x3F), (0x41, 0xD7FF), (0xE000, 0x10FFFF)), 0, None)
    return None


__all__ = ["KNOWN_FORMATS", "UNSUPPORTED_FORMATS", "format_language", "negation"]
