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
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from stream_gpen.errors import CheckpointError, InvalidInputError, WeightsNotFoundError
from stream_gpen.models.registry import MODELS, GPENConfig, ModelSpec, get_spec

if TYPE_CHECKING:
    import torch

    from stream_gpen.models.gpen import FullGenerator

__all__ = ["read_state_dict", "infer_config", "load_generator", "check_state_dict"]

log = logging.getLogger(__name__)

_SAFETENSORS_EXT = (".safetensors",)
_TORCH_EXT = (".pth", ".pt", ".ckpt", ".bin")
_SHOW = 5  # how many offending keys an error message lists


def _looks_like_safetensors(path: Path) -> bool:
    # safetensors: 8-byte little-endian header length, then a JSON object.
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint into a flat ``{name: tensor}`` dict on the CPU.

    ``.safetensors`` goes through ``safetensors`` (no code execution possible); anything else
    through ``torch.load(weights_only=True)`` (tensors and plain containers only — a pickle that
    wants to import arbitrary classes is refused). If the loaded object is a training checkpoint
    with a ``g_ema`` entry (GPEN's ``train_simple.py``), that entry is used. A ``module.`` prefix
    left by ``DataParallel`` is stripped.

    Raises :class:`WeightsNotFoundError` if the file is missing, :class:`CheckpointError` if it
    cannot be read as a checkpoint or does not hold a state dict of tensors.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); download it again")
    use_safetensors = path.suffix.lower() in _SAFETENSORS_EXT or (
        path.suffix.lower() not in _TORCH_EXT and _looks_like_safetensors(path)
    )
    try:
        if use_safetensors:
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                obj = load_file(str(path), device="cpu")
            except SafetensorError as e:
                raise CheckpointError(
                    f"checkpoint {path} is not a readable safetensors file ({e}); the file is "
                    "damaged or truncated — download it again"
                ) from None
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        # torch wraps the real reason in a long essay; keep only the "WeightsUnpickler error" line.
        text = str(e)
        m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n|$)", text)
        reason = (m.group(1) if m else text.strip().splitlines()[0] if text.strip() else "")[:200]
        if "Unsupported global" in reason:
            raise CheckpointError(
                f"checkpoint {path} holds Python objects other than tensors and plain containers "
                f"({reason.split(' was not')[0]}), which weights_only loading refuses (unpickling "
                "them could run arbitrary code); convert it once, in a trusted environment, to a "
                "plain state dict or .safetensors"
            ) from None
        raise CheckpointError(
            f"checkpoint {path} could not be read as a PyTorch checkpoint (UnpicklingError: "
            f"{reason}); the file is damaged, truncated or not a checkpoint — download it again "
            "or check the path"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            UnicodeDecodeError, AttributeError, IndexError, KeyError, OSError) as e:
        # torch.load reports a truncated zip, a non-pickle and a refused global in several
        # exception types; they all mean "this is not a usable checkpoint".
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint {path} could not be read as a PyTorch checkpoint "
            f"({type(e).__name__}: {first[:200]}); the file is damaged, truncated or not a "
            "checkpoint — download it again or check the path"
        ) from None

    if isinstance(obj, dict) and "g_ema" in obj and isinstance(obj["g_ema"], dict):
        obj = obj["g_ema"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"checkpoint {path} does not hold a state dict (found {type(obj).__name__}"
            f"{' (empty)' if isinstance(obj, dict) else ''}); expected a dict of tensors or a "
            "dict with a 'g_ema' entry"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"checkpoint {path} is not a plain state dict: entries {bad[:_SHOW]!r} are not "
            "tensors (a training checkpoint without 'g_ema'?)"
        )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


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

    Raises :class:`CheckpointError` naming the file, the expected model and the first
    missing / unexpected keys and mismatched shapes; :class:`WeightsNotFoundError` if the
    file does not exist.
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
    missing, unexpected, mismatched = check_state_dict(state_dict, expected)
    non_float = [k for k, v in state_dict.items() if k in expected and not v.is_floating_point()]
    if missing or unexpected or mismatched or non_float:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:_SHOW])})")
        if unexpected:
            parts.append(
                f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:_SHOW])})"
            )
        if mismatched:
            shown = "; ".join(f"{k}: file {a} vs model {b}" for k, a, b in mismatched[:_SHOW])
            parts.append(f"{len(mismatched)} shape mismatches (first: {shown})")
        if non_float:
            parts.append(f"non-float tensors: {', '.join(non_float[:_SHOW])}")
        hint = ""
        try:
            actual = infer_config(state_dict)
        except CheckpointError:
            actual = None
        if actual is not None and actual != config:
            match = _registry_match(actual)
            hint = f". The file looks like {_describe(match or '', actual)}" + (
                f"; load it as {match!r}" if match else "; pass spec=None to infer its config"
            )
        raise CheckpointError(
            f"checkpoint {path} does not match the expected model "
            f"{_describe(model_name, config)}: {'; '.join(parts)}{hint}"
        )

    model.load_state_dict(state_dict, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype)
    model.eval().requires_grad_(False)
    return model
