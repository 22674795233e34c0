"""Every architecture mlx-lm ships, as a test case and as a table.

For each module of ``mlx_lm.models`` that defines ``Model`` and
``ModelArgs``: a tiny configuration generated from the dataclass fields of
the module (``ModelArgs`` and the text/args classes it nests) with small
sizes, plus the ``OVERRIDES`` below; then

* **init**: ``init_model`` with each recipe (``llama``, ``gpt2``,
  ``olmo2``) draws every floating parameter a rule matches, bit for bit the
  rule's own draw at that path, and leaves exactly the others (no rule, or
  ``None``) as they were;
* **quantized**: after ``nn.quantize``, ``init_model`` warns and leaves every
  quantized layer's parameters as they were;
* **sharded 2 / 4** (modules whose ``Model`` has ``shard``): for every rank
  of worlds of 2 and 4 simulated in one process, ``init_sharded(...,
  full=template)`` equals ``init_model`` on the unsharded model followed by
  the model's own ``shard``, bit for bit, for every parameter.

``tests/test_mlx_lm_sweep.py`` runs it in the suite; ``python
tests/mlx_lm_sweep.py`` rewrites ``docs/architectures.md`` from the same
code.
"""

import dataclasses
import importlib
import inspect
import pkgutil
import re
import sys
import time
import warnings

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

import mlx_fused_init as mfi
from mlx_fused_init.model import rule_for
from conftest import Rank, params

KEY = mx.random.key(2024)
EVERYTHING = lambda path, module, param: True  # noqa: E731
MAX_PARAMS = 5_000_000  # "tiny": at most this many parameter elements

# Sizes by field name: every count a world of up to 4 ranks shards divides by 4.
SIZES = {
    "hidden_size": 64, "d_model": 64, "n_embd": 64, "dim": 64, "model_dim": 64,
    "embed_dim": 64, "hidden_dim": 128, "n_embed": 64,
    "num_hidden_layers": 2, "n_layer": 2, "n_layers": 2, "num_layers": 2,
    "intermediate_size": 128, "ffn_dim": 128, "d_ff": 128, "n_inner": 128,
    "ffn_hidden_size": 128, "mlp_dim": 128,
    "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32,
    "expert_intermediate_size": 32,
    "num_attention_heads": 4, "n_head": 4, "n_heads": 4, "num_heads": 4,
    "num_key_value_heads": 4, "n_kv_heads": 4, "num_kv_heads": 4, "kv_heads": 4,
    "head_dim": 16, "kv_channels": 16, "attention_head_dim": 16,
    "vocab_size": 128, "n_vocab": 128, "padded_vocab_size": 128,
    "num_experts": 8, "n_routed_experts": 8, "num_local_experts": 8, "n_experts": 8,
    "moe_num_experts": 8,
    "num_experts_per_tok": 2, "top_k": 2, "moe_top_k": 2, "n_shared_experts": 1,
    "rms_norm_eps": 1e-5, "layer_norm_eps": 1e-5, "norm_eps": 1e-5,
    "layer_norm_epsilon": 1e-5, "norm_epsilon": 1e-5,
    "max_position_embeddings": 128, "n_positions": 128, "n_ctx": 128,
    "context_length": 128, "max_seq_len": 128, "seq_length": 128,
    "rope_theta": 10000.0, "rotary_emb_base": 10000.0,
    "kv_lora_rank": 16, "q_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16,
    "v_head_dim": 16, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1,
    "sliding_window": 32, "window_size": 32,
}
# Fields with a large default that are sizes (shrunk to 32).
_SIZE_NAME = re.compile(r"(size|dim|rank|hidden|intermediate|ffn|inner|width|channels)")
_NOT_SIZE = re.compile(r"(vocab|position|window|chunk|ctx|theta|base|len|eps|scale|factor)")

# Per-architecture corrections of the generated configuration.
OVERRIDES = {
    "muse_spark": {"text_config": {"rope_parameters": {"rope_theta": 10000.0}}},
    # Layer 1 (1-based) is linear attention (KDA), layer 2 full attention.
    "kimi_k3": {"text_config": {"linear_attn_config": {
        "kda_layers": [1], "num_heads": 4, "head_dim": 16, "short_conv_kernel_size": 4}}},
}
# Architectures that cannot be built tiny, and why (checked: they must fail).
CANNOT_BUILD = {
}


def architectures() -> list:
    import mlx_lm.models as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_"))


def _dataclasses(module) -> list:
    return [c for _, c in inspect.getmembers(module, inspect.isclass)
            if dataclasses.is_dataclass(c) and c.__module__ == module.__name__]


def _value(name, field, arch):
    if name == "model_type":
        return arch
    if name in SIZES:
        return SIZES[name]
    has_default = (field.default is not dataclasses.MISSING
                   or field.default_factory is not dataclasses.MISSING)
    if has_default:
        default = field.default if field.default is not dataclasses.MISSING else None
        if (isinstance(default, int) and not isinstance(default, bool) and default > 256
                and _SIZE_NAME.search(name) and not _NOT_SIZE.search(name)):
            return 32
        return dataclasses.MISSING  # keep the default
    hint = str(field.type)
    if "dict" in hint.lower() or "args" in hint.lower():
        return None  # filled by config()
    if "list" in hint.lower() or "tuple" in hint.lower():
        return []
    if "bool" in hint:
        return False
    if "int" in hint:
        return 2
    if "float" in hint:
        return 1e-5
    if "str" in hint:
        return ""
    return None


def config(arch) -> dict:
    """The tiny configuration of ``arch``: ModelArgs' fields, dict fields
    (nested text configurations) filled with every field of the module's
    other dataclasses, then OVERRIDES."""
    module = importlib.import_module(f"mlx_lm.models.{arch}")
    nested = {}
    for cls in _dataclasses(module):
        if cls is module.ModelArgs:
            continue
        for f in dataclasses.fields(cls):
            v = _value(f.name, f, arch)
            if v is not dataclasses.MISSING and v is not None:
                nested.setdefault(f.name, v)
    out = {}
    for f in dataclasses.fields(module.ModelArgs):
        v = _value(f.name, f, arch)
        if v is None and ("dict" in str(f.type).lower() or "args" in str(f.type).lower()
                          or "config" in f.name):
            v = dict(nested)
        if v is not dataclasses.MISSING:
            out[f.name] = v
    for k, v in OVERRIDES.get(arch, {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def builder(arch):
    module = importlib.import_module(f"mlx_lm.models.{arch}")
    cfg = config(arch)

    def make():
        return module.Model(module.ModelArgs.from_dict(cfg)
                            if hasattr(module.ModelArgs, "from_dict") else module.ModelArgs(**cfg))

    return make


def recipes() -> dict:
    return {"llama": mfi.recipes.llama(), "gpt2": mfi.recipes.gpt2(2),
            "olmo2": mfi.recipes.olmo2()}


def check_init(make, rules) -> tuple:
    """``(drawn, left)``; raises AssertionError on any parameter a rule
    matches that is not its rule's draw, or one left alone that changed."""
    from mlx_fused_init.model import batch_dims_of

    model = make()
    before = params(model)
    modules = dict(model.named_modules())
    mfi.init_model(model, rules, key=KEY)
    after = params(model)
    drawn = left = 0
    for path, w in after.items():
        if not mx.issubdtype(w.dtype, mx.floating):
            continue
        owner = modules.get(path.rsplit(".", 1)[0] if "." in path else "", model)
        init = rule_for(rules, path, owner)
        if init is None:
            assert w is before[path] or mx.array_equal(w, before[path]).item(), path
            left += 1
            continue
        b = batch_dims_of(owner, w)
        want = init(before[path], key=KEY, subsequence=mfi.param_subsequence(path),
                    **({"batch_dims": b} if b else {}))
        assert mx.array_equal(w, want).item(), f"{path} is not its rule's draw"
        drawn += 1
    assert drawn > 0
    return drawn, left


def check_quantized(make) -> int:
    model = make()
    nn.quantize(model, group_size=32, bits=4,
                class_predicate=lambda p, m: hasattr(m, "to_quantized")
                and getattr(m, "weight", mx.zeros((1, 1))).shape[-1] % 32 == 0)
    quantized = {p for p, m in model.named_modules() if "scales" in m and isinstance(
        m.get("weight"), mx.array) and m["weight"].dtype == mx.uint32}
    if not quantized:
        return 0
    before = params(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mfi.init_model(model, mfi.recipes.llama(), key=KEY)
    assert any("quantized" in str(w.message) for w in caught), "no warning"
    after = params(model)
    n = 0
    for path, w in after.items():
        if path.rsplit(".", 1)[0] in quantized:
            assert mx.array_equal(w, before[path]).item() and w.dtype == before[path].dtype, path
            n += 1
    return n


def sharding_rules():
    """Every parameter drawn (one left alone would keep each build's own
    stock random values): the llama recipe, then N(0, 0.02) for the rest."""
    return mfi.recipes.llama() + [("*", mfi.normal(0.0, 0.02))]


class NotShardable(Exception):
    """The model's own shard() refuses this tiny configuration."""


def check_sharded(make, size) -> int:
    rules = sharding_rules()
    sharded = 0
    for rank in range(size):
        want = mfi.init_model(make(), rules, key=KEY, filter=EVERYTHING)
        mx.eval(want.parameters())
        try:
            want.shard(Rank(rank, size))
        except Exception as e:  # noqa: BLE001  the tiny configuration, not us
            raise NotShardable(_short(e)) from e
        want = params(want)
        model = make()
        model.shard(Rank(rank, size))
        mfi.init_sharded(model, rules, key=KEY, rank=rank, size=size, full=make(),
                         filter=EVERYTHING)
        got = params(model)
        assert got.keys() == want.keys()
        for path, w in got.items():
            assert w.shape == want[path].shape and mx.array_equal(w, want[path]).item(), \
                f"rank {rank}/{size}: {path}"
        sharded = max(sharded, sum(w.shape != p.shape for w, p in zip(
            got.values(), params(make()).values())))
    assert sharded > 0
    return sharded


def _short(e) -> str:
    text = f"{type(e).__name__}: {e}".splitlines()[0]
    return text[:110] + ("…" if len(text) > 110 else "")


def sweep(arch) -> dict:
    """One row: built / init / quantized / sharded 2 / sharded 4, each
    "ok …", "—" (not applicable), or "FAIL: reason"."""
    row = {"arch": arch}
    try:
        module = importlib.import_module(f"mlx_lm.models.{arch}")
    except (Exception, SystemExit) as e:  # noqa: BLE001  (olmo exits without ai2-olmo)
        row["built"] = f"no: import fails ({_short(e)})"
        return row
    if not (hasattr(module, "Model") and hasattr(module, "ModelArgs")):
        return None
    try:
        make = builder(arch)
        model = make()
        n = sum(w.size for _, w in tree_flatten(model.parameters()))
        if n > MAX_PARAMS:
            raise ValueError(f"{n} parameters with the generated configuration")
    except Exception as e:  # noqa: BLE001
        row["built"] = f"no: {_short(e)}"
        return row
    row["built"] = f"{n:,}"
    try:
        counts = [check_init(make, rules) for rules in recipes().values()]
        row["init"] = f"ok ({counts[0][0]} drawn, {counts[0][1]} no rule)"
    except Exception as e:  # noqa: BLE001
        row["init"] = f"FAIL: {_short(e)}"
    try:
        q = check_quantized(make)
        row["quantized"] = f"ok ({q} left)" if q else "— (no layer quantizes)"
    except Exception as e:  # noqa: BLE001
        row["quantized"] = f"FAIL: {_short(e)}"
    for size in (2, 4):
        if not hasattr(module.Model, "shard"):
            row[f"sharded {size}"] = "—"
            continue
        try:
            row[f"sharded {size}"] = f"ok ({check_sharded(make, size)} sharded)"
        except NotShardable as e:
            row[f"sharded {size}"] = f"— (the model's own shard() refuses: {e})"
        except Exception as e:  # noqa: BLE001
            row[f"sharded {size}"] = f"FAIL: {_short(e)}"
    return row


COLUMNS = ["arch", "built", "init", "quantized", "sharded 2", "sharded 4"]


def table(rows) -> str:
    lines = ["| architecture | built (parameters) | init (llama recipe) | quantized | "
             "sharded 2 | sharded 4 |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in COLUMNS) + " |")
    return "\n".join(lines)


def documented(path) -> dict:
    """The rows of the table in ``path`` (docs/architectures.md)."""
    rows = {}
    for line in open(path).read().splitlines():
        if line.startswith("| ") and not line.startswith("| architecture"):
            cells = [c.strip().replace("\\|", "|") for c in line.strip("| ").split(" | ")]
            rows[cells[0]] = dict(zip(COLUMNS, cells))
    return rows


if __name__ == "__main__":
    t0 = time.time()
    rows = []
    for arch in architectures():
        t = time.time()
        r = sweep(arch)
        if r is not None:
            rows.append(r)
            print(f"{time.time() - t:6.1f}s", r, flush=True)
    print(f"total {time.time() - t0:.0f}s")
    if "--write" in sys.argv:
        path = sys.argv[sys.argv.index("--write") + 1]
        text = open(path).read()
        head = text[:text.index("| architecture")]
        open(path, "w").write(head + table(rows) + "\n")
