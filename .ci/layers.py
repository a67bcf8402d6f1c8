#!/usr/bin/env python3
"""Module dependencies of a Rust crate, and the import cycles among them.

    python3 .ci/layers.py crates/kvbm/src            # cycles between top-level modules
    python3 .ci/layers.py crates/kvbm/src --files    # cycles between files (modules)
    python3 .ci/layers.py crates/kvbm/src --edges    # also list every edge
    python3 .ci/layers.py crates/kvbm/src --allow store->blocks   # see below

An edge `a -> b` means code in module `a` names something in module `b`
through `crate::…` or `super::…` (root re-exports such as `crate::SequenceHash`
count as their defining module). Not counted, because they are no dependency:
comments, `#[cfg(test)] mod` blocks, `tests.rs` files and modules declared
under `#[cfg(test)]` or `#[cfg(all(test, …))]` (tests may reach anywhere),
and a `mod.rs`'s `pub use child::…` re-exports. Text-based, so a path
spelled in an unusual way can be missed; it errs on the side of fewer
edges. Exits 1 when it finds a cycle.

`--allow a->b` (repeatable) leaves one known upward edge out of the cycle
search, for a debt that has an issue and a plan; it is still printed. An
allowed edge that no longer exists is an error too, so the allowance is
removed with the debt instead of outliving it.
"""
import os
import re
import sys


def module_path(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def code_only(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = "\n".join(line.split("//", 1)[0] for line in text.split("\n"))
    # Inline test modules (conventionally last in a file).
    m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod \w+\s*\{", text)
    return text[: m.start()] if m else text


def main():
    src = sys.argv[1]
    by_file = "--files" in sys.argv
    files = [
        os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith(".rs")
    ]
    modules = {module_path(src, f) for f in files}

    # Modules compiled only for tests: `#[cfg(test)] mod x;` or
    # `#[cfg(all(test, …))] mod x;` (not `any(test, …)`, which a feature can
    # switch on in a normal build).
    test_only = set()
    for f in files:
        me = module_path(src, f)
        text = re.sub(r"/\*.*?\*/", "", open(f).read(), flags=re.S)
        text = "\n".join(line.split("//", 1)[0] for line in text.split("\n"))
        for m in re.finditer(
            r"#\[cfg\((?:test|all\(\s*test\b[^\]]*)\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;",
            text,
        ):
            test_only.add(me + (m.group(1),))

    def is_test(module):
        return any(module[:k] in test_only for k in range(1, len(module) + 1))

    root_names = {}
    lib = code_only(open(os.path.join(src, "lib.rs")).read())
    for m in re.finditer(r"pub use (\w+)::(\{[^}]*\}|\w+)", lib):
        for item in m.group(2).strip("{}").split(","):
            item = item.strip().split(" as ")[-1].strip()
            if item:
                root_names[item] = m.group(1)
    for m in re.finditer(r"pub type (\w+)\s*=\s*(\w+)::", lib):
        root_names[m.group(1)] = m.group(2)

    def resolve(parts):
        if parts and parts[0] in root_names:
            parts = [root_names[parts[0]]] + parts
        for k in range(len(parts), 0, -1):
            if tuple(parts[:k]) in modules:
                return tuple(parts[:k])
        return ()

    edges = {}
    for f in files:
        me = module_path(src, f)
        is_mod = os.path.basename(f) in ("mod.rs", "lib.rs")
        if os.path.basename(f) == "tests.rs" or "tests" in me or is_test(me):
            continue
        text = code_only(open(f).read())
        if is_mod:
            text = re.sub(r"\bpub(\([^)]*\))?\s+use\s+(self::)?\w+(::\w+)*(::\{[^;]*\})?\s*;", "", text)
        refs = set()
        for m in re.finditer(r"\bcrate((?:::\w+)*)(::\{([^}]*)\})?", text):
            parts = [p for p in m.group(1).split("::") if p]
            if parts:
                refs.add(tuple(parts))
            for item in (m.group(3) or "").split(","):
                item = item.strip().lstrip("{").split("::")[0].split(" ")[0]
                if item and item != "self":
                    refs.add(tuple(parts + [item]))
        for m in re.finditer(r"\b((?:super::)+)((?:\w+::)*\w+)", text):
            up = m.group(1).count("super::")
            refs.add(tuple(list(me[: len(me) - up]) + m.group(2).split("::")))
        if is_mod:
            for m in re.finditer(r"(?<!pub )\buse\s+(?:self::)?(\w+)::", text):
                if me + (m.group(1),) in modules:
                    refs.add(me + (m.group(1),))
        for r in refs:
            target = resolve(list(r))
            a, b = (me, target) if by_file else (me[:1], target[:1])
            if a and b and a != b:
                edges.setdefault(a, set()).add(b)

    allowed = [
        tuple(tuple(side.strip().split("::")) for side in arg.split("->"))
        for flag, arg in zip(sys.argv, sys.argv[1:])
        if flag == "--allow"
    ]
    stale = []
    for a, b in allowed:
        if b in edges.get(a, ()):
            edges[a].discard(b)
            print("allowed:", "::".join(a), "->", "::".join(b))
        else:
            stale.append((a, b))

    # Strongly connected components (Tarjan).
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(component)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)

    name = "::".join
    if "--edges" in sys.argv:
        for a in sorted(edges):
            print(name(a), "->", ", ".join(name(b) for b in sorted(edges[a])))
    for component in cycles:
        print("cycle:", " <-> ".join(sorted(name(x) for x in component)))
        for a in component:
            for b in sorted(edges.get(a, ())):
                if b in component:
                    print("   ", name(a), "->", name(b))
    for a, b in stale:
        print("stale --allow:", "::".join(a), "->", "::".join(b), "no longer exists; drop it")
    if not cycles:
        print("no cycles")
    return 1 if cycles or stale else 0


if __name__ == "__main__":
    sys.exit(main())
