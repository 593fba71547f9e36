#!/usr/bin/env python3
"""The published variants are listed once in C++ (include/grcnn/models/registry.hpp, read by CMake); the
independent PyTorch rebuild (tests/torch/grcnn_reference.py) and the converter back to PyTorch
(tools/safetensors_to_torch.py) define the same architectures on their own, as an independent check must.
This test fails when the names drift apart:

  check_variant_lists.py NAME [NAME ...]     (the C++ list's variants checked against the rebuild)
"""
import ast
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "tests" / "torch"))
from grcnn_reference import VARIANTS as REBUILD  # noqa: E402


def converter_variants():
    tree = ast.parse((root / "tools" / "safetensors_to_torch.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VARIANTS" for t in node.targets):
            return {k.value for k in node.value.keys}
    raise SystemExit("tools/safetensors_to_torch.py: no VARIANTS table found")


cpp = set(sys.argv[1:])
if not cpp:
    raise SystemExit("usage: check_variant_lists.py NAME [NAME ...]")
problems = []
for name, other in (("tests/torch/grcnn_reference.py", set(REBUILD)), ("tools/safetensors_to_torch.py", converter_variants())):
    if other != cpp:
        problems.append(f"{name}: missing {sorted(cpp - other)}, extra {sorted(other - cpp)} against models::variants")
if problems:
    raise SystemExit("\n".join(problems))
print(f"{len(cpp)} variants agree: registry.hpp, the PyTorch rebuild, safetensors_to_torch.py")
