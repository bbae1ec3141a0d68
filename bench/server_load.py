#!/usr/bin/env python3
"""Load test of ``POST /v1/images:enhance``: dynamic batching vs none, side by side, same run.

For each configuration a fresh server process (uvicorn on 127.0.0.1, tiny random-weight GPEN +
the real MobileNet detector unless ``--model`` says otherwise) is started; ``--clients`` threads
post real face photos from ``../shared/data/faces/whole`` for ``--duration`` seconds (each client
one request at a time, so the load is bounded). Prints requests/s, p50/p99 latency, refusals
(clean 429/503 with Retry-After), errors (anything else: must be 0), images per model call, and
the server's RSS before and after. Then the ratios batched / unbatched.

    .venv/bin/python bench/server_load.py --clients 8 --duration 15

Numbers depend on the machine; on a shared 2-core CPU the detector (run per image) dominates
and batching mostly helps the GPEN part.
"""
from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAM_GPEN_SHARED", REPO.parent / "shared"))


# --- server child ------------------------------------------------------------------------------------
def serve(args) -> None:
    import uvicorn

    from stream_gpen import Enhancer
    from stream_gpen.models.gpen import TINY256_CONFIG, TINY_CONFIG, random_generator
    from stream_gpen.server import ServerConfig, create_app

    cfg = {"tiny": TINY_CONFIG, "tiny256": TINY256_CONFIG}.get(args.model)
    model = random_generator(cfg) if cfg is not None else args.model
    enh = Enhancer(model, device=args.device, detector_weights=SHARED / "weights" / "detection_mobilenet0.25_Final.pth",
                   detect_size=args.detect_size, batch_size=16)
    app = create_app(enh, config=ServerConfig(max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
                                              max_queue=args.max_queue, request_timeout_s=60))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


# --- load generator ----------------------------------------------------------------------------------
def photos(max_side: int, mixed: bool) -> list[bytes]:
    """The shared face photos as JPEG bodies: centre-cropped to one square size, or (``mixed``)
    only downscaled, keeping their own shapes (then only same-shape requests can batch)."""
    from PIL import Image, ImageOps

    out = []
    for p in sorted((SHARED / "data" / "faces" / "whole").iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        im = Image.open(p).convert("RGB")
        if mixed:
            im.thumbnail((max_side, max_side))
        else:
            im = ImageOps.fit(im, (max_side, max_side))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    if not out:
        raise SystemExit(f"no photos under {SHARED / 'data/faces/whole'}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(name: str, extra: list[str], args, images: list[bytes]) -> dict:
    import httpx
    import psutil

    port = free_port()
    cmd = [sys.executable, __file__, "--serve", "--port", str(port), "--model", args.model, "--device", args.device,
           "--detect-size", str(args.detect_size), "--max-queue", str(args.max_queue)] + extra
    proc = subprocess.Popen(cmd, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{name}: server exited with {proc.returncode}")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise SystemExit(f"{name}: server did not start")
            time.sleep(0.3)
        ps = psutil.Process(proc.pid)
        # Warm-up: first calls allocate buffers; not counted.
        with httpx.Client(timeout=120) as c:
            for im in images[:2]:
                c.post(base + "/v1/images:enhance", content=im, headers={"Content-Type": "image/jpeg"})
        rss_before = ps.memory_info().rss

        lat: list[float] = []
        codes: dict[str, int] = {}
        lock = threading.Lock()
        stop_at = time.monotonic() + args.duration

        def client(i: int) -> None:
            k = i
            with httpx.Client(timeout=120) as c:
                while time.monotonic() < stop_at:
                    body = images[k % len(images)]
                    k += 1
                    t0 = time.perf_counter()
                    try:
                        r = c.post(base + "/v1/images:enhance", content=body, headers={"Content-Type": "image/jpeg"})
                        code = str(r.status_code)
                        ok = r.status_code == 200 and r.content[:2] == b"\xff\xd8"
                        if r.status_code in (429, 503) and "retry-after" not in r.headers:
                            code += "-no-retry-after"
                        elif r.status_code == 200 and not ok:
                            code = "200-bad-body"
                    except httpx.HTTPError as e:
                        code, ok = type(e).__name__, False
                    dt = time.perf_counter() - t0
                    with lock:
                        codes[code] = codes.get(code, 0) + 1
                        if ok:
                            lat.append(dt)
                    if code in ("429", "503"):
                        # A well-behaved client waits as told (bounded so the run ends on time).
                        time.sleep(min(float(r.headers["retry-after"]), max(0.0, stop_at - time.monotonic())))

        t_start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t_start
        rss_after = ps.memory_info().rss
        metrics = httpx.get(base + "/metrics", timeout=10).text
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    def metric(prefix: str) -> float:
        return next((float(l.split()[-1]) for l in metrics.splitlines() if l.startswith(prefix)), float("nan"))

    calls = metric("stream_gpen_batch_images_count")
    images_done = metric("stream_gpen_batch_images_sum")
    lat.sort()
    ok = len(lat)
    refused = sum(v for k, v in codes.items() if k in ("429", "503"))
    errors = sum(v for k, v in codes.items() if k not in ("200", "429", "503"))
    return {
        "name": name, "ok": ok, "refused": refused, "errors": errors, "codes": codes,
        "rps": ok / wall, "p50": statistics.median(lat) * 1e3 if lat else float("nan"),
        "p99": lat[min(ok - 1, int(0.99 * ok))] * 1e3 if lat else float("nan"),
        "per_call": images_done / calls if calls else float("nan"),
        "rss_before": rss_before / 2**20, "rss_after": rss_after / 2**20,
        "faces": metric("stream_gpen_faces_restored_total"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (each: one request at a time)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of load per configuration")
    ap.add_argument("--model", default="tiny", help="tiny (64 px random), tiny256, or a registry name/checkpoint")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--detect-size", type=int, default=320)
    ap.add_argument("--max-side", type=int, default=512, help="photos are cropped/downscaled to this side")
    ap.add_argument("--mixed", action="store_true", help="keep each photo's own shape (default: one square size)")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--batch-wait-ms", type=float, default=10.0)
    ap.add_argument("--max-queue", type=int, default=64)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return 0

    images = photos(args.max_side, args.mixed)
    shape = f"own shapes, long side <= {args.max_side}" if args.mixed else f"{args.max_side}x{args.max_side}"
    print(f"{args.clients} clients x {args.duration:g} s, {len(images)} photos ({shape}), "
          f"model {args.model} on {args.device}, {os.cpu_count()} CPUs")
    runs = [
        run_config("no batching", ["--max-batch", "1", "--batch-wait-ms", "0"], args, images),
        run_config(f"dynamic batching (<= {args.max_batch}, {args.batch_wait_ms:g} ms)",
                   ["--max-batch", str(args.max_batch), "--batch-wait-ms", str(args.batch_wait_ms)], args, images),
    ]
    print(f"{'config':38s} {'req/s':>7s} {'p50 ms':>8s} {'p99 ms':>8s} {'ok':>5s} {'429/503':>7s} {'errors':>6s} "
          f"{'img/call':>8s} {'faces':>6s} {'RSS MiB before->after':>22s}")
    for r in runs:
        print(f"{r['name']:38s} {r['rps']:7.2f} {r['p50']:8.0f} {r['p99']:8.0f} {r['ok']:5d} {r['refused']:7d} "
              f"{r['errors']:6d} {r['per_call']:8.2f} {r['faces']:6.0f} "
              f"{r['rss_before']:10.0f} -> {r['rss_after']:.0f}")
        if r["errors"]:
            print(f"  status codes: {r['codes']}")
    a, b = runs
    print(f"batched / unbatched: req/s x{b['rps'] / a['rps']:.2f}, p50 x{b['p50'] / a['p50']:.2f}, "
          f"p99 x{b['p99'] / a['p99']:.2f}")
    if b["per_call"] < 1.2:
        print("  (the batched server made almost no batches this run: the ratio is the machine's noise, not "
              "batching; raise --clients or --duration)")
    return 1 if any(r["errors"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
