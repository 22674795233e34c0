"""bench_model.py --mlx-lm llama: a Llama-3-8B built from mlx-lm's own
classes, piece by piece (embedding, each decoder layer, final norm and
output layer), each piece made, evaluated and dropped, with a progress bar.

Contestants, interleaved piece by piece so that drifts of the machine hit
both alike:
  stock: mlx-lm's constructor (its layers draw their stock MLX
         initial values) and mx.eval, plus set_dtype for 16-bit dtypes;
  fused: the same constructor (lazy: its stock values are never computed)
         then mfi.init_model(piece, mfi.recipes.llama(dtype=...)), mx.eval.
Measures seconds and MLX's peak memory (mx.get_peak_memory) per piece.
The recipe runs on each piece alone, so parameter paths (and hence
subsequences) are relative to the piece: speed, not bits, is measured.
"""

import math
import sys
import time

import mlx.core as mx
import mlx.nn as nn

import mlx_fused_init as mfi

LLAMA_3_8B = dict(
    model_type="llama", hidden_size=4096, num_hidden_layers=32, intermediate_size=14336,
    num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5, vocab_size=128256,
    rope_theta=500000.0, max_position_embeddings=8192, tie_word_embeddings=False,
)


def pieces(layers: int):
    """(name, maker) for every piece of the model, in order."""
    from mlx_lm.models import llama

    args = llama.ModelArgs(**{**LLAMA_3_8B, "num_hidden_layers": layers})
    h, v = args.hidden_size, args.vocab_size

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.RMSNorm(h, eps=args.rms_norm_eps)
            self.lm_head = nn.Linear(h, v, bias=False)

    out = [("embed_tokens", lambda: nn.Embedding(v, h))]
    out += [(f"layers.{i}", lambda: llama.TransformerBlock(args)) for i in range(layers)]
    out.append(("norm + lm_head", Head))
    return out


def progress(done: int, total: int, text: str) -> None:
    width = 30
    fill = width * done // total
    sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {text}   ")
    sys.stderr.flush()
    if done == total:
        sys.stderr.write("\n")


def run(layers: int, dtype, no_stock: bool) -> dict:
    def stock(make):
        m = make()
        if dtype != mx.float32:
            m.set_dtype(dtype)
        mx.eval(m.parameters())
        return m

    rules = mfi.recipes.llama(dtype=dtype)
    key = mx.random.key(0)

    def fused(make):
        m = mfi.init_model(make(), rules, key=key)
        mx.eval(m.parameters())
        return m

    contestants = {"fused recipes.llama": fused}
    if not no_stock:
        contestants["stock mlx-lm"] = stock
    # Warm up both paths on a small layer (threads, kernel selection).
    for fn in contestants.values():
        fn(lambda: nn.Linear(256, 256))
    seconds = {n: 0.0 for n in contestants}
    peak = {n: 0 for n in contestants}
    params = 0
    todo = pieces(layers)
    for i, (name, make) in enumerate(todo):
        for cname, fn in contestants.items():
            mx.synchronize()
            mx.clear_cache()
            mx.reset_peak_memory()
            t0 = time.perf_counter()
            m = fn(make)
            seconds[cname] += time.perf_counter() - t0
            peak[cname] = max(peak[cname], mx.get_peak_memory())
            n = sum(math.prod(p.shape) for _, p in _flat(m))
            del m
        params += n
        progress(i + 1, len(todo), name + ": " + ", ".join(
            f"{c} {s:.1f} s" for c, s in seconds.items()))
    return {c: {"seconds": seconds[c], "params": params, "peak_memory_bytes": peak[c]}
            for c in contestants}


def _flat(module):
    from mlx.utils import tree_flatten

    return tree_flatten(module.parameters())
