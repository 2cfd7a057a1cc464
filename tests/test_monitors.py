"""Monitors: protocol, mask composition, and the jedi-backed Python dereference monitor.

The end-to-end cases use a scripted LM (spec §7.2) over a tiny hand-written vocabulary: it
prefers a hallucinated attribute, and with the monitor greedy decoding must move to the best
valid belief (local class, cross-file builder chain, merged `.name` tokens).
"""
from __future__ import annotations

import random
import textwrap

import numpy as np
import pytest

pytest.importorskip("jedi")

from structgen import Vocabulary, compile_regex
from structgen.monitors.base import (
    combined_mask,
    fill_monitor_bitmasks,
    full_mask,
    ids_to_mask,
    intersect,
    mask_to_bool,
    mask_to_ids,
    monitored_greedy,
    sampling_choice,
)
from structgen.monitors.python_deref import (
    DereferenceMonitor,
    JediAnalysis,
    StaticAnalysis,
    TokenIndex,
    is_deref_dot,
    is_ident_byte,
)

# ----------------------------------------------------------------------------- fixtures
WORDS = [
    "acct", "amount", "bal", "balance", "ance", "host", "with", "with_ip", "_ip", "with_port",
    "port", "_port", "wi", "th", "build", "(ip)", "(ip).", "(port)", "(port).", "()", ")\n",
    ".build", ".amount", ".balance", ".append", ".port", "append", " +=", " 5", " += 5\n",
    "deposit", "dep", "print(", "x.y", "balance)", "balance.", "balance\u00e9".encode("utf-8"),
    b"bal\xc3", "  ", "\n    ", "__", "__init__", "...", "1.5", "__class__",
]
EOS = 0


def make_vocab() -> Vocabulary:
    toks: list = [None]  # id 0: EOS
    for c in range(32, 127):
        toks.append(bytes([c]))
    toks.append(b"\n")
    for w in WORDS:
        toks.append(w if isinstance(w, bytes) else w.encode("utf-8"))
    toks.append(b"balance")  # duplicate string: both ids must be handled
    toks.append(None)  # a special token
    return Vocabulary(toks, eos_token_ids=[EOS], special_token_ids=[len(toks) - 1], size=len(toks) + 5)


VOCAB = make_vocab()

MAIN_HEAD = textwrap.dedent('''\
    from pkg.server_node import ServerNode


    class Account:
        def __init__(self, owner):
            self.owner = owner
            self.balance = 0

        def deposit(self, n):
            self.balance += n

        def withdraw(self, n):
            self.balance -= n


    acct = Account("ann")
    ''')

SERVER_NODE = textwrap.dedent('''\
    class ServerNode:
        class Builder:
            def __init__(self):
                self._ip = None
                self._port = None

            def with_ip(self, ip: str) -> "ServerNode.Builder":
                self._ip = ip
                return self

            def with_port(self, port: int) -> "ServerNode.Builder":
                self._port = port
                return self

            def build(self) -> "ServerNode":
                return ServerNode()

        @staticmethod
        def new_server_node() -> "ServerNode.Builder":
            return ServerNode.Builder()
    ''')


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("mgdproj")
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "server_node.py").write_text(SERVER_NODE)
    (root / "main.py").write_text(MAIN_HEAD)
    return root


@pytest.fixture(scope="module")
def analysis(project):
    return JediAnalysis(str(project / "main.py"), str(project))


@pytest.fixture(scope="module")
def regexes():
    """Compiled once; no wall-clock limit (the CI machine can be loaded; these regexes are tiny)."""
    from structgen.automata import tables

    old = tables.DEFAULT_MAX_COMPILE_S
    tables.DEFAULT_MAX_COMPILE_S = None
    try:
        return {"assign": compile_regex(r"[a-z_]+ \+= 5\n", VOCAB), "digits": compile_regex(r"[0-9]+", VOCAB)}
    finally:
        tables.DEFAULT_MAX_COMPILE_S = old


def monitor(prompt, analysis, suffix=""):
    return DereferenceMonitor(VOCAB, prompt, suffix, analysis=analysis)


class ScriptedLM:
    """Score of token t after generated text g: 100 - 10*rank + len(t) for the best-ranked belief
    that starts with g + t; EOS scores 200 once g equals a belief; anything else -50."""

    def __init__(self, vocab, beliefs):
        self.vocab, self.beliefs = vocab, [b.encode() for b in beliefs]

    def __call__(self, gen_ids):
        g = b"".join(self.vocab.token_bytes[i] or b"" for i in gen_ids)
        out = np.full(self.vocab.size, -50.0)
        for i, t in enumerate(self.vocab.token_bytes):
            if not t:
                continue
            for rank, b in enumerate(self.beliefs):
                if b.startswith(g + t):
                    out[i] = 100 - 10 * rank + len(t)
                    break
        for e in self.vocab.eos_token_ids:
            out[e] = 200.0 if g in self.beliefs else -100.0
        return out


def decode(ids):
    return b"".join(VOCAB.token_bytes[i] for i in ids).decode("utf-8")


def tid(s):
    return VOCAB.token_bytes.index(s.encode() if isinstance(s, str) else s)


def brute_force_allowed(vocab, suffixes):
    """Oracle: rule (a) or rule (b), token by token over the whole vocabulary."""
    out = np.zeros(vocab.size, dtype=bool)
    for i, t in enumerate(vocab.token_bytes):
        if not t:
            continue
        for s in suffixes:
            if (s and s.startswith(t)) or (len(t) > len(s) and t.startswith(s) and not is_ident_byte(t[len(s)])):
                out[i] = True
                break
    return out


# ----------------------------------------------------------------------------- end to end
BUILDER_PROMPT = MAIN_HEAD + "\n\ndef make(ip, port):\n    return ServerNode.new_server_node()."
BUILDER_BELIEFS = ["host(ip).port(port).build()\n", "with_ip(ip).port(port).build()\n",
                   "with_ip(ip).with_port(port).build()\n"]


def test_builder_chain_cross_file(analysis):
    lm = ScriptedLM(VOCAB, BUILDER_BELIEFS)
    assert decode(monitored_greedy(lm, VOCAB, [])) == BUILDER_BELIEFS[0]
    mon = monitor(BUILDER_PROMPT, analysis)
    stats = {}
    out = decode(monitored_greedy(lm, VOCAB, [mon], stats=stats))
    assert out == BUILDER_BELIEFS[2]
    assert mon.triggers >= 3  # the prompt's '.', the '(ip).' token, the '.' before build
    assert stats["constrained_steps"] >= 3


def test_attribute_hallucination(analysis):
    prompt = MAIN_HEAD + "acct."
    lm = ScriptedLM(VOCAB, ["amount += 5\n", "balance += 5\n"])
    assert decode(monitored_greedy(lm, VOCAB, [])) == "amount += 5\n"
    assert decode(monitored_greedy(lm, VOCAB, [monitor(prompt, analysis)])) == "balance += 5\n"


def test_merged_dot_token_is_verified(analysis):
    prompt = MAIN_HEAD + "print(acct"
    lm = ScriptedLM(VOCAB, [".amount)\n", ".balance)\n"])
    assert decode(monitored_greedy(lm, VOCAB, [])) == ".amount)\n"
    mon = monitor(prompt, analysis)
    assert mon.allowed_mask() is None  # no trigger yet: the '.' is inside the next token
    assert not mon.verify(tid(".amount"))
    assert mon.verify(tid(".balance"))
    assert mon.verify(tid("balance"))  # no dot inside: nothing to check
    stats = {}
    assert decode(monitored_greedy(lm, VOCAB, [mon], stats=stats)) == ".balance)\n"
    assert stats["rejections"] >= 1


def test_partial_identifier_in_prompt(analysis):
    mon = monitor(MAIN_HEAD + "acct.bal", analysis)
    ids = set(mask_to_ids(mon.allowed_mask(), VOCAB.size).tolist())
    assert tid("ance") in ids and tid("a") in ids
    assert tid("balance") not in ids and tid("amount") not in ids


# ----------------------------------------------------------------------------- masks
def test_mask_matches_brute_force_small_vocab(analysis):
    mon = monitor(BUILDER_PROMPT, analysis)
    m = mon.allowed_mask()
    assert m is not None and m.dtype == np.uint32
    np.testing.assert_array_equal(mask_to_bool(m, VOCAB.size), brute_force_allowed(VOCAB, mon.legal))
    ids = set(mask_to_ids(m, VOCAB.size).tolist())
    assert tid("with_ip") in ids and tid("wi") in ids and tid("build") in ids
    assert tid("host") not in ids and tid("port") not in ids and tid(" +=") not in ids
    assert EOS not in ids and VOCAB.size - 1 not in ids  # EOS, padding


def test_mask_brute_force_random_suffix_sets(toy_bpe_vocab):
    rng = random.Random(7)
    for vocab in (VOCAB, toy_bpe_vocab):
        idx = TokenIndex.for_vocab(vocab)
        assert TokenIndex.for_vocab(vocab) is idx  # cached per vocabulary
        texts = [t for t in vocab.token_bytes if t]
        for _ in range(25):
            suffixes = set()
            for _ in range(rng.randint(1, 6)):
                base = rng.choice(texts)
                cut = rng.randint(0, len(base))
                suffixes.add(base[cut:] + bytes(rng.choice(b"abc_x") for _ in range(rng.randint(0, 2))))
            suffixes = sorted(suffixes)
            np.testing.assert_array_equal(idx.allowed_bool(suffixes), brute_force_allowed(vocab, suffixes))


def test_identifier_complete_and_prefix_of_another():
    """`with_ip` vs `with_ip_port`: after `with_ip`, L = ["", "_port"]; duplicates all allowed."""
    mon = DereferenceMonitor(VOCAB, "x.", analysis=StaticAnalysis(lambda p, s: ["balance", "balance_x"]))
    mon.update(tid("bal"))
    ids = set(mask_to_ids(mon.allowed_mask(), VOCAB.size).tolist())
    assert tid("ance") in ids
    mon.update(tid("ance"))
    assert mon.legal == [b"", b"_x"]
    ids = set(mask_to_ids(mon.allowed_mask(), VOCAB.size).tolist())
    assert tid("_") in ids and tid(")\n") in ids and tid("(") in ids and tid("x") not in ids
    assert EOS not in ids
    # duplicate token strings: both ids of b"balance" are allowed right after the dot
    mon2 = DereferenceMonitor(VOCAB, "x.", analysis=StaticAnalysis(lambda p, s: ["balance"]))
    dup = [i for i, t in enumerate(VOCAB.token_bytes) if t == b"balance"]
    assert len(dup) == 2
    assert set(dup) <= set(mask_to_ids(mon2.allowed_mask(), VOCAB.size).tolist())
    # tokens crossing the boundary: "balance)" and "balance." allowed, "balance\u00e9" not
    ids2 = set(mask_to_ids(mon2.allowed_mask(), VOCAB.size).tolist())
    assert tid("balance)") in ids2 and tid("balance.") in ids2
    assert tid("balance\u00e9".encode()) not in ids2
    # partial UTF-8 after a name is an identifier byte: only a prefix of a legal name
    mon3 = DereferenceMonitor(VOCAB, "x.", analysis=StaticAnalysis(lambda p, s: ["bal\u00e9"]))
    ids3 = set(mask_to_ids(mon3.allowed_mask(), VOCAB.size).tolist())
    assert tid(b"bal\xc3") in ids3 and tid("bal") in ids3 and tid("balance") not in ids3


# ----------------------------------------------------------------------------- triggers, fallback, EOS
@pytest.mark.parametrize("prompt", [
    MAIN_HEAD + "x = 1  # see acct.",
    MAIN_HEAD + "s = 'acct.",
    MAIN_HEAD + 'doc = """acct.',
    MAIN_HEAD + "y = 1.",
    MAIN_HEAD + "z = ...",
    MAIN_HEAD + "acct. ",
])
def test_false_triggers(prompt, project):
    calls = []
    an = StaticAnalysis(lambda p, s: calls.append(p) or ["balance"])
    mon = DereferenceMonitor(VOCAB, prompt, analysis=an)
    assert mon.allowed_mask() is None and not mon.constrained
    assert calls == []


def test_true_triggers():
    for t in ["acct.", "f(x).", "x[1].", "'ab'.", "{}.", "import os.", "1.5 + x."]:
        assert is_deref_dot(t), t
    for t in ["1.", "0x1f.", "...", "from .", "# a.", "'a."]:
        assert not is_deref_dot(t), t


def test_float_token_does_not_trigger():
    calls = []
    mon = DereferenceMonitor(VOCAB, "y = ", analysis=StaticAnalysis(lambda p, s: calls.append(p) or ["real"]))
    mon.update(tid("1.5"))
    assert mon.allowed_mask() is None and calls == []
    mon.update(tid("..."))
    assert mon.allowed_mask() is None and calls == []


def test_fallback_when_analysis_returns_nothing(analysis):
    for prompt in ["import nonexistent_mod_xyz\nnonexistent_mod_xyz.", "def f(x):\n    return x.",
                   "class D:\n    def __getattr__(self, n):\n        return 1\n\nD()."]:
        mon = monitor(prompt, analysis)
        assert mon.allowed_mask() is None, prompt
    lm = ScriptedLM(VOCAB, ["amount\n"])
    out = monitored_greedy(lm, VOCAB, [monitor("def f(x):\n    return x.", analysis)])
    assert decode(out) == "amount\n"  # unconstrained


def test_fallback_when_mask_would_be_empty():
    mon = DereferenceMonitor(VOCAB, "x.", analysis=StaticAnalysis(lambda p, s: ["\u00fc\u00fc"]))
    assert mon.allowed_mask() is None and not mon.constrained  # no token fits: fail open


def test_eos_never_inside_identifier(analysis):
    prompt = MAIN_HEAD + "acct."
    lm = ScriptedLM(VOCAB, ["", "balance", "balance\n"])  # the LM wants to stop at once
    assert monitored_greedy(lm, VOCAB, []) == []
    mon = monitor(prompt, analysis)
    assert EOS not in set(mask_to_ids(mon.allowed_mask(), VOCAB.size).tolist())
    out = decode(monitored_greedy(lm, VOCAB, [mon]))
    assert out == "balance\n"  # not "" and not stopping right after "balance" (still constrained)


# ----------------------------------------------------------------------------- protocol
def test_update_rollback_fork(analysis):
    mon = monitor(MAIN_HEAD + "acct", analysis)
    assert mon.allowed_mask() is None
    mon.update(tid("."))
    assert mon.constrained
    legal_at_dot = list(mon.legal)
    mon.update(tid("dep"))
    assert mon.legal == [b"osit"]
    child = mon.fork()
    child.update(tid("o"))
    assert child.legal == [b"sit"] and mon.legal == [b"osit"]
    mon.rollback(1)
    assert mon.legal == legal_at_dot and mon.text.endswith("acct.")
    mon.rollback(1)
    assert not mon.constrained and mon.text.endswith("acct")
    with pytest.raises(ValueError):
        mon.rollback(1)


def test_intersect_and_helpers():
    a = ids_to_mask([1, 5, 40], 64)
    b = ids_to_mask([5, 40, 63], 64)
    assert mask_to_ids(intersect(a, b), 64).tolist() == [5, 40]
    assert intersect(None, None) is None
    assert mask_to_ids(intersect(a, None), 64).tolist() == [1, 5, 40]
    assert mask_to_ids(intersect(None, b.view(np.int32)), 64).tolist() == [5, 40, 63]
    assert intersect(a, b).dtype == np.uint32
    f = full_mask(70)
    assert mask_to_ids(f, 96).tolist() == list(range(70))


def test_composition_with_matcher_and_batches(analysis, regexes):
    """A regex constraint (structgen matcher) AND the monitor; batches with one monitor per row."""
    from structgen import allocate_token_bitmask, fill_next_token_bitmasks

    compiled = regexes["assign"]
    matcher = compiled.matcher()
    mon = monitor(MAIN_HEAD + "acct.", analysis)
    m = combined_mask([mon], matcher.next_token_mask())
    ids = set(mask_to_ids(m, VOCAB.size).tolist())
    assert tid("balance") in ids and tid("bal") in ids and tid("amount") not in ids
    lm = ScriptedLM(VOCAB, ["amount += 5\n", "balance += 5\n"])
    out = monitored_greedy(lm, VOCAB, [monitor(MAIN_HEAD + "acct.", analysis)], matcher=compiled.matcher())
    assert decode(out) == "balance += 5\n"

    bitmask = allocate_token_bitmask(3, VOCAB.size)
    matchers = [compiled.matcher(), compiled.matcher(), compiled.matcher()]
    fill_next_token_bitmasks(matchers, bitmask)
    before = bitmask.copy()
    mons = [monitor(MAIN_HEAD + "acct.", analysis), None, monitor(MAIN_HEAD + "acct", analysis)]
    fill_monitor_bitmasks(mons, bitmask)
    row0 = set(mask_to_ids(bitmask[0], VOCAB.size).tolist())
    assert tid("balance") in row0 and tid("amount") not in row0
    np.testing.assert_array_equal(bitmask[1], before[1])  # no monitor
    np.testing.assert_array_equal(bitmask[2], before[2])  # monitor not triggered


def test_monitor_dropped_when_intersection_with_matcher_is_empty(analysis, regexes):
    compiled = regexes["digits"]
    mon = monitor(MAIN_HEAD + "acct.", analysis)
    base = compiled.matcher().next_token_mask()
    m = combined_mask([mon], base)
    np.testing.assert_array_equal(m, base.view(np.uint32))  # advisory monitor: grammar wins


def test_sampling_property(analysis):
    """tau = 1 sampling over a softened scripted LM: every identifier after `acct.` is legal."""
    lm = ScriptedLM(VOCAB, ["amount += 5\n", "owner += 5\n", "balance += 5\n", "bogus\n"])
    legal = {"balance", "deposit", "owner", "withdraw"}
    soft = lambda g: lm(g) / 8.0
    plain_bad = 0
    for seed in range(12):
        out = decode(monitored_greedy(soft, VOCAB, [], max_new_tokens=12,
                                      choose=sampling_choice(np.random.default_rng(seed))))
        plain_bad += (out.split(" ")[0].strip() not in legal)
        mon = monitor(MAIN_HEAD + "acct.", analysis)
        out = decode(monitored_greedy(soft, VOCAB, [mon], max_new_tokens=12,
                                      choose=sampling_choice(np.random.default_rng(seed))))
        ident = ""
        for ch in out:
            if not (ch.isalnum() or ch == "_"):
                break
            ident += ch
        assert ident in legal or ident.startswith("__"), out
    assert plain_bad > 0


def test_real_llama3_vocab_mask_and_merged_tokens(llama3_vocab, analysis):
    """Brute-force oracle over the real 128k Llama-3 vocabulary, which merges `.` with names."""
    v = llama3_vocab
    prompt = BUILDER_PROMPT + "with_ip(ip).with_port(port)"
    mon = DereferenceMonitor(v, BUILDER_PROMPT, analysis=analysis)
    m = mon.allowed_mask()
    np.testing.assert_array_equal(mask_to_bool(m, v.size), brute_force_allowed(v, mon.legal))
    assert not set(v.eos_token_ids) & set(mask_to_ids(m, v.size).tolist())
    for legal in ([b"", b"_port"], [b"th_ip", b"th_port"]):
        np.testing.assert_array_equal(TokenIndex.for_vocab(v).allowed_bool(legal), brute_force_allowed(v, legal))
    mon2 = DereferenceMonitor(v, prompt, analysis=analysis)
    assert mon2.allowed_mask() is None
    assert mon2.verify(v.token_bytes.index(b".build"))
    assert not mon2.verify(v.token_bytes.index(b".append"))
    assert not mon2.verify(v.token_bytes.index(b".get"))


def test_complete_at_file_position(project, analysis):
    from structgen.monitors.complete import complete, explain, split_at

    src = MAIN_HEAD + "\n\ndef make(ip, port):\n    return ServerNode.new_server_node().\n"
    path = project / "main2.py"
    path.write_text(src)
    line = src.count("\n", 0, src.index("new_server_node().")) + 1
    col = len("    return ServerNode.new_server_node().")
    assert split_at(src, line, col)[0].endswith("new_server_node().")
    names = explain(str(path), line, col, project_root=str(project))
    assert {"build", "with_ip", "with_port"} <= set(names)
    assert explain(str(path), 1, 0) == []
    lm = ScriptedLM(VOCAB, [b.rstrip("\n") + "\n    x = 1\n" for b in BUILDER_BELIEFS])
    res = complete(str(path), line, col, vocab=VOCAB, logits_fn=lm, project_root=str(project))
    assert res["completion"] == "with_ip(ip).with_port(port).build()"
    assert res["triggers"] >= 3
    plain = complete(str(path), line, col, vocab=VOCAB, logits_fn=ScriptedLM(VOCAB, [b.rstrip("\n") + "\n    x = 1\n" for b in BUILDER_BELIEFS]),
                     project_root=str(project), use_monitor=False)
    assert plain["completion"] == "host(ip).port(port).build()"


# ----------------------------------------------------------------------------- LSP end to end
class _LspClient:
    """A minimal LSP client over the server process's stdio (Content-Length framed JSON-RPC)."""

    def __init__(self, cmd, cwd):
        import subprocess
        self.p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.next_id = 0

    def send(self, method, params, notify=False):
        import json
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        if not notify:
            self.next_id += 1
            msg["id"] = self.next_id
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()
        return None if notify else self.read_response(self.next_id)

    def read_response(self, want_id):
        import json
        while True:
            n = None
            while True:
                line = self.p.stdout.readline()
                if not line:
                    raise RuntimeError("server closed: " + self.p.stderr.read().decode(errors="replace")[-2000:])
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            msg = json.loads(self.p.stdout.read(n))
            if msg.get("id") == want_id and "method" not in msg:
                return msg


def test_lsp_server_end_to_end(project, tmp_path):
    pytest.importorskip("pygls")
    import os
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    factory = tmp_path / "lm_factory.py"
    factory.write_text(textwrap.dedent(f'''\
        import sys
        sys.path.insert(0, {repo!r})
        from tests.test_monitors import VOCAB, ScriptedLM, BUILDER_BELIEFS

        def make():
            beliefs = [b.rstrip("\\n") + "\\n    x = 1\\n" for b in BUILDER_BELIEFS]
            return VOCAB, lambda prefix: ScriptedLM(VOCAB, beliefs)
        '''))
    src = MAIN_HEAD + "\n\ndef make(ip, port):\n    return ServerNode.new_server_node().\n"
    path = project / "main_lsp.py"
    path.write_text(src)
    uri = path.as_uri()
    line = src.count("\n", 0, src.index("new_server_node().")) + 1
    col = len("    return ServerNode.new_server_node().")
    c = _LspClient([sys.executable, "-m", "structgen.monitors.lsp", "--lm-factory", f"{factory}:make"], repo)
    try:
        init = c.send("initialize", {"processId": None, "rootUri": project.as_uri(), "capabilities": {}})
        caps = init["result"]["capabilities"]
        assert "inlineCompletionProvider" in caps and caps["inlineCompletionProvider"] is not False
        assert "." in caps["completionProvider"]["triggerCharacters"]
        c.send("initialized", {}, notify=True)
        c.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                         "text": src}}, notify=True)
        pos = {"line": line - 1, "character": col}
        r = c.send("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "position": pos,
                                                     "context": {"triggerKind": 1}})
        assert r["result"]["items"][0]["insertText"] == "with_ip(ip).with_port(port).build()"
        r = c.send("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})
        assert r["result"]["items"][0]["insertText"] == "with_ip(ip).with_port(port).build()"
        c.send("shutdown", None)
        c.send("exit", None, notify=True)
        c.p.wait(timeout=10)
    finally:
        if c.p.poll() is None:
            c.p.kill()
        c.p.wait()


def test_hf_generate_plumbing(analysis):
    """A random-init 1-layer GPT-2, a 'bias' processor carrying the scripted preferences, then
    the monitor processor: model.generate(do_sample=False) follows the monitor (spec §7.3)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from structgen.monitors.hf import MonitorLogitsProcessor

    class Bias(transformers.LogitsProcessor):
        def __init__(self, lm, n):
            self.lm, self.n = lm, n

        def __call__(self, input_ids, scores):
            for r in range(input_ids.shape[0]):
                scores[r] = scores[r] + 100.0 * torch.from_numpy(self.lm(input_ids[r, self.n:].tolist())).float()
            return scores

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=VOCAB.size, n_embd=32, n_layer=1, n_head=2, n_positions=128,
                                  bos_token_id=EOS, eos_token_id=EOS)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    prompt = torch.tensor([[tid("x")]])
    lm = ScriptedLM(VOCAB, BUILDER_BELIEFS)

    def run(monitors):
        procs = [Bias(lm, 1)]
        if monitors:
            procs.append(MonitorLogitsProcessor(monitors, VOCAB, 1))
        out = model.generate(prompt, max_new_tokens=20, do_sample=False, eos_token_id=EOS, pad_token_id=EOS,
                             logits_processor=transformers.LogitsProcessorList(procs))
        return decode([t for t in out[0, 1:].tolist() if t != EOS])

    assert run([]) == BUILDER_BELIEFS[0]
    assert run([monitor(BUILDER_PROMPT, analysis)]) == BUILDER_BELIEFS[2]
