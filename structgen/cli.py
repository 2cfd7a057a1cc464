"""The `structgen` command: generate, compile, check.

    structgen generate "prompt" --schema FILE | --regex R | --grammar FILE.lark [--model DIR] ...
    structgen compile --schema FILE | --regex R | --grammar FILE [--model DIR | --byte-vocab]
    structgen check --schema FILE | --regex R | --grammar FILE OUTPUT

Exit codes: 0 success (complete output / output fits), 1 the output does not fit (check),
2 bad input (missing file, invalid JSON or schema, unsupported keyword, bad arguments),
3 generation truncated by --max-new-tokens, 4 generation failed. Errors are one line on stderr;
set STRUCTGEN_DEBUG=1 for a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Sequence

EXIT_OK, EXIT_NO_FIT, EXIT_BAD_INPUT, EXIT_TRUNCATED, EXIT_FAILED = 0, 1, 2, 3, 4


class CliError(Exception):
    """Bad input: reported as one line, exit code 2."""


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------

def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise CliError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{what} path is a directory, not a file: {path}") from None
    except UnicodeDecodeError as e:
        raise CliError(f"{what} file {path} is not UTF-8 text: {e.reason} at byte {e.start}") from None
    except OSError as e:
        raise CliError(f"cannot read {what} file {path}: {e.strerror or e}") from None


def load_schema(path: str) -> Any:
    """A JSON Schema from a file, checked against its metaschema."""
    text = _read_text(path, "schema")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"schema file {path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(schema, (dict, bool)):
        raise CliError(f"schema file {path} must hold a JSON object (or true/false), got {type(schema).__name__}")
    try:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema) if isinstance(schema, dict) else jsonschema.Draft202012Validator
        cls.check_schema(schema)
    except ImportError:  # pragma: no cover
        pass
    except Exception as e:  # jsonschema.SchemaError
        where = "/".join(str(p) for p in getattr(e, "path", []) or [])
        msg = getattr(e, "message", str(e))
        raise CliError(f"invalid JSON Schema in {path}: {msg}" + (f" (at #/{where})" if where else "")) from None
    return schema


def _constraint_args(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if getattr(args, "schema", None):
        spec["schema"] = load_schema(args.schema)
    if getattr(args, "regex", None) is not None:
        spec["regex"] = args.regex
    if getattr(args, "grammar", None):
        spec["grammar"] = _read_text(args.grammar, "grammar")
    return spec


def _byte_vocab() -> Any:
    """256 single-byte tokens + EOS: compiles fast and checks any text byte by byte."""
    from structgen.vocab import Vocabulary

    return Vocabulary([bytes([i]) for i in range(256)] + [None], eos_token_ids=[256], name="bytes")


def _constraint_options(args: argparse.Namespace, spec: dict[str, Any]) -> dict[str, Any]:
    """--property-order applies to schemas, --lexer to Lark grammars."""
    opts: dict[str, Any] = {}
    if "schema" in spec and getattr(args, "property_order", None):
        opts["property_order"] = args.property_order
    if "grammar" in spec and getattr(args, "lexer", None):
        opts["lexer"] = args.lexer
    return opts


def _compile(spec: dict[str, Any], vocab: Any, options: dict[str, Any] | None = None,
             args: argparse.Namespace | None = None) -> Any:
    from structgen.integrations.generate import compile_constraint

    if args is not None:
        options = {**(options or {}), **_constraint_options(args, spec)}
    return compile_constraint(vocab, options=options or None, **spec)


def _add_constraint(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--schema", metavar="FILE", help="JSON Schema file")
    g.add_argument("--regex", metavar="R", help="regular expression (Python syntax), matched in full")
    g.add_argument("--grammar", metavar="FILE", help="Lark grammar file (start rule: start)")
    p.add_argument("--property-order", choices=["schema", "any", "flexible"], default=None,
                   help="JSON object keys: in schema order (default), any order (exact, few keys), or "
                        "flexible (any order, required keys tracked)")
    p.add_argument("--lexer", choices=["dynamic", "dynamic_complete"], default=None,
                   help="Lark terminals: longest match (dynamic, Lark's default) or any length")


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    spec = _constraint_args(args)  # bad input fails before any model loading
    if args.max_new_tokens < 1:
        raise CliError("--max-new-tokens must be at least 1")
    if args.temperature < 0:
        raise CliError("--temperature must be >= 0")
    if not 0 < args.top_p <= 1:
        raise CliError("--top-p must be in (0, 1]")
    import warnings

    warnings.filterwarnings("ignore")
    from structgen.integrations.generate import generate
    from structgen.integrations.models import load_model

    model, tok = load_model(args.model, quiet=args.quiet)
    stream_to = None
    if not args.no_stream:
        stream_to = sys.stdout if sys.stdout.isatty() else sys.stderr

    def on_text(_row: int, text: str) -> None:
        stream_to.write(text)
        stream_to.flush()

    opts = {"whitespace": "compact"} if args.compact and "schema" in spec else {}
    opts = {**opts, **_constraint_options(args, spec)} or None
    res = generate(model, tok, args.prompt, max_new_tokens=args.max_new_tokens, compile_options=opts,
                   temperature=args.temperature, top_p=args.top_p, seed=args.seed, trigger=args.trigger,
                   jump_forward=not args.no_jump_forward, chat=not args.raw, system=args.system,
                   stream=on_text if stream_to is not None else None, **spec)
    if stream_to is not None:
        stream_to.write("\n")
        stream_to.flush()
    if args.json_result:
        out = {"status": res.status, "text": res.text, "json": res.json, "n_tokens": res.n_tokens,
               "n_model_steps": res.n_model_steps, "n_forced_tokens": res.n_forced_tokens,
               "prefix": res.prefix, "error": res.error, "elapsed_s": round(res.elapsed_s, 3)}
        print(json.dumps(out, ensure_ascii=False))
    elif stream_to is not sys.stdout:
        print(res.text)
    if not args.quiet:
        rate = res.n_tokens / res.elapsed_s if res.elapsed_s > 0 else 0.0
        print(f"structgen: {res.status}: {res.n_tokens} tokens ({res.n_forced_tokens} jump-forward), "
              f"{res.n_model_steps} model steps, {res.elapsed_s:.2f}s, {rate:.1f} tok/s"
              + (f"; {res.error}" if res.error else ""), file=sys.stderr)
    if res.status == "complete":
        return EXIT_OK
    if res.status == "truncated":
        if args.quiet:
            print(f"structgen: truncated: {res.error}", file=sys.stderr)
        return EXIT_TRUNCATED
    if args.quiet:
        print(f"structgen: error: {res.error}", file=sys.stderr)
    return EXIT_FAILED


def cmd_sample(args: argparse.Namespace) -> int:
    """Grammar-aligned sampling: distinct outputs with counts and model probabilities."""
    spec = _constraint_args(args)
    if args.n < 1:
        raise CliError("-n must be at least 1")
    if args.max_new_tokens < 1:
        raise CliError("--max-new-tokens must be at least 1")
    import math
    import warnings
    from collections import Counter

    warnings.filterwarnings("ignore")
    from structgen.integrations.generate import encode_prompt
    from structgen.integrations.models import load_model
    from structgen.sampling import GrammarAlignedSampler
    from structgen.vocab import Vocabulary

    model, tok = load_model(args.model, quiet=args.quiet)
    vocab = Vocabulary.from_hf(tok, vocab_size=getattr(model.config, "vocab_size", None))
    compiled = _compile(spec, vocab, args=args)
    prompt_ids = encode_prompt(tok, args.prompt, chat=not args.raw)
    sampler = GrammarAlignedSampler(model, vocab, compiled, policy=args.policy,
                                    max_new_tokens=args.max_new_tokens, seed=args.seed)
    samples = sampler.sample(prompt_ids, n=args.n)
    counts = Counter(s.text for s in samples)
    seqs: dict[str, dict[tuple, float]] = {}
    for smp in samples:  # one text may come from several tokenizations: sum their LM mass
        seqs.setdefault(smp.text, {})[smp.token_ids] = smp.logp
    print(f"{'count':>6} {'freq':>7} {'P_LM(text)':>11}  output   (P_LM summed over the tokenizations seen)")
    for text, k in counts.most_common():
        p_text = sum(math.exp(lp) for lp in seqs[text].values())
        print(f"{k:>6} {k / len(samples):>7.3f} {p_text:>11.3g}  {text!r}")
    st = sampler.stats
    if not args.quiet:
        print(f"structgen: {len(samples)} samples ({args.policy}), {st['attempts']} attempts, "
              f"{st['model_calls']} model calls", file=sys.stderr)
    return EXIT_OK if len(samples) == args.n else EXIT_FAILED


def cmd_compile(args: argparse.Namespace) -> int:
    spec = _constraint_args(args)
    t0 = time.perf_counter()
    if args.byte_vocab:
        vocab = _byte_vocab()
    else:
        import warnings

        warnings.filterwarnings("ignore")
        from structgen.integrations.models import load_tokenizer
        from structgen.vocab import Vocabulary

        tok = load_tokenizer(args.model, quiet=True)
        vocab = Vocabulary.from_hf(tok)
    t_vocab = time.perf_counter() - t0
    t1 = time.perf_counter()
    compiled = _compile(spec, vocab, {"lenient": True} if "schema" in spec and not args.strict else None, args)
    t_compile = time.perf_counter() - t1
    info: dict[str, Any] = {
        "kind": next(iter(spec)),
        "vocab": getattr(vocab, "name", "") or "custom",
        "vocab_size": vocab.size,
        "vocab_load_s": round(t_vocab, 3),
        "compile_s": round(t_compile, 3),
    }
    for attr in ("n_states", "n_rules", "n_terminals", "n_nodes"):
        v = getattr(compiled, attr, None)
        if isinstance(v, (int, float)):
            info[attr] = v
    warns = [str(w) for w in (getattr(compiled, "warnings", []) or [])]
    unsupported = [str(u) for u in (getattr(compiled, "unsupported", []) or [])]
    if not unsupported:  # lenient schema compiles list what they could not enforce as warnings
        unsupported = [w for w in warns if "unsupported" in w.lower() or "keyword" in w.lower()]
        warns = [w for w in warns if w not in unsupported]
    info["warnings"] = warns
    info["unsupported"] = unsupported
    if args.json:
        print(json.dumps(info))
        return EXIT_OK
    print(f"compiled {info['kind']} for vocabulary {info['vocab']} ({vocab.size} tokens) in {t_compile:.3f}s "
          f"(vocabulary loaded in {t_vocab:.2f}s)")
    for k in ("n_states", "n_rules", "n_terminals", "n_nodes"):
        if k in info:
            print(f"  {k.replace('n_', '')}: {info[k]}")
    print(f"  warnings: {len(warns)}" + "".join(f"\n    - {w}" for w in info["warnings"]))
    print(f"  unsupported keywords: {len(unsupported)}" + "".join(f"\n    - {u}" for u in info["unsupported"]))
    return EXIT_OK


def _read_output(arg: str) -> str:
    if arg == "-":
        return sys.stdin.read()
    if arg.startswith("@"):
        return _read_text(arg[1:], "output")
    return arg


def cmd_check(args: argparse.Namespace) -> int:
    spec = _constraint_args(args)
    text = _read_output(args.output)
    if "schema" in spec:
        ok, why = _check_schema(spec["schema"], text)
    else:
        compiled = _compile(spec, _byte_vocab(), args=args)
        m = compiled.matcher()
        ok = m.accept_string(text.encode("utf-8")) and m.is_accepting()
        why = "" if ok else f"the text does not match the {'regex' if 'regex' in spec else 'grammar'}"
    if ok:
        print("fits")
        return EXIT_OK
    print(f"does not fit: {why}")
    return EXIT_NO_FIT


def _check_schema(schema: Any, text: str) -> tuple[bool, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return False, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
    import jsonschema

    cls = jsonschema.validators.validator_for(schema) if isinstance(schema, dict) else jsonschema.Draft202012Validator
    err = jsonschema.exceptions.best_match(cls(schema).iter_errors(value))
    if err is None:
        return True, ""
    where = "/".join(str(p) for p in err.absolute_path)
    return False, f"{err.message} (at #/{where})"


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="structgen", description="Constrained generation: outputs that fit a "
                                "JSON Schema, a regex or a Lark grammar, by construction.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("generate", help="generate constrained output with a local model",
                       description="Generate output that fits the constraint, streaming tokens as they come. "
                       "Without --model the embedded SmolLM2-135M-Instruct is used (converted once into the cache). "
                       "Exit 0 when complete, 3 when truncated, 4 when generation failed, 2 on bad input.")
    g.add_argument("prompt", help="the user prompt (wrapped in the model's chat template unless --raw)")
    _add_constraint(g, required=False)
    g.add_argument("--model", metavar="DIR", default=None, help="local Hugging Face model directory "
                   "(default: the embedded SmolLM2-135M-Instruct)")
    g.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="token budget (default 256)")
    g.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    g.add_argument("--top-p", type=float, default=1.0, metavar="P", help="nucleus sampling mass (default 1)")
    g.add_argument("--seed", type=int, default=None, metavar="S", help="sampling seed")
    g.add_argument("--trigger", default=None, metavar="TEXT",
                   help="generate freely until TEXT appears, then apply the constraint")
    g.add_argument("--system", default=None, metavar="TEXT", help="system message")
    g.add_argument("--raw", action="store_true", help="use the prompt as raw text, no chat template")
    g.add_argument("--compact", action="store_true", help="JSON on one line without spaces "
                   "(default layout: json.dumps(indent=2))")
    g.add_argument("--no-jump-forward", action="store_true", help="one model step per token, even for forced text")
    g.add_argument("--no-stream", action="store_true", help="print only the final output")
    g.add_argument("--json-result", action="store_true", help="print the result (status, text, counts) as JSON")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress or status lines")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("compile", help="compile a constraint and report time, size and warnings",
                       description="Compile a constraint for a model's vocabulary; print the compile time, the "
                       "automaton size, warnings and unsupported keywords.")
    _add_constraint(c, required=True)
    c.add_argument("--model", metavar="DIR", default=None,
                   help="tokenizer of this local model directory (default: the embedded model's)")
    c.add_argument("--byte-vocab", action="store_true", help="compile for a 256-token byte vocabulary instead")
    c.add_argument("--strict", action="store_true",
                   help="fail on unsupported schema keywords instead of listing them")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_compile)

    k = sub.add_parser("check", help="does an output fit a constraint",
                       description="Check OUTPUT against the constraint: exit 0 when it fits, 1 when it does not.")
    _add_constraint(k, required=True)
    k.add_argument("output", metavar="OUTPUT", help="the text to check; '-' reads stdin, '@FILE' reads a file")
    k.set_defaults(func=cmd_check)

    sm = sub.add_parser("sample", help="grammar-aligned sampling (ASAp / CARS / GCD) with a local model",
                        description="Draw -n samples that fit the constraint and print the distinct outputs with "
                        "counts and model probabilities. --policy asap corrects the distortion of plain masking "
                        "(gcd); cars returns exact samples by adaptive rejection.")
    sm.add_argument("prompt", help="the user prompt (wrapped in the model's chat template unless --raw)")
    _add_constraint(sm, required=True)
    sm.add_argument("--policy", choices=["asap", "cars", "gcd"], default="asap")
    sm.add_argument("-n", type=int, default=20, help="number of samples (default 20)")
    sm.add_argument("--model", metavar="DIR", default=None, help="local Hugging Face model directory "
                    "(default: the embedded SmolLM2-135M-Instruct)")
    sm.add_argument("--max-new-tokens", type=int, default=32, metavar="N", help="token cap per sample (default 32)")
    sm.add_argument("--seed", type=int, default=0, metavar="S")
    sm.add_argument("--raw", action="store_true", help="use the prompt as raw text, no chat template")
    sm.add_argument("-q", "--quiet", action="store_true")
    sm.set_defaults(func=cmd_sample)

    sub.add_parser("complete", add_help=False,
                   help="monitor-guided code completion at FILE --line L --col C (see `structgen complete --help`)")
    sub.add_parser("lsp", add_help=False,
                   help="language server over stdio: inline completion guided by the monitors")
    return p


def _version() -> str:
    try:
        from structgen import __version__

        return __version__
    except Exception:  # pragma: no cover
        return "?"


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return msg[0] if msg else type(e).__name__


def _delegate(module: str, argv: Sequence[str]) -> int:
    """`structgen complete` / `structgen lsp` live with the monitors; they parse their own options."""
    import importlib

    return int(importlib.import_module(module).main(list(argv)))


_DELEGATED = {"complete": "structgen.monitors.complete", "lsp": "structgen.monitors.lsp"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return _delegate(_DELEGATED[argv[0]], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    debug = bool(os.environ.get("STRUCTGEN_DEBUG"))
    from structgen.errors import StructgenError

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("structgen: interrupted", file=sys.stderr)
        return 130
    except (CliError, StructgenError) as e:
        if debug:
            raise
        print(f"structgen: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # never a traceback for the user
        if debug:
            raise
        print(f"structgen: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
