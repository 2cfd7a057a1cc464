"""Regex front end: `parse_regex` turns a Python-`re` or ECMA-262 pattern into grammar IR."""
from structgen.regex.parser import DEFAULT_MAX_REPEAT_EXPANSION, parse_regex
from structgen.regex.utf8 import utf8_sequences

__all__ = ["DEFAULT_MAX_REPEAT_EXPANSION", "parse_regex", "utf8_sequences"]
