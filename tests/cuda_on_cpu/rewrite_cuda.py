"""Turns a CUDA source into C++ for the CPU execution layer (tests/cuda_on_cpu/layer).

Only two constructs change, and every line keeps its number (diagnostics, sanitizer reports and
the planted-bug tests name the original lines):
  kernel<<<grid, block[, shared[, stream]]>>>(args)
      -> ::cuda_on_cpu::launch(__FILE__, __LINE__, ::cuda_on_cpu::config(grid, block, ...),
                               [](auto... a) { kernel(a...); }, args)
         (a call, not a function pointer: template arguments are deduced as nvcc deduces them)
  __shared__ T name[N];           -> the same static, registered so the layer poisons it between blocks
                                     (registered in code: a linker section cannot collect them, GCC 12
                                     drops section attributes on statics inside templates)
  extern __shared__ T name[];     -> T* const name = the launch's dynamic shared memory
A launch or a __shared__ declaration it cannot rewrite is an error (RewriteError), never skipped.

    python tests/cuda_on_cpu/rewrite_cuda.py IN.cu OUT.cpp [--name csrc/kernels/IN.cu]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


class RewriteError(ValueError):
    pass


def mask_comments_and_strings(text: str) -> str:
    """The text with comments and string/char literals blanked (same length, newlines kept)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif text[i] in "\"'":
            quote, j = text[i], i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            i += 1
            continue
        for k in range(i, j):
            if out[k] != "\n":
                out[k] = " "
        i = j
    return "".join(out)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _matching(masked: str, start: int, open_char: str, close_char: str) -> int:
    """Index of the bracket closing the one at `start`."""
    depth = 0
    for i in range(start, len(masked)):
        if masked[i] == open_char:
            depth += 1
        elif masked[i] == close_char:
            depth -= 1
            if depth == 0:
                return i
    raise RewriteError(f"line {line_of(masked, start)}: unbalanced '{open_char}'")


def _kernel_start(masked: str, end: int) -> int:
    """Start of the kernel expression ending just before `end` (a name, maybe qualified, maybe
    with template arguments)."""
    i = end
    while i > 0 and masked[i - 1].isspace():
        i -= 1
    if i > 0 and masked[i - 1] == ">":  # template arguments
        depth = 0
        while i > 0:
            i -= 1
            if masked[i] == ">":
                depth += 1
            elif masked[i] == "<":
                depth -= 1
                if depth == 0:
                    break
        else:
            raise RewriteError(f"line {line_of(masked, end)}: unbalanced template arguments")
    match = re.search(r"((?:::)?[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*)\s*$", masked[:i])
    if match is None:
        raise RewriteError(f"line {line_of(masked, end)}: no kernel name before '<<<'")
    return match.start(1)


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def rewrite_launches(text: str) -> str:
    masked = mask_comments_and_strings(text)
    pieces, last = [], 0
    for match in re.finditer(r"<<<", masked):
        if match.start() < last:
            continue
        open_at = match.start()
        close_at = masked.find(">>>", open_at)
        if close_at < 0:
            raise RewriteError(f"line {line_of(text, open_at)}: '<<<' without '>>>'")
        paren = re.compile(r"\s*\(").match(masked, close_at + 3)
        if paren is None:
            raise RewriteError(f"line {line_of(text, open_at)}: no argument list after '>>>'")
        args_open = paren.end() - 1
        args_close = _matching(masked, args_open, "(", ")")
        kernel_at = _kernel_start(masked, open_at)
        kernel = text[kernel_at:open_at].strip()
        config = text[open_at + 3 : close_at]
        if not 2 <= len(_split_top_level(mask_comments_and_strings(config))) <= 4:
            raise RewriteError(f"line {line_of(text, open_at)}: launch configuration needs 2 to 4 values")
        args = text[args_open + 1 : args_close]
        between = text[close_at + 3 : args_open]  # whitespace, maybe newlines: keep the line count
        call = (
            f"::cuda_on_cpu::launch(__FILE__, __LINE__, ::cuda_on_cpu::config({config}), "
            f"[](auto... cuda_on_cpu_args) {{ {kernel}(cuda_on_cpu_args...); }}"
        )
        call += between.replace(" ", "").replace("\t", "")
        call += f", {args})" if args.strip() else ")"
        pieces += [text[last:kernel_at], call]
        last = args_close + 1
    pieces.append(text[last:])
    result = "".join(pieces)
    left = mask_comments_and_strings(result).find("<<<")
    if left >= 0:
        raise RewriteError(f"line {line_of(result, left)}: a '<<<' launch was not rewritten")
    return result


_STATIC_SHARED = re.compile(r"^(?P<indent>\s*)__shared__\s+(?P<decl>[^;{}=,]+?)\s*;\s*$")
_EXTERN_SHARED = re.compile(
    r"^(?P<indent>\s*)extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?(?P<type>[\w:<>\s]+?)\s*"
    r"(?P<name>[A-Za-z_]\w*)\s*\[\s*\]\s*;\s*$"
)


def rewrite_shared(text: str) -> str:
    masked_lines = mask_comments_and_strings(text).split("\n")
    lines = text.split("\n")
    for number, (line, masked) in enumerate(zip(lines, masked_lines), start=1):
        if "__shared__" not in masked:
            continue
        code = masked.rstrip()
        extern = _EXTERN_SHARED.match(code)
        if extern:
            kind, name = extern["type"].strip(), extern["name"]
            lines[number - 1] = (
                f"{extern['indent']}{kind}* const {name} = reinterpret_cast<{kind}*>(::cuda_on_cpu::dynamic_shared());"
            )
            continue
        static = _STATIC_SHARED.match(code)
        name = re.search(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$", static["decl"]) if static else None
        if name is None:
            raise RewriteError(
                f"line {number}: cannot rewrite this __shared__ declaration (one variable per line, "
                f"no initialiser): {line.strip()}"
            )
        lines[number - 1] = f"{code} ::cuda_on_cpu::shared_declared(&{name[1]}, sizeof({name[1]}));"
    return "\n".join(lines)


def rewrite(text: str, name: str) -> str:
    """The C++ translation unit for `text` (a .cu file); `name` is what diagnostics call it."""
    body = rewrite_shared(rewrite_launches(text))
    return f'#line 1 "{name}"\n{body}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--name", help="file name used in diagnostics (default: SOURCE)")
    args = parser.parse_args(argv)
    try:
        result = rewrite(args.source.read_text(), args.name or str(args.source))
    except RewriteError as error:
        print(f"rewrite_cuda: {args.source}: {error}", file=sys.stderr)
        return 2
    args.output.write_text(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
