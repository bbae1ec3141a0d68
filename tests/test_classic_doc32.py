"""bench/classic_eval.py rewrites docs/classic.md from "How it was measured" on and keeps the page's
hand-written head (what classic is, its options, its Face size section) as it is."""
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("classic_eval32", REPO / "bench" / "classic_eval.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (its dataclasses look their module up)
    spec.loader.exec_module(mod)
    return mod


def test_the_hand_written_head_is_kept(tmp_path):
    mod = _module()
    doc = tmp_path / "classic.md"
    doc.write_text("# Title\n\nHand-written intro.\n\n## Face size: crop 512\n\nKept words.\n\n"
                   "## How it was measured\n\nold generated text\n")
    v0, g = "classic (nlm, default)", "classic guided"
    means = {v0: (30.0, 0.9), g: (29.0, 0.88)}
    mod.write_doc(doc, [SimpleNamespace(name="face_a")], [("noise", {v0: (30.0, 0.9), g: (29.0, 0.88)}, (25.0, 0.8))],
                  (25.0, 0.8), means, {v0: 100.0, g: 50.0}, "cpu", "noise on `face_a`")
    text = doc.read_text()
    assert text.startswith("# Title\n\nHand-written intro.\n\n## Face size: crop 512\n\nKept words.\n\n## How it was measured\n")
    assert "old generated text" not in text and "`face_a`" in text
    assert text.count("## How it was measured") == 1
