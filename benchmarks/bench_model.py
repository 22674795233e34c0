"""Initializing a Llama-2-7B-shaped model: fused vs stock MLX (and PyTorch
when installed).

The default workload is one decoder layer plus the token embedding: q, k, v,
o (4096x4096), gate, up (11008x4096), down (4096x11008) and the embedding
(32000x4096), 333 M parameters, every weight drawn with glorot_normal and
evaluated as soon as it is made (as a model constructor does). ``--layers
32`` does the whole model, layer by layer, with progress output; weights
are dropped after each layer unless ``--keep`` (float32 7B weights need
27 GB).

    python benchmarks/bench_model.py
    python benchmarks/bench_model.py --layers 32 --dtype bfloat16

Writes benchmarks/results/bench_model.json.
"""

import argparse
import math
import sys
import time

import mlx.core as mx
import mlx.nn.init as stock_init

import mlx_fused_init as mfi
from _common import machine, optional, write_json

HIDDEN, FFN, VOCAB = 4096, 11008, 32000
LAYER = [
    ("q_proj", (HIDDEN, HIDDEN)),
    ("k_proj", (HIDDEN, HIDDEN)),
    ("v_proj", (HIDDEN, HIDDEN)),
    ("o_proj", (HIDDEN, HIDDEN)),
    ("gate_proj", (FFN, HIDDEN)),  # MLX Linear weights are (out, in)
    ("up_proj", (FFN, HIDDEN)),
    ("down_proj", (HIDDEN, FFN)),
]
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def mlx_maker(init_factory, dtype):
    init = init_factory(dtype)

    def make(shape):
        w = init(mx.zeros(shape, dtype=dtype))
        mx.eval(w)
        return w

    return make


def torch_maker(dtype_name):
    torch = optional("torch")
    if torch is None:
        return None
    tdt = getattr(torch, dtype_name)

    def make(shape):
        return torch.nn.init.xavier_normal_(torch.empty(shape, dtype=tdt))

    return make


def warm_memory(gigabytes: float = 2.0) -> None:
    """Touch and free some memory first: on a VM, the first use of fresh
    memory is slower, and that would penalize whichever contestant runs
    first."""
    import numpy as np

    np.ones(int(gigabytes * 2**30) // 8, dtype=np.float64).sum()


def init_model(makers: dict, layers: int, keep: bool, progress: bool) -> tuple:
    """Make every weight with every contestant, interleaved weight by weight
    so that drifts of the machine hit all alike. Returns name -> seconds and
    the parameter count."""
    seconds = {name: 0.0 for name in makers}
    kept = {name: [] for name in makers}
    shapes = [(VOCAB, HIDDEN)] + [shape for _ in range(layers) for _, shape in LAYER]
    params = 0
    for i, shape in enumerate(shapes):
        for name, make in makers.items():
            t0 = time.perf_counter()
            w = make(shape)
            seconds[name] += time.perf_counter() - t0
            if keep:
                kept[name].append(w)
            del w
        params += math.prod(shape)
        layer_done = i > 0 and i % len(LAYER) == 0
        if progress and layer_done:
            print(f"  layer {i // len(LAYER)}/{layers}, {params / 1e9:.2f} B params: "
                  + ", ".join(f"{n} {t:.1f} s" for n, t in seconds.items()), flush=True)
    return seconds, params


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dtype", choices=list(DTYPES), default="float32")
    p.add_argument("--keep", action="store_true", help="keep all weights alive")
    p.add_argument("--no-stock", action="store_true", help="skip stock MLX (slow for 32 layers)")
    args = p.parse_args(argv)
    dtype = DTYPES[args.dtype]
    meta = machine()
    print(f"{meta['cpu']} ({meta['cores']} cores), MLX {meta['mlx']}, {args.layers} layer(s) "
          f"+ embedding, {args.dtype}")
    makers = {"fused": mlx_maker(mfi.glorot_normal, dtype)}
    if not args.no_stock:
        makers["stock"] = mlx_maker(stock_init.glorot_normal, dtype)
    tm = torch_maker(args.dtype)
    if tm is not None:
        makers["pytorch"] = tm
    # Warm up each path on one small weight (thread start, kernel selection).
    for make in makers.values():
        make((256, 256))
    warm_memory()
    seconds, params = init_model(makers, args.layers, args.keep, args.layers > 1)
    results = {}
    for name, secs in seconds.items():
        results[name] = {"seconds": secs, "params": params}
        print(f"{name:8s} {secs:8.2f} s   {params / secs / 1e6:8.1f} M params/s", flush=True)
    if "stock" in results:
        for name, r in results.items():
            r["fraction_of_stock_time"] = r["seconds"] / results["stock"]["seconds"]
        print(f"fused takes {results['fused']['fraction_of_stock_time']:.3f} of stock's time "
              f"({1 / results['fused']['fraction_of_stock_time']:.1f}x faster)")
    if "pytorch" in results:
        print(f"fused is {results['pytorch']['seconds'] / results['fused']['seconds']:.2f}x PyTorch")
    command = "python benchmarks/bench_model.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    name = "bench_model" if args.layers == 1 else f"bench_model_{args.layers}layers"
    write_json(name, {"machine": meta, "command": command, "layers": args.layers,
                      "dtype": args.dtype, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
