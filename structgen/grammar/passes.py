"""IR normalization passes run before automata construction.

1. `resolve_regexes`: `Regex` leaves become plain IR (via `structgen.regex.parse_regex`).
2. `reachable_rules` / `recursive_rules`: the call graph and its cycles.
3. `inline_rules`: non-recursive rules are substituted into their users, so most grammars
   become one regular expression and compile to a single DFA (exact, precomputable masks).
4. `eliminate_left_recursion`: Paull's algorithm on the IR, so the runtime pushdown automaton
   never loops without consuming a byte. Only the language is preserved (parse trees are not
   needed: structgen recognizes, it does not build trees).
"""
from __future__ import annotations

from functools import lru_cache

from structgen.errors import GrammarError, LimitExceeded
from structgen.grammar.ir import (
    EMPTY,
    NOTHING,
    Alt,
    And,
    ByteRange,
    Chars,
    Expr,
    Grammar,
    Lit,
    Not,
    Ref,
    Regex,
    Repeat,
    Seq,
    alt,
    repeat,
    seq,
)


def map_children(e: Expr, f) -> Expr:
    """Rebuild `e` with `f` applied to each direct child (leaves are returned unchanged).

    When `f` returns every child unchanged (same object), `e` itself is returned: rebuilding
    would rehash whole subtrees (IR hashes are not cached) for nothing."""
    if isinstance(e, (Seq, Alt, And)):
        new = [f(x) for x in e.items]
        if all(a is b for a, b in zip(new, e.items)):
            return e
        if isinstance(e, Seq):
            return seq(*new)
        if isinstance(e, Alt):
            return _alt_by_identity(new)
        return And(tuple(new))
    if isinstance(e, (Repeat, Not)):
        x = f(e.item)
        if x is e.item:
            return e
        if isinstance(e, Repeat):
            return repeat(x, e.min, e.max)
        return Not(x)
    return e


def _alt_by_identity(items: list[Expr]) -> Expr:
    """`alt` without hashing whole sub-trees (IR hashes are not cached, and hashing substituted
    bodies made inlining quadratic): flattens nested alternations and drops duplicates, found by
    identity first and then by equality among alternatives with the same shallow shape."""
    out: list[Expr] = []
    seen: set[int] = set()
    groups: dict[tuple, list[Expr]] = {}
    for it in items:
        parts = it.items if isinstance(it, Alt) else (it,)
        for p in parts:
            if id(p) in seen:
                continue
            seen.add(id(p))
            key = _shallow_key(p)
            same = groups.setdefault(key, [])
            if any(q == p for q in same):
                continue
            same.append(p)
            out.append(p)
    if len(out) == 1:
        return out[0]
    return Alt(tuple(out))


def _shallow_key(e: Expr) -> tuple:
    if isinstance(e, (Seq, Alt, And)):
        return (type(e).__name__, len(e.items), _leaf_key(e.items[0]) if e.items else None)
    if isinstance(e, Repeat):
        return ("Repeat", e.min, e.max, _leaf_key(e.item))
    if isinstance(e, Not):
        return ("Not", _leaf_key(e.item))
    return (type(e).__name__, e)


def _leaf_key(e: Expr):
    if isinstance(e, (Seq, Alt, And, Repeat, Not)):
        return type(e).__name__
    return e


def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, (Seq, Alt, And)):
        return e.items
    if isinstance(e, (Repeat, Not)):
        return (e.item,)
    return ()


@lru_cache(maxsize=4096)
def _parse_regex_cached(pattern: str, flavor: str, flags: str, search: bool) -> Expr:
    from structgen.regex import parse_regex

    return parse_regex(pattern, flavor=flavor, flags=flags, search=search)


def resolve_regexes(e: Expr, memo: dict[int, tuple[Expr, Expr]] | None = None) -> Expr:
    """`e` with its Regex leaves parsed. `memo` (node id -> (node, result)) shares the work
    between the rules of a grammar, whose bodies share sub-trees."""
    if memo is None:
        memo = {}

    def res(x: Expr) -> Expr:
        got = memo.get(id(x))
        if got is not None:
            return got[1]
        if isinstance(x, Regex):
            y = _parse_regex_cached(x.pattern, x.flavor, x.flags, x.search)
        elif isinstance(x, (Lit, Chars, ByteRange, Ref)):
            return x
        else:
            y = map_children(x, res)
        memo[id(x)] = (x, y)
        return y

    return res(e)


_NO_REFS: frozenset = frozenset()


def _node_refs(x: Expr, kids: list[tuple]) -> tuple[frozenset, Expr]:
    if isinstance(x, Ref):
        return frozenset((x.name,)), x
    sets = [k[0] for k in kids if k[0]]
    if not sets:
        return _NO_REFS, x
    return (sets[0] if len(sets) == 1 else frozenset().union(*sets)), x


def refs_in(e: Expr, out: set[str] | None = None, cache: dict[int, tuple] | None = None) -> set[str]:
    """Rule names referenced in e. `cache` (node id -> (names, node)) remembers every node, so
    rule bodies that share sub-trees (after inlining, most do) are walked once between them."""
    if cache is not None:
        got = fold_postorder(e, cache, _node_refs)[0]
        if out is None:
            return set(got)
        out |= got
        return out
    out = set() if out is None else out
    stack = [e]
    seen: set[int] = set()  # expressions are DAGs after inlining: visit each node once
    while stack:
        x = stack.pop()
        if isinstance(x, Ref):
            out.add(x.name)
        else:
            for y in children(x):
                if id(y) not in seen:
                    seen.add(id(y))
                    stack.append(y)
    return out


def reachable_rules(g: Grammar, refs_cache: dict | None = None) -> dict[str, Expr]:
    seen: dict[str, Expr] = {}
    todo = [g.start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in g.rules:
            raise GrammarError(f"rule {name!r} is referenced but not defined")
        seen[name] = g.rules[name]
        todo.extend(refs_in(g.rules[name], cache=refs_cache) - seen.keys())
    return seen


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (grammars can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def recursive_rules(rules: dict[str, Expr]) -> set[str]:
    graph = {n: refs_in(e) & rules.keys() for n, e in rules.items()}
    rec: set[str] = set()
    for comp in strongly_connected(graph):
        if len(comp) > 1 or comp[0] in graph[comp[0]]:
            rec.update(comp)
    return rec


def cycle_cut(rules: dict[str, Expr], prefer: set[str] = frozenset(), refs_cache: dict | None = None) -> set[str]:
    """A small set of rules whose removal leaves no recursion (a feedback vertex set).

    Only these need frames of their own: every other rule of a recursive group can be inlined.
    An expression grammar's precedence ladder (expr -> sum -> product -> atom -> "(" expr ")")
    then becomes one automaton with a single recursive call, instead of a frame per level, so a
    token after an atom does not have to be checked against ten frames in turn. Greedy choice:
    `prefer`red rules first, then the rule most other rules refer to (`expr`, not `product`).
    """
    graph = {n: refs_in(e, cache=refs_cache) & rules.keys() for n, e in rules.items()}
    users = {n: 0 for n in graph}  # how many rules refer to n: the grammar's "entry" rules
    for n, refs in graph.items():
        for m in refs:
            users[m] += 1
    cut: set[str] = set()
    while True:
        sub = {n: graph[n] - cut for n in graph if n not in cut}
        groups = [c for c in strongly_connected(sub) if len(c) > 1 or c[0] in sub[c[0]]]
        if not groups:
            return cut
        for comp in groups:
            best = max(sorted(comp), key=lambda n: (n in prefer, users[n], n in sub[n]))
            cut.add(best)


def expr_size(e: Expr, memo: dict[int, int] | None = None) -> int:
    """Tree size of e (shared sub-expressions counted once per use). `memo` (by node identity)
    makes repeated calls on expressions sharing sub-trees linear; the caller must keep the
    nodes alive while the memo is in use."""
    return _tree_size(e, {} if memo is None else memo, repeat_copies=False)


def expr_weight(e: Expr, memo: dict[int, int] | None = None) -> int:
    """Like `expr_size`, but a bounded repetition counts its copies: an estimate of the
    automaton's size (`x{0,1024}` is small IR and a large automaton)."""
    return _tree_size(e, {} if memo is None else memo, repeat_copies=True)


def _tree_size(e: Expr, memo: dict[int, int], repeat_copies: bool) -> int:
    def size(x: Expr, kids: list[int]) -> int:
        w = 1 + (len(x.value) if isinstance(x, Lit) else 0) + sum(kids)
        if repeat_copies and isinstance(x, Repeat):
            w = 1 + (w - 1) * repeat_copies_of(x)
        return w

    return fold_postorder(e, memo, size)


def repeat_copies_of(r: Repeat) -> int:
    """How many copies of its item a repetition's automaton holds (an unbounded tail counts 1)."""
    return max(1, r.min + (1 if r.max is None else r.max - r.min))


def fold_postorder(e: Expr, memo: dict, f):
    """memo[id(x)] = f(x, [values of x's children]) for every distinct node x under e, children
    first, without recursion (IR can be deep). `memo` may be shared between expressions with
    shared sub-trees; the caller keeps the nodes alive while it is in use (ids are reused)."""
    stack = [(e, False)]
    while stack:
        x, done = stack.pop()
        if id(x) in memo:
            continue
        kids = children(x)
        if not done and kids:
            stack.append((x, True))
            stack.extend((y, False) for y in kids if id(y) not in memo)
            continue
        memo[id(x)] = f(x, [memo[id(y)] for y in kids])
    return memo[id(e)]


def _shape_hash(e: Expr, memo: dict[int, tuple[int, Expr]]) -> int:
    """Structural hash, one pass over the distinct nodes (the dataclass hash re-walks shared
    sub-trees at every use)."""
    stack = [(e, False)]
    while stack:
        x, done = stack.pop()
        k = id(x)
        if k in memo:
            continue
        kids = children(x)
        if not kids:
            memo[k] = (hash(x), x)
        elif not done:
            stack.append((x, True))
            stack.extend((y, False) for y in kids if id(y) not in memo)
        else:
            extra = (x.min, x.max) if isinstance(x, Repeat) else None
            memo[k] = (hash((type(x).__name__, extra, tuple(memo[id(y)][0] for y in kids))), x)
    return memo[id(e)][0]


HEAVY_RULE_WEIGHT = 8192


def heavy_shared_rules(rules: dict[str, Expr], start: str, *, heavy: int = HEAVY_RULE_WEIGHT,
                       exclude: set[str] = frozenset()) -> tuple[dict[str, str], set[str]]:
    """Rules too big to copy into every user: (alias, keep). Rules with equal bodies whose
    automaton estimate (`expr_weight`) reaches `heavy` are merged (alias: name -> the first
    such name), and those referenced more than once stay rules of their own, so the automaton
    exists once instead of once per use (a schema's `{"type": "string", "maxLength": 1024}`
    properties: ~50,000 states each). Rules in `exclude` (greedy rules, frames) are left alone."""
    wmemo: dict[int, int] = {}
    big = [n for n in sorted(rules) if n != start and n not in exclude and expr_weight(rules[n], wmemo) >= heavy]
    if not big:
        return {}, set()
    hmemo: dict[int, tuple[int, Expr]] = {}
    groups: dict[int, list[str]] = {}
    alias: dict[str, str] = {}
    for n in big:
        same = groups.setdefault(_shape_hash(rules[n], hmemo), [])
        for m in same:
            if rules[m] == rules[n]:
                alias[n] = m
                break
        else:
            same.append(n)
    uses: dict[str, int] = {}
    seen: set[int] = set()
    for body in rules.values():
        stack = [body]
        while stack:
            x = stack.pop()
            if isinstance(x, Ref):
                name = alias.get(x.name, x.name)
                uses[name] = uses.get(name, 0) + 1
                continue
            if id(x) in seen:
                continue
            seen.add(id(x))
            stack.extend(children(x))
    keep = {n for n in big if n not in alias and uses.get(n, 0) > 1}
    return {n: m for n, m in alias.items() if m in keep}, keep


def inline_rules(rules: dict[str, Expr], keep: set[str], *, max_size: int = 20000,
                 alias: dict[str, str] | None = None) -> dict[str, Expr]:
    """Substitute every rule not in `keep` into its users.

    A rule whose inlined body would exceed `max_size` IR nodes stays a rule of its own (a
    call at run time) so shared sub-grammars are not copied without bound. `alias` (name ->
    name of a rule with the same language) redirects references.
    """
    keep = set(keep)
    alias = alias or {}
    alias_refs = {n: Ref(m) for n, m in alias.items()}
    expanded: dict[str, Expr] = {}
    sizes: dict[str, int] = {}
    in_progress: set[str] = set()
    size_memo: dict[int, int] = {}
    alive: list[Expr] = []  # keeps every node whose id is in size_memo alive
    memo: dict[int, tuple[Expr, Expr]] = {}  # node id -> (node, substituted node)

    def expand(name: str) -> Expr:
        if name in expanded:
            return expanded[name]
        if name in in_progress:  # pragma: no cover - recursion is in `keep`
            raise GrammarError(f"unexpected recursion through rule {name!r}")
        in_progress.add(name)
        body = sub(rules[name])
        in_progress.discard(name)
        expanded[name] = body
        alive.append(body)
        sizes[name] = expr_size(body, size_memo)
        return body

    def sub(e: Expr) -> Expr:
        if isinstance(e, Ref):
            if e.name in alias:
                e = alias_refs[e.name]
            if e.name in keep:
                return e
            body = expand(e.name)
            if sizes[e.name] > max_size:
                keep.add(e.name)
                return e
            return body
        if isinstance(e, (Lit, Chars, ByteRange, Regex)):
            return e
        # shared sub-trees once (a rule's fate -- inlined or kept -- never changes once decided)
        got = memo.get(id(e))
        if got is None:
            got = memo[id(e)] = (e, map_children(e, sub))
        return got[1]

    out: dict[str, Expr] = {}
    for name in list(rules):
        if name in keep and name not in alias:
            out[name] = sub(rules[name])
    # Rules promoted to `keep` while inlining need their own (expanded) bodies too.
    changed = True
    while changed:
        changed = False
        for name in list(keep):
            if name not in out:
                out[name] = expand(name) if name in expanded else sub(rules[name])
                changed = True
    return out


# ----------------------------------------------------------------------------- nullability

def nullable_rules(rules: dict[str, Expr]) -> set[str]:
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, e in rules.items():
            if name not in nullable and is_nullable(e, nullable):
                nullable.add(name)
                changed = True
    return nullable


def is_nullable(e: Expr, nullable_refs: set[str]) -> bool:
    if isinstance(e, Lit):
        return e.value == b""
    if isinstance(e, (Chars, ByteRange)):
        return False
    if isinstance(e, Seq):
        return all(is_nullable(x, nullable_refs) for x in e.items)
    if isinstance(e, Alt):
        return any(is_nullable(x, nullable_refs) for x in e.items)
    if isinstance(e, Repeat):
        return e.min == 0 or is_nullable(e.item, nullable_refs)
    if isinstance(e, Ref):
        return e.name in nullable_refs
    if isinstance(e, And):
        return all(is_nullable(x, nullable_refs) for x in e.items)
    if isinstance(e, Not):
        return not is_nullable(e.item, nullable_refs)
    raise GrammarError(f"unexpected IR node {type(e).__name__}")


# ----------------------------------------------------------------------------- left recursion

def _non_empty_part(e: Expr, nullable_refs: set[str], scc: set[str]) -> Expr:
    """An expression for L(e) minus the empty string, for the shapes left recursion meets."""
    if not is_nullable(e, nullable_refs):
        return e
    if isinstance(e, Lit):
        return NOTHING
    if isinstance(e, Alt):
        return alt(*[_non_empty_part(x, nullable_refs, scc) for x in e.items])
    if isinstance(e, Repeat):
        inner = _non_empty_part(e.item, nullable_refs, scc)
        hi = None if e.max is None else e.max - 1
        return seq(inner, repeat(e.item, 0, hi))
    if isinstance(e, Seq):
        first, rest = e.items[0], seq(*e.items[1:])
        return alt(seq(_non_empty_part(first, nullable_refs, scc), rest), _non_empty_part(rest, nullable_refs, scc))
    if isinstance(e, Ref):
        if e.name in scc:
            raise GrammarError(
                f"left recursion through the nullable rule {e.name!r} is not supported; "
                "make the rule non-empty or move the empty case to its callers")
        return e  # nullable rule outside the SCC: cannot reach the SCC, keep as is
    raise GrammarError(f"cannot split {type(e).__name__} for left-recursion elimination")


def _left_split(e: Expr, scc: set[str], nullable_refs: set[str]) -> tuple[dict[str, list[Expr]], list[Expr]]:
    """Write e as  U_R  R . rests[R]  |  U base, where no base starts with a rule of `scc`."""
    if isinstance(e, Ref) and e.name in scc:
        return {e.name: [EMPTY]}, []
    if not (refs_in(e) & scc):
        return {}, [e]
    if isinstance(e, Alt):
        heads: dict[str, list[Expr]] = {}
        bases: list[Expr] = []
        for x in e.items:
            h, b = _left_split(x, scc, nullable_refs)
            for k, v in h.items():
                heads.setdefault(k, []).extend(v)
            bases.extend(b)
        return heads, bases
    if isinstance(e, Seq):
        first, rest = e.items[0], seq(*e.items[1:])
        if is_nullable(first, nullable_refs):
            e2 = alt(seq(_non_empty_part(first, nullable_refs, scc), rest), rest)
            if e2 == e:  # pragma: no cover - defensive
                return {}, [e]
            return _left_split(e2, scc, nullable_refs)
        h, b = _left_split(first, scc, nullable_refs)
        return ({k: [seq(alt(*v), rest)] for k, v in h.items()}, [seq(x, rest) for x in b])
    if isinstance(e, Repeat):
        if e.min == 0:
            return _left_split(alt(EMPTY, _non_empty_part(e, nullable_refs, scc)), scc, nullable_refs)
        hi = None if e.max is None else e.max - 1
        return _left_split(seq(e.item, repeat(e.item, e.min - 1, hi)), scc, nullable_refs)
    return {}, [e]


def left_recursive_rules(rules: dict[str, Expr]) -> set[str]:
    nullable = nullable_rules(rules)
    graph = {n: _left_refs(e, nullable) & rules.keys() for n, e in rules.items()}
    out: set[str] = set()
    for comp in strongly_connected(graph):
        if len(comp) > 1 or comp[0] in graph[comp[0]]:
            out.update(comp)
    return out


def _left_refs(e: Expr, nullable: set[str]) -> set[str]:
    """Rules that can be called before any byte is consumed in e."""
    if isinstance(e, Ref):
        return {e.name}
    if isinstance(e, Seq):
        out: set[str] = set()
        for x in e.items:
            out |= _left_refs(x, nullable)
            if not is_nullable(x, nullable):
                break
        return out
    if isinstance(e, (Alt, And)):
        out = set()
        for x in e.items:
            out |= _left_refs(x, nullable)
        return out
    if isinstance(e, (Repeat, Not)):
        return _left_refs(e.item, nullable)
    return set()


def eliminate_left_recursion(rules: dict[str, Expr], *, max_size: int = 200000) -> dict[str, Expr]:
    lr = left_recursive_rules(rules)
    if not lr:
        return rules
    rules = dict(rules)
    nullable = nullable_rules(rules)
    graph = {n: _left_refs(e, nullable) & lr for n, e in rules.items() if n in lr}
    for comp in strongly_connected(graph):
        if not (len(comp) > 1 or comp[0] in graph[comp[0]]):
            continue
        order = sorted(comp)
        scc = set(order)
        for i, ai in enumerate(order):
            body = rules[ai]
            for _ in range(len(order) + 1):
                heads, bases = _left_split(body, scc, nullable)
                earlier = [aj for aj in order[:i] if aj in heads]
                if not earlier:
                    break
                parts = list(bases)
                for k, rests in heads.items():
                    if k in earlier:
                        parts.append(seq(rules[k], alt(*rests)))
                    else:
                        parts.append(seq(Ref(k), alt(*rests)))
                body = alt(*parts)
                if expr_size(body) > max_size:
                    raise LimitExceeded(f"left-recursion elimination of rule {ai!r} grew past {max_size} IR nodes")
            heads, bases = _left_split(body, scc, nullable)
            if any(order.index(k) < i for k in heads):  # pragma: no cover - defensive
                raise GrammarError(f"could not eliminate left recursion in rule {ai!r}")
            own = heads.pop(ai, None)
            start = alt(*bases, *[seq(Ref(k), alt(*v)) for k, v in heads.items()])
            rules[ai] = seq(start, repeat(alt(*own), 0, None)) if own else start
        nullable = nullable_rules(rules)
    if left_recursive_rules(rules):
        raise GrammarError("left recursion remains after elimination (through nullable rules?)")
    return rules


def prepare(g: Grammar, *, inline_max_size: int = 20000) -> tuple[dict[str, Expr], str]:
    """All passes: returns (rules, start) ready for automata construction."""
    refs_cache: dict[int, tuple] = {}
    resolved: dict[int, tuple[Expr, Expr]] = {}
    rules = {n: resolve_regexes(e, resolved) for n, e in reachable_rules(g, refs_cache).items()}
    rules = eliminate_left_recursion(rules)
    keep = cycle_cut(rules, {g.start}, refs_cache) | {g.start} | ((set(g.greedy) | set(g.frames)) & set(rules))
    alias, heavy = heavy_shared_rules(rules, g.start, exclude=set(g.greedy) | set(g.frames))
    rules = inline_rules(rules, keep | heavy, max_size=inline_max_size, alias=alias)
    live = reachable_rules(Grammar(rules, g.start), {})
    rules = {n: e for n, e in rules.items() if n in live}
    return rules, g.start
