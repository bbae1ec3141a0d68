"""GPEN forward time per face, random weights, on the current device.

    .venv/bin/python bench/gpen_forward.py                       # 256 and 512, batch 1 and 4
    .venv/bin/python bench/gpen_forward.py --sizes 256 --repeats 5 --modconv batched grouped

For each size and batch: warm-up calls, then ``--repeats`` timed calls; prints the median time
per call and per face, and, measured side by side in the same run, the per-face ratio of each
batch to batch 1 and (with ``--modconv batched grouped``) of the official grouped-conv form of the
modulated convolution to our batched form. On CUDA the calls are synchronised and run under
``torch.inference_mode``; no CUDA graphs here (that is the runtime's benchmark).

CPU note: GPEN-512 takes 5-19 s per face on a 2-core CPU, so CPU defaults are 1 warm-up and
2 repeats; on CUDA 3 and 10.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from stream_gpen.models import gpen
from stream_gpen.models.registry import MODELS

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _grouped_forward(self: gpen.ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The official per-sample-weight form (grouped conv, groups=batch), for comparison only."""
    b, cin, h, w = x.shape
    s = self.modulation(style)
    weight = self.scale * self.weight[None] * s[:, None, :, None, None]  # [B, out, in, k, k]
    if self.demodulate:
        d = torch.rsqrt(weight.float().square().sum(dim=(2, 3, 4)) + 1e-8).to(weight.dtype)
        weight = weight * d[:, :, None, None, None]
    k = self.kernel_size
    x = x.reshape(1, b * cin, h, w)
    if self.upsample:
        wt = weight.transpose(1, 2).reshape(b * cin, self.out_channel, k, k)
        out = F.conv_transpose2d(x, wt, stride=2, padding=0, groups=b)
        out = out.reshape(b, self.out_channel, out.shape[2], out.shape[3])
        return self.blur(out)
    out = F.conv2d(x, weight.reshape(b * self.out_channel, cin, k, k), padding=self.padding, groups=b)
    return out.reshape(b, self.out_channel, h, w)


def _time(model, x, *, warmup: int, repeats: int, device: torch.device) -> list[float]:
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            sync()
            times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], choices=[256, 512, 1024, 2048],
                   help="registry configs gpen-bfr-SIZE to time")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default: 2 on CPU, 10 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls (default: 1 on CPU, 3 on CUDA)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--dtype", choices=sorted(_DTYPES), default="float32")
    p.add_argument("--channels-last", action="store_true", help="model and input in channels_last")
    p.add_argument("--modconv", nargs="+", choices=["batched", "grouped"], default=["batched"],
                   help="modulated-conv forms to time side by side (grouped = official form)")
    args = p.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cpu = device.type == "cpu"
    repeats = args.repeats if args.repeats is not None else (2 if cpu else 10)
    warmup = args.warmup if args.warmup is not None else (1 if cpu else 3)
    dtype = _DTYPES[args.dtype]
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"CPU, {torch.get_num_threads()} threads"
    print(f"# GPEN forward, random weights, {device} ({where}), {args.dtype}, "
          f"channels_last={args.channels_last}, warmup {warmup}, median of {repeats}; torch {torch.__version__}")
    print(f"{'model':<14} {'modconv':<8} {'batch':>5} {'ms/call':>10} {'ms/face':>10} {'face/s':>8} "
          f"{'vs b1/face':>10} {'vs batched':>10}")

    batched_forward = gpen.ModulatedConv2d.forward
    for size in args.sizes:
        name = f"gpen-bfr-{size}"
        model = gpen.random_generator(MODELS[name].config, seed=0, device=device, dtype=dtype)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        per_face: dict[tuple[str, int], float] = {}
        for form in args.modconv:
            gpen.ModulatedConv2d.forward = batched_forward if form == "batched" else _grouped_forward
            try:
                for batch in args.batches:
                    g = torch.Generator().manual_seed(batch)
                    x = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device, dtype)
                    if args.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    med = statistics.median(_time(model, x, warmup=warmup, repeats=repeats, device=device))
                    per_face[form, batch] = med / batch
                    b1 = per_face.get((form, args.batches[0]))
                    vs_b1 = f"{per_face[form, batch] / b1:.2f}" if b1 else "-"
                    ref = per_face.get(("batched", batch))
                    vs_batched = f"{per_face[form, batch] / ref:.2f}" if ref and form != "batched" else "-"
                    print(f"{name:<14} {form:<8} {batch:>5} {med * 1e3:>10.1f} {med / batch * 1e3:>10.1f} "
                          f"{batch / med:>8.2f} {vs_b1:>10} {vs_batched:>10}", flush=True)
            finally:
                gpen.ModulatedConv2d.forward = batched_forward
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
