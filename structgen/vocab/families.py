"""Recover the exact bytes of every token id from a Hugging Face tokenizer, per tokenizer family.

Everything here is duck-typed: the tokenizer object is only asked for `get_vocab()`,
`convert_ids_to_tokens()`, `all_special_ids`, `added_tokens_decoder`, `backend_tokenizer`
(fast tokenizers), `sp_model` / `byte_decoder` (slow ones). Neither torch nor transformers is
imported. Families:

- byte-level BPE (GPT-2, Llama-3, Qwen, SmolLM2): each byte is spelled by one printable
  character of the GPT-2 byte-to-unicode table (`Ġ` is the space);
- SentencePiece (Llama-2, Mistral, Gemma, T5): `▁` is the space and, with byte fallback,
  `<0xNN>` is the single byte NN. The decoder also drops the space of the first token of a
  sequence (the "dummy prefix"); token bytes keep it and the vocabulary records the fact;
- "plain" vocabularies whose tokens are their own text, accepted only when decoding is
  provably context-free. WordPiece-style decoders (spaces inserted between tokens, `##`
  continuations) are not: those raise `VocabularyError` naming the ambiguous ids.

Fast tokenizers carry their decoder as JSON: it is interpreted step by step, so what comes out
is what `tokenizer.decode` produces, token by token.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from structgen.errors import VocabularyError

SPIECE_SPACE = "\u2581"  # '▁'
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


# --------------------------------------------------------------------------- byte-level BPE

def _build_byte_to_unicode() -> dict[int, str]:
    """GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 bytes are
    shifted, in byte order, to code points 256, 257, ... so every token is printable text."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
            *range(ord("\u00ae"), ord("\u00ff") + 1)]
    kept = set(keep)
    table: dict[int, str] = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in kept:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


BYTE_TO_UNICODE: dict[int, str] = _build_byte_to_unicode()
UNICODE_TO_BYTE: dict[str, int] = {c: b for b, c in BYTE_TO_UNICODE.items()}


def bytes_to_byte_level(data: bytes) -> str:
    """Spell raw bytes the way a byte-level BPE vocabulary stores them."""
    return "".join(BYTE_TO_UNICODE[b] for b in data)


def byte_level_to_bytes(token: str, table: dict[str, int] | None = None) -> bytes:
    """Bytes of a byte-level BPE token. As in the `tokenizers` ByteLevel decoder, a token with
    any character outside the table (typically an added token such as `"  "`) is its own UTF-8."""
    table = UNICODE_TO_BYTE if table is None else table
    try:
        return bytes(table[c] for c in token)
    except KeyError:
        return token.encode("utf-8")


def byte_level_to_bytes_strict(token: str, table: dict[str, int] | None = None) -> bytes | None:
    """Like `byte_level_to_bytes` but None when a character is outside the table."""
    table = UNICODE_TO_BYTE if table is None else table
    try:
        return bytes(table[c] for c in token)
    except KeyError:
        return None


# --------------------------------------------------------------------------- SentencePiece

def byte_piece_value(piece: str) -> int | None:
    """The byte of a byte-fallback piece `<0xNN>`, else None."""
    m = _BYTE_PIECE.fullmatch(piece)
    return int(m.group(1), 16) if m else None


def sentencepiece_to_bytes(piece: str, *, byte_fallback: bool = True) -> bytes:
    """Bytes of a SentencePiece piece: `<0xNN>` is byte NN, `▁` is a space, the rest is UTF-8."""
    if byte_fallback:
        v = byte_piece_value(piece)
        if v is not None:
            return bytes((v,))
    return piece.replace(SPIECE_SPACE, " ").encode("utf-8")


# --------------------------------------------------------------------------- HF tokenizers

@dataclass
class Recovered:
    """What `recover_hf` found: per-id bytes (None = no text), control ids, family facts."""

    token_bytes: list[bytes | None]
    special_ids: set[int]
    family: str
    strips_leading_space: bool = False
    eos_token_ids: set[int] = field(default_factory=set)
    name: str = ""


def _ambiguous(reason: str, ids: Iterable[int], id_to_tok: dict[int, str]) -> VocabularyError:
    ids = sorted(ids)
    shown = ", ".join(f"{i} {id_to_tok.get(i)!r}" for i in ids[:12])
    more = f", ... ({len(ids)} in all)" if len(ids) > 12 else ""
    return VocabularyError(f"cannot recover exact token bytes: {reason}; ambiguous ids: [{shown}{more}]")


def _backend(tokenizer: Any) -> Any | None:
    """The `tokenizers.Tokenizer` behind a fast HF tokenizer, or the object itself if it is one."""
    bk = getattr(tokenizer, "backend_tokenizer", None)
    if bk is not None:
        return bk
    if hasattr(tokenizer, "to_str") and hasattr(tokenizer, "id_to_token"):
        return tokenizer
    return None


def _decoder_spec(backend: Any) -> dict | None:
    """The decoder's JSON, read from the decoder object when possible (cheap), else from the
    whole serialized tokenizer."""
    dec = getattr(backend, "decoder", None)
    if dec is None:
        spec = json.loads(backend.to_str()).get("decoder")
        return spec
    try:
        state = dec.__getstate__()
        return json.loads(state)
    except Exception:
        return json.loads(backend.to_str()).get("decoder")


def _added_tokens(tokenizer: Any, backend: Any | None) -> dict[int, tuple[str, bool]]:
    """id -> (content, special) of every added token, from whichever API the object offers."""
    out: dict[int, tuple[str, bool]] = {}
    sources = []
    atd = getattr(tokenizer, "added_tokens_decoder", None)
    if isinstance(atd, dict):
        sources.append(atd)
    elif backend is not None and hasattr(backend, "get_added_tokens_decoder"):
        try:
            sources.append(backend.get_added_tokens_decoder())
        except Exception:
            pass
    for src in sources:
        for i, tok in src.items():
            content = getattr(tok, "content", tok if isinstance(tok, str) else str(tok))
            out[int(i)] = (content, bool(getattr(tok, "special", False)))
    return out


def _id_to_token(tokenizer: Any, extra_ids: Iterable[int]) -> dict[int, str]:
    """id -> token string. `convert_ids_to_tokens` is authoritative; `get_vocab()` fills gaps."""
    vocab: dict[str, int] = {}
    get_vocab = getattr(tokenizer, "get_vocab", None)
    if get_vocab is not None:
        vocab = dict(get_vocab())
    ids = set(vocab.values()) | set(extra_ids)
    n = len(tokenizer) if hasattr(tokenizer, "__len__") else 0
    top = max(max(ids, default=-1) + 1, n)
    out: dict[int, str] = {}
    conv = getattr(tokenizer, "convert_ids_to_tokens", None)
    if conv is None and hasattr(tokenizer, "id_to_token"):
        conv = lambda xs: [tokenizer.id_to_token(x) for x in xs]  # noqa: E731
    if conv is not None:
        try:
            toks = conv(list(range(top)))
        except Exception:
            toks = None
        if toks is not None:
            out = {i: t for i, t in enumerate(toks) if isinstance(t, str)}
    for t, i in vocab.items():
        out.setdefault(int(i), t)
    if not out:
        raise VocabularyError("tokenizer exposes neither get_vocab() nor convert_ids_to_tokens()")
    return out


def _interpret_decoder(spec: dict | None, id_to_tok: dict[int, str], specials: set[int]):
    """Turn a `tokenizers` decoder JSON into a per-token str -> bytes function.

    Returns (fn, family, strips_leading_space). Steps that make a token's text depend on its
    neighbours (WordPiece, BPE suffixes, CTC, no decoder = space-joined) raise VocabularyError.
    """
    normal = [i for i in id_to_tok if i not in specials]
    if spec is None:
        raise _ambiguous("the tokenizer has no decoder, so decode() joins tokens with spaces", normal, id_to_tok)
    steps = spec.get("decoders", []) if spec.get("type") == "Sequence" else [spec]
    funcs: list[Callable[[str | bytes], str | bytes]] = []
    fused = False
    strips = False
    family = "plain"
    for st in steps:
        kind = st.get("type")
        if kind == "ByteLevel":
            family = "byte_level"
            funcs.append(lambda t: byte_level_to_bytes(t) if isinstance(t, str) else t)
        elif kind == "ByteFallback":
            family = "sentencepiece"

            def _bf(t):
                if isinstance(t, str):
                    v = byte_piece_value(t)
                    if v is not None:
                        return bytes((v,))
                return t
            funcs.append(_bf)
        elif kind == "Replace":
            pat = st.get("pattern", {})
            if "String" not in pat:
                raise VocabularyError(f"unsupported decoder step Replace with a regex pattern: {pat!r}")
            old, new = pat["String"], st.get("content", "")
            if fused and len(old) > 1:
                raise _ambiguous(f"decoder replaces {old!r} across token boundaries", normal, id_to_tok)
            if old == SPIECE_SPACE:
                family = "sentencepiece"
            funcs.append(lambda t, o=old, n=new: t.replace(o, n) if isinstance(t, str) else t)
        elif kind == "Fuse":
            fused = True
        elif kind == "Strip":
            content, start, stop = st.get("content", " "), int(st.get("start", 0)), int(st.get("stop", 0))
            if fused:
                if stop or start > 1 or content != " ":
                    raise _ambiguous(f"decoder strips {content!r} from the whole text", normal, id_to_tok)
                strips = strips or start == 1
            else:
                def _strip(t, c=content, a=start, z=stop):
                    if not isinstance(t, str):
                        return t
                    i, j = 0, len(t)
                    while i < a and i < j and t[i] == c:
                        i += 1
                    while len(t) - j < z and j > i and t[j - 1] == c:
                        j -= 1
                    return t[i:j]
                funcs.append(_strip)
        elif kind == "Metaspace":
            family = "sentencepiece"
            rep = st.get("replacement", SPIECE_SPACE)
            scheme = st.get("prepend_scheme")
            strips = strips or (scheme != "never" if scheme is not None else bool(st.get("add_prefix_space", True)))
            funcs.append(lambda t, r=rep: t.replace(r, " ") if isinstance(t, str) else t)
        elif kind in ("WordPiece", "BPEDecoder", "CTC"):
            raise _ambiguous(f"the {kind} decoder inserts or removes text depending on neighbouring tokens",
                             normal, id_to_tok)
        else:
            raise VocabularyError(f"unsupported tokenizer decoder step {kind!r}")

    def decode(token: str) -> bytes:
        t: str | bytes = token
        for f in funcs:
            t = f(t)
        return t if isinstance(t, bytes) else t.encode("utf-8")

    return decode, family, strips


def _looks_byte_level(tokens: Iterable[str]) -> bool:
    toks = list(tokens)
    if not toks:
        return False
    marks = sum(1 for t in toks if "\u0120" in t or "\u010a" in t)  # 'Ġ' (space), 'Ċ' (newline)
    inside = sum(1 for t in toks if all(c in UNICODE_TO_BYTE for c in t))
    return marks > 0 and inside >= 0.99 * len(toks)


def _plain_probe(tokenizer: Any, id_to_tok: dict[int, str], specials: set[int],
                 added: dict[int, tuple[str, bool]]) -> list[bytes | None]:
    """Last resort for slow tokenizers of no known family: accept tokens whose text is the same
    alone and after other tokens (checked with `convert_tokens_to_string`). Any failure raises."""
    cts = getattr(tokenizer, "convert_tokens_to_string", None)
    if cts is None:
        raise _ambiguous("unknown tokenizer family and no convert_tokens_to_string() to check it",
                         [i for i in id_to_tok if i not in specials], id_to_tok)
    normal = sorted(i for i in id_to_tok if i not in specials and i not in added)
    probes = [id_to_tok[i] for i in normal[:64] if len(id_to_tok[i]) > 0][:2] or ["a"]
    probe_text = [cts([p]) for p in probes]
    top = max(id_to_tok) + 1
    out: list[bytes | None] = [None] * top
    bad: list[int] = []
    for i in normal:
        t = id_to_tok[i]
        text = cts([t])
        if text != t or any(cts([p, t]) != pt + text for p, pt in zip(probes, probe_text, strict=True)):
            bad.append(i)
            continue
        out[i] = text.encode("utf-8")
    if bad:
        raise _ambiguous("token text changes with its neighbours (not a plain vocabulary)", bad, id_to_tok)
    return out


def recover_hf(tokenizer: Any) -> Recovered:
    """Exact bytes for every id of a Hugging Face tokenizer (fast or slow), or VocabularyError."""
    backend = _backend(tokenizer)
    added = _added_tokens(tokenizer, backend)
    specials: set[int] = {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or ())}
    specials |= {i for i, (_, sp) in added.items() if sp}
    id_to_tok = _id_to_token(tokenizer, list(added) + sorted(specials))
    top = max(id_to_tok) + 1
    eos: set[int] = set()
    eid = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eid, int):
        eos.add(eid)
    elif isinstance(eid, (list, tuple)):
        eos |= {int(x) for x in eid}
    name = str(getattr(tokenizer, "name_or_path", "") or "")

    sp_model = getattr(tokenizer, "sp_model", None)
    byte_decoder = getattr(tokenizer, "byte_decoder", None)
    strips = False
    token_bytes: list[bytes | None] = [None] * top

    if backend is not None:
        decode, family, strips = _interpret_decoder(_decoder_spec(backend), id_to_tok, specials)
        for i, t in id_to_tok.items():
            if i not in specials:
                token_bytes[i] = decode(t)
    elif sp_model is not None:
        family = "sentencepiece"
        n_sp = sp_model.get_piece_size() if hasattr(sp_model, "get_piece_size") else 0
        for i in range(min(n_sp, top)):
            if any(getattr(sp_model, f, lambda _i: False)(i) for f in ("IsControl", "IsUnknown", "IsUnused")):
                specials.add(i)
        is_byte = getattr(sp_model, "IsByte", None)
        for i, t in id_to_tok.items():
            if i in specials:
                continue
            if i in added:
                token_bytes[i] = added[i][0].encode("utf-8")
            elif is_byte is not None and i < n_sp:
                token_bytes[i] = (bytes((byte_piece_value(t),)) if is_byte(i)
                                  else t.replace(SPIECE_SPACE, " ").encode("utf-8"))
            else:
                token_bytes[i] = sentencepiece_to_bytes(t)
        strips = bool(getattr(tokenizer, "add_prefix_space", True) is not False)
    elif isinstance(byte_decoder, dict) or _looks_byte_level(
            t for i, t in id_to_tok.items() if i not in specials and i not in added):
        family = "byte_level"
        table = {str(k): int(v) for k, v in byte_decoder.items()} if isinstance(byte_decoder, dict) else None
        bad = []
        for i, t in id_to_tok.items():
            if i in specials:
                continue
            if i in added:
                token_bytes[i] = added[i][0].encode("utf-8")
                continue
            b = byte_level_to_bytes_strict(t, table)
            if b is None:
                bad.append(i)
            token_bytes[i] = b
        if bad:
            raise _ambiguous("byte-level BPE tokens with characters outside the byte table", bad, id_to_tok)
    elif any(SPIECE_SPACE in t for i, t in id_to_tok.items() if i not in specials):
        family = "sentencepiece"
        for i, t in id_to_tok.items():
            if i not in specials:
                token_bytes[i] = added[i][0].encode("utf-8") if i in added else sentencepiece_to_bytes(t)
        strips = bool(getattr(tokenizer, "add_prefix_space", True) is not False)
    elif (hasattr(tokenizer, "wordpiece_tokenizer")
          or sum(t.startswith("##") for t in id_to_tok.values()) > 0.05 * len(id_to_tok)):
        raise _ambiguous("WordPiece decoding inserts spaces between tokens and drops '##'",
                         [i for i in id_to_tok if i not in specials], id_to_tok)
    else:
        family = "plain"
        token_bytes = _plain_probe(tokenizer, id_to_tok, specials, added)
        for i in added:
            if i not in specials:
                token_bytes[i] = added[i][0].encode("utf-8")

    specials = {i for i in specials if 0 <= i < top}
    return Recovered(token_bytes, specials, family, strips, eos, name)
