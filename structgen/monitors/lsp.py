"""LSP server offering monitor-guided completions (pygls 2.x, stdio).

    python -m structgen.monitors.lsp [--model DIR] [--max-tokens N] [--lm-factory FILE.py:func]

- `textDocument/inlineCompletion` returns the MGD continuation as ghost text;
- `textDocument/completion` (trigger character `.`) returns the same continuation as one item,
  for clients without inline completion.

`--lm-factory FILE.py:func` replaces the model: `func()` returns `(vocab, make_logits_fn)` where
`make_logits_fn(prefix_text)` gives a `logits_fn(generated_ids)` (used by the end-to-end test
with a scripted LM). Meant to be wired as `structgen lsp` by the main CLI.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from collections.abc import Callable


def _load_factory(spec: str):
    path, _, func = spec.rpartition(":")
    s = importlib.util.spec_from_file_location("structgen_lsp_lm_factory", path)
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    return getattr(mod, func)()


class Completer:
    """prefix/suffix/path -> MGD completion text, with a lazily loaded model."""

    def __init__(self, model_dir: str | None = None, max_tokens: int = 32,
                 lm_factory: str | None = None):
        self.model_dir, self.max_tokens, self.lm_factory = model_dir, max_tokens, lm_factory
        self._lock = threading.Lock()
        self._lm = None

    def _ensure(self):
        if self._lm is None:
            if self.lm_factory:
                self._lm = _load_factory(self.lm_factory)
            else:
                from structgen import Vocabulary
                from structgen.integrations.models import load_default_model, load_model
                from structgen.monitors.complete import HFLogits
                model, tok = load_model(self.model_dir, quiet=True) if self.model_dir else \
                    load_default_model(quiet=True)
                vocab = Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
                self._lm = (vocab, lambda prefix: HFLogits(
                    model, tok(prefix[-4000:], add_special_tokens=False)["input_ids"]))
        return self._lm

    def __call__(self, path: str, source: str, offset: int, root: str | None) -> str:
        from structgen.monitors.complete import complete
        with self._lock:
            vocab, make = self._ensure()
            prefix = source[:offset]
            line = prefix.count("\n") + 1
            col = len(prefix) - (prefix.rfind("\n") + 1)
            res = complete(path, line, col, source=source, vocab=vocab, logits_fn=make(prefix),
                           project_root=root, max_tokens=self.max_tokens)
            return res["completion"]


def build_server(completer: Callable[[str, str, int, str | None], str]):
    from lsprotocol import types as T
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("structgen-mgd", "0.1.0")

    def _run(ls, params) -> str:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        offset = doc.offset_at_position(params.position)
        root = ls.workspace.root_path
        return completer(doc.path, doc.source, offset, root)

    @server.feature(T.TEXT_DOCUMENT_INLINE_COMPLETION, T.InlineCompletionOptions())
    def inline_completion(ls, params: T.InlineCompletionParams):
        text = _run(ls, params)
        return T.InlineCompletionList(items=[T.InlineCompletionItem(insert_text=text)] if text else [])

    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["."]))
    def completion(ls, params: T.CompletionParams):
        text = _run(ls, params)
        items = [T.CompletionItem(label=text, insert_text=text, kind=T.CompletionItemKind.Text)] if text else []
        return T.CompletionList(is_incomplete=False, items=items)

    return server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="structgen lsp")
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--lm-factory", default=None, help="FILE.py:func returning (vocab, make_logits_fn)")
    a = ap.parse_args(argv)
    build_server(Completer(a.model, a.max_tokens, a.lm_factory)).start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
