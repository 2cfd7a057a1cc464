"""The benchmark report code (report.py, run_all.py, docsection.py) on tiny synthetic results:
no engine runs, no benchmark data (a four-file MaskBench index is written per test)."""
from __future__ import annotations

import json
import os
import re
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks import maskbench, report, run_all  # noqa: E402
from benchmarks.docsection import remove_section, update_section  # noqa: E402

FILES = ["A/a1.json", "A/a2.json", "B/b1.json", "B/b2.json"]


def _rec(engine: str, case: str, status: str = "ok", *, valid_ok: bool = True, invalid_ok: bool = True,
         compile_ms: float = 2.0, masks=(5.0, 7.0, 40.0)) -> dict:
    group, name = case.split("/")
    r = {"bench": "maskbench", "engine": engine, "case": case, "group": group, "source_name": name,
         "status": status}
    if status == "ok":
        r.update(compile_ms=compile_ms, mask_us=list(masks),
                 tests=[{"valid": True, "accepted": valid_ok, "n_tokens": 2},
                        {"valid": False, "accepted": not invalid_ok, "n_tokens": 1}])
    else:
        r.update(error="no result within 10 s", wall_s=10.0)
    return r


def _write(path, records, meta=None):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    if meta is not None:
        (path.parent / (path.stem + ".meta.json")).write_text(json.dumps(meta))


def _meta(engines: dict, *, limit=None, engine_timeouts="", timeout=30.0, load="1.00 1.00 1.00") -> dict:
    return {"bench": "maskbench",
            "machine": {"cpu": "TestCPU", "cores": 2, "memory": "1 GiB", "os": "Linux", "python": "3.11",
                        "loadavg_at_start": load},
            "packages": {"llguidance": "9.9", "outlines-core": "0.0.1"},
            "options": {"engines": ",".join(engines), "limit": limit, "seed": 0, "groups": "", "files": "",
                        "timeout": timeout, "engine_timeouts": engine_timeouts, "jobs": 1, "mem_mb": 8192,
                        "tokenizer": "llama3", "out": "ignored.jsonl", "data": "/nowhere", "report_only": False},
            "selection": {"files": limit or len(FILES), "limit": limit, "seed": 0, "timeout_s": timeout,
                          "engine_timeouts": engine_timeouts},
            "engines": engines}


@pytest.fixture
def data(tmp_path):
    """A four-file MaskBench index with llguidance-style expected results (b2 expected to fail)."""
    d = tmp_path / "data"
    d.mkdir()
    rows = [{"file": f, "group": f.split("/")[0], "source_name": f.split("/")[1], "key": f} for f in FILES]
    (d / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "llguidance_expected_maskbench.dev.json").write_text(json.dumps(
        {"a1.json": [], "a2.json": [], "b1.json": [], "b2.json": ["json_error"]}))
    return d


@pytest.fixture
def runs(tmp_path):
    """Two results files as the docs use them: structgen in one run, three peers in another
    (xgrammar timed out on one file; outlines, with its own 10 s limit, still running: 2 of 4 files)."""
    sg = tmp_path / "sg.jsonl"
    _write(sg, [_rec("structgen:property_order=flexible", f) for f in FILES[:3]]
           + [_rec("structgen:property_order=flexible", "B/b2.json", valid_ok=False)],
           _meta({"structgen:property_order=flexible": {
               "engine": "structgen", "version": "0.1.0", "timeout_s": 30.0,
               "settings": {"whitespace": None, "property_order": "flexible", "lenient": False}}}))
    peers = tmp_path / "peers.jsonl"
    _write(peers, [_rec("llguidance", f) for f in FILES[:3]] + [_rec("llguidance", "B/b2.json", "compile_error")]
           + [_rec("xgrammar", f) for f in FILES[:3]] + [_rec("xgrammar", "B/b2.json", "timeout")]
           + [_rec("outlines", f, compile_ms=900.0) for f in FILES[:2]],
           _meta({"llguidance": {"engine": "llguidance", "version": "9.9", "language": "llguidance: compile = x",
                                 "settings": {"whitespace_flexible": True}},
                  "xgrammar": {"engine": "xgrammar", "version": "0.2.8",
                               "settings": {"any_whitespace": True, "any_order": False}}},
                 engine_timeouts="outlines=10", load="3.00 3.00 3.00"))
    return sg, peers


def _section(doc_text: str, name: str) -> str:
    m = re.search(rf"<!-- section:{name} -->(.*?)<!-- /section:{name} -->", doc_text, re.S)
    assert m, f"no section {name}"
    return m.group(1)


def _row(text: str, engine: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {engine} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_maskbench_section_from_several_files(tmp_path, data, runs):
    sg, peers = runs
    engines = "structgen:property_order=flexible,llguidance,xgrammar,outlines"
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# B\n\nintro\n")
    assert report.main(["--maskbench", f"{sg},{peers}", "--engines", engines, "--data", str(data),
                        "--doc", str(doc)]) == 0
    text = _section(doc.read_text(), "maskbench-side-by-side")
    # per-engine rows in --engines order; columns: engine, files, compiled, passed, valid rejected,
    # invalid accepted, timeouts, oom / crash, time limit, compile p50 ...
    summary = text.split("Passed files per group")[0]
    order = [ln.split("|")[1].strip() for ln in summary.splitlines() if ln.startswith("| ")][2:]
    assert order == engines.split(",")
    assert _row(text, "structgen:property_order=flexible")[1:9] == ["4", "4", "3", "1 / 4", "0 / 4", "0", "0 / 0",
                                                                    "30 s"]
    assert _row(text, "llguidance")[1:4] == ["4", "3", "3"]
    # the file xgrammar timed out on stays in the comparison, as not passed, and the timeout shows
    assert _row(text, "xgrammar")[1:9] == ["4", "3", "3", "0 / 3", "0 / 3", "1", "0 / 0", "30 s"]
    # outlines: its own limit, and the files it covers so far
    assert _row(text, "outlines")[1:4] == ["2 of 4", "2", "2"] and _row(text, "outlines")[8] == "10 s"
    assert "**`outlines` covers 2 of the 4 files**" in text
    assert "Time limits differ between engines" in text and "`outlines`: 10 s" in text
    # per group: B not run by outlines, xgrammar's timeout counted in B
    assert "| B | 2 | 1 (2 c, 1 vr, 0 ia) | 1 (1 c, 0 vr, 0 ia) | 1 (1 c, 0 vr, 0 ia, 1 to) | – (not run) |" in text
    # expected results: 3 of the 4 files expected to pass; llguidance agrees on all 4
    assert "give **3 passes on these 4 files**" in text and "agrees with them on 4 of its 4 files" in text
    # settings per engine: whitespace, key order, limit; the outlines entry falls back to its adapter
    assert "`property_order=flexible`" in text and "keys in schema order (`any_order=False`)" in text
    assert re.search(r"- `outlines` 0\.0\.1: whitespace: whitespace pattern .*time limit 10 s", text)
    # one reproduce command per results file (with --out and the per-engine limit), then the report
    cmds = re.findall(r"Reproduce: `(python benchmarks/maskbench\.py[^`]*)`", text)
    assert len(cmds) == 2
    assert cmds[0].startswith("python benchmarks/maskbench.py --engines structgen:property_order=flexible ")
    assert cmds[0].endswith(f"--out {sg}") and "--limit" not in cmds[0]
    assert "--engines llguidance,xgrammar,outlines --engine-timeouts outlines=10" in cmds[1]
    assert f"`python benchmarks/report.py --maskbench {sg},{peers} --engines {engines}`" in text
    assert "load average at start 3.00 3.00 3.00" in text  # each run's machine line
    assert "(Counts are not compared with outlines, which ran fewer files.)" in text
    if "matplotlib is not installed" not in text:
        assert (tmp_path / "bench_latency_cdf.png").exists() and (tmp_path / "bench_maskbench_coverage.png").exists()


def test_engines_filter_keeps_every_file(tmp_path, data, runs):
    """--engines picks and orders engines; it never narrows the files to those all engines share."""
    sg, peers = runs
    doc = tmp_path / "benchmarks.md"
    assert report.main(["--maskbench", str(peers), "--maskbench", str(sg), "--engines", "outlines,llguidance",
                        "--data", str(data), "--doc", str(doc)]) == 0
    text = _section(doc.read_text(), "maskbench-side-by-side")
    assert _row(text, "llguidance")[1:4] == ["4", "3", "3"]
    assert "| xgrammar |" not in text and "| structgen" not in text
    assert text.index("| outlines |") < text.index("| llguidance |")
    # an engine asked for but absent is named, not silently dropped
    assert report.main(["--maskbench", str(peers), "--engines", "llguidance,nosuch", "--data", str(data),
                        "--doc", str(doc)]) == 0
    assert "no results for `nosuch`" in doc.read_text()


def test_selection_comes_from_the_runs(tmp_path, data):
    """The files are the seeded sample the runs recorded; records outside it are left out."""
    out = tmp_path / "r.jsonl"
    _write(out, [_rec("llguidance", f) for f in FILES], _meta({}, limit=2))
    inp = report.MaskbenchInputs([str(out)], None, str(data))
    want = [r["file"] for r in maskbench.select_files(maskbench.load_index(str(data)), limit=2, seed=0)]
    assert inp.cases == want and [r["case"] for r in inp.by_engine["llguidance"]] == want
    assert sum(inp.group_sizes.values()) == 2
    # runs over different selections need an explicit choice
    other = tmp_path / "o.jsonl"
    _write(other, [_rec("xgrammar", f) for f in FILES], _meta({}, limit=3))
    with pytest.raises(SystemExit):
        report.MaskbenchInputs([str(out), str(other)], None, str(data))
    inp = report.MaskbenchInputs([str(out), str(other)], None, str(data), {"limit": 4})
    assert len(inp.cases) == 4 and len(inp.by_engine["xgrammar"]) == 4 and len(inp.by_engine["llguidance"]) == 4
    # without the data index: the files any engine ran
    inp = report.MaskbenchInputs([str(out)], None, str(tmp_path / "nodata"))
    assert inp.cases == sorted(FILES) and any("index not found" in w for w in inp.warnings)


def test_sections_survive_each_other(tmp_path, data, runs):
    """Writing one section never touches another; a missing results file leaves its section alone."""
    sg, peers = runs
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# B\n\nintro\n")
    for name in ("maskbench-side-by-side", "jsts-side-by-side", "core"):
        update_section(name, f"## {name}\n\nold {name} text", path=str(doc))
    assert report.main(["--maskbench", str(sg), "--data", str(data), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "old jsts-side-by-side text" in text and "old core text" in text and "intro" in text
    assert "old maskbench-side-by-side text" not in text
    # --jsts naming a missing file: both sections stay as they are, and the run says nothing was written
    before = doc.read_text()
    assert report.main(["--jsts", str(tmp_path / "none.jsonl"), "--doc", str(doc)]) == 1
    assert report.main(["--maskbench", str(tmp_path / "none.jsonl"), "--doc", str(doc)]) == 1
    assert doc.read_text() == before
    assert text.count("<!-- section:maskbench-side-by-side -->") == 1


def test_whole_split_run_gets_its_own_section(tmp_path, data, runs):
    """`--section` writes a run over the whole split beside the sample's section, with its own
    title, command and plot files."""
    sg, _ = runs
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# B\n")
    update_section("maskbench-side-by-side", "## sample\n\nold sample text", path=str(doc))
    assert report.main(["--maskbench", str(sg), "--data", str(data), "--doc", str(doc),
                        "--section", "maskbench-dev-split"]) == 0
    text = doc.read_text()
    assert "old sample text" in text
    body = _section(text, "maskbench-dev-split")
    assert "## MaskBench, the whole development split" in body and "Every file of the development split" in body
    assert "--section maskbench-dev-split" in body
    if "matplotlib" not in body:
        assert "bench_latency_cdf_maskbench-dev-split.png" in body
        assert (tmp_path / "bench_latency_cdf_maskbench-dev-split.png").exists()


def test_jsts_section_names_its_files(tmp_path):
    out = tmp_path / "jsts.jsonl"
    rec = {"bench": "jsts", "engine": "llguidance", "case": "draft2020-12/type.json#0", "draft": "draft2020-12",
           "category": "type", "description": "d", "status": "ok", "compile_ms": 1.0,
           "tests": [{"valid": True, "accepted": True}], "valid_flags": [True], "test_descriptions": ["t"]}
    out.write_text(json.dumps(rec) + "\n")
    (tmp_path / "jsts.meta.json").write_text(json.dumps(
        {"bench": "jsts", "options": {"engines": "llguidance", "drafts": "draft2020-12", "timeout": 20.0,
                                      "out": "x"}, "engines": {"llguidance": {"version": "9.9"}}}))
    doc = tmp_path / "benchmarks.md"
    update_section("maskbench-side-by-side", "mb stays", path=str(doc))
    assert report.main(["--jsts", str(out), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "mb stays" in text
    body = _section(text, "jsts-side-by-side")
    assert f"Written by `python benchmarks/report.py --jsts {out}`" in body
    assert re.search(rf"Reproduce: `python benchmarks/jsts\.py --engines llguidance .*--out {out}`", body)


def test_remove_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# B\n\nintro\n")
    for name in ("one", "two", "three"):
        update_section(name, f"{name} body", path=str(doc))
    assert remove_section("two", path=str(doc)) and not remove_section("two", path=str(doc))
    text = doc.read_text()
    assert "two body" not in text and "one body" in text and "three body" in text and text.endswith("-->\n")


def test_engine_timeouts_recorded_in_meta(tmp_path):
    from benchmarks.harness.results import engine_limit, run_engines

    assert engine_limit("outlines", {"outlines": 10.0}, 30.0) == 10.0
    assert engine_limit("xgrammar:any_order=true", {"xgrammar": 60.0}, 30.0) == 60.0
    assert engine_limit("xgrammar:any_order=true", {"xgrammar:any_order=true": 5.0, "xgrammar": 60.0}, 30) == 5.0
    assert engine_limit("llguidance", {"outlines": 10.0}, 30.0) == 30.0
    out, meta = str(tmp_path / "r.jsonl"), str(tmp_path / "r.meta.json")
    cases = [{"id": "c", "schema": {}, "tests": []}]
    run_engines(["selftest"], cases, out, meta, bench="t", timeout_s=30, mem_mb=512, jobs=1, vocab="bytes",
                engine_timeouts={"selftest": 7.0})
    info = json.load(open(meta))["engines"]["selftest"]
    assert info["timeout_s"] == 7.0 and info["engine"] == "selftest"
    # resuming (nothing left to run) keeps the engine's info and records the limit again
    run_engines(["selftest"], cases, out, meta, bench="t", timeout_s=30, mem_mb=512, jobs=1, vocab="bytes")
    info = json.load(open(meta))["engines"]["selftest"]
    assert info["timeout_s"] == 30 and info["engine"] == "selftest"


# ----------------------------------------------------------------------------- run_all

DOC = """# B

<!-- section:maskbench-side-by-side -->
Written by `python benchmarks/report.py --maskbench results/x.jsonl,results/y.jsonl --engines s,l` from ...
- `results/x.jsonl` (s): machine
  - Reproduce: `python benchmarks/maskbench.py --engines s --limit 800 --seed 0 --out results/x.jsonl`
- `results/y.jsonl` (l): machine
  - Reproduce: `python benchmarks/maskbench.py --engines l --engine-timeouts l=10 --limit 800 --out results/y.jsonl`
- Tables and plots: `python benchmarks/report.py --maskbench results/x.jsonl,results/y.jsonl --engines s,l`
<!-- /section:maskbench-side-by-side -->
<!-- section:jsts-side-by-side -->
Written by `python benchmarks/report.py --jsts results/j.jsonl` from ...
- Reproduce: `python benchmarks/jsts.py --engines l --out results/j.jsonl`
<!-- /section:jsts-side-by-side -->
"""


def test_run_all_runs_every_documented_command(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    steps = [(n, argv[1:]) for n, argv, _ in run_all.plan(str(doc), False, "", ["maskbench", "jsts", "report"])]
    assert steps == [
        ("maskbench", ["benchmarks/maskbench.py", "--engines", "s", "--limit", "800", "--seed", "0",
                       "--out", "results/x.jsonl"]),
        ("maskbench", ["benchmarks/maskbench.py", "--engines", "l", "--engine-timeouts", "l=10", "--limit", "800",
                       "--out", "results/y.jsonl"]),
        ("jsts", ["benchmarks/jsts.py", "--engines", "l", "--out", "results/j.jsonl"]),
        ("report", ["benchmarks/report.py", "--maskbench", "results/x.jsonl,results/y.jsonl", "--engines", "s,l"]),
        ("report", ["benchmarks/report.py", "--jsts", "results/j.jsonl"]),
    ]
    # --quick: small slices, every results path moved into the quick folder, the doc left alone
    quick = [(n, argv[1:]) for n, argv, _ in run_all.plan(str(doc), True, "/T", ["maskbench", "jsts", "report"])]
    assert quick[0][1] == ["benchmarks/maskbench.py", "--engines", "s", "--limit", "4", "--seed", "0",
                           "--out", "/T/x.jsonl"]
    assert quick[1][1][-2:] == ["--out", "/T/y.jsonl"]
    assert quick[1][1][quick[1][1].index("--limit") + 1] == "4"
    assert quick[2][1] == ["benchmarks/jsts.py", "--engines", "l", "--out", "/T/j.jsonl", "--limit-groups", "8"]
    assert quick[3][1] == ["benchmarks/report.py", "--maskbench", "/T/x.jsonl,/T/y.jsonl", "--engines", "s,l",
                           "--doc", "/T/benchmarks.md"]
    assert quick[4][1] == ["benchmarks/report.py", "--jsts", "/T/j.jsonl", "--doc", "/T/benchmarks.md"]


def test_run_all_defaults_and_dry_run(tmp_path, capsys):
    """Without the sections, the built-in commands reproduce the documented MaskBench runs; --dry-run
    prints every command and runs nothing."""
    empty = tmp_path / "empty.md"
    empty.write_text("# B\n")
    steps = [(n, argv[1:]) for n, argv, _ in run_all.plan(str(empty), False, "", ["maskbench", "report"])]
    assert [n for n, _ in steps] == ["maskbench", "maskbench", "report", "report", "report"]
    assert "structgen:property_order=flexible" in steps[0][1] and "outlines=10" in steps[1][1]
    # the whole-split run has a section of its own
    assert steps[3][1][-2:] == ["--section", "maskbench-dev-split"]
    assert run_all.main(["--dry-run", "--doc", str(empty), "--only", "maskbench,report"]) == 0
    assert capsys.readouterr().out.count("=== [") == 5
    assert run_all.main(["--dry-run", "--quick", "--tmp", str(tmp_path), "--doc", str(empty)]) == 0
    out = capsys.readouterr().out
    assert "--limit 4" in out and "docs/benchmarks.md" not in out.replace("from docs/benchmarks.md", "")


def test_real_doc_reproduces_the_maskbench_section():
    """docs/benchmarks.md names, in its MaskBench section, the runs and the report that write it."""
    steps = run_all.plan(run_all.DOC, False, "", ["maskbench", "report"])
    mb = [argv for n, argv, _ in steps if n == "maskbench"]
    rep = [argv for n, argv, _ in steps if n == "report"]
    assert mb and rep and all("--out" in a for a in mb)
    outs = {a[a.index("--out") + 1] for a in mb}
    mb_report = next(a for a in rep if "--maskbench" in a)
    assert set(mb_report[mb_report.index("--maskbench") + 1].split(",")) == outs
