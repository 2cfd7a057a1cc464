"""Core engine benchmark: compile time and per-token mask time for regexes and Lark grammars.

Vocabulary: Llama-3 (128,256 ids) from quicktok-v1; strings are tokenized with quicktok's real
Llama-3 BPE. For each case: compile (numba cache warm, compile cache off), then for each valid
string walk its tokens timing `fill_next_token_bitmask` at every step (the EOS step included),
checking each token is allowed and the end is accepting. Each string starts from a fresh
compile so first-visit costs are measured, not just cache hits.

    python benchmarks/bench_core.py [--repeat 3] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import structgen  # noqa: E402
from structgen.grammar.builtin import load_builtin_grammar  # noqa: E402
from structgen.vocab.builtin import load_builtin  # noqa: E402

REGEX_CASES = {
    "email": (r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,6}", ["john.doe@example.com", "x_y+z@mail.co.uk"]),
    "iso-datetime": (r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                     ["2024-02-29T13:45:10Z", "1999-12-31T23:59:59.123+01:00"]),
    "ipv4": (r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)", ["192.168.0.1", "8.8.4.4"]),
    "uuid": (r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
             ["123e4567-e89b-42d3-a456-426614174000"]),
    "json-string": (r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"',
                    ['"hello world, with ünïcode and \\"escapes\\" and \\u00e9"', '"The quick brown fox jumps over the lazy dog"']),
    "float-list": (r"\[(-?\d+(\.\d+)?(, )?)*\]", ["[1.5, -2, 3.25, 100]"]),
    "sentence": (r"[A-Z][a-z]+( [a-z]+)*[.!?]", ["The weather is nice today.", "Hello there!"]),
    "enum-words": ("|".join(["apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "honeydew", "kiwi", "lemon",
                             "mango", "nectarine", "orange", "papaya", "quince", "raspberry"]), ["raspberry", "fig"]),
}

GRAMMAR_CASES = {
    "json": ["json", [
        '{"name": "Alice", "age": 30, "tags": ["a", "b", {"x": [1, 2.5e3, null, true]}], "bio": "Lorem ipsum dolor sit amet"}',
        '[{"id": 1, "ok": false}, {"id": 2, "ok": true, "nested": {"deep": [[], {}]}}]',
    ]],
    "arithmetic": ["arithmetic", ["(1 + 2) * foo - -3 / (bar + 42)", "a * b + c * (d - e) / 7"]],
    "sql-select": ["sql_select", [
        "SELECT name, COUNT(*) AS n FROM users u JOIN orders o ON u.id = o.user_id WHERE o.total > 100 GROUP BY name ORDER BY n DESC LIMIT 10",
        "select a, b from t where a = 'x' and b < 3",
    ]],
    "minilang": ["minilang", [
        "fn add(a, b) { return a + b; }\nfn main() { let x = add(1, 2); if (x > 2) { return x; } else { return 0; } }\n",
    ]],
}


def percentiles(xs):
    a = np.asarray(xs, dtype=float)
    return {"p50": np.percentile(a, 50), "p95": np.percentile(a, 95), "p99": np.percentile(a, 99), "max": a.max(), "n": len(a)}


def run_case(name, make, strings, vocab, enc, repeat):
    compile_ms, mask_us = [], []
    for _ in range(repeat):
        for text in strings:
            t0 = time.perf_counter()
            cg = make()
            compile_ms.append((time.perf_counter() - t0) * 1e3)
            m = cg.matcher()
            bitmask = structgen.allocate_token_bitmask(1, vocab.size)
            for tok in enc.encode(text) + [vocab.eos_token_ids[0]]:
                t0 = time.perf_counter()
                m.fill_next_token_bitmask(bitmask)
                mask_us.append((time.perf_counter() - t0) * 1e6)
                if not (bitmask[0, tok >> 5] >> (tok & 31)) & 1:
                    raise AssertionError(f"{name}: token {tok} ({vocab.token_bytes[tok]!r}) rejected in {text!r}")
                if not m.accept_token(tok):
                    raise AssertionError(f"{name}: accept_token({tok}) failed in {text!r}")
            assert m.is_terminated()
    return compile_ms, mask_us, cg.n_states


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args(argv)
    import quicktok

    enc = quicktok.get_encoding("llama3")
    vocab = load_builtin("llama3")
    load_start = os.getloadavg()
    vocab.trie  # build once, outside the timings
    structgen.compile_regex("warm|up", vocab, cache=False).matcher().next_token_mask()  # load numba cache
    rows = []
    all_compile, all_mask = [], []
    cases = [(f"regex:{k}", (lambda p=p: structgen.compile_regex(p, vocab, cache=False)), s) for k, (p, s) in REGEX_CASES.items()]
    for k, (gname, strings) in GRAMMAR_CASES.items():
        text = load_builtin_grammar(gname)
        cases.append((f"lark:{k}", (lambda t=text: structgen.compile_lark(t, vocab, cache=False)), strings))
    for i, (name, make, strings) in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {name} ...", file=sys.stderr, flush=True)
        c, m, n_states = run_case(name, make, strings, vocab, enc, args.repeat)
        all_compile += c
        all_mask += m
        rows.append((name, n_states, percentiles(c), percentiles(m)))
    load_end = os.getloadavg()
    oc, om = percentiles(all_compile), percentiles(all_mask)
    lines = ["| case | states | compile p50 (ms) | compile max (ms) | mask p50 (µs) | mask p95 (µs) | mask p99 (µs) | mask max (µs) | steps |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, n_states, c, m in rows:
        lines.append(f"| {name} | {n_states} | {c['p50']:.1f} | {c['max']:.1f} | {m['p50']:.1f} | {m['p95']:.1f} | {m['p99']:.1f} | {m['max']:.1f} | {m['n']} |")
    lines.append(f"| **all** | | **{oc['p50']:.1f}** | {oc['max']:.1f} | **{om['p50']:.1f}** | {om['p95']:.1f} | **{om['p99']:.1f}** | {om['max']:.1f} | {om['n']} |")
    table = "\n".join(lines)
    print(table)
    body = (
        "## Core engine: compile and mask time (Llama-3 128k vocabulary)\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numba cache warm, compile cache off, default `precompute_budget_s` (Lark grammars precompute every row, "
        f"up to 2 s). Every string starts from a fresh compile, so first-visit mask costs are included. Load average "
        f"at start / end: {load_start[0]:.2f} / {load_end[0]:.2f} (a shared machine inflates p50 and tails). "
        "Reproduce: `python benchmarks/bench_core.py`\n\n" + table + "\n"
    )
    if not args.no_write:
        from benchmarks.docsection import update_section

        update_section("core", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
