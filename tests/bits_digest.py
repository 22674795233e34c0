"""Prints, as JSON, a SHA-256 of the bits of many draws: every transform and
dtype, whole tensors and windows (up to the top of the 2^64-element counter
space), subsequences, strided key views, the initializer family, the
perturbation and init_model. .ci/run runs it under the native extension and, in fresh venvs
holding older MLX releases, under portable mode, and requires the same
digests: the same bits whatever MLX runs.

    python tests/bits_digest.py [--out FILE]
"""

import argparse
import hashlib
import json

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

import mlx_fused_init as mfi

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
WINDOWS = {
    "whole": dict(shape=(37, 129)),
    "rows": dict(shape=(30, 990), full_shape=(37, 1001), start=(3, 5)),
    "4d": dict(shape=(2, 3, 3, 4), full_shape=(8, 3, 5, 7), start=(1, 0, 2, 3)),
    "top": dict(shape=(999,), full_shape=(2**62,), start=(2**62 - 999,)),
}
INITS = {
    "glorot_normal": lambda d: mfi.glorot_normal(d),
    "glorot_uniform": lambda d: mfi.glorot_uniform(d),
    "he_normal": lambda d: mfi.he_normal(d),
    "he_uniform": lambda d: mfi.he_uniform(d),
    "normal": lambda d: mfi.normal(0.5, 2.0, d),
    "uniform": lambda d: mfi.uniform(-3.0, 1.0, d),
    "truncated_normal": lambda d: mfi.truncated_normal(0.0, 0.02, -0.04, 0.04, d),
    "truncated_tail": lambda d: mfi.truncated_normal(1.0, 1.0, 3.5, float("inf"), d),
}


def sha(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        mx.eval(a)
        h.update(str((a.shape, a.dtype)).encode())
        h.update(bytes(memoryview(a.view(mx.uint16 if a.dtype != mx.float32 else mx.uint32))))
    return h.hexdigest()


def draws() -> dict:
    out = {}
    keys = [mx.random.key(0), mx.random.key(2**40 + 3)[::-1],
            mx.array([0xFFFFFFFF, 0, 0x9E3779B9, 0], dtype=mx.uint32)[::2]]
    for iname, make in INITS.items():
        for dname, dtype in DTYPES.items():
            for wname, w in WINDOWS.items():
                if iname.startswith(("glorot", "he")) and wname == "top":
                    continue  # fans of a 1-D tensor are undefined
                init = make(dtype)
                arrays = []
                for key in keys:
                    for q in (0, 5, 2**63 + 1):
                        kw = {k: v for k, v in w.items() if k != "shape"}
                        arrays.append(init(mx.zeros(w["shape"]), key=key, subsequence=q,
                                           stream=mx.cpu, **kw))
                out[f"{iname}/{dname}/{wname}"] = sha(arrays)

    for dname, dtype in DTYPES.items():  # the perturbation, every window
        for wname, w in WINDOWS.items():
            kw = {k: v for k, v in w.items() if k != "shape"}
            base = (mx.random.normal(w["shape"], key=mx.random.key(1)) * 4.0).astype(dtype)
            arrays = [mfi.perturb(base, s, key=key, subsequence=q, weight_scale=ws,
                                  stream=mx.cpu, **kw)
                      for key in keys for q in (0, 2**63 + 1)
                      for s, ws in ((1e-3, 1.0), (-0.75, 0.999))]
            out[f"perturb/{dname}/{wname}"] = sha(arrays)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.layers = [nn.Linear(16, 32), nn.Linear(32, 16)]
            self.norm = nn.RMSNorm(16)

    model = Net()
    mfi.init_model(model, mfi.recipes.llama(), key=mx.random.key(11))
    out["init_model/llama"] = sha(v for _, v in sorted(tree_flatten(model.parameters())))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the JSON here (default: stdout)")
    args = parser.parse_args()
    result = {"backend": mfi.backend_info()["backend"], "mlx": mx.__version__,
              "digests": draws()}
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
