"""GrammarAlignedSampler: GCD, ASAp and CARS on one prefix trie (spec: shared/specs/asap.md)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from structgen.sampling.models import (
    FunctionLogitsModel,
    HFLogitsModel,
    log_softmax64,
    warp_logits,
)
from structgen.sampling.trie import PrefixTrie

POLICIES = ("gcd", "asap", "cars")


@dataclass
class Sample:
    """One sampling attempt.

    `token_ids`: the generated ids, EOS excluded. `logp`: log P(w) under the (warped) LM, the
    EOS factor included. `logq`: log-probability of this attempt under the sampler's proposal
    at the time it was drawn (so `logp - logq` is an importance log-weight). `status`: "ok", or
    why the attempt produced no output: "truncated" (token cap reached without EOS),
    "dead_end" (no allowed continuation with mass), "rejected" (CARS drew an invalid token).
    """

    token_ids: tuple[int, ...]
    logp: float
    logq: float
    status: str = "ok"
    eos_id: int | None = None
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass
class Distribution:
    """An exactly enumerated distribution over outputs (token-id tuples, EOS excluded).

    For `proposal_distribution`: `probs` are the probabilities of emitting each output on one
    attempt and `failure` the probability that the attempt fails; `conditional()` renormalises
    over successes. For `target_distribution`: `probs` is P^G and `mass` = P(L).
    """

    probs: dict[tuple[int, ...], float]
    failure: float = 0.0
    mass: float = 1.0
    efg: dict[tuple[int, ...], float] = field(default_factory=dict)

    def conditional(self) -> dict[tuple[int, ...], float]:
        z = sum(self.probs.values())
        return {k: v / z for k, v in self.probs.items()} if z > 0 else {}


def kl_divergence(p: dict, q: dict) -> float:
    """KL(p || q) in nats over dict supports; inf if q misses mass p has."""
    total = 0.0
    for k, pv in p.items():
        if pv <= 0:
            continue
        qv = q.get(k, 0.0)
        if qv <= 0:
            return math.inf
        total += pv * math.log(pv / qv)
    return max(0.0, total)


class _PromptState:
    __slots__ = ("lp_memo", "matcher", "prompt", "trie")

    def __init__(self, prompt: tuple[int, ...], trie: PrefixTrie, matcher):
        self.prompt = prompt
        self.trie = trie
        self.matcher = matcher
        self.lp_memo: dict[tuple[int, ...], np.ndarray] = {}


class GrammarAlignedSampler:
    """Sample from P(w | w in L) for an LM P and a structgen constraint L.

    - `model`: a `LogitsModel` (`next_logits(prefix_ids) -> array`), a plain function of the
      prefix ids, or a Hugging Face causal LM (wrapped in `HFLogitsModel`, KV cache reused).
    - `tokenizer`: a `structgen.Vocabulary`, a Hugging Face tokenizer (used to encode string
      prompts and to build the vocabulary if needed), or None when `constraint` is compiled.
    - `constraint`: a `CompiledGrammar` (from `compile_regex` / `compile_lark` /
      `compile_grammar`), a regex string, or a `structgen.Grammar`.
    - `policy`: first-visit policy on the shared trie. "gcd": plain masked sampling (the trie
      only caches LM calls, no learning; biased). "asap": masked sampling re-weighted by the
      learned EFG upper bounds; every attempt is grammatical (up to the token cap) and the
      proposal converges to the target. "cars": at a node's first visit draw from the raw LM
      and reject invalid tokens; every accepted sample is an exact draw from the target.
    - `max_new_tokens`: cap on generated tokens, EOS included. Reaching it without EOS is a
      failure (EFG 0), so the target is P(w | w in L, |w| < max_new_tokens).
    - `temperature`, `top_k`, `top_p`: off by default; when set they are applied to the logits
      before the float64 log_softmax and so *change the target* to the warped model.

    One trie per prompt, owned by this sampler (never shared; `load_trie` copies).
    """

    def __init__(self, model: Any, tokenizer: Any, constraint: Any, policy: str = "asap", *,
                 max_new_tokens: int = 256, seed: int | None = None, rng: np.random.Generator | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 cars_constrain_first: bool = False):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        self.policy = policy
        self.max_new_tokens = int(max_new_tokens)
        self.temperature, self.top_k, self.top_p = float(temperature), top_k, top_p
        self.cars_constrain_first = bool(cars_constrain_first)
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.tokenizer = tokenizer
        self.compiled = self._compile(constraint, tokenizer, model)
        self.vocab = self.compiled.vocab
        self.eos_ids = frozenset(int(t) for t in self.vocab.eos_token_ids)
        if not self.eos_ids:
            raise ValueError("the vocabulary has no EOS token id")
        self.model = self._wrap_model(model)
        self._states: dict[tuple[int, ...], _PromptState] = {}
        self.stats = {"attempts": 0, "accepted": 0, "model_calls": 0, "truncated": 0,
                      "dead_end": 0, "rejected": 0}

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _compile(constraint, tokenizer, model=None):
        if hasattr(constraint, "matcher") and hasattr(constraint, "vocab"):
            return constraint
        from structgen.vocab.vocabulary import Vocabulary

        vocab = tokenizer if isinstance(tokenizer, Vocabulary) else None
        if vocab is None and tokenizer is not None:
            if hasattr(model, "config") and hasattr(model, "forward"):
                from structgen.integrations.transformers import vocabulary_for

                vocab = vocabulary_for(model, tokenizer)  # logits size and stop ids from the model
            else:
                vocab = Vocabulary.from_hf(tokenizer)
        if vocab is None:
            raise ValueError("a vocabulary (or tokenizer) is needed to compile the constraint")
        from structgen.automata.compiled import compile_grammar, compile_regex
        from structgen.grammar.ir import Grammar

        if isinstance(constraint, str):
            return compile_regex(constraint, vocab)
        if isinstance(constraint, Grammar):
            return compile_grammar(constraint, vocab)
        raise TypeError(f"unsupported constraint {type(constraint).__name__}")

    @staticmethod
    def _wrap_model(model):
        if hasattr(model, "next_logits"):
            return model
        if hasattr(model, "config") and hasattr(model, "forward"):
            return HFLogitsModel(model)
        if callable(model):
            return FunctionLogitsModel(model)
        raise TypeError("model must have next_logits(prefix_ids), be callable, or be an HF causal LM")

    def _prompt_key(self, prompt) -> tuple[int, ...]:
        if prompt is None:
            return ()
        if isinstance(prompt, str):
            if self.tokenizer is None or not hasattr(self.tokenizer, "encode"):
                raise ValueError("a string prompt needs a tokenizer with encode()")
            ids = self.tokenizer.encode(prompt)
            return tuple(int(t) for t in ids)
        return tuple(int(t) for t in prompt)

    def _state(self, prompt) -> _PromptState:
        key = self._prompt_key(prompt)
        st = self._states.get(key)
        if st is None:
            st = _PromptState(key, PrefixTrie(self._meta(key)), self.compiled.matcher())
            self._states[key] = st
        return st

    def _meta(self, key) -> dict:
        return {"prompt": list(key), "vocab_size": int(self.vocab.size), "eos": sorted(self.eos_ids),
                "max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_k": self.top_k, "top_p": self.top_p}

    def trie(self, prompt=None) -> PrefixTrie:
        return self._state(prompt).trie

    def _logprobs(self, st: _PromptState, toks: Sequence[int]) -> np.ndarray:
        self.stats["model_calls"] += 1
        logits = self.model.next_logits(st.prompt + tuple(toks))
        if self.temperature != 1.0 or self.top_k is not None or self.top_p is not None:
            logits = warp_logits(logits, self.temperature, self.top_k, self.top_p)
        return log_softmax64(logits)

    def _decode(self, toks) -> bytes:
        tb = self.vocab.token_bytes
        return b"".join(tb[t] or b"" for t in toks)

    # ------------------------------------------------------------------ sampling
    def draw(self, prompt=None) -> Sample:
        """One attempt (may fail; see Sample.status). Updates the trie unless policy is gcd."""
        st = self._state(prompt)
        s = self._attempt(st)
        self.stats["attempts"] += 1
        if s.ok:
            self.stats["accepted"] += 1
            s.data = self._decode(s.token_ids)
        else:
            self.stats[s.status] += 1
        return s

    def sample(self, prompt=None, n: int = 1, *, max_attempts: int | None = None) -> list[Sample]:
        """`n` successful samples (fewer if `max_attempts`, default 100*n + 100, runs out).

        `sample(5)` is accepted as a shorthand for `sample(None, n=5)`.
        """
        if isinstance(prompt, (int, np.integer)) and not isinstance(prompt, bool):
            prompt, n = None, int(prompt)
        limit = max_attempts if max_attempts is not None else 100 * n + 100
        out: list[Sample] = []
        tries = 0
        while len(out) < n and tries < limit:
            tries += 1
            s = self.draw(prompt)
            if s.ok:
                out.append(s)
        return out

    def _attempt(self, st: _PromptState) -> Sample:
        trie, m = st.trie, st.matcher
        learn = self.policy != "gcd"
        cars = self.policy == "cars"
        rng = self.rng
        m.reset()
        synced = 0
        u = trie.root
        toks: list[int] = []
        logp = 0.0
        logq = 0.0
        while True:
            if u.depth >= self.max_new_tokens:
                if learn:
                    trie.kill(u)
                    trie.set_efg(u, 0.0)
                return Sample(tuple(toks), logp, logq, "truncated")
            raw = None
            if not u.expanded:
                if synced < len(toks):
                    if not m.accept_tokens(toks[synced:]):
                        raise RuntimeError("matcher rejected a token its own mask allowed")
                    synced = len(toks)
                lp = self._logprobs(st, toks)
                allowed = m.allowed_token_ids()
                allowed = allowed[allowed < lp.shape[0]]
                trie.expand(u, allowed, lp[allowed])
                if learn:
                    trie.set_efg(u, u.m)
                if cars and not (u.parent is None and self.cars_constrain_first):
                    raw = lp
            if raw is not None:
                c = np.cumsum(np.exp(raw))
                t = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
                t = min(t, len(c) - 1)
                logp += float(raw[t])
                logq += float(raw[t])
                i = u.index_of(t)
                if i < 0:  # invalid token: the mask is already recorded at u (EFG~(u) = m(u))
                    toks.append(t)
                    return Sample(tuple(toks), logp, logq, "rejected")
            else:
                n = len(u.ids)
                if n == 0:
                    if learn:
                        trie.set_efg(u, 0.0)
                    return Sample(tuple(toks), logp, logq, "dead_end")
                w = u.pn * u.child_efg
                c = np.cumsum(w)
                z = float(c[-1])
                if not z > 0.0:
                    if learn:
                        trie.set_efg(u, 0.0)
                    return Sample(tuple(toks), logp, logq, "dead_end")
                i = int(np.searchsorted(c, rng.random() * z, side="right"))
                if i >= n:
                    i = n - 1
                logq += math.log(float(w[i]) / z)
                logp += float(u.logp[i])
            t = int(u.ids[i])
            if t in self.eos_ids:
                return Sample(tuple(toks), logp, logq, "ok", eos_id=t)
            toks.append(t)
            u = trie.child(u, i)

    # ------------------------------------------------------------------ exact enumeration
    def _memo_logprobs(self, st: _PromptState, prefix: tuple[int, ...]) -> np.ndarray:
        lp = st.lp_memo.get(prefix)
        if lp is None:
            logits = self.model.next_logits(st.prompt + prefix)
            if self.temperature != 1.0 or self.top_k is not None or self.top_p is not None:
                logits = warp_logits(logits, self.temperature, self.top_k, self.top_p)
            lp = log_softmax64(logits)
            st.lp_memo[prefix] = lp
        return lp

    def target_distribution(self, prompt=None, *, max_nodes: int = 200_000) -> Distribution:
        """Exact P^G(w) = P(w) 1[w in L] / P(L) under the token cap, by enumeration.

        Also returns `efg`: the true EFG of every viable prefix with positive probability
        (truncated prefixes count 0), and `mass` = P(L) = EFG(root). Small languages only.
        """
        st = self._state(prompt)
        m = self.compiled.matcher()
        out: dict[tuple[int, ...], float] = {}
        efg: dict[tuple[int, ...], float] = {}
        budget = [max_nodes]
        eos = self.eos_ids
        cap = self.max_new_tokens

        def rec(prefix: tuple[int, ...], lpre: float) -> float:
            budget[0] -= 1
            if budget[0] < 0:
                raise RuntimeError("language too large to enumerate (raise max_nodes)")
            if len(prefix) >= cap:
                efg[prefix] = 0.0
                return 0.0
            lp = self._memo_logprobs(st, prefix)
            allowed = m.allowed_token_ids()
            total = 0.0
            for t in allowed:
                t = int(t)
                if t >= lp.shape[0] or lp[t] == -np.inf:
                    continue
                pt = math.exp(lp[t])
                if t in eos:
                    out[prefix] = out.get(prefix, 0.0) + math.exp(lpre + lp[t])
                    total += pt
                else:
                    m.accept_token(t)
                    total += pt * rec(prefix + (t,), lpre + lp[t])
                    m.rollback(1)
            efg[prefix] = total
            return total

        pl = rec((), 0.0)
        probs = {k: v / pl for k, v in out.items()} if pl > 0 else {}
        return Distribution(probs, 0.0, pl, efg)

    def proposal_distribution(self, prompt=None, *, max_nodes: int = 200_000) -> Distribution:
        """The sampler's *current* proposal for one attempt, exactly, without touching the trie.

        Expanded nodes use the trie's weights P(t|u)·EFG~(u·t); unexpanded ones the first-visit
        rule of the policy (GCD masking, or the raw LM for CARS). `failure` is the probability
        that the attempt fails (truncation, dead end, CARS rejection).
        """
        st = self._state(prompt)
        m = self.compiled.matcher()
        out: dict[tuple[int, ...], float] = {}
        fail = [0.0]
        budget = [max_nodes]
        eos = self.eos_ids
        cap = self.max_new_tokens
        cars = self.policy == "cars"

        def emit(prefix, node, ids, w, lq0):
            for i in np.flatnonzero(w > 0):
                t = int(ids[i])
                lq = lq0 + math.log(float(w[i]))
                if t in eos:
                    out[prefix] = out.get(prefix, 0.0) + math.exp(lq)
                else:
                    m.accept_token(t)
                    rec(prefix + (t,), None if node is None else node.kids.get(t), lq)
                    m.rollback(1)

        def rec(prefix, node, lq):
            budget[0] -= 1
            if budget[0] < 0:
                raise RuntimeError("language too large to enumerate (raise max_nodes)")
            if len(prefix) >= cap:
                fail[0] += math.exp(lq)
                return
            if node is not None and node.expanded:
                w = node.pn * node.child_efg
                z = float(w.sum())
                if not z > 0:
                    fail[0] += math.exp(lq)
                    return
                emit(prefix, node, node.ids, w / z, lq)
                return
            lp = self._memo_logprobs(st, prefix)
            allowed = m.allowed_token_ids()
            allowed = allowed[allowed < lp.shape[0]]
            pa = np.exp(lp[allowed])
            if cars and not (len(prefix) == 0 and self.cars_constrain_first):
                fail[0] += math.exp(lq) * max(0.0, 1.0 - float(pa.sum()))
                emit(prefix, node, allowed, pa, lq)
                return
            z = float(pa.sum())
            if not z > 0:
                fail[0] += math.exp(lq)
                return
            emit(prefix, node, allowed, pa / z, lq)

        rec((), self._state(prompt).trie.root, 0.0)
        return Distribution(out, fail[0], 1.0)

    # ------------------------------------------------------------------ persistence
    def save_trie(self, path, prompt=None) -> None:
        self._state(prompt).trie.save(path)

    def load_trie(self, path, prompt=None) -> PrefixTrie:
        """Replace the trie for `prompt` with a copy loaded from `path` (metadata must match)."""
        st = self._state(prompt)
        trie = PrefixTrie.load(path)
        want = self._meta(st.prompt)
        for k in ("prompt", "vocab_size", "eos", "max_new_tokens", "temperature", "top_k", "top_p"):
            if k in trie.meta and trie.meta[k] != want[k]:
                raise ValueError(f"trie was built for {k}={trie.meta[k]!r}, this sampler has {want[k]!r}")
        st.trie = trie
        return trie
