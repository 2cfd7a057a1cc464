"""Lark grammars -> grammar IR.

Lark's own loader (`lark.load_grammar.load_grammar`) does the parsing, `%import` (common.lark
and local files), `%override`, `%extend`, `%declare` and `%ignore` bookkeeping and undefined
symbol checks. We then walk its *uncompiled* definition trees ourselves instead of calling
`Grammar.compile()`: compile() rewrites `x*`/`x+`/`x~n..m` into left-recursive helper rules and
joins terminals into one regex string, which would throw away structure the automata compiler
exploits (a `Repeat` compiles to a DFA loop, a helper rule needs a stack).

Semantics: the language Lark's Earley parser accepts. The grammar is read as a CFG over
characters where each terminal is the regular language of its definition, plus `%ignore`: the
ignored terminals may occur any number of times between two terminals, before the first and
after the last (Lark accepts leading/trailing whitespace, so must we). That is implemented by
wrapping: the IR rule of every terminal T is `Seq(T, Ref("__ignore__"))` with
`__ignore__ = Repeat(Alt(ignored))`, and the start rule becomes
`__start__ = Seq(Ref("__ignore__"), Ref(start))`.

Terminal matching follows the chosen Lark lexer. `lexer="dynamic"` (Lark's default, ours too)
takes each terminal's longest match: `NAME NAME` cannot read "ab" as "a" "b", and "SELECTa" is
one NAME where a keyword-then-name split is still possible ("fromt" = FROM t, as in Lark). A
terminal that some byte could extend (NAME, NUMBER; not a fixed keyword) becomes a greedy rule
`__lex__T` (see `Grammar.greedy`): a frame that may end only before a byte its automaton cannot
take. This is also what keeps masks cheap: without it every identifier byte could end the
identifier and start the next word, so each mask would track many parses at once.
`lexer="dynamic_complete"` reads terminals at every length (the plain scannerless language).
Lark's greedy regex engine and longest match differ only for terminals like `/a|ab/` (Python's
`re` takes the first alternative); there we take the longest.

IR rule names: Lark rule names (template instances as `name{arg,...}`), terminal names, anonymous
terminals by their source text (`"("`, `/[0-9]+/`, `"a".."z"`), and `__ignore__`/`__start__`
(Lark reserves names starting with `__`, so these cannot collide).

Terminal leaves: strings -> `Lit` (the `i` flag -> per-character sets of exactly the characters
Python's `re.IGNORECASE` matches, which is what Lark uses); `/regex/flags` -> `Regex(pattern,
"python", flags)`; `"a".."z"` -> `Chars`; terminal operators -> `Seq`/`Alt`/`Repeat`.
Priorities, aliases, `?rule`/`_rule`/`!rule` and `[x]` placeholders only shape Lark's parse
trees, not the language, so they are dropped.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from structgen.errors import GrammarError, LimitExceeded
from structgen.grammar.ir import (
    EMPTY,
    Alt,
    ByteRange,
    Chars,
    Expr,
    Grammar,
    Lit,
    Ref,
    Regex,
    Repeat,
    Seq,
    alt,
    chars,
    lit,
    opt,
    repeat,
    seq,
)

__all__ = ["lark_to_ir", "IGNORE_RULE", "START_RULE"]

IGNORE_RULE = "__ignore__"
START_RULE = "__start__"
MAX_TEMPLATE_INSTANCES = 10_000


LEXERS = ("dynamic", "dynamic_complete")


def lark_to_ir(text: str, start: str = "start", import_paths: Sequence[str] = (),
               lexer: str = "dynamic") -> Grammar:
    """Translate a Lark grammar into a `Grammar` (see the module docstring for the semantics).

    `lexer` names the Lark Earley lexer whose reading of terminals we follow: "dynamic" (Lark's
    default) matches each terminal longest-first, so `NAME NAME` never splits "ab"; every
    terminal that could be extended by a byte becomes a greedy rule. "dynamic_complete" tries
    every match length (the plain scannerless language).

    Raises GrammarError for anything Lark itself would reject, for undefined or `%declare`d
    symbols that are used, and when the start rule derives no string at all.
    """
    try:
        from lark.exceptions import LarkError
        from lark.load_grammar import load_grammar
    except ImportError as ex:  # pragma: no cover - lark is a hard dependency
        raise GrammarError("the Lark front end needs the 'lark' package") from ex
    try:
        lg, _used = load_grammar(text, "<string>", list(import_paths), False)
    except LarkError as ex:
        raise GrammarError(f"invalid Lark grammar: {ex}") from None
    except OSError as ex:
        raise GrammarError(f"invalid Lark grammar: cannot import: {ex}") from None
    except (AssertionError, ValueError, KeyError) as ex:
        raise GrammarError(f"invalid Lark grammar: {type(ex).__name__}: {ex}") from None
    if lexer not in LEXERS:
        raise GrammarError(f"unknown lexer {lexer!r}; expected one of {', '.join(LEXERS)}")
    return _Converter(lg, start, greedy=lexer == "dynamic").run()


# ================================================================================ conversion

class _Converter:
    def __init__(self, lg, start: str, greedy: bool = False):
        self.start = start
        self.greedy_terms = greedy
        self.greedy: set[str] = set()
        self.rule_defs: dict[str, tuple[tuple[str, ...], object]] = {}
        # Lark hands out names as `Token`s (str subclasses); the IR gets plain str everywhere.
        for name, params, tree, _options in lg.rule_defs:
            self.rule_defs[str(name)] = (tuple(str(p) for p in params or ()), tree)
        self.term_defs: dict[str, object] = {str(name): tree for name, (tree, _prio) in lg.term_defs}
        self.ignore_names: list[str] = [str(n) for n in lg.ignore]
        self.rules: dict[str, Expr] = {}
        self.raw_terms: dict[str, Expr] = {}
        self.pending: list[tuple[str, object, dict[str, Expr]]] = []
        self.instances: dict[tuple, str] = {}
        self.anon: dict[str, str] = {}
        self.lexer_equivalents: list[str] = []

    # -- driver
    def run(self) -> Grammar:
        if self.start not in self.rule_defs:
            raise GrammarError(f"start rule {self.start!r} is not defined in the Lark grammar")
        if self.rule_defs[self.start][0]:
            raise GrammarError(f"start rule {self.start!r} is a template; it needs arguments")
        ignored = [self._raw_term(n) for n in self.ignore_names]
        self._rule_ref(self.start)
        while self.pending:
            name, tree, env = self.pending.pop()
            self.rules[name] = self._rule_expr(tree, env)
        if ignored:
            self.rules[IGNORE_RULE] = repeat(alt(ignored))
            self.rules[START_RULE] = seq(Ref(IGNORE_RULE), Ref(self.start))
        warnings = self._check_productive()
        meta = {
            "source": "lark",
            "lark_start": self.start,
            "terminals": dict(self.raw_terms),
            "ignore": list(self.ignore_names),
            "warnings": warnings,
            "lexer_equivalents": list(self.lexer_equivalents),
        }
        return Grammar(self.rules, START_RULE if ignored else self.start, meta, frozenset(self.greedy))

    # -- references
    def _rule_ref(self, name: str) -> Ref:
        if name not in self.rules:
            if name not in self.rule_defs:
                raise GrammarError(f"rule {name!r} is used but not defined")
            params, tree = self.rule_defs[name]
            if params:
                raise GrammarError(f"template {name!r} is used without arguments")
            if tree is None:
                raise GrammarError(f"rule {name!r} is only %declare'd: it has no definition")
            self.rules[name] = EMPTY  # placeholder, replaced when the worklist gets to it
            self.pending.append((name, tree, {}))
        return Ref(name)

    def _term_ref(self, name: str) -> Ref:
        if name not in self.rules:
            self._add_term_rule(name, self._raw_term(name))
        return Ref(name)

    def _add_term_rule(self, name: str, raw: Expr) -> None:
        """The rule a terminal use refers to: the terminal then the ignored ones. A terminal that
        a byte could extend is a greedy rule of its own (`__lex__NAME`) under the dynamic lexer."""
        if self.greedy_terms and not _prefix_free(raw):
            lex = "__lex__" + name
            self.rules[lex] = raw
            self.greedy.add(lex)
            raw = Ref(lex)
        self.rules[name] = seq(raw, Ref(IGNORE_RULE)) if self.ignore_names else raw

    def _anon_ref(self, key: str, raw: Expr) -> Ref:
        name = self.anon.get(key)
        if name is None:
            name = self.anon[key] = key
            self._check_nonempty_raw(key, raw)
            if isinstance(raw, Regex) and not raw.flags:
                eq = _lexer_equivalent(raw.pattern)
                if eq is not None:
                    raw = eq
                    self.lexer_equivalents.append(name)
            self.raw_terms[name] = raw
            self._add_term_rule(name, raw)
        return Ref(name)

    def _raw_term(self, name: str) -> Expr:
        raw = self.raw_terms.get(name)
        if raw is None:
            if name not in self.term_defs:
                raise GrammarError(f"terminal {name!r} is used but not defined")
            tree = self.term_defs[name]
            if tree is None:
                raise GrammarError(
                    f"terminal {name!r} is only %declare'd: it has no definition (declared terminals "
                    "come from a custom lexer or postlexer, which a character-level grammar cannot express)")
            pattern = _lark_pattern(name, tree)
            raw = _lexer_equivalent(pattern)
            if raw is None:
                raw = _term_expr(tree, name)
            else:
                self.lexer_equivalents.append(name)
            self.raw_terms[name] = raw
        return raw

    def _check_nonempty_raw(self, key: str, raw: Expr) -> None:
        if _nullable(raw):
            raise GrammarError(f"terminal {key} can match the empty string, which Lark does not allow")

    # -- rule bodies
    def _rule_expr(self, t, env: dict[str, Expr]) -> Expr:
        from lark import Token, Tree
        from lark.grammar import NonTerminal, Terminal

        if isinstance(t, Tree):
            d = t.data
            if d == "expansions":
                return alt(*[self._rule_expr(c, env) for c in t.children])
            if d == "expansion":
                return seq(*[self._rule_expr(c, env) for c in t.children])
            if d == "alias":
                return self._rule_expr(t.children[0], env)
            if d == "maybe":
                return opt(self._rule_expr(t.children[0], env))
            if d == "expr":
                return _apply_op(self._rule_expr(t.children[0], env), t.children[1:], "rule")
            if d == "value":
                return self._rule_expr(t.children[0], env)
            if d == "literal":
                tok = t.children[0]
                return self._anon_ref(str(tok.value), _literal_expr(tok))
            if d == "range":
                a, b = t.children
                return self._anon_ref(f"{a.value}..{b.value}", _range_expr(a, b))
            if d == "template_usage":
                return self._template(t, env)
            raise GrammarError(f"unexpected Lark grammar node {d!r}")
        if isinstance(t, NonTerminal):
            name = str(t.name)
            if name in env:
                return env[name]
            return self._rule_ref(name)
        if isinstance(t, Terminal):
            return self._term_ref(str(t.name))
        if isinstance(t, Token):
            raise GrammarError(f"unexpected token {t!r} in a Lark rule")
        raise GrammarError(f"unexpected Lark grammar item {t!r}")

    def _template(self, t, env: dict[str, Expr]) -> Expr:
        name = str(t.children[0].name)
        args = tuple(self._rule_expr(a, env) for a in t.children[1:])
        if name in env:  # a template parameter used as a template: `p{x}` inside a template
            target = env[name]
            if not isinstance(target, Ref) or target.name not in self.rule_defs:
                raise GrammarError(f"template parameter {name!r} is applied but is not bound to a template")
            name = target.name
        if name not in self.rule_defs:
            raise GrammarError(f"template {name!r} is used but not defined")
        params, tree = self.rule_defs[name]
        if len(params) != len(args):
            raise GrammarError(f"template {name!r} takes {len(params)} arguments, got {len(args)}")
        key = (name, args)
        inst = self.instances.get(key)
        if inst is None:
            if len(self.instances) >= MAX_TEMPLATE_INSTANCES:
                raise LimitExceeded(f"more than {MAX_TEMPLATE_INSTANCES} template instances (runaway template recursion?)")
            inst = f"{name}{{{','.join(_display(a) for a in args)}}}"
            while inst in self.rules or inst in self.rule_defs:
                inst += "'"
            self.instances[key] = inst
            self.rules[inst] = EMPTY
            self.pending.append((inst, tree, dict(zip(params, args))))
        return Ref(inst)

    # -- checks
    def _check_productive(self) -> list[str]:
        productive: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, body in self.rules.items():
                if name not in productive and _productive(body, productive):
                    productive.add(name)
                    changed = True
        dead = sorted(n for n in self.rules if n not in productive)
        root = START_RULE if START_RULE in self.rules else self.start
        if root not in productive:
            raise GrammarError(
                f"the grammar's language is empty: rule {self.start!r} derives no finite string"
                + (f" (non-productive: {', '.join(dead)})" if dead else ""))
        return [f"rule {n!r} derives no finite string (it can never be used)" for n in dead]


def _display(e: Expr) -> str:
    return e.name if isinstance(e, Ref) else repr(e)


# ================================================================================ terminals

def _term_expr(t, name: str) -> Expr:
    """A terminal definition tree (references already inlined by Lark's loader) -> raw IR."""
    from lark import Tree
    from lark.grammar import NonTerminal, Terminal

    if isinstance(t, Tree):
        d = t.data
        if d == "expansions":
            return alt(*[_term_expr(c, name) for c in t.children])
        if d == "expansion":
            return seq(*[_term_expr(c, name) for c in t.children])
        if d == "maybe":
            return opt(_term_expr(t.children[0], name))
        if d == "expr":
            return _apply_op(_term_expr(t.children[0], name), t.children[1:], f"terminal {name}")
        if d == "value":
            return _term_expr(t.children[0], name)
        if d == "literal":
            return _literal_expr(t.children[0])
        if d == "range":
            return _range_expr(*t.children)
        if d == "alias":
            raise GrammarError(f"aliases (->) are not allowed in terminals (terminal {name})")
        if d == "template_usage":
            raise GrammarError(f"templates cannot be used in terminals (terminal {name})")
        raise GrammarError(f"unexpected Lark grammar node {d!r} in terminal {name}")
    if isinstance(t, NonTerminal):
        raise GrammarError(f"rule {t.name!r} used inside terminal {name} (terminals must be regular)")
    if isinstance(t, Terminal):
        raise GrammarError(f"terminal {t.name!r} used inside terminal {name} has no definition")
    raise GrammarError(f"unexpected item {t!r} in terminal {name}")


def _apply_op(inner: Expr, args: list, where: str) -> Expr:
    op = str(args[0])
    if op == "?":
        return opt(inner)
    if op == "*":
        return repeat(inner, 0, None)
    if op == "+":
        return repeat(inner, 1, None)
    if op == "~":
        nums = [int(str(a)) for a in args[1:]]
        lo, hi = (nums[0], nums[0]) if len(nums) == 1 else (nums[0], nums[1])
        if lo < 0 or hi < lo:
            raise GrammarError(f"bad repetition range {lo}..{hi} in {where}")
        return repeat(inner, lo, hi)
    raise GrammarError(f"unknown operator {op!r} in {where}")


def _literal_expr(tok) -> Expr:
    """A `"string"flags` or `/regex/flags` token, decoded by Lark's own escaping rules."""
    from lark.exceptions import LarkError
    from lark.lexer import PatternStr
    from lark.load_grammar import _literal_to_pattern

    try:
        pat = _literal_to_pattern(tok)
    except LarkError as ex:
        raise GrammarError(f"bad literal {tok.value}: {ex}") from None
    except (AssertionError, SyntaxError, ValueError) as ex:
        raise GrammarError(f"bad literal {tok.value}: {ex}") from None
    flags = "".join(pat.flags)
    if isinstance(pat, PatternStr):
        return ci_literal(pat.value) if "i" in flags else lit(pat.value)
    if "l" in flags:
        raise GrammarError(f"regex flag 'l' (locale) cannot be used on text patterns: {tok.value}")
    try:
        re.compile(pat.value, _re_flags(flags))
    except re.error as ex:
        raise GrammarError(f"invalid regular expression {tok.value}: {ex}") from None
    return Regex(pat.value, flavor="python", flags="".join(f for f in "imsx" if f in flags))


def _re_flags(flags: str) -> int:
    out = 0
    for f in flags:
        out |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}.get(f, 0)
    return out


def _range_expr(a, b) -> Expr:
    from lark.exceptions import LarkError
    from lark.load_grammar import eval_escaping

    try:
        lo, hi = (eval_escaping(str(x.value)[1:-1]) for x in (a, b))
    except (LarkError, SyntaxError, ValueError) as ex:
        raise GrammarError(f"bad range {a.value}..{b.value}: {ex}") from None
    if len(lo) != 1 or len(hi) != 1:
        raise GrammarError(f"range ends must be single characters: {a.value}..{b.value}")
    if ord(lo) > ord(hi):
        raise GrammarError(f"empty range {a.value}..{b.value}")
    return chars((ord(lo), ord(hi)))


def ci_literal(text: str) -> Expr:
    """`text` matched case-insensitively: one character set per character, holding exactly the
    characters that Python's `re.IGNORECASE` (which Lark uses for the `i` flag) accepts."""
    parts: list[Expr] = []
    for ch in text:
        cps = _ci_class(ch)
        parts.append(lit(ch) if len(cps) == 1 else chars(*[(c, c) for c in cps]))
    return seq(*parts)


@lru_cache(maxsize=None)
def _all_chars() -> str:
    """Every code point except surrogates, as one string (built by C loops: ~0.1 s)."""
    from array import array

    return (array("I", range(0xD800)).tobytes().decode("utf-32-le")
            + array("I", range(0xE000, 0x110000)).tobytes().decode("utf-32-le"))


@lru_cache(maxsize=None)
def _ascii_letter_classes() -> dict[str, tuple[int, ...]]:
    """All 52 ASCII letters at once: one scan over every code point instead of 52."""
    found = re.findall("[a-z]", _all_chars(), re.IGNORECASE)
    out: dict[str, set[int]] = {}
    for x in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        out[x] = {ord(c) for c in found if re.fullmatch(x, c, re.IGNORECASE)} | {ord(x)}
    return {x: tuple(sorted(v)) for x, v in out.items()}


@lru_cache(maxsize=None)
def _ci_class(ch: str) -> tuple[int, ...]:
    """Code points `re.IGNORECASE` matches for `ch`. Asking `re` itself over every code point
    keeps this exact (Kelvin sign for k, long s for s, dotted/dotless i, ...) without
    re-deriving the engine's case tables."""
    if ord(ch) < 0x80:
        if ch.isalpha():
            return _ascii_letter_classes()[ch]
        return (ord(ch),)  # ASCII non-letters have no case partners (checked in the tests)
    rx = re.compile(re.escape(ch), re.IGNORECASE)
    return tuple(sorted({ord(m) for m in rx.findall(_all_chars())} | {ord(ch)}))


def _lark_pattern(name: str, tree) -> str:
    """The single regex Lark itself compiles the terminal to; refuses zero-width terminals as
    Lark does (same computation), and surfaces bad regexes as GrammarError."""
    from lark.load_grammar import PrepareLiterals, TerminalTreeToPattern, nr_deepcopy_tree

    try:
        pattern = (PrepareLiterals() * TerminalTreeToPattern()).transform(nr_deepcopy_tree(tree))
        width = pattern.min_width
        text = pattern.to_regexp()
    except GrammarError:
        raise
    except Exception as ex:  # lark.GrammarError, re.error, ValueError from the width computation
        raise GrammarError(f"bad terminal {name}: {ex}") from None
    if width == 0:
        raise GrammarError(f"terminal {name} can match the empty string, which Lark does not allow")
    return text


# Lark's common.lark spells two popular terminals with a lazy quantifier and a lookbehind. Read
# as a regular language they differ from what Lark's lexer matches (the lazy `.*?` is only a
# preference; the lookbehind is not compilable to an automaton), so these exact patterns map
# to lookaround-free IR for the language Lark's lexer actually produces (first delimiter not
# preceded by an odd run of backslashes / first `*/`).
_ESC_INNER = r".*?(?<!\\)(\\\\)*?"  # _STRING_ESC_INNER, as Lark compiles it
_C_COMMENT = "/\\*(.|\n)*?\\*/"  # the `\n` is a real newline: Lark evaluates that escape


def _lexer_equivalent(pattern: str) -> Expr | None:
    if pattern == _C_COMMENT:
        star = lit("*")
        not_star = chars((0, ord("*") - 1), (ord("*") + 1, 0x10FFFF))
        not_star_slash = chars((0, ord("*") - 1), (ord("*") + 1, ord("/") - 1), (ord("/") + 1, 0x10FFFF))
        return seq(lit("/*"), repeat(alt(not_star, seq(repeat(star, 1), not_star_slash))),
                   repeat(star, 1), lit("/"))
    n = len(_ESC_INNER)
    if len(pattern) > n and _ESC_INNER in pattern:
        i = pattern.index(_ESC_INNER)
        q_re, rest = pattern[:i], pattern[i + n:]
        if q_re == rest and q_re:
            q = re.sub(r"\\(.)", r"\1", q_re, flags=re.S)
            if len(q) == 1 and re.escape(q) == q_re and q not in "\\\n":
                plain = chars(*_minus((0, 0x10FFFF), {ord(q), ord("\\"), ord("\n")}))
                escaped = seq(lit("\\"), chars((0, 9), (11, 0x10FFFF)))
                return seq(lit(q), repeat(alt(plain, escaped)), lit(q))
    return None


def _minus(r: tuple[int, int], cps: set[int]) -> list[tuple[int, int]]:
    out = [r]
    for c in sorted(cps):
        nxt = []
        for lo, hi in out:
            if lo <= c <= hi:
                nxt += [(lo, c - 1), (c + 1, hi)]
            else:
                nxt.append((lo, hi))
        out = [(a, b) for a, b in nxt if a <= b]
    return out


# ================================================================================ IR analyses

def _nullable(e: Expr) -> bool:
    """Nullability of a raw terminal (no Refs); regex leaves are asked to `re`."""
    if isinstance(e, Lit):
        return e.value == b""
    if isinstance(e, (Chars, ByteRange)):
        return False
    if isinstance(e, Seq):
        return all(_nullable(x) for x in e.items)
    if isinstance(e, Alt):
        return any(_nullable(x) for x in e.items)
    if isinstance(e, Repeat):
        return e.min == 0 or _nullable(e.item)
    if isinstance(e, Regex):
        from lark.lexer import PatternRE

        return PatternRE(e.pattern, tuple(e.flags)).min_width == 0
    return False


def _prefix_free(e: Expr) -> bool:
    """No string of the raw terminal is a proper prefix of another (so longest match is moot).

    Conservative: False when unsure (regex leaves, alternatives of different lengths)."""
    if isinstance(e, (Lit, Chars, ByteRange)):
        return True  # one string, or one UTF-8 character (a prefix-free code)
    if isinstance(e, Seq):
        return all(_prefix_free(x) for x in e.items)
    if isinstance(e, Repeat):
        return e.min == e.max and _prefix_free(e.item)
    if isinstance(e, Alt):
        lens = {_fixed_len(x) for x in e.items}
        return len(lens) == 1 and None not in lens and all(_prefix_free(x) for x in e.items)
    return False


def _fixed_len(e: Expr) -> int | None:
    """Byte length shared by every string of `e`, or None."""
    if isinstance(e, Lit):
        return len(e.value)
    if isinstance(e, Chars):
        lens = {len(chr(c).encode("utf-8", "surrogatepass")) for r in e.ranges for c in r}
        return lens.pop() if len(lens) == 1 else None
    if isinstance(e, ByteRange):
        return 1
    if isinstance(e, Seq):
        parts = [_fixed_len(x) for x in e.items]
        return None if None in parts else sum(parts)
    if isinstance(e, Repeat) and e.min == e.max:
        n = _fixed_len(e.item)
        return None if n is None else n * e.min
    if isinstance(e, Alt):
        lens = {_fixed_len(x) for x in e.items}
        return lens.pop() if len(lens) == 1 else None
    return None


def _productive(e: Expr, productive: set[str]) -> bool:
    if isinstance(e, Lit):
        return True
    if isinstance(e, Chars):
        return any(not (0xD800 <= lo and hi <= 0xDFFF) for lo, hi in e.ranges)
    if isinstance(e, ByteRange):
        return bool(e.ranges)
    if isinstance(e, Seq):
        return all(_productive(x, productive) for x in e.items)
    if isinstance(e, Alt):
        return any(_productive(x, productive) for x in e.items)
    if isinstance(e, Repeat):
        return e.min == 0 or _productive(e.item, productive)
    if isinstance(e, Ref):
        return e.name in productive
    return True  # Regex / And / Not: assumed inhabited (the compiler reports empty ones)
