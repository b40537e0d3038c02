#!/usr/bin/python3
"""tests/check_structure.py: the house rules of ARCHITECTURE.md, checked from the sources
and the built object files (run by `make test` through tests/check_structure.sh).

1. layers: every include and every symbol a file takes from another file goes down the
   table in ARCHITECTURE.md ("may use"); nothing reaches up.
2. circles: no set of modules (a .c with its .h) uses each other's definitions in a loop
   (includes for types and macros, object-file symbols for functions and data).
3. function length: no function over 150 lines outside tests/ (over 120 is listed).
4. dead functions: every global function of the library and the CLI is used by some
   other file (library, CLI, service or tests).

Prints one line per problem, then "N passed, N failed, N skipped"; exit 1 on failure.
Usage: check_structure.py [BUILD_DIR]   (default build)
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build")
SRC_DIRS = ["util", "loader", "kernels", "model", "convert", "pipelines", "serve", "tools"]

# Layer of a path (most specific prefix first) and what each layer may use.
LAYERS = [
    ("model/config/", "config"), ("model/runtime/", "runtime"), ("model/sam2/", "family"),
    ("model/sam3/", "family"), ("model/", "model"), ("util/", "util"), ("loader/", "loader"),
    ("kernels/", "kernels"), ("convert/", "convert"), ("pipelines/amg/", "amg"),
    ("pipelines/mosaic/", "mosaic"), ("serve/", "serve"), ("tools/", "tools"),
]
MAY_USE = {
    "util": set(),
    "loader": {"util"},
    "kernels": {"util"},
    "config": set(),
    "runtime": {"kernels", "loader", "util", "api"},
    "family": {"runtime", "config", "kernels", "loader", "util", "api"},
    "model": {"family", "runtime", "config", "kernels", "loader", "util", "api"},
    "convert": {"config", "runtime", "loader", "util", "api"},
    "amg": {"api", "util"},
    "mosaic": {"amg", "api", "util"},
    "serve": {"mosaic", "amg", "convert", "api", "util"},
    "tools": {"serve", "mosaic", "amg", "convert", "api", "util", "model", "runtime", "family", "config",
              "kernels", "loader"},
}
# The public API header is its own layer: everything may use it, it uses nothing.
API_FILES = {"model/samc.h"}


def layer_of(path):
    if path in API_FILES:
        return "api"
    for prefix, name in LAYERS:
        if path.startswith(prefix):
            return name
    return None


def module_of(path):
    # the public API headers are modules of their own: declarations, no code
    if path in API_FILES:
        return "api:" + path
    return os.path.splitext(path)[0]


def api_symbols():
    """Functions declared in the public API headers: calling one is using the API."""
    names = set()
    for f in API_FILES:
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        names |= set(re.findall(r"\b(samc_\w+)\s*\(", text))
    return names


def sources():
    out = []
    for d in SRC_DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith((".c", ".h", ".cu", ".cuh")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), ROOT))
    return sorted(out)


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def include_edges(files):
    edges = []
    for f in files:
        text = open(os.path.join(ROOT, f), encoding="utf-8", errors="replace").read()
        for inc in INCLUDE.findall(text):
            target = inc if os.path.exists(os.path.join(ROOT, inc)) else os.path.normpath(
                os.path.join(os.path.dirname(f), inc))
            edges.append((f, target, "includes"))
    return edges


def nm_symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
    return defined, undefined


def objects():
    """Object files of the project's sources: source path -> object path."""
    out = {}
    for dirpath, _, files in os.walk(BUILD):
        for f in files:
            if not f.endswith(".o"):
                continue
            obj = os.path.join(dirpath, f)
            rel = os.path.relpath(obj, BUILD)[:-2]
            for ext in (".c", ".cu"):
                if os.path.exists(os.path.join(ROOT, rel + ext)) and rel.split("/")[0] in SRC_DIRS:
                    out[rel + ext] = obj
    return out


def symbol_edges(objs):
    owner, uses = {}, {}
    for src, obj in objs.items():
        d, u = nm_symbols(obj)
        for s in d:
            owner.setdefault(s, src)
        uses[src] = u
    edges = []
    for src, u in uses.items():
        for s in u:
            if s in owner and owner[s] != src:
                edges.append((src, owner[s], "calls " + s))
    return edges, owner, uses


def check_layers(edges, problems):
    api = api_symbols()
    for a, b, how in edges:
        la, lb = layer_of(a), layer_of(b)
        if how.startswith("calls ") and how[6:] in api:
            lb = "api"
        if la is None or lb is None or la == lb:
            continue
        if lb not in MAY_USE.get(la, set()):
            problems.append(f"layer: {a} ({la}) {how} {b} ({lb}), which {la} may not use")


def strongly_connected(nodes, adj):
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def check_circles(edges, problems):
    adj, why = {}, {}
    for a, b, how in edges:
        ma, mb = module_of(a), module_of(b)
        if ma == mb:
            continue
        adj.setdefault(ma, set()).add(mb)
        why.setdefault((ma, mb), f"{a} {how} {b}")
    nodes = sorted(set(adj) | {m for s in adj.values() for m in s})
    for comp in strongly_connected(nodes, adj):
        if len(comp) > 1:
            cs = set(comp)
            links = [why[(a, b)] for a in sorted(cs) for b in sorted(adj.get(a, ())) if b in cs]
            problems.append("circle: " + " <-> ".join(sorted(comp)) + " (" + "; ".join(links[:6]) + ")")


FUNC_START = re.compile(r"^(?!static_assert)[A-Za-z_][\w \*,]*\b(\w+)\s*\([^;]*$")


def function_lengths(path):
    """(name, first line, length) of each function definition at column 0."""
    lines = open(os.path.join(ROOT, path), encoding="utf-8", errors="replace").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FUNC_START.match(lines[i])
        if m and not lines[i].startswith(("typedef", "struct", "enum", "#", "return", "else")):
            j = i
            while j < len(lines) and "{" not in lines[j] and ";" not in lines[j]:
                j += 1
            if j < len(lines) and "{" in lines[j] and ";" not in lines[j].split("{")[0]:
                k = j
                while k < len(lines) and lines[k] != "}":
                    k += 1
                out.append((m.group(1), i + 1, k - i + 1))
                i = k
        i += 1
    return out


def check_lengths(files, problems, notes):
    for f in files:
        if not f.endswith((".c", ".cu")):
            continue
        for name, line, n in function_lengths(f):
            if n > 150:
                problems.append(f"length: {f}:{line} {name} is {n} lines (at most 150)")
            elif n > 120:
                notes.append(f"note: {f}:{line} {name} is {n} lines (aim for 120)")


def check_dead(owner, uses, test_uses, problems):
    used = set(test_uses)
    for src, u in uses.items():
        used |= u
    for sym, src in sorted(owner.items()):
        if src.startswith("kernels/cuda/") or sym == "main" or sym.startswith("_"):
            continue
        if sym not in used:
            problems.append(f"dead: {sym} ({src}) is defined but used by no other file")


def test_symbol_uses():
    """Every identifier the test sources (tests/, fuzzers and benches included) mention."""
    u = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, "tests")):
        for f in files:
            if f.endswith((".c", ".h")):
                text = open(os.path.join(dirpath, f), encoding="utf-8", errors="replace").read()
                u |= set(re.findall(r"\b[A-Za-z_]\w*\b", text))
    return u


def main():
    files = sources()
    objs = objects()
    if not objs:
        print(f"NOT OK check_structure: no object files under {BUILD} (build first)")
        print("0 passed, 1 failed, 0 skipped")
        return 1
    inc = include_edges(files)
    sym, owner, uses = symbol_edges(objs)
    results = []
    for name, fn in [("layers", lambda p: check_layers(inc + sym, p)), ("circles", lambda p: check_circles(inc + sym, p))]:
        p = []
        fn(p)
        results.append((name, p))
    p, notes = [], []
    check_lengths(files, p, notes)
    results.append(("function_length", p))
    p = []
    check_dead(owner, uses, test_symbol_uses(), p)
    results.append(("dead_functions", p))
    passed = failed = 0
    for name, probs in results:
        for line in probs:
            print("    " + line)
        print(("OK     " if not probs else "NOT OK ") + f"check_structure.{name}" +
              (f" ({len(probs)} problems)" if probs else ""))
        passed += not probs
        failed += bool(probs)
    for line in notes:
        print("    " + line)
    print(f"check_structure.py: {passed} passed, {failed} failed, 0 skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
