"""Built-in Lark grammars shipped as package data (`structgen/grammars/*.lark`).

Read through importlib.resources so they work from wheels and zip imports, not only from a
source checkout. Feed the text to `structgen.grammar.lark_frontend.lark_to_ir` or `compile_lark`.
"""
from __future__ import annotations

from importlib import resources

from structgen.errors import GrammarError

_PACKAGE = "structgen"  # the .lark files are package data of `structgen` (see pyproject.toml)
_DIR = "grammars"
_SUFFIX = ".lark"


def list_builtin_grammars() -> list[str]:
    """Names accepted by `load_builtin_grammar`, sorted."""
    root = resources.files(_PACKAGE).joinpath(_DIR)
    return sorted(p.name[: -len(_SUFFIX)] for p in root.iterdir()
                  if p.is_file() and p.name.endswith(_SUFFIX))


def load_builtin_grammar(name: str) -> str:
    """The Lark source of built-in grammar `name` (e.g. "json"; a ".lark" suffix is accepted)."""
    if name.endswith(_SUFFIX):
        name = name[: -len(_SUFFIX)]
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise GrammarError(f"invalid built-in grammar name {name!r}")
    res = resources.files(_PACKAGE).joinpath(_DIR).joinpath(name + _SUFFIX)
    if not res.is_file():
        raise GrammarError(
            f"no built-in grammar {name!r}; available: {', '.join(list_builtin_grammars())}")
    return res.read_text(encoding="utf-8")
