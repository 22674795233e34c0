"""One rank of a simulated cluster: how long does rank r take to initialize
its shards of a whole Llama-3-405B or DeepSeek-V3-671B model, and how much
memory does it need?

Each model is built with mlx-lm's own classes from its published
configuration, twice and lazily (the stock weights are never evaluated, so
this costs nothing): once unsharded, as the template, and once sharded by
the model's own ``shard()`` method for a world of ``size`` ranks, of which
this process plays rank ``--rank`` (a stand-in group answers rank() and
size(); no other process runs). ``init_sharded(model, rules, rank=,
size=, full=template)`` then draws this rank's shards, layer by layer with a
progress bar; each layer is evaluated, timed, spot-checked and freed (one
machine cannot hold a 405B model's 1/8), so the peak is one layer's shards.

Modes: ``tp`` is mlx-lm's ``shard()`` (tensor parallelism within each
layer; for DeepSeek-V3 the routed experts too are cut along their hidden
axis); ``tp+ep`` (DeepSeek-V3 only) keeps mlx-lm's attention and dense
sharding but gives each rank whole experts, [r*E/N, (r+1)*E/N).

The spot check draws, for every parameter, a run of up to 256 elements of
the *unsharded* tensor alone (``full_shape=``/``start=``) at a position
inside this rank's shard, and requires the same bits.

Stock MLX cannot draw a shard: its cost is the full weight then a slice,
every rank doing the whole model's work. That is measured per element on
one 4096 x 4096 weight of each kind here (same dtype, same run) and
multiplied out, as is this package's own full-then-slice cost.

    python benchmarks/bench_cluster.py                       # everything (~10 min on 2 cores)
    python benchmarks/bench_cluster.py --models llama-405b --sizes 64 --layers 4

Writes benchmarks/results/bench_cluster.{json,md} (full runs only).
"""

import argparse
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.nn.layers.distributed import shard_inplace
from mlx.utils import tree_flatten, tree_map

import mlx_fused_init as mfi
from mlx_fused_init.model import batch_dims_of, parse_rules, rule_for

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, fmt, interleave, machine, warm_memory, write_json  # noqa: E402

# Published configurations: Llama 3.1 405B (meta-llama/Llama-3.1-405B,
# config.json) and DeepSeek-V3 (deepseek-ai/DeepSeek-V3, config.json; the
# multi-token-prediction module is not part of mlx-lm's model).
LLAMA_405B = dict(
    model_type="llama", hidden_size=16384, num_hidden_layers=126, intermediate_size=53248,
    num_attention_heads=128, num_key_value_heads=8, rms_norm_eps=1e-5, vocab_size=128256,
    rope_theta=500000.0, tie_word_embeddings=False)
DEEPSEEK_V3 = dict(
    model_type="deepseek_v3", vocab_size=129280, hidden_size=7168, intermediate_size=18432,
    moe_intermediate_size=2048, num_hidden_layers=61, num_attention_heads=128,
    num_key_value_heads=128, n_shared_experts=1, n_routed_experts=256,
    routed_scaling_factor=2.5, kv_lora_rank=512, q_lora_rank=1536, qk_rope_head_dim=64,
    v_head_dim=128, qk_nope_head_dim=128, topk_method="noaux_tc", n_group=8, topk_group=4,
    num_experts_per_tok=8, moe_layer_freq=1, first_k_dense_replace=3, rms_norm_eps=1e-6,
    rope_theta=10000.0)

# Paper estimate for Apple GPUs: the kernel writes each element once, so it
# cannot beat memory bandwidth (M-series Max: ~400-546 GB/s, Ultra ~800).
APPLE_GPU_BANDWIDTH = {"M3 Max (400 GB/s)": 400e9, "M2 Ultra (800 GB/s)": 800e9}


class Rank:
    """A stand-in for mx.distributed.Group: MLX's and mlx-lm's sharding code
    asks a group for rank() and size() only."""

    def __init__(self, rank, size):
        self._rank, self._size = rank, size

    def rank(self):
        return self._rank

    def size(self):
        return self._size


def build(arch):
    if arch == "llama-405b":
        from mlx_lm.models import llama

        return llama.Model(llama.ModelArgs(**LLAMA_405B))
    from mlx_lm.models import deepseek_v3

    return deepseek_v3.Model(deepseek_v3.ModelArgs(**DEEPSEEK_V3))


def shard_model(model, mode, group):
    model.shard(group)
    if mode == "tp+ep":  # whole experts per rank instead of cut experts
        for layer in model.model.layers:
            switch = getattr(layer.mlp, "switch_mlp", None)
            if switch is None:
                continue
            for name in ("gate_proj", "up_proj", "down_proj"):
                proj = getattr(switch, name)
                # Undo mlx-lm's cut (shapes only: a fresh lazy layer), then
                # keep experts [r*E/N, (r+1)*E/N).
                e, o, i = proj.weight.shape
                o, i = (o * group.size(), i) if name != "down_proj" else (o, i * group.size())
                setattr(switch, name, type(proj)(i, o, e, bias=False))
                shard_inplace(getattr(switch, name), lambda path, w: 0, group=group)
    return model


def sections(model):
    """Path prefixes in drawing order: the embedding, each layer, the rest."""
    yield "model.embed_tokens."
    for i in range(len(model.model.layers)):
        yield f"model.layers.{i}."
    yield "model.norm."
    yield "lm_head."


def spot_check(model, tmods, tparams, rules, prefix, rank, size, key, rng):
    """Up to 256 elements of every parameter under ``prefix``, drawn alone
    from the unsharded tensor (``tmods``, ``tparams``: the template's modules
    and parameters by path); returns (parameters, elements) checked."""
    n_params = n_elems = 0
    for path, shard_w in tree_flatten(model.parameters()):
        if not path.startswith(prefix):
            continue
        owner = tmods.get(path.rsplit(".", 1)[0])
        init = rule_for(rules, path, owner)
        if init is None or shard_w.size == 0:
            continue
        fshape = tuple(tparams[path].shape)
        sshape = tuple(shard_w.shape)
        axes = [a for a in range(len(fshape)) if fshape[a] != sshape[a]]
        offset = [0] * len(fshape)
        if axes:
            offset[axes[0]] = rank * sshape[axes[0]]
        pos = [int(rng.integers(0, d)) for d in sshape]
        run = min(256, sshape[-1] - pos[-1])
        pos_full = [p + o for p, o in zip(pos, offset)]
        b = batch_dims_of(owner, tparams[path])
        alone = init(mx.zeros((1,) * (len(fshape) - 1) + (run,)), key=key,
                     subsequence=mfi.param_subsequence(path), full_shape=fshape, start=pos_full,
                     **({"batch_dims": b} if b else {}))
        index = tuple(slice(p, p + 1) for p in pos[:-1]) + (slice(pos[-1], pos[-1] + run),)
        if not mx.array_equal(alone, shard_w[index]).item():
            raise AssertionError(f"spot check failed: {path} at {pos_full}")
        n_params += 1
        n_elems += run
    return n_params, n_elems


def progress(done, total, label, t):
    width = 30
    fill = int(width * done / total)
    sys.stderr.write(f"\r  [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {label:<22} {t:7.1f} s")
    sys.stderr.flush()


def run_one(arch, mode, size, rank, dtype, max_sections, key):
    template = build(arch)
    model = shard_model(build(arch), mode, Rank(rank, size))
    rules = rules_as(dtype)
    parsed = parse_rules(rules, "bench_cluster")
    secs = list(sections(model))[:max_sections] if max_sections else list(sections(model))
    rng = np.random.default_rng(rank)
    t_total = 0.0
    peak = layer_peak = 0
    shard_bytes = full_elems = replicated = 0
    largest_layer_shard = largest_layer_full = 0
    checked = [0, 0]
    tparams = dict(tree_flatten(template.parameters()))
    tmods = dict(template.named_modules())
    for n, prefix in enumerate(secs, 1):
        in_section = lambda path, module, param, p=prefix: path.startswith(p)  # noqa: E731
        mx.synchronize()
        mx.reset_peak_memory()
        base = mx.get_active_memory()
        t0 = time.perf_counter()
        mfi.init_sharded(model, rules, key=key, rank=rank, size=size,
                         full=template, filter=in_section)
        arrays = [v for p, v in tree_flatten(model.parameters()) if p.startswith(prefix)]
        mx.eval(arrays)
        t_total += time.perf_counter() - t0
        used = mx.get_peak_memory() - base
        peak = max(peak, used)
        if prefix.startswith("model.layers."):
            layer_peak = max(layer_peak, used)
        nbytes = sum(a.nbytes for a in arrays)
        full_n = sum(v.size for p, v in tparams.items() if p.startswith(prefix))
        full_elems += full_n
        shard_bytes += nbytes
        # Transformer layers only: mlx-lm replicates the embedding and the
        # output head, so there every rank holds the full tensor.
        if prefix.startswith("model.layers.") and nbytes > largest_layer_shard:
            largest_layer_shard, largest_layer_full = nbytes, full_n * dtype.size
        elif not prefix.startswith("model.layers."):
            replicated = max(replicated, nbytes)
        c = spot_check(model, tmods, tparams, parsed, prefix, rank, size, key, rng)
        checked[0] += c[0]
        checked[1] += c[1]
        # Free this section's shards: a real rank would keep them.
        del arrays
        section = model
        for part in prefix.strip(".").split("."):
            section = section[int(part)] if part.isdigit() else getattr(section, part)
        section.update(tree_map(lambda _: mx.zeros((0,), dtype=dtype), section.parameters()))
        progress(n, len(secs), prefix.strip("."), t_total)
    sys.stderr.write("\n")
    return {
        "model": arch, "mode": mode, "world_size": size, "rank": rank, "dtype": str(dtype),
        "sections": len(secs), "full_params": int(full_elems),
        "shard_params": int(shard_bytes // dtype.size), "seconds": t_total,
        "peak_mib": peak / 2**20, "layer_peak_mib": layer_peak / 2**20,
        "largest_layer_shard_mib": largest_layer_shard / 2**20,
        "largest_layer_full_mib": largest_layer_full / 2**20,
        "replicated_mib": replicated / 2**20,
        "spot_checked_params": checked[0], "spot_checked_elements": checked[1],
    }


_DTYPE = {"bfloat16": mx.bfloat16, "float16": mx.float16, "float32": mx.float32}


def rules_as(dtype):
    """The published Llama recipe (``recipes.llama()``) in ``dtype``; the
    same law serves DeepSeek-V3 (HF's DeepseekV3 ``_init_weights``:
    normal(0, initializer_range) for every linear and embedding weight,
    experts included; ones for norms)."""
    recipes = getattr(mfi, "recipes", None)
    if recipes is not None:
        try:
            return recipes.llama(dtype=dtype)
        except TypeError:
            return recipes.llama()
    return [("*norm*", mfi.ones(dtype)), ("*.weight", mfi.normal(0.0, 0.02, dtype)),
            ("*", mfi.zeros(dtype))]


def per_element_costs(dtype, key):
    """Seconds per element of a full 4096 x 4096 normal(0, 0.02) draw: this
    package and stock MLX, interleaved in this run."""
    shape = (4096, 4096)
    n = shape[0] * shape[1]
    fused = mfi.normal(0.0, 0.02, dtype)
    stock = nn.init.normal(0.0, 0.02, dtype)
    times = interleave({
        "fused": lambda: mx.eval(fused(mx.zeros(shape), key=key)),
        "stock": lambda: mx.eval(stock(mx.zeros(shape))),
    }, reps=3)
    return {k: min(v) / n for k, v in times.items()}


def markdown(results, costs, info, dtype):
    lines = [
        "# One rank of a simulated cluster",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['system']}; MLX {info['mlx']}, "
        f"kernel `{info['cpu_kernel']}`, {info['threads']} threads. dtype {dtype}. Command: "
        "`python benchmarks/bench_cluster.py`.",
        "",
        "Each row: rank 0 of a world of N ranks, run alone; mlx-lm's model classes and "
        "`shard()`; `init_sharded(..., full=template)` with `recipes.llama()`'s law, layer by "
        "layer (each layer evaluated, spot-checked against windows of the unsharded tensors, "
        "then freed). At N = 256, mlx-lm's shard() cuts Llama's attention below one head per "
        "rank (the shapes still divide, so it is measured as the per-rank work) and cannot shard "
        "DeepSeek-V3 (128 heads). Peak memory (MLX's, above what was held before): overall it is the "
        "embedding or output head, which mlx-lm replicates on every rank; for a transformer "
        "layer it is that layer's shards. Stock: full weights then slice, every rank doing the whole model "
        f"(measured per element here: stock {costs['stock'] * 1e9:.2f} ns, fused "
        f"{costs['fused'] * 1e9:.2f} ns).",
        "",
        "| model | mode | N | shard params | seconds | M params/s | peak MiB: all / a layer "
        "| largest layer MiB: shard / full "
        "| spot-checked | stock full+slice (est.) | fused full+slice (est.) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['mode']} | {r['world_size']} | {r['skipped']} "
                         "| | | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['world_size']} | {r['shard_params'] / 1e9:.2f} B "
            f"| {r['seconds']:.1f} | {fmt(r['shard_params'] / r['seconds'] / 1e6, 0)} "
            f"| {r['peak_mib']:.0f} / {r['layer_peak_mib']:.0f} | {r['largest_layer_shard_mib']:.0f} / "
            f"{r['largest_layer_full_mib']:.0f} | {r['spot_checked_elements']:,} "
            f"| {r['full_params'] * costs['stock'] / 3600:.1f} h "
            f"| {r['full_params'] * costs['fused'] / 60:.1f} min |")
    lines += ["", "On paper, an Apple GPU per rank (bandwidth-bound lower bound: the shard's bytes "
              "written once):", "", "| model | mode | N | " + " | ".join(APPLE_GPU_BANDWIDTH) + " |",
              "|---|---|---:|" + "---:|" * len(APPLE_GPU_BANDWIDTH)]
    for r in results:
        if "skipped" in r:
            continue
        b = r["shard_params"] * _DTYPE[r["dtype"].split(".")[-1]].size
        lines.append(f"| {r['model']} | {r['mode']} | {r['world_size']} | " + " | ".join(
            f"{b / bw * 1e3:.0f} ms" for bw in APPLE_GPU_BANDWIDTH.values()) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["llama-405b", "deepseek-v3-671b"],
                    choices=["llama-405b", "deepseek-v3-671b"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[8, 64, 256])
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--dtype", default="bfloat16", choices=sorted(_DTYPE))
    ap.add_argument("--layers", type=int, default=0,
                    help="only the first N sections (embedding, layers...): a quick look")
    args = ap.parse_args()
    dtype = _DTYPE[args.dtype]
    key = mx.random.key(0)
    info = machine()
    warm_memory(1.0)
    costs = per_element_costs(dtype, key)
    print(f"per element: fused {costs['fused'] * 1e9:.2f} ns, stock {costs['stock'] * 1e9:.2f} ns "
          f"({costs['stock'] / costs['fused']:.1f}x)")
    results = []
    for arch in args.models:
        modes = ["tp", "tp+ep"] if arch.startswith("deepseek") else ["tp"]
        for mode in modes:
            for size in args.sizes:
                heads = (LLAMA_405B if arch.startswith("llama") else DEEPSEEK_V3)["num_attention_heads"]
                if arch.startswith("deepseek") and size > heads:
                    # mlx-lm's shard() slices DeepSeek's per-head weights
                    # (embed_q, unembed_out) by whole heads: 0 heads per rank.
                    note = f"mlx-lm's shard() needs N <= {heads} (attention heads)"
                    print(f"{arch} {mode} N={size}: skipped, {note}")
                    results.append({"model": arch, "mode": mode, "world_size": size, "skipped": note})
                    continue
                print(f"{arch} {mode} N={size} rank {args.rank}:")
                r = run_one(arch, mode, size, args.rank, dtype, args.layers, key)
                results.append(r)
                print(f"  {r['shard_params'] / 1e9:.2f} B params in {r['seconds']:.1f} s, "
                      f"peak {r['peak_mib']:.0f} MiB (replicated embedding/head "
                      f"{r['replicated_mib']:.0f} MiB; largest layer shard "
                      f"{r['largest_layer_shard_mib']:.0f} MiB, full layer "
                      f"{r['largest_layer_full_mib']:.0f} MiB), spot-checked "
                      f"{r['spot_checked_elements']:,} elements of {r['spot_checked_params']} tensors")
    md = markdown(results, costs, info, args.dtype)
    print(md)
    if not args.layers:
        write_json("bench_cluster", {"machine": info, "per_element_s": costs, "results": results})
        (RESULTS / "bench_cluster.md").write_text(md)


if __name__ == "__main__":
    main()
