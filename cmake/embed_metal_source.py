"""Generates the self-contained Metal kernel source at build time.

    python embed_metal_source.py <kernel.metal> <out.metal> <out.cpp>
    python embed_metal_source.py --header <header.h> <out.h>

Reads the kernel and inlines, recursively and each once, every header it
includes with quotes ("fused_init_math.h") from the kernel's own folder;
system includes (<metal_stdlib>) stay. Writes the result twice:
  * <out.metal>: the text the metallib is compiled from;
  * <out.cpp>:   the same text as mfi::metal_kernel_source(), which the GPU
    path compiles at run time when there is no metallib (or
    MLX_FUSED_INIT_METAL_JIT=1) and tests/test_metal_shim.py compiles
    through the CPU shim.
One text, three uses: the kernel the shim verifies is the kernel the GPU
runs, whichever path loads it. With --header, writes only the inlined text
of a header: metal/fused_init_kernel.h, the `header=` that the portable
kernels hand to mx.fast.metal_kernel and mx.fast.cuda_kernel. Headers keep classic include guards (not
#pragma once) so that code which includes them again after this text (the
shim's host side) skips them. MLX hands the source to Metal as ASCII, so
anything else is an error here rather than a garbled kernel on a Mac.
"""

import re
import sys
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
DELIM = "MFI_METAL_SRC"


def inline(path: Path, seen: set) -> list:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = INCLUDE.match(line)
        if not m:
            out.append(line)
            continue
        header = (path.parent / m.group(1)).resolve()
        if not header.is_file():
            sys.exit(f"{path}:{n}: included file {m.group(1)} not found next to it")
        if header in seen:
            out.append(f"// (already inlined: {m.group(1)})")
            continue
        seen.add(header)
        out.append(f"// ---- begin {header.name} (inlined) ----")
        out.extend(inline(header, seen))
        out.append(f"// ---- end {header.name} ----")
    return out


def inlined_text(kernel: Path) -> str:
    lines = [
        f"// Generated at build time from metal/{kernel.name} and the headers it",
        "// includes (cmake/embed_metal_source.py). Do not edit: edit metal/.",
    ] + inline(kernel.resolve(), set())
    bad = [i + 1 for i, line in enumerate(lines) if not line.isascii()]
    if bad:
        sys.exit(f"non-ASCII characters in the kernel source (generated lines {bad[:5]})")
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1] == "--header":
        header, out_h = map(Path, sys.argv[2:4])
        out_h.write_text(inlined_text(header))
        return
    kernel, out_metal, out_cpp = map(Path, sys.argv[1:4])
    text = inlined_text(kernel)
    if f"){DELIM}\"" in text:
        sys.exit(f"the Metal source contains the raw-string delimiter {DELIM}")
    out_metal.write_text(text)
    # Raw string chunks below 16 KiB each: MSVC's limit for one literal
    # (the concatenation may be longer).
    chunks, cur = [], ""
    for line in text.splitlines(keepends=True):
        if len(cur) + len(line) > 15000:
            chunks.append(cur)
            cur = ""
        cur += line
    chunks.append(cur)
    literal = "\n".join(f'R"{DELIM}({c}){DELIM}"' for c in chunks)
    out_cpp.write_text(
        f"// Generated from {kernel.name} by cmake/embed_metal_source.py. Do not edit.\n"
        '#include "metal_source.h"\n\n'
        "namespace mfi {\n\n"
        "const char* metal_kernel_source() {\n"
        f"  static const char text[] =\n{literal};\n"
        "  return text;\n"
        "}\n\n"
        "} // namespace mfi\n"
    )


if __name__ == "__main__":
    main()
