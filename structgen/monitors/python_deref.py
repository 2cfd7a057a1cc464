"""Python dereference monitor: after `expr.` only attribute names that exist (jedi, in-process).

Mask rule (spec §0/§5.2), over the remaining suffixes L of the legal names, in bytes: token t is
allowed iff (a) t is a non-empty prefix of some s in L, or (b) t = s + r with s in L and r[0] a
break byte. EOS / special tokens are never allowed while constrained.

Byte-level decision: ASCII letters, digits and `_` are identifier bytes; ASCII bytes other than
those are break bytes; every byte >= 0x80 counts as an identifier byte (it may start a non-ASCII
identifier character), so a token `name` + partial UTF-8 is only allowed as a prefix of a legal
name, never as "name complete, then something else".
"""
from __future__ import annotations

import bisect
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from structgen.monitors.base import Monitor, bool_to_mask

WAIT, CONSTRAINED = "wait", "constrained"

_IDENT_BYTES = frozenset(
    list(range(ord("a"), ord("z") + 1)) + list(range(ord("A"), ord("Z") + 1))
    + list(range(ord("0"), ord("9") + 1)) + [ord("_")] + list(range(0x80, 0x100)))
# Break bytes as contiguous byte ranges (inclusive): everything ASCII but [0-9A-Z_a-z].
_BREAK_RANGES = ((0x00, 0x2F), (0x3A, 0x40), (0x5B, 0x5E), (0x60, 0x60), (0x7B, 0x7F))


def is_ident_byte(b: int) -> bool:
    return b in _IDENT_BYTES


def is_ident_char(c: str) -> bool:
    return ("a" + c).isidentifier()


# ----------------------------------------------------------------------------- token index
class TokenIndex:
    """Per-vocabulary index for mask building: exact lookup and sorted prefix ranges, in bytes.

    Several ids may share one byte string (all are kept). Built once per vocabulary (~0.1 s for
    50k tokens) and cached; mask building is then O(|L| * (len(s) + 10)) dictionary probes and
    bisections plus one vectorised pack, with no loop over the vocabulary.
    """

    _cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, vocab):
        self.vocab = vocab
        self.size = vocab.size
        pairs = [(b, i) for i, b in enumerate(vocab.token_bytes) if b]
        pairs.sort()
        self.keys: list[bytes] = [b for b, _ in pairs]
        self.ids = np.array([i for _, i in pairs], dtype=np.int64)
        by: dict[bytes, list[int]] = {}
        for b, i in pairs:
            by.setdefault(b, []).append(i)
        self.by_bytes = {b: np.array(v, dtype=np.int64) for b, v in by.items()}
        self.break_start = np.zeros(self.size, dtype=bool)
        first = np.array([b[0] for b, _ in pairs], dtype=np.int64) if pairs else np.zeros(0, np.int64)
        brk = np.array([not is_ident_byte(x) for x in range(256)], dtype=bool)
        if pairs:
            self.break_start[self.ids[brk[first]]] = True

    @classmethod
    def for_vocab(cls, vocab) -> TokenIndex:
        idx = cls._cache.get(vocab)
        if idx is None:
            idx = cls(vocab)
            cls._cache[vocab] = idx
        return idx

    def _range(self, lo_key: bytes, hi_key: bytes) -> np.ndarray:
        lo = bisect.bisect_left(self.keys, lo_key)
        hi = bisect.bisect_left(self.keys, hi_key, lo)
        return self.ids[lo:hi]

    def allowed_bool(self, suffixes: Sequence[bytes]) -> np.ndarray:
        """Boolean allowed vector for the remaining legal suffixes (rules (a) and (b))."""
        allowed = np.zeros(self.size, dtype=bool)
        for s in suffixes:
            if not s:
                allowed |= self.break_start
                continue
            for k in range(1, len(s) + 1):  # rule (a): non-empty prefixes of s
                ids = self.by_bytes.get(s[:k])
                if ids is not None:
                    allowed[ids] = True
            for a, b in _BREAK_RANGES:  # rule (b): s, then a break byte
                ids = self._range(s + bytes([a]), s + bytes([b + 1]))
                if ids.size:
                    allowed[ids] = True
        return allowed

    def mask(self, suffixes: Sequence[bytes]) -> np.ndarray:
        return bool_to_mask(self.allowed_bool(suffixes))


# ----------------------------------------------------------------------------- trigger test
_GRAMMAR = None


def _grammar():
    global _GRAMMAR
    if _GRAMMAR is None:
        import parso
        _GRAMMAR = parso.load_grammar()
    return _GRAMMAR


@lru_cache(maxsize=512)
def is_deref_dot(text: str) -> bool:
    """True when `text` ends with a dereference `.` (not in a comment, string, float or `...`)."""
    if not text.endswith("."):
        return False
    module = _grammar().parse(text, error_recovery=True)
    end = module.get_last_leaf()
    if end.type != "endmarker" or end.prefix:  # a comment (or anything) after the last token
        return False
    dot = end.get_previous_leaf()
    if dot is None or dot.type != "operator" or dot.value != "." or dot.end_pos != end.start_pos:
        return False
    prev = dot.get_previous_leaf()
    if prev is None:
        return False
    ok = prev.type in ("name", "string", "fstring_end") or (prev.type == "operator" and prev.value in ")]}")
    if not ok:
        return False
    # Unterminated string such as `s = 'a.`: parso recovers with an error token for the quote.
    leaf = prev
    line = dot.start_pos[0]
    while leaf is not None and leaf.start_pos[0] == line:
        if leaf.type in ("errortoken", "error_leaf") and leaf.value[:1] in ("'", '"'):
            return False
        leaf = leaf.get_previous_leaf()
    return True


# ----------------------------------------------------------------------------- analysis
class JediAnalysis:
    """A_phi backend: `jedi.Script(...).complete()` in-process, cached per (buffer, position)."""

    def __init__(self, path: str | None = None, project_root: str | None = None,
                 max_cache: int = 256):
        import jedi
        self._jedi = jedi
        self.path = path
        self.project = jedi.Project(project_root) if project_root else None
        self._cache: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self.max_cache = max_cache
        self.queries = 0
        self.query_ms: list[float] = []

    def attributes(self, prefix: str, suffix: str = "") -> list[str]:
        key = (prefix, suffix)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        t0 = time.perf_counter()
        line = prefix.count("\n") + 1
        col = len(prefix) - (prefix.rfind("\n") + 1)
        try:
            script = self._jedi.Script(code=prefix + suffix, path=self.path, project=self.project)
            names = [c.name for c in script.complete(line, col) if c.type != "keyword"]
        except Exception:  # jedi bugs on odd code: fail open
            names = []
        if "__getattr__" in names:  # dynamic attributes (class or module __getattr__): fail open
            names = []
        self.queries += 1
        self.query_ms.append((time.perf_counter() - t0) * 1e3)
        self._cache[key] = names
        if len(self._cache) > self.max_cache:
            self._cache.popitem(last=False)
        return names


class StaticAnalysis:
    """A fixed attribute table keyed by the receiver text (for tests / other backends)."""

    def __init__(self, fn: Callable[[str, str], list[str]]):
        self.fn = fn

    def attributes(self, prefix: str, suffix: str = "") -> list[str]:
        return list(self.fn(prefix, suffix))


# ----------------------------------------------------------------------------- the monitor
def _trailing_ident(text: str) -> int:
    i = len(text)
    while i > 0 and is_ident_char(text[i - 1]):
        i -= 1
    return i


class DereferenceMonitor(Monitor):
    """Constrains the identifier after a dereference `.` to the analyser's attribute names.

    `prompt` is the text before the cursor, `suffix` the rest of the file (seen by jedi).
    `analysis` defaults to a `JediAnalysis(path, project_root)`; pass a shared one to share the
    query cache between monitors (batches, beams).
    """

    def __init__(self, vocab, prompt: str, suffix: str = "", *, path: str | None = None,
                 project_root: str | None = None, analysis=None, index: TokenIndex | None = None):
        self.vocab = vocab
        self.index = index or TokenIndex.for_vocab(vocab)
        self.analysis = analysis or JediAnalysis(path, project_root)
        self.prompt = prompt
        self.suffix = suffix
        self._buf = b""
        self.state: str | None = None  # None = uninitialised (enter lazily)
        self.legal: list[bytes] = []
        self._history: list[tuple] = []
        self.triggers = 0
        self.mask_ms: list[float] = []
        self._mask_cache: tuple[tuple, np.ndarray] | None = None

    # -- text
    @property
    def text(self) -> str:
        return self.prompt + self._buf.decode("utf-8", "replace")

    @property
    def constrained(self) -> bool:
        self._ensure_init()
        return self.state == CONSTRAINED

    def _ensure_init(self) -> None:
        if self.state is None:
            self._enter_from_text()

    def _enter_from_text(self) -> None:
        text = self.text
        i = _trailing_ident(text)
        self.state, self.legal = WAIT, []
        if i == 0 or text[i - 1] != "." or not is_deref_dot(text[:i]):
            return
        partial = text[i:]
        names = self.analysis.attributes(text[:i], self.suffix)
        self.triggers += 1
        rest = [n[len(partial):].encode("utf-8") for n in names if n.startswith(partial)]
        if names and rest:
            self.state, self.legal = CONSTRAINED, sorted(set(rest))

    # -- hooks
    def allowed_mask(self) -> np.ndarray | None:
        self._ensure_init()
        if self.state != CONSTRAINED:
            return None
        key = tuple(self.legal)
        if self._mask_cache is not None and self._mask_cache[0] == key:
            return self._mask_cache[1]
        t0 = time.perf_counter()
        allowed = self.index.allowed_bool(self.legal)
        if not allowed.any():  # fail open: never an all -inf row
            self.state, self.legal = WAIT, []
            return None
        m = bool_to_mask(allowed)
        self.mask_ms.append((time.perf_counter() - t0) * 1e3)
        self._mask_cache = (key, m)
        return m

    def verify(self, token_id: int) -> bool:
        tok = self.vocab.token_bytes[token_id] if 0 <= token_id < self.vocab.size else None
        if not tok or b"." not in tok[:-1]:
            return True
        base = self._buf
        for k in range(len(tok) - 1):
            if tok[k] != 0x2E:  # '.'
                continue
            try:
                upto = self.prompt + (base + tok[: k + 1]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if not is_deref_dot(upto):
                continue
            names = self.analysis.attributes(upto, self.suffix)
            if not names:
                continue
            j = k + 1
            while j < len(tok) and is_ident_byte(tok[j]):
                j += 1
            ident = tok[k + 1: j]
            broken = j < len(tok)
            enc = [n.encode("utf-8") for n in names]
            ok = (ident in enc) if broken else any(n.startswith(ident) for n in enc)
            if not ok:
                return False
        return True

    def update(self, token_id: int) -> None:
        self._ensure_init()
        tok = self.vocab.token_bytes[token_id] if 0 <= token_id < self.vocab.size else None
        self._history.append((len(self._buf), self.state, self.legal))
        tok = tok or b""
        self._buf += tok
        if self.state == CONSTRAINED and tok and all(b in _IDENT_BYTES for b in tok):
            rest = [s[len(tok):] for s in self.legal if s.startswith(tok)]
            if rest:
                self.legal = rest
                return
        self.state, self.legal = WAIT, []
        if b"." in tok:
            self._enter_from_text()

    def update_text(self, token_ids: Sequence[int]) -> None:
        for t in token_ids:
            self.update(t)

    def rollback(self, n_tokens: int = 1) -> None:
        for _ in range(n_tokens):
            if not self._history:
                raise ValueError("cannot roll back past the prompt")
            n, self.state, self.legal = self._history.pop()
            self._buf = self._buf[:n]

    def fork(self) -> DereferenceMonitor:
        m = DereferenceMonitor.__new__(DereferenceMonitor)
        m.__dict__.update(self.__dict__)
        m._history = list(self._history)
        m.mask_ms = []
        return m
