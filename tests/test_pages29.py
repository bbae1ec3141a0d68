"""Session 29 (mendc): a multi-page 16-bit TIFF was read in full again for every page (OpenCV's
multi-page decoder was given the whole file, read anew, to decode one page): an N-page file was
read about N+1 times. Its bytes are read once for all its later pages now; the pages are the same."""
from __future__ import annotations

import numpy as np
from PIL import Image


def _deep_album(path, face, pages: int):
    import tifffile

    a = np.asarray(face.resize((96, 64))).astype(np.uint16) * 257
    rng = np.random.default_rng(1)
    want = [a + rng.integers(0, 200, a.shape, dtype=np.uint16) for _ in range(pages)]
    with tifffile.TiffWriter(path) as w:
        for p in want:
            w.write(p, photometric="rgb")
    return want


def test_a_multi_page_16bit_tiff_is_read_in_full_a_constant_number_of_times(tmp_path, face, monkeypatch):
    from stream_gpen.io._image import ImageSource, _load_page

    pages = 6
    src = tmp_path / "album.tif"
    want = _deep_album(src, face, pages)
    with Image.open(src) as im:
        assert im.n_frames == pages and im.mode == "RGB"  # (Pillow alone: 8 bits)
    alone = [_load_page(src, k)[4] for k in range(1, pages)]  # (each page by itself, as before)
    reads: list[str] = []
    fromfile = np.fromfile

    def counted(file, *a, **k):
        reads.append(str(file))
        return fromfile(file, *a, **k)

    monkeypatch.setattr(np, "fromfile", counted)
    with ImageSource(src) as s:
        got = [f._hi.cpu().numpy() for f in s]
        assert not getattr(s, "_pages_cache", None)  # (the bytes are let go with the last page)
    assert len(got) == pages
    for k in range(pages):
        assert got[k].dtype == np.uint16 and np.array_equal(got[k], want[k]), k
    for k in range(1, pages):
        assert np.array_equal(got[k], alone[k - 1]), k
    assert reads.count(str(src)) <= 2, reads  # (the first page's, and once for all the others)
