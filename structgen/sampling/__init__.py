"""Grammar-aligned sampling: GCD, ASAp and CARS on one prefix trie over token ids.

Plain grammar-constrained decoding (masking) samples P(w) / prod m(prefix), not the target
P(w | w in L). ASAp learns, across samples, an upper bound EFG~ on each prefix's expected
future grammaticality and samples P(t|u)·EFG~(u·t), which converges to the target; CARS uses
the same trie but draws from the raw LM at a node's first visit and rejects invalid tokens, so
every accepted sample is exact. See shared/specs/asap.md.

    from structgen.sampling import GrammarAlignedSampler
    s = GrammarAlignedSampler(model, vocab, structgen.compile_regex("(ab|c)+", vocab), policy="asap",
                              max_new_tokens=64, seed=0)
    samples = s.sample(n=100)          # each with .token_ids, .text, .logp (LM), .logq (proposal)
    q = s.proposal_distribution()      # exact, for small languages
"""
from structgen.sampling.models import (
    FunctionLogitsModel,
    HFLogitsModel,
    LogitsModel,
    log_softmax64,
    warp_logits,
)
from structgen.sampling.sampler import (
    POLICIES,
    Distribution,
    GrammarAlignedSampler,
    Sample,
    kl_divergence,
)
from structgen.sampling.trie import Node, PrefixTrie

__all__ = [
    "POLICIES",
    "Distribution",
    "FunctionLogitsModel",
    "GrammarAlignedSampler",
    "HFLogitsModel",
    "LogitsModel",
    "Node",
    "PrefixTrie",
    "Sample",
    "kl_divergence",
    "log_softmax64",
    "warp_logits",
]
