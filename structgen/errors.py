"""Typed errors. Every error names where the problem is (a position, a rule, a JSON pointer)."""


class StructgenError(Exception):
    """Base class of every error structgen raises on purpose."""


class UnsupportedRegex(StructgenError):
    """A regex construct the engine cannot compile exactly (lookaround, backreference, ...)."""

    def __init__(self, message: str, *, pattern: str | None = None, position: int | None = None):
        self.pattern = pattern
        self.position = position
        where = f" at position {position}" if position is not None else ""
        shown = f" in {pattern!r}" if pattern is not None else ""
        super().__init__(f"{message}{where}{shown}")


class RegexSyntaxError(UnsupportedRegex):
    """The pattern is not a valid regex."""


class GrammarError(StructgenError):
    """A grammar that is malformed (undefined rule, bad Lark syntax, ...)."""


class UnsupportedSchema(StructgenError):
    """A JSON Schema keyword the engine cannot enforce exactly; names the keyword and JSON pointer."""

    def __init__(self, message: str, *, keyword: str | None = None, pointer: str = ""):
        self.keyword = keyword
        self.pointer = pointer
        loc = f" (keyword {keyword!r} at {pointer or '#'})" if keyword else (f" (at {pointer})" if pointer else "")
        super().__init__(f"{message}{loc}")


class InvalidSchema(StructgenError):
    """The schema itself is not valid JSON Schema."""

    def __init__(self, message: str, *, pointer: str = ""):
        self.pointer = pointer
        super().__init__(f"{message}" + (f" (at {pointer})" if pointer else ""))


class LimitExceeded(StructgenError):
    """A configured bound (states, stack depth, fuel, grammar size) was hit: bounded time and memory."""


class VocabularyError(StructgenError):
    """A tokenizer whose token bytes cannot be recovered exactly."""
