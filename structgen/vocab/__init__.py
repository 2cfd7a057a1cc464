from structgen.vocab.vocabulary import Vocabulary
from structgen.vocab.trie import TokenTrie

__all__ = ["Vocabulary", "TokenTrie"]
