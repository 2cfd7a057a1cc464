"""Replace one named section of docs/benchmarks.md, leaving the other benchmarks' sections alone."""
from __future__ import annotations

import os
import re

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")
HEADER = "# structgen benchmarks\n\nEach section is written by the script it names; rerun that command to refresh it.\n"


def update_section(name: str, body: str, path: str = DOC) -> None:
    begin, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def remove_section(name: str, path: str = DOC) -> bool:
    """Delete one named section (e.g. one folded into another); True when it was there."""
    begin, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    if not os.path.exists(path):
        return False
    text = open(path, encoding="utf-8").read()
    pattern = re.compile(r"\n*" + re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    new, n = pattern.subn("\n", text, count=1)
    if not n:
        return False
    with open(path, "w", encoding="utf-8") as f:
        f.write(new.rstrip("\n") + "\n" if new.strip() else new)
    return True
