"""The measurement loop and the worker subprocess that runs it, one engine per worker.

Parent side: `WorkerRunner(spec, timeout_s, mem_mb).run(case) -> record`. A case is
`{"id", "schema", "tests": [{"data", "valid", ...}], "ensure_ascii": bool}`. The worker is
started once (engine + tokenizer set-up and a warm-up are not timed), then fed cases one
by one over a pipe. Each case gets a wall-clock limit (the worker is killed and the case
recorded as `timeout`) and an address-space cap set with `resource.setrlimit` (an
allocation failure is recorded as `oom`); a worker that dies is recorded as `crash` with
its signal and last stderr lines. In all three cases the next case gets a fresh worker.

Worker side (`python -m benchmarks.harness.worker SPEC`): the measurement loop, the same
for all engines: compile (timed); for each instance: `json.dumps(data, ensure_ascii=False)`,
tokenize with the shared BPE, then per token: time `fill_mask` (one sample, valid
instances only), check the token is allowed, accept it; at the end one more (timed) mask
must allow EOS.

With `--task generate` (JSONSchemaBench) the worker also loads a language model and each case
is: compile (timed), then one greedy output through the shared decode loop of
`generation.py`, validated with jsonschema. After the compile it writes a progress line
(`{"progress": true, "phase": "generate", "compile_ms": ...}`); the parent then applies the
generation time limit (`phase_timeouts`) and keeps the compile time if generation times out.
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from time import perf_counter_ns

if __package__ in (None, ""):  # executed as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks.harness import REPO_ROOT  # noqa: E402

WARMUP_SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                 "required": ["a"]}
WARMUP_DATA = {"a": 12, "b": "warm up"}
MAX_ERROR_CHARS = 600


# ----------------------------------------------------------------------------- worker side

def _short(text: str, n: int = MAX_ERROR_CHARS) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


def _is_oom_error(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    msg = str(e).lower()
    return "bad_alloc" in msg or "out of memory" in msg or "memory allocation" in msg


def walk_instance(engine, vocab, state, ids, bitmask, samples):
    """Walk `ids` through a fresh matcher. Returns (accepted, fail-dict or None).

    When `samples` is a list, every mask computation's time (ns) is appended to it."""
    from benchmarks.harness.engines import mask_allows

    m = engine.new_matcher(state)
    fill, accept = engine.fill_mask, engine.accept
    for k, t in enumerate(ids):
        t0 = perf_counter_ns()
        fill(m, bitmask)
        dt = perf_counter_ns() - t0
        if samples is not None:
            samples.append(dt)
        if not mask_allows(bitmask, t):
            return False, {"pos": k, "why": "mask"}
        if not accept(m, t):
            return False, {"pos": k, "why": "accept"}
    t0 = perf_counter_ns()
    fill(m, bitmask)
    dt = perf_counter_ns() - t0
    if samples is not None:
        samples.append(dt)
    if not any(mask_allows(bitmask, e) for e in vocab.eos_ids):
        return False, {"pos": len(ids), "why": "eos"}
    return True, None


def measure_case(engine, vocab, case: dict, bitmask) -> dict:
    """Compile the case's schema and walk all its instances; returns the result record."""
    rec: dict = {"status": "ok"}
    gc.collect()
    gc.disable()
    try:
        t0 = perf_counter_ns()
        try:
            state = engine.compile(case["schema"])
        except BaseException as e:  # engines raise anything from ValueError to RuntimeError
            if isinstance(e, KeyboardInterrupt):
                raise
            rec.update(status="oom" if _is_oom_error(e) else "compile_error",
                       error_type=type(e).__name__, error=_short(e))
            rec["compile_ms"] = (perf_counter_ns() - t0) / 1e6
            return rec
        rec["compile_ms"] = (perf_counter_ns() - t0) / 1e6
        samples: list[int] = []
        tests_out = []
        ensure_ascii = bool(case.get("ensure_ascii", False))
        for ti, test in enumerate(case.get("tests") or []):
            valid = bool(test["valid"])
            text = json.dumps(test["data"], ensure_ascii=ensure_ascii)
            ids = vocab.encode(text)
            out = {"valid": valid, "n_tokens": len(ids)}
            n_before = len(samples)
            try:
                accepted, fail = walk_instance(engine, vocab, state, ids, bitmask, samples if valid else None)
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                if _is_oom_error(e):
                    rec.update(status="oom", error_type=type(e).__name__, error=_short(e))
                    break
                accepted, fail = False, {"why": "error", "error_type": type(e).__name__, "error": _short(e, 200)}
            if ti == 0 and valid and len(samples) > n_before:
                rec["first_mask_us"] = samples[n_before] / 1e3
            out["accepted"] = accepted
            if accepted != valid:  # a wrong outcome: keep enough to debug it
                out["text"] = text[:160]
                if test.get("description"):
                    out["description"] = _short(test["description"], 160)
            if fail is not None:
                if "pos" in fail:
                    k = fail["pos"]
                    fail["prefix"] = vocab.decode(ids[max(0, k - 12):k]).decode("utf-8", "replace")[-80:]
                    if k < len(ids):
                        fail["token"] = (vocab.token_bytes[ids[k]] or b"").decode("utf-8", "replace")
                out["fail"] = fail
            tests_out.append(out)
        rec["tests"] = tests_out
        rec["mask_us"] = [round(s / 1e3, 2) for s in samples]
        return rec
    finally:
        gc.enable()


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker_main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="benchmark worker (speaks JSON lines on stdin/stdout)")
    ap.add_argument("engine")
    ap.add_argument("--mem-mb", type=int, default=0, help="address-space headroom over the warmed-up worker")
    ap.add_argument("--vocab", default="llama3")
    ap.add_argument("--task", choices=("walk", "generate"), default="walk")
    ap.add_argument("--task-opts", default="{}", help="JSON options of the task (generate: model, max_new_tokens, ...)")
    args = ap.parse_args(argv)
    task_opts = json.loads(args.task_opts)
    # Protocol on the original stdout; anything engines print goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    from benchmarks.harness.engines import SharedVocab, make_engine, new_bitmask

    t0 = time.perf_counter()
    vocab = SharedVocab(args.vocab)
    engine = make_engine(args.engine, vocab)
    bitmask = new_bitmask(vocab)
    lm = None
    if args.task == "generate":
        from benchmarks.harness import generation

        lm_opts = {k: v for k, v in task_opts.items() if k in ("threads",)}
        lm = generation.make_lm(task_opts.get("model", "smollm2"), vocab, **lm_opts)
    hello = {"ready": True, "info": engine.info(), "init_s": round(time.perf_counter() - t0, 3),
             "tokenizer": vocab.name, "task": args.task}
    if lm is not None:
        warm = generation.measure_generation(engine, vocab, lm, generation.warmup_case(), bitmask,
                                             {**task_opts, "max_new_tokens": 8, "max_prompt_tokens": 0})
        if warm["status"] != "ok":
            hello["warmup"] = {k: warm.get(k) for k in ("status", "error_type", "error")}
    else:
        warm = measure_case(engine, vocab, {"schema": WARMUP_SCHEMA, "tests": [{"data": WARMUP_DATA, "valid": True}]},
                            bitmask)
        if warm["status"] != "ok" or not all(t["accepted"] for t in warm.get("tests", [])):
            hello["warmup"] = {k: warm.get(k) for k in ("status", "error_type", "error", "tests")}
    if args.mem_mb > 0:
        import resource

        cap = _vm_bytes() + args.mem_mb * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        hello["as_cap_mb"] = cap >> 20
    proto.write(json.dumps(hello) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        t1 = time.perf_counter()
        if lm is not None:
            def progress(d):
                proto.write(json.dumps({"progress": True, **d}) + "\n")

            rec = generation.measure_generation(engine, vocab, lm, case, bitmask, task_opts, progress)
        else:
            rec = measure_case(engine, vocab, case, bitmask)
        rec["wall_s"] = round(time.perf_counter() - t1, 4)
        proto.write(json.dumps(rec) + "\n")
    return 0


# ----------------------------------------------------------------------------- parent side

class WorkerRunner:
    """Runs cases for one engine spec in a worker subprocess, restarting it as needed."""

    def __init__(self, spec: str, *, timeout_s: float = 120.0, mem_mb: int = 8192, recycle: int = 500,
                 startup_timeout_s: float = 600.0, vocab: str = "llama3", task: str = "walk",
                 task_opts: dict | None = None, phase_timeouts: dict | None = None):
        """`phase_timeouts`: per-phase limits that replace `timeout_s` after a progress line
        naming that phase (e.g. `{"generate": 120}`); `timeout_s` limits the first phase."""
        self.spec = spec
        self.task = task
        self.task_opts = dict(task_opts or {})
        self.phase_timeouts = dict(phase_timeouts or {})
        self.timeout_s = timeout_s
        self.mem_mb = mem_mb
        self.recycle = recycle
        self.startup_timeout_s = startup_timeout_s
        self.vocab = vocab
        self.proc: subprocess.Popen | None = None
        self.served = 0
        self.hello: dict | None = None
        self._stderr = None
        self._pending = b""

    # -- process management
    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("RAYON_NUM_THREADS", "1")
        env.setdefault("NUMBA_NUM_THREADS", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "benchmarks.harness.worker", self.spec, "--mem-mb", str(self.mem_mb),
               "--vocab", self.vocab]
        if self.task != "walk":
            cmd += ["--task", self.task, "--task-opts", json.dumps(self.task_opts)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     cwd=REPO_ROOT, env=env, start_new_session=True)
        self.served = 0
        self._pending = b""
        line = self._read_line(self.startup_timeout_s)
        if line is None:
            why = self._death_note()
            self._kill()
            raise RuntimeError(f"worker for {self.spec} did not start: {why}")
        self.hello = json.loads(line)

    def _read_line(self, timeout: float) -> bytes | None:
        """The worker's next protocol line (bytes up to and including the newline), or None."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            nl = self._pending.find(b"\n")
            if nl >= 0:  # a line already read (several may arrive in one chunk)
                line, self._pending = self._pending[:nl + 1], self._pending[nl + 1:]
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not r:
                if self.proc.poll() is not None:
                    return None
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:  # EOF: the worker is gone; reap it so the caller sees its exit status
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                return None
            self._pending += chunk

    def _stderr_tail(self, n: int = 1500) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - n))
            return self._stderr.read().decode("utf-8", "replace")
        except Exception:
            return ""

    def _death_note(self) -> str:
        rc = self.proc.poll() if self.proc else None
        sig = ""
        if rc is not None and rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = f"signal {-rc}"
        tail = self._stderr_tail()
        return (f"exit {rc} {sig}".strip() + (": " + tail.strip()[-MAX_ERROR_CHARS:] if tail.strip() else ""))

    def _kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                pass
        self._kill()

    def info(self) -> dict:
        if self.hello is None:
            self._start()
        return self.hello or {}

    # -- running cases
    def run(self, case: dict, *, retry: bool = True) -> dict:
        """Run one case; never raises for engine failures (they become the record's status)."""
        if self.proc is None or self.proc.poll() is not None or self.served >= self.recycle:
            self._kill()
            self._start()
        fresh = self.served == 0
        assert self.proc is not None
        payload = json.dumps(case) + "\n"
        t0 = time.monotonic()
        try:
            self.proc.stdin.write(payload.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        limit = self.timeout_s
        progress: dict = {}
        while True:
            line = self._read_line(limit)
            if line is None:
                break
            rec = json.loads(line)
            if rec.get("progress"):  # a phase finished: its data is kept, the next phase gets its own limit
                rec.pop("progress")
                progress.update(rec)
                limit = float(self.phase_timeouts.get(rec.get("phase"), self.timeout_s))
                continue
            break
        self.served += 1
        if line is not None:
            if rec.get("status") == "oom":  # the allocator failed inside the worker: start afresh
                self._kill()
            return rec
        elapsed = time.monotonic() - t0
        died = self.proc.poll() is not None
        note = self._death_note() if died else ""
        self._kill()
        if not died:
            return {"status": "timeout", "error": f"no result within {limit:g} s", "wall_s": round(elapsed, 3),
                    **progress}
        status = "oom" if any(s in note for s in ("memory allocation", "bad_alloc", "MemoryError",
                                                    "out of memory", "Cannot allocate")) else "crash"
        if retry and not fresh:  # a worker that served earlier cases may have been worn down: retry once
            rec = self.run(case, retry=False)
            rec.setdefault("retried", True)
            return rec
        return {"status": status, "error": _short(note), "wall_s": round(elapsed, 3), **progress}


if __name__ == "__main__":
    sys.exit(worker_main())
