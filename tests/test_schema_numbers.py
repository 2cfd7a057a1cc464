"""Number languages: ranges, integrality, multipleOf, exclusions -- exact on the decimal value,
never accepting what jsonschema (float semantics) rejects, always accepting json.dumps output."""
from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import jsonschema
import pytest

from structgen.errors import UnsupportedSchema
from structgen.schema._irmatch import bytes_match
from structgen.schema._numbers import (
    Bound,
    Interval,
    NumSpec,
    _frac,
    _same_len,
    dec_value,
    int_range,
    number_language,
    udec,
    uint_range,
    usci,
)

try:
    from tests.ir_interp import ir_fullmatch
except ImportError:
    from ir_interp import ir_fullmatch


def test_uint_and_int_ranges():
    e = uint_range(17, 2345)
    for n in range(3000):
        assert ir_fullmatch(e, str(n).encode()) == (17 <= n <= 2345), n
    assert not ir_fullmatch(e, b"017")
    e = int_range(-123, 45)
    for n in range(-200, 100):
        assert ir_fullmatch(e, str(n).encode()) == (-123 <= n <= 45), n
    assert ir_fullmatch(int_range(-5, 5), b"-0")
    e = uint_range(95, None)
    for n in range(2000):
        assert ir_fullmatch(e, str(n).encode()) == (n >= 95), n
    big = 15 * 10 ** 299 + 1  # long bounds stay shallow
    e = uint_range(big, None)
    assert ir_fullmatch(e, str(big + 6).encode()) and not ir_fullmatch(e, str(big - 1).encode())


def test_same_length_ranges_random():
    rng = random.Random(1)
    for _ in range(400):
        n = rng.randint(1, 6)
        x = rng.randint(10 ** (n - 1) if n > 1 else 0, 10 ** n - 1)
        y = rng.randint(x, 10 ** n - 1)
        e = _same_len(str(x).zfill(n), str(y).zfill(n))
        for _ in range(10):
            z = rng.randint(max(0, x - 50), min(10 ** n - 1, y + 50))
            assert ir_fullmatch(e, str(z).zfill(n).encode()) == (x <= z <= y), (x, y, z)


def _fv(digits: str) -> Fraction:
    return Fraction("0." + digits) if digits else Fraction(0)


def test_fraction_comparators_random():
    rng = random.Random(5)
    for _ in range(1500):
        def bound():
            if rng.random() < 0.2:
                return None
            d = "0" * rng.choice([0, 0, 1, 2, 5]) + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 3)))
            return d.rstrip("0")
        lo, hi = bound(), bound()
        ls, hs = rng.random() < 0.5, rng.random() < 0.5
        e, eps = _frac(lo, ls, hi, hs)

        def inside(v, lo=lo, ls=ls, hi=hi, hs=hs):
            return (lo is None or (v > _fv(lo) if ls else v >= _fv(lo))) and \
                (hi is None or (v < _fv(hi) if hs else v <= _fv(hi)))
        for _ in range(15):
            f = "".join(rng.choice("0000123456789") for _ in range(rng.randint(1, 9)))
            assert ir_fullmatch(e, f.encode()) == inside(_fv(f)), (lo, ls, hi, hs, f)
        assert eps == inside(Fraction(0))


def test_decimal_and_scientific_intervals():
    iv = Interval(Fraction("0.25"), False, Fraction("3.125"), True)
    e = udec(iv, "required")
    for t in ["0.25", "0.250", "0.2", "0.3", "3.12", "3.125", "3.1249999", "1.0", "2.99", "3.1250", "0.24999"]:
        assert ir_fullmatch(e, t.encode()) == (Fraction("0.25") <= Fraction(t) < Fraction("3.125")), t
    iv = Interval(Fraction("0.00025"), True, Fraction("31250"), False)
    e = usci(iv)
    for t in ["2.5e-4", "2.50e-4", "2.500001e-4", "3.125e4", "3.1250e+4", "3.1251e4", "1e0", "9.99e3", "2.4e-4", "1e5"]:
        m, x = t.lower().split("e")
        v = Fraction(m) * Fraction(10) ** int(x)
        assert ir_fullmatch(e, t.encode()) == (Fraction("0.00025") < v <= 31250), t


# ---------------------------------------------------------------- random schemas vs jsonschema

def _value(t: str) -> Fraction:
    m = t.lower()
    if "e" in m:
        a, b = m.split("e")
        return Fraction(a) * Fraction(10) ** int(b)
    return Fraction(m)


def _math_valid(t: str, schema: dict) -> bool:
    v = _value(t)
    for k, strict in (("minimum", False), ("exclusiveMinimum", True)):
        if k in schema:
            b = dec_value(schema[k])
            if v < b or (strict and v == b):
                return False
    for k, strict in (("maximum", False), ("exclusiveMaximum", True)):
        if k in schema:
            b = dec_value(schema[k])
            if v > b or (strict and v == b):
                return False
    if schema.get("type") == "integer" and v.denominator != 1:
        return False
    if "multipleOf" in schema and (v / schema["multipleOf"]).denominator != 1:
        return False
    n = schema.get("not", {})
    if "multipleOf" in n and (v / n["multipleOf"]).denominator == 1:
        return False
    if n.get("type") == "integer" and v.denominator == 1:
        return False
    if "const" in n and v == dec_value(n["const"]):
        return False
    return not ("enum" in schema and not any(v == dec_value(x) for x in schema["enum"]))


def _spec(schema: dict) -> NumSpec:
    bounds = []
    for k, low, strict in (("minimum", True, False), ("exclusiveMinimum", True, True),
                           ("maximum", False, False), ("exclusiveMaximum", False, True)):
        if k in schema:
            bounds.append(Bound(schema[k], strict, low))
    integral = True if schema.get("type") == "integer" else None
    n = schema.get("not", {})
    if n.get("type") == "integer":
        integral = False
    return NumSpec(tuple(bounds), integral, (schema["multipleOf"],) if "multipleOf" in schema else (),
                   (n["multipleOf"],) if "multipleOf" in n else (), (n["const"],) if "const" in n else (),
                   tuple(schema["enum"]) if "enum" in schema else None)


def _texts_near(values) -> list[str]:
    out = {"0", "-0", "0.0", "-0.0", "1e400", "-1e400", "1e-400", "0.5e1", "12e1", "1.5", "-1.5", "1e2", "1.0e2"}
    for v in values:
        f = float(v)
        for x in (v, f, math.nextafter(f, math.inf), math.nextafter(f, -math.inf)):
            if math.isfinite(x):
                out.add(json.dumps(x))
        if float(v).is_integer() and abs(v) < 1e20:
            i = int(v)
            out |= {str(i), str(i + 1), str(i - 1), f"{i}.0", f"{i}.00", f"{i}e0", f"{i + 1}.5",
                    f"{i}.0000000000000000001", f"{i - 1}.9999999999999999999"}
            if i:
                s, sign = str(abs(i)), "-" if i < 0 else ""
                out.add(f"{sign}{s[0]}.{s[1:] or '0'}e{len(s) - 1}")
                out.add(f"{sign}{s[0]}.{s[1:] or '0'}E+{len(s) - 1}")
        out.add(repr(f).replace("e", "E"))
    return sorted(out)


@pytest.mark.parametrize("seed", range(4))
def test_random_numeric_schemas(seed):
    rng = random.Random(seed)

    def num():
        c = rng.random()
        if c < 0.3:
            return rng.randint(-1000, 1000)
        if c < 0.5:
            return round(rng.uniform(-100, 100), rng.randint(0, 3))
        if c < 0.6:
            return rng.choice([0, 0.0, 1e16, 1e23, 2 ** 53 + 1, 0.1, 0.3, -0.5, 1e-5, 5e-324, 1.5e300])
        return rng.randint(-10 ** 6, 10 ** 6) / rng.choice([1, 10, 100, 7])

    checked = 0
    for _ in range(40):
        schema, vals = {}, []
        for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            if rng.random() < 0.35:
                schema[k] = num()
                vals.append(schema[k])
        if rng.random() < 0.3:
            schema["type"] = "integer"
        if rng.random() < 0.2:
            schema["multipleOf"] = rng.choice([1, 2, 3, 5, 6, 10, 12, 25, 7])
        r = rng.random()
        if r < 0.1:
            schema["not"] = {"multipleOf": rng.choice([2, 3, 4])}
        elif r < 0.2 and "type" not in schema:
            schema["not"] = {"type": "integer"}
        elif r < 0.3:
            schema["not"] = {"const": num()}
            vals.append(schema["not"]["const"])
        if rng.random() < 0.1:
            schema["enum"] = [num() for _ in range(3)]
            vals += schema["enum"]
        vals += [num() for _ in range(3)]
        rules: dict = {}
        try:
            e = number_language(_spec(schema), rules)
        except UnsupportedSchema:
            assert schema.get("multipleOf") == 7  # only generic factors over bounded ranges
            continue
        validator = jsonschema.Draft202012Validator({"type": "number", **schema} if "type" not in schema else schema)
        for t in _texts_near(vals):
            v = json.loads(t)
            ok_js = validator.is_valid(v)
            ok_math = _math_valid(t, schema)
            got = bytes_match(e, t.encode(), rules)
            assert not (got and not (ok_js and ok_math)), (schema, t)  # never under-constrained
            if ok_js and ok_math and t == json.dumps(v) and not got:
                # the documented exceptions: floats >= 2**53 or with > 15 significant digits under
                # multipleOf / not, and "I.0" spellings for factors other than 2^a 5^b (x3)
                assert isinstance(v, float) and ("multipleOf" in schema or "not" in schema), (schema, t)
            checked += 1
    assert checked > 500


@pytest.mark.parametrize("draft,schema,spec", [
    ("2020-12", {"type": "number", "multipleOf": 1}, NumSpec(mults=(1,))),  # 2.5 is no multiple of 1
    ("4", {"type": "integer"}, NumSpec(integral=True, int_text=True)),      # 2.0 is a float in draft 4
    ("4", {"type": "integer", "minimum": -3, "maximum": 40},
     NumSpec((Bound(-3, False, True), Bound(40, False, False)), True, int_text=True)),
])
def test_integrality_against_the_drafts_validator(draft, schema, spec):
    """Never under-constrained against the draft's own validator (MaskBench's invalid
    instances `{"id": 2.5}` under multipleOf 1 and `12345.0` for a draft-04 integer)."""
    e = number_language(spec)
    validator = (jsonschema.Draft4Validator if draft == "4" else jsonschema.Draft202012Validator)(schema)
    for t in _texts_near([0, 1, 2, 2.5, 12345.0, -3, 40, 41, 1e2, 0.5]):
        v = json.loads(t)
        got = ir_fullmatch(e, t.encode())
        assert not (got and not validator.is_valid(v)), (schema, t)
        if validator.is_valid(v) and t == json.dumps(v) and "e" not in t.lower():
            assert got, (schema, t)


@pytest.mark.parametrize("schema", [
    {"not": {"type": "integer"}},
    {"type": "number", "not": {"type": "integer", "minimum": 5}},
    {"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 3}]},
])
def test_draft4_integer_complements_are_exact(schema, toy_bpe_vocab):
    """`not`/oneOf over a draft-04 integer: the complement holds every non-integer spelling,
    1.0 included (a float there)."""
    import structgen

    schema = {"$schema": "http://json-schema.org/draft-04/schema#", **schema}
    cg = structgen.compile_json_schema(schema, toy_bpe_vocab, whitespace="compact", cache=False)
    validator = jsonschema.Draft4Validator(schema)
    for t in _texts_near([0, 1, 2.5, 3, 5, 7, 1e2]) + ['"a"', "null", "[]"]:
        m = cg.matcher()
        got = m.accept_string(t) and m.is_accepting()
        v = json.loads(t)
        assert not (got and not validator.is_valid(v)), (schema, t)
        if validator.is_valid(v) and t == json.dumps(v) and "e" not in t.lower():
            assert got, (schema, t)


def test_unconstrained_number_is_the_json_grammar():
    e = number_language(NumSpec())
    for t in ["0", "-0", "1.5e-3", "0e0", "10E+2", "-0.0", "123456789012345678901234567890"]:
        assert ir_fullmatch(e, t.encode()), t
    for t in ["01", "1.", ".5", "+1", "1e", "--1", "NaN", "Infinity"]:
        assert not ir_fullmatch(e, t.encode()), t


def test_integer_spellings():
    e = number_language(NumSpec(integral=True))
    for t in ["0", "-7", "12345678901234567890123", "3.0", "3.000", "-0.0", "1e+16", "1.5e+300", "1E16",
              json.dumps(1e22), json.dumps(-2.5e17)]:
        assert ir_fullmatch(e, t.encode()), t
    for t in ["1.5", "1e400", "1e-3", "3.01", "1.7976931348623159e308"]:
        assert not ir_fullmatch(e, t.encode()), t


def test_multipleof_generic_factor_uses_shared_rules():
    rules: dict = {}
    e = number_language(NumSpec((Bound(0, False, True),), True, (7,)), rules)
    assert rules and all(k.startswith("mod7") for k in rules)
    for n in range(300):
        assert bytes_match(e, str(n).encode(), rules) == (n % 7 == 0), n
    assert bytes_match(e, str(7 * 10 ** 30).encode(), rules)
    with pytest.raises(UnsupportedSchema):
        number_language(NumSpec((Bound(-10 ** 6, False, True), Bound(10 ** 9, False, False)), True, (7,)), {})
