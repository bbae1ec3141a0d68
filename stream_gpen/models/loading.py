"""Reading GPEN checkpoints: ``.pth``/``.pt`` (weights_only pickle) or ``.safetensors``.

* :func:`read_state_dict` returns a flat ``{name: tensor}`` on the CPU (``g_ema`` unwrapped,
  ``module.`` prefix stripped).
* :func:`infer_config` reconstructs the :class:`GPENConfig` of a checkpoint of unknown origin
  from its tensor shapes.
* :func:`load_generator` checks names and shapes against the expected model *before* touching
  ``load_state_dict`` and raises :class:`CheckpointError` that names the file, the expected model
  and the first offending keys — so a wrong or damaged file never surfaces as a raw traceback.
"""
from __future__ import annotations

import logging
import math
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from stream_gpen._warnings import caught_warnings, modules_pattern
from stream_gpen.errors import CheckpointError, InvalidInputError, WeightsNotFoundError
from stream_gpen.models.registry import MODELS, GPENConfig, ModelSpec, get_spec

if TYPE_CHECKING:
    import torch

    from stream_gpen.models.gpen import FullGenerator

__all__ = ["read_state_dict", "infer_config", "load_generator", "check_state_dict", "describe_mismatch",
           "with_default_kernels"]

log = logging.getLogger(__name__)

_SAFETENSORS_EXT = (".safetensors",)
_SHOW = 5  # how many offending keys an error message lists
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip; the legacy format's pickle
_LFS_POINTER = b"version https://git-lfs"  # what a clone without git-lfs holds instead of a file
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


def _looks_like_safetensors(path: Path) -> bool:
    # safetensors: 8-byte little-endian header length, then a JSON object within the file.
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) != 9 or head[8:9] != b"{":
        return False
    return 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def _is_torchscript(path: Path) -> bool:
    # torch.jit.save writes a zip like torch.save's, plus the model's code and constants.pkl;
    # torch.load refuses it under weights_only with an essay and a UserWarning.
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False  # not a zip, or a truncated one: torch.load says what is wrong
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _folder_error(path: Path, what: str) -> WeightsNotFoundError:
    found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in _CHECKPOINT_SUFFIXES)
    shown = ", ".join(found[:_SHOW]) + (", …" if len(found) > _SHOW else "")
    inside = f" (it holds {shown})" if found else " (it holds no .pth/.pt/.safetensors file)"
    return WeightsNotFoundError(f"{what} {path} is a folder{inside}; name the checkpoint file inside it")


def _damage_of(path: Path) -> str | None:
    """What the weights manager sees wrong with the file at ``path`` ("a zip archive without its
    end: truncated at 30,000,000 bytes"), or ``None``: said instead of torch's own words, which
    for a cut download are a 337-character essay ("PytorchStreamReader failed reading zip archive:
    failed finding central directory. This is an internal miniz error. If you ...")."""
    from stream_gpen.weights import _damage

    try:
        found = _damage(path)
    except OSError:
        return None
    return found[0] if found is not None else None


def _first_sentences(text: str, limit: int = 200) -> str:
    """``text`` cut to at most ``limit`` characters at the end of a sentence (else of a word, with
    "..."): cut at ``limit`` itself, a message stopped mid-word ("If you are seeing this er")."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = cut.rfind(". ")
    if end > 0:
        return cut[:end + 1]
    return cut.rsplit(" ", 1)[0] + " ..."


def read_state_dict(
    path: str | os.PathLike, *, what: str = "checkpoint", wrappers: tuple[str, ...] = ("g_ema",),
    map_location: str = "cpu",
) -> dict[str, torch.Tensor]:
    """Read a checkpoint into a flat ``{name: tensor}`` dict on the CPU.

    The format is told by the file's first bytes, whatever its name: a safetensors header goes
    through ``safetensors`` (no code execution possible), anything else through
    ``torch.load(weights_only=True)`` (tensors and plain containers only — a pickle that wants to
    import arbitrary classes is refused); a TorchScript archive is refused with a message saying
    so. If the loaded object is a dict with one of ``wrappers`` holding a dict (GPEN's
    ``train_simple.py`` keeps the generator in ``g_ema``; facexlib's files may use
    ``state_dict``), that entry is used; failing that, the first of the names training scripts
    commonly use (``params_ema``, ``params``, ``state_dict``, ``model``, ...) that holds a dict of
    tensors. A ``module.`` prefix left by ``DataParallel`` and an ``_orig_mod.`` one left by
    ``torch.compile`` are stripped. ``what`` names the file in messages (``"detector weights"``).
    ``map_location="meta"``: names and shapes only, no weights read (a torch file's; a
    safetensors file is read whole).

    Raises :class:`WeightsNotFoundError` if the file is missing (or is a folder),
    :class:`WeightsError` if the file system refuses to read it (no read permission),
    :class:`CheckpointError` if it cannot be read as a checkpoint or does not hold a state dict
    of tensors.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise _folder_error(path, what)
    if not path.is_file():
        raise WeightsNotFoundError(f"{what} not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path} is empty (0 bytes); download it again")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LFS_POINTER))
    except OSError as e:  # (no read permission: a weights error naming the file, not "the output folder")
        from stream_gpen.weights import _unreadable_error

        raise _unreadable_error(path, what, e) from None
    if head == _LFS_POINTER:
        raise CheckpointError(
            f"{what} {path} is a Git LFS pointer (a small text file naming the real one), not "
            "the weights: run `git lfs pull` in its repository, or download the file itself"
        )
    # The bytes tell the format, not the name (a .safetensors saved as .pth, a torch file named
    # .safetensors); a damaged file named .safetensors is reported as a safetensors file.
    use_safetensors = _looks_like_safetensors(path) or (
        path.suffix.lower() in _SAFETENSORS_EXT and not head.startswith(_TORCH_MAGIC)
    )
    if not use_safetensors and _is_torchscript(path):
        raise CheckpointError(
            f"{what} {path} is a TorchScript archive (a compiled model, torch.jit.save), not a "
            "state dict of weights; save the weights instead: torch.save(model.state_dict(), "
            "PATH), or torch.jit.load(PATH).state_dict() in a trusted environment"
        )
    try:
        if use_safetensors:
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                obj = load_file(str(path), device="cpu")
            except SafetensorError as e:
                raise CheckpointError(
                    f"{what} {path} is not a readable safetensors file ({e}); the file is "
                    "damaged or truncated — download it again"
                ) from None
        else:
            # torch.load's warnings (about TorchScript, legacy formats) are not the user's to act
            # on; its errors are turned into one line below. An open file, not the path: given a
            # path ending in .safetensors, torch.load reads it as safetensors whatever its bytes.
            # (Only torch's are ignored, and those it points at this call: the filters are the
            # whole process's, and the host's other threads' warnings must still reach it.)
            with caught_warnings(), open(path, "rb") as f:
                warnings.filterwarnings("ignore", module=modules_pattern("torch", __name__))
                obj = torch.load(f, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        # torch wraps the real reason in a long essay; keep only the "WeightsUnpickler error" line.
        text = str(e)
        m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n|$)", text)
        # (newer torch: "Trying to load unsupported GLOBAL posix.system whose module posix is
        # blocked" for os, subprocess, builtins.eval and the like, with no "WeightsUnpickler" line)
        blocked = re.search(r"unsupported GLOBAL (\S+)", text, re.IGNORECASE)
        reason = _first_sentences(m.group(1)) if m else ""
        if "Unsupported global" in reason or blocked:
            name = f"GLOBAL {blocked.group(1)}" if blocked else reason.split(" was not")[0]
            raise CheckpointError(
                f"{what} {path} holds Python objects other than tensors and plain containers "
                f"({name}), which weights_only loading refuses (unpickling them could run arbitrary "
                "code); do not load it unless you trust where it came from — then convert it once, "
                "in a trusted environment, to a plain state dict or .safetensors"
            ) from None
        if not reason:  # torch's first line is its advice to load with weights_only=False: never quoted
            lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
            reason = _first_sentences(lines[0]) if lines else type(e).__name__
        raise CheckpointError(
            f"{what} {path} could not be read as a PyTorch checkpoint (UnpicklingError: "
            f"{reason}); the file is damaged, truncated or not a checkpoint — download it again "
            "or check the path"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            UnicodeDecodeError, AttributeError, IndexError, KeyError, OSError) as e:
        # torch.load reports a truncated zip, a non-pickle and a refused global in several
        # exception types; they all mean "this is not a usable checkpoint".
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{what} {path} could not be read as a PyTorch checkpoint "
            f"({_damage_of(path) or f'{type(e).__name__}: {_first_sentences(first)}'}); the file is damaged, "
            "truncated or not a checkpoint — download it again or check the path"
        ) from None

    # ``wrappers`` first (any dict in them); then the names BasicSR / GFPGAN / CodeFormer and most
    # training scripts keep the weights under, where one holds a dict of tensors (the family check
    # comes after)
    for key in dict.fromkeys(wrappers + _COMMON_WRAPPERS):
        inner = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(inner, dict) and (key in wrappers or (
                inner and all(isinstance(v, torch.Tensor) for v in inner.values()))):
            obj = inner
            break
    if not isinstance(obj, dict) or not obj:
        wrapped = " or ".join(f"a dict with a {k!r} entry" for k in wrappers)
        raise CheckpointError(
            f"{what} {path} does not hold a state dict (found {type(obj).__name__}"
            f"{' (empty)' if isinstance(obj, dict) else ''}); expected a dict of tensors"
            f"{' or ' + wrapped if wrapped else ''}"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{what} {path} is not a plain state dict: entries {bad[:_SHOW]!r} are not "
            f"tensors (a training checkpoint? none of {list(dict.fromkeys(wrappers + _COMMON_WRAPPERS))} "
            "in it holds a dict of tensors)"
        )
    for prefix in _PREFIXES:  # (a compiled model inside DataParallel has both, in this order)
        if all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return dict(obj)


# Where training scripts keep a model's weights inside a checkpoint ("params_ema": BasicSR, GFPGAN,
# CodeFormer; "state_dict": Lightning, facexlib; "model", "net_g", "generator": others)
_COMMON_WRAPPERS = ("params_ema", "params", "state_dict", "model", "net_g", "generator")
# Key prefixes that say how a model was wrapped, not what it is: DataParallel, torch.compile
_PREFIXES = ("module.", "_orig_mod.")
# Other face-restoration and upscaling models, by a key only they have: named when such a file is
# given as a GPEN checkpoint, instead of a list of missing GPEN layers
_FAMILIES = (("stylegan_decoder.", "GFPGAN"), ("conv_body_first.", "GFPGAN"), ("quantize.", "CodeFormer"),
             ("position_emb", "CodeFormer"), ("RRDB_trunk.", "ESRGAN"), ("body.0.rdb1.", "Real-ESRGAN"),
             ("conv_first.", "an ESRGAN-style upscaler"), ("encoder.blocks.", "a VQ-GAN (CodeFormer or RestoreFormer)"))


def _family(state_dict: dict) -> str | None:
    """The model family ``state_dict`` comes from, where a key tells it; None otherwise."""
    for prefix, name in _FAMILIES:
        if any(k.startswith(prefix) for k in state_dict):
            return name
    return None


# --- config inference -------------------------------------------------------------------------

_STYLE_KEY = re.compile(r"^generator\.style\.(\d+)\.weight$")
_ECD_KEY = re.compile(r"^ecd(\d+)\.")


def _observed_channels(sd: dict[str, torch.Tensor], size: int) -> dict[int, int]:
    """C[r] as the checkpoint's shapes state them (every level the encoder and decoder touch)."""
    ch: dict[int, int] = {}
    log_size = size.bit_length() - 1
    for i in range(log_size - 1):
        w = sd.get(f"ecd{i}.0.0.weight" if i == 0 else f"ecd{i}.0.1.weight")
        if w is not None:
            ch[size >> i] = int(w.shape[0])
    inp = sd.get("generator.input.input")
    if inp is not None:
        ch[4] = int(inp.shape[1])
    for j in range(log_size - 2):
        w = sd.get(f"generator.convs.{2 * j}.conv.weight")
        if w is not None and w.dim() == 5:
            ch[2 ** (j + 3)] = int(w.shape[1])
    return ch


def _narrow_candidates(c4: int) -> list[float]:
    # C4 = int(512 · narrow) loses the fraction; the humans who pick narrow pick short decimals,
    # so try the shortest decimals within [c4/512, (c4+1)/512) first.
    lo, hi = c4 / 512, (c4 + 1) / 512
    out: list[float] = []
    for digits in range(0, 7):
        step = 10.0**-digits
        v = math.ceil(lo / step - 1e-9) * step
        v = round(v, digits)
        if lo - 1e-12 <= v < hi and v > 0 and v not in out:
            out.append(v)
    return out


def infer_config(state_dict: dict[str, torch.Tensor]) -> GPENConfig:
    """Reconstruct the GPENConfig of a GPEN FullGenerator state dict from its tensor shapes.

    size = 2^(number of ``ecd`` layers + 1); style_dim from ``final_linear.0.weight``; n_mlp from
    the ``generator.style.N`` keys; channel_multiplier and narrow by searching the (few) values
    whose channel table reproduces every channel count in the file, preferring the shortest
    decimal for narrow. ``lr_mlp`` leaves no trace in the weights and is assumed to be 0.01 (all
    GPEN releases). Raises :class:`CheckpointError` if the dict is not a GPEN FullGenerator.
    """
    ecd = {int(m.group(1)) for k in state_dict if (m := _ECD_KEY.match(k))}
    styles = sorted(int(m.group(1)) for k in state_dict if (m := _STYLE_KEY.match(k)))
    fl = state_dict.get("final_linear.0.weight")
    if not ecd or fl is None or not styles or "generator.input.input" not in state_dict:
        missing = [
            k for k, ok in (
                ("ecd0.0.0.weight", bool(ecd)),
                ("final_linear.0.weight", fl is not None),
                ("generator.style.1.weight", bool(styles)),
                ("generator.input.input", "generator.input.input" in state_dict),
            ) if not ok
        ]
        sample = list(state_dict)[:_SHOW]
        family = _family(state_dict)
        if family is not None:
            raise CheckpointError(
                f"not a GPEN checkpoint: its layers are {family}'s (first keys: {sample}); stream-gpen "
                "runs GPEN generators only — use a GPEN-BFR checkpoint (`stream-gpen weights list`)"
            )
        raise CheckpointError(
            f"not a GPEN FullGenerator state dict: no {', '.join(missing)} "
            f"(first keys: {sample})"
        )
    if ecd != set(range(len(ecd))) or styles != list(range(1, len(styles) + 1)):
        raise CheckpointError(
            f"GPEN state dict has gaps in its layer numbering: ecd {sorted(ecd)}, "
            f"generator.style {styles}"
        )
    size = 2 ** (len(ecd) + 1)
    style_dim = int(fl.shape[0])
    n_mlp = len(styles)
    observed = _observed_channels(state_dict, size)
    c4 = observed[4]
    tried = []
    for narrow in _narrow_candidates(c4):
        for cm in range(1, 9):
            try:
                cfg = GPENConfig(
                    size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=cm, narrow=narrow
                )
            except InvalidInputError:
                continue
            tried.append((cm, narrow))
            table = cfg.channels
            if all(table.get(r) == c for r, c in observed.items()):
                return cfg
    raise CheckpointError(
        f"cannot infer GPEN channel_multiplier/narrow: channel counts {dict(sorted(observed.items()))} "
        f"match no (channel_multiplier, narrow) in {tried[:_SHOW]}…"
    )


# --- strict checking and loading ---------------------------------------------------------------


def _fmt_shape(shape) -> str:
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


def check_state_dict(
    state_dict: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> tuple[list[str], list[str], list[tuple[str, str, str]]]:
    """``(missing, unexpected, mismatched)`` between a checkpoint and a model's state dict.

    ``mismatched`` holds ``(key, checkpoint shape, model shape)``. Order follows the model (or the
    checkpoint for unexpected keys), so the first entries are the first layers.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, _fmt_shape(state_dict[k].shape), _fmt_shape(v.shape))
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, mismatched


def nonfinite_tensors(named) -> list[str]:
    """The names of the floating-point tensors of ``named`` (``(name, tensor)`` pairs: a state
    dict's items, a module's parameters and buffers) that hold a NaN or an infinity."""
    import torch

    return [n for n, t in named
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def refuse_nonfinite(named, where: str, what: str) -> None:
    """:class:`CheckpointError` when weights hold NaN/inf (a fine-tune that diverged, a damaged
    conversion): a GPEN's faces come out black, a detector finds nothing, a parser's mask
    pastes nothing, each counted as done. One pass over the weights (tens of ms for GPEN-512)."""
    bad = nonfinite_tensors(named)
    if bad:
        raise CheckpointError(
            f"{where}: the {what} hold NaN/inf in {len(bad)} tensor(s) (first: {bad[0]})",
            hint="the file comes from a training run that diverged or a damaged conversion: use an earlier "
            "checkpoint of that run, or the official file")


def with_default_kernels(state_dict: dict[str, torch.Tensor], model: FullGenerator) -> dict[str, torch.Tensor]:
    """``state_dict`` with the blur and upsampling kernels of ``model`` it lacks rebuilt, where they
    are all it lacks; else ``state_dict`` as it is (the missing keys are then refused by name).

    Those kernels are buffers, not learned: every released GPEN checkpoint holds the same
    constants (``outer(k, k)`` of k = [1,3,3,1], normalised, times 4 where they upsample), which
    an implementation may load or rebuild (fixtures/gpen/FACTS.md §3); a state dict saved without
    its buffers (a training script's ``named_parameters()``, a converter that dropped them) is
    otherwise whole. A file that holds other kernels (the ``_pk`` fixtures) keeps them."""
    from stream_gpen.models.gpen import Blur, Upsample

    missing = [k for k in model.state_dict() if k not in state_dict]
    owners = {k: model.get_submodule(k.rpartition(".")[0]) for k in missing if k.endswith(".kernel")}
    if not missing or len(owners) != len(missing) or not all(
            isinstance(m, (Blur, Upsample)) for m in owners.values()):
        return state_dict
    return {**state_dict, **{k: m.default_kernel() for k, m in owners.items()}}


def describe_mismatch(state_dict: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str:
    """What keeps ``state_dict`` from loading strictly into a model whose state dict is
    ``expected``, in one line (counts and the first keys of each kind); ``""`` if nothing does."""
    missing, unexpected, mismatched = check_state_dict(state_dict, expected)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:_SHOW])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:_SHOW])})")
    if mismatched:
        shown = "; ".join(f"{k}: file {a} vs model {b}" for k, a, b in mismatched[:_SHOW])
        parts.append(f"{len(mismatched)} shape mismatches (first: {shown})")
    return "; ".join(parts)


def _describe(name: str, config: GPENConfig) -> str:
    return f"{name} ({config})" if name else str(config)


def _registry_match(config: GPENConfig) -> str | None:
    for spec in MODELS.values():
        if spec.config == config:
            return spec.name
    return None


def load_generator(
    path: str | os.PathLike,
    *,
    spec: ModelSpec | str | None = None,
    config: GPENConfig | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    expected_as: str | None = None,
) -> FullGenerator:
    """Build a :class:`FullGenerator` from a checkpoint, with strict keys and shapes.

    The expected model comes from ``spec`` (a :class:`ModelSpec` or registry name such as
    ``"gpen-bfr-512"``), else from ``config``, else it is inferred from the file's shapes
    (:func:`infer_config`; use that for checkpoints of unknown origin — it accepts any
    consistent GPEN file, so pass ``spec`` when you want a wrong file to be refused).

    The model is built on the ``meta`` device and the checkpoint tensors are assigned to it (no
    random initialisation of 71 M parameters), then moved to ``device`` / ``dtype``
    (default float32). Returned in eval mode with ``requires_grad`` off: this is an inference
    loader.

    Raises :class:`CheckpointError` naming the file, the expected model (``expected_as``, if
    given, says how: e.g. ``"gpen-bfr-256, the default model on cpu"`` when the caller chose the
    spec rather than the user), the first missing / unexpected keys and mismatched shapes, and
    what the file is where its shapes tell; :class:`WeightsNotFoundError` if the file does not
    exist.
    """
    import torch

    from stream_gpen.models.gpen import FullGenerator

    if dtype is None:
        dtype = torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InvalidInputError(
            f"dtype must be a floating torch.dtype (float32, float16, bfloat16, float64), got {dtype!r}"
        )
    model_name = ""
    if isinstance(spec, str):
        spec = get_spec(spec)
    if spec is not None:
        if config is not None and config != spec.config:
            raise InvalidInputError(
                f"config {config} contradicts spec {spec.name} ({spec.config}); pass only one"
            )
        config = spec.config
        model_name = spec.name

    path = Path(path)
    state_dict = read_state_dict(path)
    if config is None:
        try:
            config = infer_config(state_dict)
        except CheckpointError as e:
            raise CheckpointError(f"checkpoint {path}: {e}") from None
        log.info("inferred %s from the shapes in %s", config, path)

    with torch.device("meta"):
        model = FullGenerator(config)
    expected = model.state_dict()
    rebuilt = with_default_kernels(state_dict, model)
    if rebuilt is not state_dict:
        log.info("%s holds no blur kernels (%d constant buffers): rebuilt", path, len(rebuilt) - len(state_dict))
        state_dict = rebuilt
    problem = describe_mismatch(state_dict, expected)
    non_float = [k for k, v in state_dict.items() if k in expected and not v.is_floating_point()]
    if problem or non_float:
        parts = [problem] if problem else []
        if non_float:
            parts.append(f"non-float tensors: {', '.join(non_float[:_SHOW])}")
        hint = ""
        try:
            actual = infer_config(state_dict)
        except CheckpointError:
            actual = None
        if actual is not None and actual != config:
            # Advice in both forms, the command line's and Python's; a path as the model has its
            # config inferred, whether or not it is a registry model and whatever its file name.
            match = _registry_match(actual)
            if match:
                hint = (f". The file is {_describe(match, actual)}: load it with --model {match} "
                        f"--weights PATH or with --model PATH (model={match!r}, weights=PATH or "
                        "model=PATH in Python)")
            else:
                hint = (f". The file is {actual}, not a registry model: load it with --model PATH "
                        "(model=PATH in Python), which infers its config")
        raise CheckpointError(
            f"checkpoint {path} does not match the expected model "
            f"{expected_as or _describe(model_name, config)}: {'; '.join(parts)}{hint}"
        )

    model.load_state_dict(state_dict, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype)
    model.eval().requires_grad_(False)
    return model
