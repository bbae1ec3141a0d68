"""Single images and folders of images as sources and sinks (Pillow).

EXIF orientation is applied on load (frames are upright, the written file carries no orientation
tag); an alpha channel is split off into ``frame.alpha`` and re-attached by the sink when the
output format can store it (png/webp/tiff), otherwise dropped with a warning.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from stream_gpen.errors import EmptyMediaError, InvalidInputError, MediaNotFoundError, NotMediaError, OutputExistsError
from stream_gpen.io._meta import StreamMetadata
from stream_gpen.io._ring import Frame
from stream_gpen.io._sink import _Sink
from stream_gpen.io._source import IMAGE_EXTS

log = logging.getLogger(__name__)
_ALPHA_EXTS = (".png", ".webp", ".tif", ".tiff")


def load_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """-> (RGB uint8 [H, W, 3], alpha uint8 [H, W] or None), EXIF orientation applied."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.exists():
        raise MediaNotFoundError(f"image not found: {path}")
    if path.stat().st_size == 0:
        raise EmptyMediaError(f"image is empty (0 bytes): {path}")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            alpha = None
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                alpha = np.asarray(im)[:, :, 3].copy()
            rgb = np.asarray(im.convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise NotMediaError(f"cannot read {path} as an image: {e}") from e
    return rgb, alpha


class ImageSource:
    """One image or every image under a folder (sorted, recursive), one :class:`Frame` each.

    Frames own their tensors (images differ in size, so there is no shared ring); ``rel_path`` is
    the path relative to the folder (the file name for a single image) so sinks can mirror the tree.
    """

    def __init__(self, spec, *, device: torch.device | str = "cpu") -> None:
        p = Path(spec)
        if not p.exists():
            raise MediaNotFoundError(f"input not found: {p}")
        if p.is_dir():
            self.root = p
            self.paths = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
            if not self.paths:
                raise NotMediaError(f"folder {p} contains no images ({', '.join(IMAGE_EXTS)})")
            kind = "folder"
        else:
            self.root = p.parent
            self.paths = [p]
            kind = "image"
        self.device = torch.device(device)
        self.fallbacks: list[str] = []
        self.stats = {"decoded": 0, "corrupt_packets": 0, "corrupt_frames": 0, "dropped": 0, "reconnects": 0}
        self.aux = None
        self.live = False
        rgb, _ = load_image(self.paths[0])
        self._first = rgb
        self.metadata = StreamMetadata(
            width=rgb.shape[1], height=rgb.shape[0], pix_fmt="rgb24", codec="image", time_base=Fraction(1),
            frame_rate=None, frame_count=len(self.paths), kind=kind, color_range="full",
        )
        self._i = 0

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._i = len(self.paths)

    def __iter__(self) -> "ImageSource":
        return self

    def __next__(self) -> Frame:
        if self._i >= len(self.paths):
            raise StopIteration
        i = self._i
        self._i += 1
        path = self.paths[i]
        rgb, alpha = load_image(path)
        self.stats["decoded"] += 1
        img = torch.from_numpy(rgb).to(self.device)
        a = torch.from_numpy(alpha).to(self.device) if alpha is not None else None
        return Frame(index=i, pts=i, time_base=Fraction(1), time=float(i), _image=img,
                     rel_path=path.relative_to(self.root).as_posix(), alpha=a)


class ImageSink(_Sink):
    """Writes each frame as an image.

    ``target`` is a file (single image) or a folder: ``folder/<rel_path>`` keeps the input tree,
    with the extension replaced by ``format`` when given (``None`` keeps the input's format).
    ``quality`` (1-100) applies to jpeg/webp: higher is bigger and closer to the original.
    """

    def __init__(self, target, *, format: str | None = None, quality: int = 95, overwrite: bool = False) -> None:
        if not 1 <= quality <= 100:
            raise InvalidInputError(f"quality={quality} must be within 1..100")
        if format is not None and "." + format.lower().lstrip(".") not in IMAGE_EXTS:
            raise InvalidInputError(f"image format={format!r} is not one of {tuple(e[1:] for e in IMAGE_EXTS)}")
        self.target = Path(target)
        self.is_folder = self.target.suffix.lower() not in IMAGE_EXTS
        self.format = format
        self.quality = quality
        self.overwrite = overwrite
        self.frames_written = 0
        self.fallbacks: list[str] = []
        self.written: list[Path] = []

    def _path_for(self, frame: Frame) -> Path:
        if not self.is_folder:
            return self.target
        rel = Path(frame.rel_path or f"{frame.index:06d}.png")
        if self.format:
            rel = rel.with_suffix("." + self.format.lower().lstrip("."))
        return self.target / rel

    def write(self, frame: Frame) -> None:
        from PIL import Image

        path = self._path_for(frame)
        if path.exists() and not self.overwrite:
            raise OutputExistsError(f"output exists: {path}", hint="pass overwrite=True (--overwrite)")
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = frame.image.cpu().numpy()
        im = Image.fromarray(rgb, "RGB")
        if frame.alpha is not None:
            if path.suffix.lower() in _ALPHA_EXTS:
                im.putalpha(Image.fromarray(frame.alpha.cpu().numpy(), "L"))
            else:
                msg = f"{path.name}: {path.suffix} cannot store alpha; transparency dropped"
                self.fallbacks.append(msg)
                log.warning(msg)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        kwargs = {"quality": self.quality} if path.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
        try:
            im.save(tmp, **kwargs)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.written.append(path)
        self.frames_written += 1
        frame.release()

    def close(self) -> None:
        pass
