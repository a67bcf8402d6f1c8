"""Every public name is documented, and the type stubs cover the package."""

import ast
import inspect
import pathlib

import kvbm

STUBS = pathlib.Path(__file__).resolve().parents[1] / "python" / "kvbm" / "__init__.pyi"


def test_every_public_name_has_a_docstring():
    missing = []
    for name in kvbm.__all__:
        obj = getattr(kvbm, name)
        if isinstance(obj, (int, list)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_stubs_declare_every_public_name():
    tree = ast.parse(STUBS.read_text())
    declared = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            declared.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
    assert set(kvbm.__all__) <= declared
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for name in kvbm.__all__:
        obj = getattr(kvbm, name)
        if inspect.isclass(obj) and name in classes and name != "BlockReleasedError":
            stubbed = {n.name for n in ast.walk(classes[name]) if isinstance(n, ast.FunctionDef)}
            stubbed |= {n.target.id for n in ast.walk(classes[name]) if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
            # Members inherited in the stubs from the shared base.
            stubbed |= {"release", "released"}
            public = {a for a in vars(obj) if not a.startswith("_")}
            assert public <= stubbed, (name, public - stubbed)
