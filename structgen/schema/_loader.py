"""Schema input: accepted forms, draft detection, the in-document resource index and `$ref`.

Every schema node the compiler touches is a `Node`: the JSON value plus where it lives (its
document, JSON pointer and base URI), so that `$ref` resolution, error messages and rule sharing
all agree on identity: two references to the same place are the same node, hence one grammar rule.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote, urldefrag, urljoin

from structgen.errors import InvalidSchema, LimitExceeded, UnsupportedSchema

DEFAULT_BASE = "https://structgen.invalid/root.json"

DRAFTS = {
    "https://json-schema.org/draft/2020-12/schema": "2020-12",
    "https://json-schema.org/draft/2019-09/schema": "2019-09",
    "http://json-schema.org/draft-07/schema": "7",
    "http://json-schema.org/draft-06/schema": "6",
    "http://json-schema.org/draft-04/schema": "4",
}
_DRAFT_ALIASES = {"2020-12": "2020-12", "draft2020-12": "2020-12", "2019-09": "2019-09",
                  "draft2019-09": "2019-09", "7": "7", "draft7": "7", "draft-07": "7", "6": "6",
                  "draft6": "6", "draft-06": "6", "4": "4", "draft4": "4", "draft-04": "4"}

# keywords whose value is a schema / a list of schemas / a map of schemas
SCHEMA_KW = {"additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
             "propertyNames", "unevaluatedProperties", "unevaluatedItems", "items"}
LIST_KW = {"allOf", "anyOf", "oneOf", "prefixItems", "items"}
MAP_KW = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}


def normalize_draft(d: str | None) -> str | None:
    if d is None:
        return None
    key = str(d).strip()
    if key in _DRAFT_ALIASES:
        return _DRAFT_ALIASES[key]
    uri = key.rstrip("#")
    if uri in DRAFTS:
        return DRAFTS[uri]
    raise InvalidSchema(f"unknown JSON Schema draft {d!r}")


def detect_draft(schema, override: str | None) -> str:
    if override is not None:
        return normalize_draft(override)
    if isinstance(schema, dict) and isinstance(schema.get("$schema"), str):
        uri = schema["$schema"].rstrip("#")
        for k, v in DRAFTS.items():
            if uri == k.rstrip("#") or uri == k.replace("http://", "https://") or uri == k.replace("https://", "http://"):
                return v
    return "2020-12"


def load_schema(schema) -> object:
    """dict / bool / JSON text / pydantic v2 model class -> a JSON value."""
    if isinstance(schema, (dict, bool)):
        return schema
    if isinstance(schema, (str, bytes, bytearray)):
        try:
            return json.loads(schema)
        except ValueError as ex:
            raise InvalidSchema(f"schema is not valid JSON: {ex}") from None
    mjs = getattr(schema, "model_json_schema", None)
    if callable(mjs):
        return mjs()
    raise InvalidSchema(f"cannot use {type(schema).__name__} as a JSON Schema")


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass(eq=False)
class Node:
    """A located schema value. Identity (doc, pointer) is what rules are keyed on."""

    value: object
    base: str
    doc: int
    pointer: str  # JSON pointer inside its document ("" is the root)
    draft: str
    id: int = -1

    @property
    def where(self) -> str:
        return "#" + self.pointer

    def child(self, *tokens) -> Node:
        return self.registry.node_at(self, tokens)

    registry: Registry = field(default=None, repr=False)  # type: ignore[assignment]


class Registry:
    """All documents (the root plus optional extra resources), their $id/$anchor index, nodes."""

    def __init__(self, root, draft: str, resources: dict | None, max_nodes: int):
        self.draft = draft
        self.docs: list[object] = []
        self.doc_base: list[str] = []
        self.resources: dict[str, tuple[int, str, str]] = {}  # uri -> (doc, pointer, draft)
        self.anchors: dict[str, tuple[int, str, str]] = {}    # uri#name -> (doc, pointer, draft)
        self.nodes: dict[tuple[int, str], Node] = {}
        self.node_list: list[Node] = []
        self.max_nodes = max_nodes
        self._size = 0
        self.root_doc = self._add_doc(root, DEFAULT_BASE, draft)
        for uri, doc in (resources or {}).items():
            d = detect_draft(doc, None) if isinstance(doc, dict) and "$schema" in doc else draft
            self._add_doc(doc, urldefrag(uri)[0], d)

    # ------------------------------------------------------------------ indexing
    def _add_doc(self, value, base: str, draft: str) -> int:
        idx = len(self.docs)
        self.docs.append(value)
        self.doc_base.append(base)
        self._index(value, base, idx, "", draft, True)
        return idx

    def _index(self, v, base: str, doc: int, ptr: str, draft: str, is_schema: bool) -> None:
        self._size += 1
        if self._size > self.max_nodes:
            raise LimitExceeded(f"schema has more than {self.max_nodes} nodes")
        if not isinstance(v, dict):
            if isinstance(v, list):
                for i, x in enumerate(v):
                    self._count(x)
            return
        if isinstance(v.get("$schema"), str) and ptr:
            try:
                draft = detect_draft(v, None)
            except InvalidSchema:
                pass
        legacy = draft in ("4", "6", "7")
        has_ref = legacy and "$ref" in v
        idv = v.get("id" if draft == "4" else "$id")
        if isinstance(idv, str) and not has_ref:
            if legacy and idv.startswith("#"):
                self.anchors.setdefault(_join(base, "") + idv, (doc, ptr, draft))
            else:
                base = _join(base, idv)
                uri, frag = urldefrag(base)
                base = uri
                self.resources.setdefault(uri, (doc, ptr, draft))
                if frag and legacy:
                    self.anchors.setdefault(uri + "#" + frag, (doc, ptr, draft))
        if ptr == "" and base not in self.resources:
            self.resources[base] = (doc, ptr, draft)
        for key in ("$anchor", "$dynamicAnchor"):
            a = v.get(key)
            if isinstance(a, str) and not legacy:
                self.anchors.setdefault(base + "#" + a, (doc, ptr, draft))
        for k, x in v.items():
            p = ptr + "/" + escape_pointer(k)
            if k in MAP_KW and isinstance(x, dict):
                self._size += 1
                for name, sub in x.items():
                    self._index(sub, base, doc, p + "/" + escape_pointer(name), draft, True)
            elif k in LIST_KW and isinstance(x, list):
                self._size += 1
                for i, sub in enumerate(x):
                    self._index(sub, base, doc, f"{p}/{i}", draft, True)
            elif k in SCHEMA_KW:
                self._index(x, base, doc, p, draft, True)
            else:
                self._count(x)

    def _count(self, v) -> None:
        stack = [v]
        while stack:
            x = stack.pop()
            self._size += 1
            if self._size > self.max_nodes:
                raise LimitExceeded(f"schema has more than {self.max_nodes} nodes")
            if isinstance(x, dict):
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)

    # ------------------------------------------------------------------ nodes
    def root(self) -> Node:
        return self._node(self.root_doc, "", None, None)

    def _node(self, doc: int, ptr: str, base: str | None, draft: str | None) -> Node:
        key = (doc, ptr)
        n = self.nodes.get(key)
        if n is not None:
            return n
        value, base2, draft2 = self._walk(doc, ptr)
        n = Node(value, base2, doc, ptr, draft2, len(self.node_list), self)
        self.nodes[key] = n
        self.node_list.append(n)
        return n

    def _walk(self, doc: int, ptr: str):
        """Value at ptr, with the base URI and draft in force there (applying $id on the way)."""
        v = self.docs[doc]
        base = self.doc_base[doc]
        draft = self.draft
        toks = [] if ptr == "" else [t.replace("~1", "/").replace("~0", "~") for t in ptr.split("/")[1:]]
        base, draft = self._apply_id(v, base, draft)
        for t in toks:
            if isinstance(v, dict):
                if t not in v:
                    raise InvalidSchema(f"no value at JSON pointer #{ptr}", pointer="#" + ptr)
                v = v[t]
            elif isinstance(v, list):
                try:
                    v = v[int(t)]
                except (ValueError, IndexError):
                    raise InvalidSchema(f"no value at JSON pointer #{ptr}", pointer="#" + ptr) from None
            else:
                raise InvalidSchema(f"no value at JSON pointer #{ptr}", pointer="#" + ptr)
            base, draft = self._apply_id(v, base, draft)
        return v, base, draft

    def _apply_id(self, v, base, draft):
        if not isinstance(v, dict):
            return base, draft
        if isinstance(v.get("$schema"), str):
            try:
                draft = detect_draft(v, None)
            except InvalidSchema:
                pass
        legacy = draft in ("4", "6", "7")
        idv = v.get("id" if draft == "4" else "$id")
        if isinstance(idv, str) and not (legacy and "$ref" in v) and not (legacy and idv.startswith("#")):
            base = urldefrag(_join(base, idv))[0]
        return base, draft

    def node_at(self, parent: Node, tokens) -> Node:
        ptr = parent.pointer + "".join("/" + escape_pointer(str(t)) for t in tokens)
        return self._node(parent.doc, ptr, None, None)

    def resolve(self, node: Node, ref: str, keyword: str = "$ref") -> Node:
        """The node a `$ref` inside `node` points at (in-document or a supplied resource)."""
        if not isinstance(ref, str):
            raise InvalidSchema(f"{keyword} must be a string", pointer=node.where)
        target = _join(node.base, ref)
        uri, frag = urldefrag(target)
        frag = unquote(frag)
        if frag and not frag.startswith("/"):
            hit = self.anchors.get(uri + "#" + frag)
            if hit is None:
                raise UnsupportedSchema(f"unresolvable reference {ref!r}", keyword=keyword, pointer=node.where)
            return self._node(hit[0], hit[1], None, None)
        res = self.resources.get(uri)
        if res is None:
            raise UnsupportedSchema(f"reference {ref!r} is not inside the document (remote references are "
                                    "not fetched; pass resources=)", keyword=keyword, pointer=node.where)
        doc, p, _d = res
        return self._node(doc, p + (frag if frag else ""), None, None)


def _join(base: str, ref: str) -> str:
    if ref.startswith("#"):
        return urldefrag(base)[0] + ref
    if ":" in ref.split("/")[0]:
        return ref  # absolute
    try:
        return urljoin(base, ref)
    except ValueError:
        return ref
