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
    python benchmarks/bench_model.py --init-model   # nn.Module + init_model
    python benchmarks/bench_model.py --mlx-lm llama  # mlx-lm's Llama-3-8B, recipes.llama()

Writes benchmarks/results/bench_model.json (--mlx-lm: bench_model_mlx_lm_llama*.json,
see _mlx_lm_model.py).
"""

import argparse
import math
import os
import sys
import time

import mlx.core as mx
import mlx.nn.init as stock_init

import mlx_fused_init as mfi
from _common import machine, optional, warm_memory, write_json

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


def llama_model(layers: int, dtype):
    """A Llama-2-7B-shaped nn.Module (embedding, attention and MLP
    projections, RMSNorm), built lazily: its stock initial values are never
    evaluated before they are replaced."""
    import mlx.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            for name, (out_dims, in_dims) in LAYER:
                setattr(self, name, nn.Linear(in_dims, out_dims, bias=False))
            self.input_norm = nn.RMSNorm(HIDDEN)
            self.post_norm = nn.RMSNorm(HIDDEN)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
            self.layers = [Block() for _ in range(layers)]
            self.norm = nn.RMSNorm(HIDDEN)

    model = Model()
    model.set_dtype(dtype)
    return model


def whole_model(args, dtype) -> dict:
    """init_model on an nn.Module against the stock way: every >= 2-D
    parameter replaced by stock glorot_normal, then one mx.eval."""
    from mlx.utils import tree_flatten, tree_unflatten

    def fused(model):
        mfi.init_model(model, mfi.glorot_normal(dtype), key=mx.random.key(0))

    def stock(model):
        init = stock_init.glorot_normal(dtype)
        new = [(k, init(v)) for k, v in tree_flatten(model.parameters()) if v.ndim >= 2]
        model.update(tree_unflatten(new))

    results = {}
    warm_memory()
    for name, fn in (("fused init_model", fused), ("stock mlx.nn.init", stock)):
        if name.startswith("stock") and args.no_stock:
            continue
        model = llama_model(args.layers, dtype)
        t0 = time.perf_counter()
        fn(model)
        mx.eval(model.parameters())
        secs = time.perf_counter() - t0
        params = sum(v.size for _, v in tree_flatten(model.parameters()))
        results[name] = {"seconds": secs, "params": params}
        print(f"{name:18s} {secs:8.2f} s   {params / secs / 1e6:8.1f} M params/s", flush=True)
        del model
    if len(results) == 2:
        f, s = results["fused init_model"]["seconds"], results["stock mlx.nn.init"]["seconds"]
        print(f"init_model takes {f / s:.3f} of stock's time ({s / f:.1f}x faster)")
    return results


def mlx_lm_model(args, dtype, meta, command, argv) -> int:
    import _mlx_lm_model

    layers = args.layers if "--layers" in (argv if argv is not None else sys.argv[1:]) else 32
    print(f"{meta['cpu']} ({meta['cores']} cores, CPU kernel {meta['cpu_kernel']}), MLX "
          f"{meta['mlx']}: mlx-lm Llama-3-8B config, {layers} layer(s), {args.dtype}")
    load_before = os.getloadavg()  # other work on the machine skews both contestants
    results = _mlx_lm_model.run(layers, dtype, args.no_stock)
    for name, r in results.items():
        print(f"{name:20s} {r['seconds']:8.2f} s  {r['params'] / r['seconds'] / 1e6:8.1f} M params/s"
              f"  peak {r['peak_memory_bytes'] / 2**30:6.2f} GiB", flush=True)
    if len(results) == 2:
        f, s = results["fused recipes.llama"], results["stock mlx-lm"]
        print(f"fused takes {f['seconds'] / s['seconds']:.3f} of stock's time "
              f"({s['seconds'] / f['seconds']:.1f}x faster), peak memory "
              f"{f['peak_memory_bytes'] / s['peak_memory_bytes']:.2f} of stock's")
    suffix = "" if layers == 32 else f"_{layers}layers"
    write_json(f"bench_model_mlx_lm_llama_{args.dtype}{suffix}", {
        "machine": meta, "command": command, "layers": layers, "dtype": args.dtype,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "results": results})
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dtype", choices=list(DTYPES), default="float32")
    p.add_argument("--keep", action="store_true", help="keep all weights alive")
    p.add_argument("--no-stock", action="store_true", help="skip stock MLX (slow for 32 layers)")
    p.add_argument("--init-model", action="store_true",
                   help="time mlx_fused_init.init_model on an nn.Module instead")
    p.add_argument("--mlx-lm", choices=["llama"],
                   help="mlx-lm's own Llama-3-8B classes (--layers defaults to 32): stock "
                        "construction against construction + recipes.llama(), layer by layer")
    args = p.parse_args(argv)
    dtype = DTYPES[args.dtype]
    meta = machine()
    command = "python benchmarks/bench_model.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    if args.mlx_lm:
        return mlx_lm_model(args, dtype, meta, command, argv)
    if args.init_model:
        results = whole_model(args, dtype)
        write_json(f"bench_init_model_{args.layers}layers", {
            "machine": meta, "command": command, "layers": args.layers,
            "dtype": args.dtype, "results": results})
        return 0
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
    name = "bench_model" if args.layers == 1 else f"bench_model_{args.layers}layers"
    write_json(name, {"machine": meta, "command": command, "layers": args.layers,
                      "dtype": args.dtype, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
