"""The models a server holds: one Enhancer (one model instance) per name, and cheap per-option views."""
from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from typing import Literal, get_args

from stream_gpen.errors import InvalidInputError

log = logging.getLogger(__name__)

FaceSelect = Literal["all", "largest", "center"]
#: views kept for reuse, the least recently used dropped first: a client sending a computed strength
#: per photo (0.7312...) made one more view per request, kept for ever. Views are cheap to rebuild.
MAX_VIEWS = 64


class CountingRestorer:
    """Wraps a restorer and counts the faces it was given (the Enhancer's image API returns none).

    Read the counter only while holding the device lock: then no other thread runs this model.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.faces = 0

    def __call__(self, crops):
        out = self.inner(crops)
        self.faces += int(crops.shape[0])
        return out

    def __getattr__(self, name: str):  # size, device, name, fallbacks, precision, ...
        attr = getattr(self.inner, name)
        if name == "restore_fine":  # counted too; absent (AttributeError) when the inner one lacks it
            def restore_fine(crops):
                out = attr(crops)
                self.faces += int(crops.shape[0])
                return out
            return restore_fine
        return attr


class ModelSet:
    """Named Enhancers built once at start-up; requests pick one by name, a face selection and a
    strength (blend of the restored faces with the original).

    A *view* is a shallow copy of an Enhancer with other ``faces`` / ``strength`` options: it shares the model,
    the detector and the Enhancer's lock, so options per request never cost a second model
    instance. The first name is the default. The :data:`MAX_VIEWS` last used views are kept.
    """

    def __init__(self, enhancers: dict) -> None:
        if not enhancers:
            raise InvalidInputError("the server needs at least one model")
        self._base = {}
        for name, enh in enhancers.items():
            enh = copy.copy(enh)
            enh.restorer = CountingRestorer(enh.restorer)
            self._base[name] = enh
        self.default = next(iter(self._base))
        self._views: OrderedDict[tuple[str, str, float, bool], object] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._base)

    def base(self, name: str):
        return self._base[name]

    def resolve(self, model: str | None, faces: str | None,
                strength: float | None = None, aligned: bool | None = None) -> tuple[str, str, float, bool]:
        """Validate request options -> (model name, face selection, strength, aligned); errors
        name the allowed values. ``strength`` ``None``: the model's own (its Enhancer's);
        ``aligned``: the pictures are aligned face crops (``Enhancer(aligned=True)``), ``None``:
        the model's own (``serve --aligned``; every request ran unaligned without ``?aligned=true``)."""
        name = model or self.default
        if name not in self._base:
            raise InvalidInputError(f"unknown model {name!r}; this server has: {', '.join(self._base)}")
        sel = faces or self._base[name].faces
        if sel not in get_args(FaceSelect):
            raise InvalidInputError(f"faces must be one of {get_args(FaceSelect)}, got {sel!r}")
        st = getattr(self._base[name], "strength", 1.0) if strength is None else strength
        if isinstance(st, bool) or not isinstance(st, (int, float)) or not 0.0 <= st <= 1.0:
            raise InvalidInputError(f"strength must be a number in [0, 1], got {strength!r}")
        al = getattr(self._base[name], "aligned", False) if aligned is None else aligned
        return name, sel, float(st), bool(al)

    def view(self, model: str | None = None, faces: str | None = None, strength: float | None = None,
             aligned: bool | None = None):
        key = self.resolve(model, faces, strength, aligned)
        with self._lock:
            v = self._views.get(key)
            if v is None:
                v = copy.copy(self._base[key[0]])
                v.faces, v.strength, v.aligned = key[1], key[2], key[3]
                self._views[key] = v
                if len(self._views) > MAX_VIEWS:
                    self._views.popitem(last=False)
            else:
                self._views.move_to_end(key)
            return v

    def devices(self) -> list[str]:
        return sorted({str(e.device) for e in self._base.values()})

    def describe(self) -> list[dict]:
        return [
            {"name": n, "device": str(e.device), "size": int(e.restorer.size), "precision": e.precision,
             "faces": e.faces, "strength": getattr(e, "strength", 1.0), "aligned": bool(getattr(e, "aligned", False)),
             "fallbacks": e._all_fallbacks() if hasattr(e, "_all_fallbacks") else []}
            for n, e in self._base.items()
        ]
