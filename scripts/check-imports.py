#!/usr/bin/env python3
"""No import circles in src/ (docs/DESIGN.md, "Layers"): each file is a room, and an arrow
goes from a file to every file whose items it names (`crate::` and `super::` paths, `use`
trees included, and an exported macro's file for `crate::name!`; a parent declaring its
children with `mod` is not an arrow, and an inline `mod tests` is left out). Prints the rooms, arrows and circles; exits 1 when there is a
circle. Usage: scripts/check-imports.py [SRC_DIR] [-v]"""
import os
import re
import sys
from collections import defaultdict

root = next((a for a in sys.argv[1:] if not a.startswith('-')), 'src')
verbose = '-v' in sys.argv

# module path (tuple of names) -> file; main.rs is the binary, a crate of its own
files = {}
for d, _, names in os.walk(root):
    for f in names:
        path = os.path.join(d, f)
        rel = os.path.relpath(path, root)
        if not f.endswith('.rs') or rel == 'main.rs':
            continue
        parts = rel[:-3].split(os.sep)
        if parts[-1] in ('mod', 'lib'):
            parts = parts[:-1]
        files[tuple(parts)] = path


def code_of(text):
    """The text without comments, string contents and inline test modules."""
    text = re.sub(r'//[^\n]*', '', text)
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    while (m := re.search(r'\bmod\s+tests\s*\{', text)):
        depth = 0
        for i in range(m.end() - 1, len(text)):
            depth += {'{': 1, '}': -1}.get(text[i], 0)
            if depth == 0:
                break
        text = text[:m.start()] + text[i + 1:]
    return text


def split_top(inner):
    """The items of a `{a, b::{c, d}}` list, nested braces kept whole."""
    parts, current, depth = [], '', 0
    for ch in inner:
        depth += {'{': 1, '}': -1}.get(ch, 0)
        if ch == ',' and depth == 0:
            parts.append(current.strip())
            current = ''
        else:
            current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


def paths_of(tree):
    """Every path a `use` tree names."""
    tree = tree.strip()
    m = re.match(r'^([\w:]*?)::\{(.*)\}$', tree, re.S)
    if not m:
        return [re.sub(r'\s+as\s+\w+$', '', tree)]
    prefix, inner = m.groups()
    return [prefix if p == 'self' else f'{prefix}::{p}'
            for item in split_top(inner) for p in paths_of(item)]


def target(path, here):
    """The file a path names an item of, or None for anything outside the crate."""
    segments = [s for s in path.split('::') if s]
    if not segments:
        return None
    if segments[0] == 'crate':
        base, segments = [], segments[1:]
    elif segments[0] in ('super', 'self'):
        base = list(here)
        while segments and segments[0] == 'super':
            base, segments = base[:-1], segments[1:]
        if segments and segments[0] == 'self':
            segments = segments[1:]
    elif tuple(list(here) + [segments[0]]) in files:
        base = list(here)
    else:
        return None
    for k in range(len(segments), -1, -1):
        if tuple(base + segments[:k]) in files:
            return tuple(base + segments[:k])
    return None


# `#[macro_export]` macros live at the crate's root but belong to the file defining them.
macros = {}
for module, path in files.items():
    for name in re.findall(r'macro_rules!\s+(\w+)', code_of(open(path, encoding='utf-8').read())):
        macros[name] = module

arrows = defaultdict(set)
for module, path in files.items():
    code = code_of(open(path, encoding='utf-8').read())
    for name in re.findall(r'\$?crate::(\w+)!', code):
        if name in macros and macros[name] != module:
            arrows[module].add(macros[name])
    code = re.sub(r'\$?crate::\w+!', '', code)
    named = [p for m in re.finditer(r'\buse\s+([^;]+);', code) for p in paths_of(m.group(1))]
    named += re.findall(r'\b((?:crate|super)(?:::\w+)+)', code)
    for p in named:
        t = target(p, module)
        if t is not None and t != module:
            arrows[module].add(t)

# Tarjan's strongly connected components: a component of more than one file is a circle.
index, low, stack, on_stack, components = {}, {}, [], set(), []
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in arrows[v]:
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
        components.append(component)


for v in files:
    if v not in index:
        visit(v)


def name(module):
    return '/'.join(module) or 'lib'


circles = [c for c in components if len(c) > 1]
print(f'{len(files)} rooms, {sum(len(a) for a in arrows.values())} arrows, {len(circles)} circles')
for circle in circles:
    print('circle:', ', '.join(sorted(name(m) for m in circle)))
    if verbose:
        for m in circle:
            inside = sorted(name(t) for t in arrows[m] if t in circle)
            print(f'  {name(m)} -> {", ".join(inside)}')
sys.exit(1 if circles else 0)
