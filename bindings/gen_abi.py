#!/usr/bin/env python3
"""Derives the bindings' view of the C ABI from include/wsembed.h.

    python3 bindings/gen_abi.py            # rewrites the generated files
    python3 bindings/gen_abi.py --check    # exit 1 (and say which) when one is stale
    python3 bindings/gen_abi.py --print python|node   # the generated text on stdout

Writes
    bindings/python/src/wsembed/_abi.py   ctypes Structures, enum constants, #defines,
                                           function signatures, field docs, struct formats
    bindings/node/lib/abi.js              the same as data plus koffi declarations

Like wasmtime-py's ci/cbindgen.py, but without a C parser dependency: the header is written by
cbindgen in a small, regular subset of C, which this script parses itself (a tiny
preprocessor for the #if/#ifdef blocks cbindgen emits, then enums, typedefs, structs and
prototypes). Anything outside that subset is an error here, so a header change the bindings
cannot follow fails loudly instead of producing a wrong layout.

Both packages' test suites run this script into memory and fail when the committed file
differs ("run bindings/gen_abi.py"). Standard library only; Python 3.8+.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HEADER = REPO / "include" / "wsembed.h"
OUTPUTS = {
    "python": HERE / "python" / "src" / "wsembed" / "_abi.py",
    "node": HERE / "node" / "lib" / "abi.js",
}

# The C environment the header is read in: plain C (not C++), C11.
PREDEFINED = {"__STDC_VERSION__": 201112}

# Scalar C types: (ctypes name, struct format char, koffi name).
SCALARS = {
    "bool": ("c_bool", "?", "bool"),
    "char": ("c_char", "c", "char"),
    "int": ("c_int", "i", "int"),
    "int8_t": ("c_int8", "b", "int8_t"),
    "uint8_t": ("c_uint8", "B", "uint8_t"),
    "int16_t": ("c_int16", "h", "int16_t"),
    "uint16_t": ("c_uint16", "H", "uint16_t"),
    "int32_t": ("c_int32", "i", "int32_t"),
    "uint32_t": ("c_uint32", "I", "uint32_t"),
    "int64_t": ("c_int64", "q", "int64_t"),
    "uint64_t": ("c_uint64", "Q", "uint64_t"),
    "size_t": ("c_size_t", "N", "size_t"),
}


class HeaderError(Exception):
    pass


# ------------------------------------------------------------------------------ parsing


def preprocess(text: str):
    """Yields (line, doc) for the lines the C compiler would see; doc is the `//` comment
    block right above the line (joined), or "". Handles #if/#ifdef/#ifndef/#else/#endif and
    collects #define NAME VALUE."""
    defines: dict = {}
    # /* */ comments: dropped (the header's prose), keeping line numbers.
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    stack = []  # [active, taken]
    lines = []
    doc: list = []
    for raw in text.splitlines():
        line = raw.strip()
        active = all(a for a, _ in stack)
        if line.startswith("#"):
            directive = line[1:].strip()
            word, _, rest = directive.partition(" ")
            rest = re.sub(r"//.*", "", rest).strip()
            if word in ("if", "ifdef", "ifndef"):
                if word == "ifdef":
                    cond = rest in defines or rest in PREDEFINED
                elif word == "ifndef":
                    cond = not (rest in defines or rest in PREDEFINED)
                else:
                    cond = eval_condition(rest, defines)
                stack.append([cond, cond])
            elif word == "else":
                if not stack:
                    raise HeaderError("#else without #if")
                top = stack[-1]
                top[0] = not top[1]
                top[1] = True
            elif word == "endif":
                if not stack:
                    raise HeaderError("#endif without #if")
                stack.pop()
            elif word == "define":
                if active:
                    name, _, value = rest.partition(" ")
                    defines[name] = value.strip()
            elif word == "include":
                pass
            else:
                raise HeaderError(f"unsupported directive: {line}")
            doc = []
            continue
        if not active:
            continue
        if line.startswith("//"):
            doc.append(line[2:].strip())
            continue
        if not line:
            doc = []
            continue
        lines.append((re.sub(r"//.*", "", line).strip(), " ".join(doc)))
        doc = []
    if stack:
        raise HeaderError("unterminated #if")
    return lines, defines


def eval_condition(expr: str, defines: dict) -> bool:
    tokens = re.findall(r"defined\s*\(\s*\w+\s*\)|\w+|\|\||&&|>=|<=|==|!=|[()!<>]", expr)
    out = []
    for tok in tokens:
        m = re.match(r"defined\s*\(\s*(\w+)\s*\)", tok)
        if m:
            out.append("1" if m.group(1) in defines or m.group(1) in PREDEFINED else "0")
        elif tok == "||":
            out.append(" or ")
        elif tok == "&&":
            out.append(" and ")
        elif tok == "!":
            out.append(" not ")
        elif re.fullmatch(r"\d+L?", tok):
            out.append(tok.rstrip("L"))
        elif re.fullmatch(r"\w+", tok):
            value = PREDEFINED.get(tok, defines.get(tok, 0))
            out.append(str(int(value)) if str(value).isdigit() else "0")
        else:
            out.append(tok)
    return bool(eval("".join(out), {"__builtins__": {}}, {}))  # only numbers and operators


def parse_type(decl: str):
    """'const struct wsembed_header *headers' -> (type dict, name). A type is
    {base, const, ptr: [const flags of each pointer level, innermost first]}."""
    decl = decl.strip()
    m = re.fullmatch(r"(.*?)(\w+)", decl)
    if not m:
        raise HeaderError(f"cannot parse declaration {decl!r}")
    type_text, name = m.group(1).strip(), m.group(2)
    if not type_text:  # e.g. a parameter list of `void`
        type_text, name = name, ""
    return normalize_type(type_text), name


def normalize_type(text: str) -> dict:
    """`const` before the base type makes the pointee const; after a `*`, that pointer."""
    base_const = False
    base = None
    ptr: list = []
    for tok in re.findall(r"\w+|\*", text):
        if tok == "const":
            if ptr:
                ptr[-1] = True
            else:
                base_const = True
        elif tok == "struct":
            continue
        elif tok == "*":
            ptr.append(False)
        elif base is None:
            base = tok
        else:
            raise HeaderError(f"unsupported type {text!r}")
    if base is None:
        raise HeaderError(f"no base type in {text!r}")
    return {"base": base, "const": base_const, "ptr": ptr}


def c_spelling(t: dict) -> str:
    s = ("const " if t["const"] else "") + t["base"]
    for const in t["ptr"]:
        s += " *" + ("const" if const else "")
    return s.replace("*const", "* const")


def parse_header(text: str) -> dict:
    lines, defines = preprocess(text)
    abi = {"defines": {}, "enums": {}, "typedefs": {}, "opaque": [], "structs": {}, "functions": {}}
    for name, value in defines.items():
        if name.startswith("WSEMBED_") and re.fullmatch(r"-?\d+", value):
            abi["defines"][name] = int(value)
    src = lines
    i = 0
    n = len(src)

    def gather(start: int):
        """Statement text from src[start] up to and including the line ending with ';'."""
        parts = []
        j = start
        while j < n:
            parts.append(src[j][0])
            if src[j][0].endswith(";"):
                return " ".join(parts), j + 1
            j += 1
        raise HeaderError(f"unterminated statement at {src[start][0]!r}")

    while i < n:
        line, doc = src[i]
        if line.startswith('extern "C"') or line == "}" or line == "{":
            i += 1
            continue
        m = re.match(r"enum (\w+)$", line)
        if m:
            name = m.group(1)
            values = {}
            docs = {}
            i += 1
            if src[i][0] != "{":
                raise HeaderError(f"enum {name}: expected '{{'")
            i += 1
            while src[i][0] != "};":
                entry, edoc = src[i]
                em = re.fullmatch(r"(\w+)\s*=\s*(-?\d+),?", entry)
                if not em:
                    raise HeaderError(f"enum {name}: cannot parse {entry!r} (every value must be explicit)")
                values[em.group(1)] = int(em.group(2))
                docs[em.group(1)] = edoc
                i += 1
            abi["enums"][name] = {"doc": doc, "values": values, "docs": docs}
            i += 1
            continue
        m = re.match(r"typedef struct (\w+) (\w+);$", line)
        if m:
            abi["opaque"].append(m.group(2))
            abi["structs"].pop(m.group(2), None)
            i += 1
            continue
        m = re.match(r"typedef struct (\w+) \{$", line)
        if m:
            name = m.group(1)
            fields = []
            i += 1
            while not src[i][0].startswith("}"):
                text_, fdoc = src[i]
                if not text_.endswith(";"):
                    raise HeaderError(f"struct {name}: cannot parse {text_!r}")
                # `// doc` above a field describes it (and the fields after it up to the next doc).
                t, fname = parse_type(text_[:-1])
                fields.append({"name": fname, "type": t, "c": c_spelling(t), "doc": fdoc})
                i += 1
            end = src[i][0]
            if end != f"}} {name};":
                raise HeaderError(f"struct {name}: unexpected end {end!r}")
            abi["structs"][name] = {"doc": doc, "fields": fields}
            i += 1
            continue
        m = re.match(r"typedef (.+?) (\w+);$", line)
        if m:
            abi["typedefs"][m.group(2)] = normalize_type(m.group(1))
            i += 1
            continue
        if "(" in line:
            stmt, i = gather(i)
            fm = re.fullmatch(r"(.+?)\b(wsembed_\w+)\((.*)\);", stmt)
            if not fm:
                raise HeaderError(f"cannot parse prototype {stmt!r}")
            ret = normalize_type(fm.group(1))
            params = []
            plist = fm.group(3).strip()
            if plist and plist != "void":
                for p in plist.split(","):
                    t, pname = parse_type(p)
                    params.append({"name": pname, "type": t, "c": c_spelling(t)})
            abi["functions"][fm.group(2)] = {"doc": doc, "ret": ret, "ret_c": c_spelling(ret), "params": params}
            continue
        raise HeaderError(f"cannot parse {line!r}")
    # Typedefs naming an enum (cbindgen: `typedef uint32_t wsembed_result;`) keep their scalar.
    for name, t in abi["typedefs"].items():
        if t["ptr"] or t["base"] not in SCALARS:
            raise HeaderError(f"typedef {name}: only scalar typedefs are supported")
    return abi


# ------------------------------------------------------------------------------ type mapping


def scalar_of(abi: dict, base: str):
    if base in SCALARS:
        return base
    if base in abi["typedefs"]:
        return abi["typedefs"][base]["base"]
    return None


def ctypes_type(abi: dict, t: dict, role: str) -> str:
    """role: 'field', 'param' or 'ret'."""
    base, ptr = t["base"], t["ptr"]
    if not ptr:
        if base == "void":
            return "None"
        s = scalar_of(abi, base)
        if s is None:
            raise HeaderError(f"no ctypes type for {c_spelling(t)}")
        return "ctypes." + SCALARS[s][0]
    if len(ptr) == 1:
        if base == "char":
            return "ctypes.c_char_p"
        if base == "uint8_t" and t["const"]:
            # byte buffers: bytes/bytearray-backed arrays as arguments, an address in events
            return "ctypes.c_char_p" if role == "param" else "ctypes.c_void_p"
        if base == "void" or base in abi["opaque"]:
            return "ctypes.c_void_p"
        if base in abi["structs"]:
            return f"ctypes.POINTER({base})"
        s = scalar_of(abi, base)
        if s is not None:
            return f"ctypes.POINTER(ctypes.{SCALARS[s][0]})"
    if len(ptr) == 2:
        if base == "char":
            return "ctypes.POINTER(ctypes.c_char_p)"
        if base in abi["opaque"]:
            return "ctypes.POINTER(ctypes.c_void_p)"
    raise HeaderError(f"no ctypes type for {c_spelling(t)}")


def struct_char(abi: dict, t: dict) -> str:
    if t["ptr"]:
        return "P"
    s = scalar_of(abi, t["base"])
    if s is None:
        raise HeaderError(f"no struct format for {c_spelling(t)}")
    return SCALARS[s][1]


def koffi_type(abi: dict, t: dict, role: str) -> str:
    """A koffi type string. Out-parameters (non-const pointers to scalars, structs or
    pointers) get koffi's `_Out_` direction."""
    base, ptr = t["base"], t["ptr"]
    name = base
    if not ptr:
        if base == "void":
            return "void"
        s = scalar_of(abi, base)
        if s is None:
            raise HeaderError(f"no koffi type for {c_spelling(t)}")
        return SCALARS[s][2]
    if base not in abi["opaque"] and base not in abi["structs"] and base != "void":
        s = scalar_of(abi, base)
        if s is None:
            raise HeaderError(f"no koffi type for {c_spelling(t)}")
        name = SCALARS[s][2]
    text = ("const " if t["const"] else "") + name + " " + "*" * len(ptr)
    if role == "param" and not t["const"] and base != "void":
        # `T **out`, `uint16_t *port`, `struct wsembed_stats *stats`: written by the callee.
        # A non-const pointer to an opaque type is an input handle (`wsembed_config *config`).
        if len(ptr) >= 2 or base not in abi["opaque"]:
            text = "_Out_ " + text
    return text


# ------------------------------------------------------------------------------ writers

BANNER = "Generated by bindings/gen_abi.py from include/wsembed.h: do not edit; run bindings/gen_abi.py."


def py_repr(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def gen_python(abi: dict) -> str:
    out = [f'"""{BANNER}"""', "", "# flake8: noqa", "import ctypes", ""]
    out.append("# #defines")
    for name, value in abi["defines"].items():
        out.append(f"{name} = {value}")
    for ename, enum in abi["enums"].items():
        out.append("")
        out.append(f"# enum {ename}: {enum['doc']}" if enum["doc"] else f"# enum {ename}")
        for vname, value in enum["values"].items():
            out.append(f"{vname} = {value}")
        out.append(f"{ename} = {{{', '.join(f'{py_repr(k)}: {v}' for k, v in enum['values'].items())}}}")
    out.append("")
    out.append("#: Every enum: name -> {constant: value}.")
    out.append("ENUMS = {" + ", ".join(f"{py_repr(e)}: {e}" for e in abi["enums"]) + "}")
    out.append("#: Docs of enum constants: constant -> text.")
    out.append("ENUM_DOCS = {")
    for enum in abi["enums"].values():
        for vname, d in enum["docs"].items():
            out.append(f"    {py_repr(vname)}: {py_repr(d)},")
    out.append("}")
    out.append("")
    out.append("# Opaque handles")
    for name in abi["opaque"]:
        out.append(f"{name} = ctypes.c_void_p")
    for sname, struct in abi["structs"].items():
        out.append("")
        out.append("")
        out.append(f"class {sname}(ctypes.Structure):")
        if struct["doc"]:
            out.append(f"    {py_repr(struct['doc'])}")
        out.append("    _fields_ = [")
        for f in struct["fields"]:
            out.append(f"        ({py_repr(f['name'])}, {ctypes_type(abi, f['type'], 'field')}),  # {f['c']}")
        out.append("    ]")
    out.append("")
    out.append("")
    out.append("#: Field names in order, per struct.")
    out.append("FIELDS = {")
    for sname, struct in abi["structs"].items():
        names = ", ".join(py_repr(f["name"]) for f in struct["fields"])
        out.append(f"    {py_repr(sname)}: ({names},),")
    out.append("}")
    out.append("#: The `//` comment above each field, per struct (\"\" when none).")
    out.append("FIELD_DOCS = {")
    for sname, struct in abi["structs"].items():
        out.append(f"    {py_repr(sname)}: {{")
        for f in struct["fields"]:
            out.append(f"        {py_repr(f['name'])}: {py_repr(f['doc'])},")
        out.append("    },")
    out.append("}")
    out.append("#: struct-module formats (native alignment) of each struct, for struct.iter_unpack.")
    out.append("FORMATS = {")
    for sname, struct in abi["structs"].items():
        # A zero-count "P" at the end pads the format to pointer alignment as C pads the
        # struct (needed when the last field is narrower than the widest one).
        fmt = "@" + "".join(struct_char(abi, f["type"]) for f in struct["fields"]) + "0P"
        out.append(f"    {py_repr(sname)}: {py_repr(fmt)},")
    out.append("}")
    out.append("")
    out.append("#: name -> (restype, argtypes, parameter names) for every exported function.")
    out.append("FUNCTIONS = {")
    for fname, fn in abi["functions"].items():
        argtypes = ", ".join(ctypes_type(abi, p["type"], "param") for p in fn["params"])
        names = "".join(f"{py_repr(p['name'])}," for p in fn["params"])
        out.append(f"    {py_repr(fname)}: ({ctypes_type(abi, fn['ret'], 'ret')}, [{argtypes}], ({names})),")
    out.append("}")
    out.append("#: The comment above each function.")
    out.append("FUNCTION_DOCS = {")
    for fname, fn in abi["functions"].items():
        out.append(f"    {py_repr(fname)}: {py_repr(fn['doc'])},")
    out.append("}")
    out.append("")
    return "\n".join(out)


def js_repr(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def gen_node(abi: dict) -> str:
    out = ["'use strict';", f"// {BANNER}", ""]
    out.append("/** #defines with a number value. */")
    out.append("const defines = Object.freeze({")
    for name, value in abi["defines"].items():
        out.append(f"  {name}: {value},")
    out.append("});")
    out.append("")
    out.append("/** Every enum: name -> { constant: value }. */")
    out.append("const enums = Object.freeze({")
    for ename, enum in abi["enums"].items():
        if enum["doc"]:
            out.append(f"  // {enum['doc']}")
        out.append(f"  {ename}: Object.freeze({{")
        for vname, value in enum["values"].items():
            out.append(f"    {vname}: {value},")
        out.append("  }),")
    out.append("});")
    out.append("")
    out.append("/** Docs of enum constants. */")
    out.append("const enumDocs = Object.freeze({")
    for enum in abi["enums"].values():
        for vname, d in enum["docs"].items():
            out.append(f"  {vname}: {js_repr(d)},")
    out.append("});")
    out.append("")
    out.append("/** Opaque handle types. */")
    out.append(f"const opaque = Object.freeze({js_repr(abi['opaque'])});")
    out.append("")
    out.append("/** Structs: name -> [[field, koffi type, C type, doc], ...] in declaration order. */")
    out.append("const structs = Object.freeze({")
    for sname, struct in abi["structs"].items():
        out.append(f"  {sname}: Object.freeze([")
        for f in struct["fields"]:
            kt = koffi_type(abi, f["type"], "field")
            out.append(f"    [{js_repr(f['name'])}, {js_repr(kt)}, {js_repr(f['c'])}, {js_repr(f['doc'])}],")
        out.append("  ]),")
    out.append("});")
    out.append("")
    out.append("/** Functions: name -> { ret, params: [[name, koffi type], ...] } (koffi types; `_Out_` marks")
    out.append(" * out-parameters). */")
    out.append("const functions = Object.freeze({")
    for fname, fn in abi["functions"].items():
        params = ", ".join(f"[{js_repr(p['name'])}, {js_repr(koffi_type(abi, p['type'], 'param'))}]" for p in fn["params"])
        out.append(f"  {fname}: {{ ret: {js_repr(koffi_type(abi, fn['ret'], 'ret'))}, params: [{params}] }},")
    out.append("});")
    out.append("")
    out.append("/**")
    out.append(" * Registers the opaque and struct types with koffi (once per process: koffi's type names are")
    out.append(" * global) and declares every function of `lib`. Returns { types, funcs } keyed by C name.")
    out.append(" */")
    out.append("function declare(koffi, lib) {")
    out.append("  const types = {};")
    out.append("  const make = (name, fn) => { try { return koffi.resolve(name); } catch (_) { return fn(); } };")
    out.append("  for (const name of opaque) types[name] = make(name, () => koffi.opaque(name));")
    out.append("  for (const [name, fields] of Object.entries(structs)) {")
    out.append("    types[name] = make(name, () => koffi.struct(name, Object.fromEntries(fields.map(([f, t]) => [f, t]))));")
    out.append("  }")
    out.append("  const funcs = {};")
    out.append("  for (const [name, { ret, params }] of Object.entries(functions)) {")
    out.append("    funcs[name] = lib.func(`${ret} ${name}(${params.map(([p, t]) => `${t} ${p}`).join(', ')})`);")
    out.append("  }")
    out.append("  return { types, funcs };")
    out.append("}")
    out.append("")
    out.append("module.exports = { defines, enums, enumDocs, opaque, structs, functions, declare };")
    out.append("")
    return "\n".join(out)


GENERATORS = {"python": gen_python, "node": gen_node}


def generate(header_text: str | None = None) -> dict:
    """{'python': text, 'node': text} for the given header text (default: include/wsembed.h)."""
    if header_text is None:
        header_text = HEADER.read_text(encoding="utf-8")
    abi = parse_header(header_text)
    return {key: gen(abi) for key, gen in GENERATORS.items()}


def main(argv) -> int:
    try:
        texts = generate()
    except HeaderError as exc:
        print(f"gen_abi.py: {HEADER}: {exc}", file=sys.stderr)
        return 2
    if argv[:1] == ["--print"]:
        sys.stdout.write(texts[argv[1]])
        return 0
    if argv[:1] == ["--check"]:
        stale = [key for key, path in OUTPUTS.items() if not path.is_file() or path.read_text(encoding="utf-8") != texts[key]]
        for key in stale:
            print(f"{OUTPUTS[key].relative_to(REPO)} is stale: run bindings/gen_abi.py", file=sys.stderr)
        return 1 if stale else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for key, path in OUTPUTS.items():
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old != texts[key]:
            path.write_text(texts[key], encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
