"""A hash of the kernel template's code, per direction: winners-table entries and result rows
carry it, so that an entry measured on other code is recognised as stale."""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

from tether.kernels import neuron

# by table direction: the forward of a training step runs the forward kernel
KERNELS = {"fwd": "neuron_fwd_kernel", "bwd": "neuron_bwd_kernel", "fwd_train": "neuron_fwd_kernel"}


def _canonical(node: object) -> str:
    """A syntax tree as text, leaving out empty fields: the same text on every Python
    version (``ast.dump`` lists fields that newer versions added, such as ``type_params``)."""
    if isinstance(node, ast.AST):
        fields = (
            f"{name}={_canonical(value)}"
            for name, value in ast.iter_fields(node)
            if value is not None and value != []
        )
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(map(_canonical, node))}]"
    return repr(node)


def kernel_code(source: str, direction: str | None = None) -> str:
    """The code a hash covers, as canonical tree text. ``direction=None``: the whole
    template file. ``"fwd"``/``"bwd"``/``"fwd_train"``: that direction's kernel, the module-level functions
    it reaches (directly or through each other) and every other module-level statement
    (imports, constants) — so an edit to one kernel leaves the other's entries valid, and an
    edit to a shared helper or constant invalidates both."""
    tree = ast.parse(source)
    if direction is None:
        return _canonical(tree)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    reached, todo = set(), [KERNELS[direction]]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo += [
            n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name) and n.id in functions
        ]
    kept = [n for n in tree.body if not isinstance(n, ast.FunctionDef) or n.name in reached]
    return _canonical(ast.Module(body=kept, type_ignores=[]))


@functools.cache
def kernel_hash(direction: str | None = None) -> str:
    """A hash of the kernel template's syntax tree (``kernel_code``): table entries carry
    their direction's hash and are stale once it changes; result CSVs carry the whole
    file's. Hashing the tree rather than the bytes keeps entries valid across comment and
    formatting changes, and invalidates them on any change to the code itself."""
    code = kernel_code(Path(neuron.__file__).read_text(), direction)
    return hashlib.sha256(code.encode()).hexdigest()[:16]
