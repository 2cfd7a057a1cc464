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
