#!/usr/bin/env python3
"""Generates Swift value types for every message in Proto/junction.proto, with conversion to and
from the C structs that protoc-c generates, so that Swift encodes and decodes through libprotobuf-c.

Usage: gen_swift.py DESCRIPTOR_SET OUT.swift
The descriptor set comes from `protoc --include_source_info --descriptor_set_out=...` (see the
Makefile's `proto` target). Run through `make proto`; the output is checked in.
"""
import re
import sys

from google.protobuf import descriptor_pb2 as d

FD = d.FieldDescriptorProto

# Swift names that would clash with the standard library.
TYPE_RENAMES = {"Error": "ErrorMessage"}
SWIFT_KEYWORDS = {"default", "case", "in", "is", "as", "import", "protocol", "struct", "class",
                  "func", "var", "let", "self", "Self", "init", "deinit", "extension", "return",
                  "switch", "where", "while", "for", "repeat", "enum", "static", "operator", "throws",
                  "try", "catch", "internal", "public", "private", "fileprivate", "subscript",
                  "typealias", "associatedtype", "inout", "nil", "true", "false", "super", "break",
                  "continue", "defer", "do", "else", "fallthrough", "guard", "if", "any", "some"}


def camel_to_lower_snake(name):
    # protoc-c's rule for function and type prefixes: "ScheduleRequest" -> "schedule_request".
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0 and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def snake_to_camel(name, upper_first=False):
    parts = name.split("_")
    words = []
    for i, p in enumerate(parts):
        if p in ("id", "url") and (i > 0 or upper_first):
            words.append(p.upper())
        elif i == 0 and not upper_first:
            words.append(p.lower())
        else:
            words.append(p[:1].upper() + p[1:].lower())
    s = "".join(words)
    return f"`{s}`" if s in SWIFT_KEYWORDS else s


def swift_type_name(proto_name):
    return TYPE_RENAMES.get(proto_name, proto_name)


class Gen:
    def __init__(self, fdset):
        self.file = fdset.file[0]
        pkg = self.file.package  # junction.v1
        self.c_prefix = "__".join(p.capitalize() for p in pkg.split(".")) + "__"  # Junction__V1__
        self.fn_prefix = "__".join(p.lower() for p in pkg.split(".")) + "__"  # junction__v1__
        self.comments = {}
        for loc in self.file.source_code_info.location:
            text = (loc.leading_comments or "") + (loc.trailing_comments or "")
            if text.strip():
                self.comments[tuple(loc.path)] = text
        self.out = []

    def w(self, line=""):
        self.out.append(line)

    def doc(self, path, indent):
        text = self.comments.get(tuple(path))
        if not text:
            return
        for line in text.strip("\n").split("\n"):
            self.w(f"{indent}/// {line.strip()}".rstrip())

    def c_struct(self, msg_name):
        return f"{self.c_prefix}{msg_name}"

    def c_fn(self, msg_name, what):
        return f"{self.fn_prefix}{camel_to_lower_snake(msg_name)}__{what}"

    @staticmethod
    def short(type_name):
        return type_name.split(".")[-1]

    def enum_case_name(self, enum_name, value_name):
        prefix = camel_to_lower_snake(enum_name).upper() + "_"
        base = value_name[len(prefix):] if value_name.startswith(prefix) else value_name
        return snake_to_camel(base.lower())

    # -- Swift types ------------------------------------------------------------------------------

    def swift_field_type(self, f):
        base = {
            FD.TYPE_UINT64: "UInt64", FD.TYPE_UINT32: "UInt32", FD.TYPE_INT64: "Int64",
            FD.TYPE_INT32: "Int32", FD.TYPE_DOUBLE: "Double", FD.TYPE_FLOAT: "Float",
            FD.TYPE_BOOL: "Bool", FD.TYPE_STRING: "String", FD.TYPE_BYTES: "[UInt8]",
        }.get(f.type)
        if base is None:
            base = swift_type_name(self.short(f.type_name))
        if f.label == FD.LABEL_REPEATED:
            return f"[{base}]"
        if f.type == FD.TYPE_MESSAGE:
            return f"{base}?"
        return base

    def default_value(self, f):
        if f.label == FD.LABEL_REPEATED:
            return "[]"
        if f.type == FD.TYPE_MESSAGE:
            return "nil"
        if f.type == FD.TYPE_STRING:
            return '""'
        if f.type == FD.TYPE_BYTES:
            return "[]"
        if f.type == FD.TYPE_BOOL:
            return "false"
        if f.type == FD.TYPE_ENUM:
            enum = self.enums[self.short(f.type_name)]
            return "." + self.enum_case_name(enum.name, enum.value[0].name)
        return "0"

    def gen_enum(self, e, idx):
        self.doc([5, idx], "")
        name = swift_type_name(e.name)
        self.w(f"public enum {name}: Int32, Sendable, Hashable, CaseIterable {{")
        for vi, v in enumerate(e.value):
            self.doc([5, idx, 2, vi], "    ")
            self.w(f"    case {self.enum_case_name(e.name, v.name)} = {v.number}")
        self.w("}")
        self.w()
        c_type = self.c_struct(e.name)
        self.w(f"extension {name} {{")
        self.w("    /// Values this version does not know decode as the first (zero) case.")
        self.w(f"    init(cValue: {c_type}) {{")
        first = self.enum_case_name(e.name, e.value[0].name)
        self.w(f"        self = {name}(rawValue: Int32(truncatingIfNeeded: cValue.rawValue)) ?? .{first}")
        self.w("    }")
        self.w()
        self.w(f"    var cValue: {c_type} {{ {c_type}(rawValue: .init(truncatingIfNeeded: rawValue)) }}")
        self.w("}")
        self.w()

    def gen_message(self, m, idx):
        name = swift_type_name(m.name)
        self.doc([4, idx], "")
        self.w(f"public struct {name}: Sendable, Hashable {{")
        oneofs = {}
        for fi, f in enumerate(m.field):
            if f.HasField("oneof_index") and not f.proto3_optional:
                oneofs.setdefault(f.oneof_index, []).append((fi, f))
                continue
            self.doc([4, idx, 2, fi], "    ")
            self.w(f"    public var {snake_to_camel(f.name)}: {self.swift_field_type(f)}")
        for oi, fields in oneofs.items():
            oname = m.oneof_decl[oi].name
            enum_name = snake_to_camel(oname, upper_first=True)
            self.w()
            self.w(f"    public enum {enum_name}: Sendable, Hashable {{")
            for fi, f in fields:
                self.doc([4, idx, 2, fi], "        ")
                t = self.swift_field_type(f).rstrip("?")
                self.w(f"        case {snake_to_camel(f.name)}({t})")
            self.w("    }")
            self.w()
            self.w(f"    public var {snake_to_camel(oname)}: {enum_name}?")
        # memberwise initialiser with defaults
        params = []
        for f in m.field:
            if f.HasField("oneof_index") and not f.proto3_optional:
                continue
            params.append((snake_to_camel(f.name), self.swift_field_type(f), self.default_value(f)))
        for oi in oneofs:
            oname = m.oneof_decl[oi].name
            params.append((snake_to_camel(oname), snake_to_camel(oname, upper_first=True) + "?", "nil"))
        self.w()
        if params:
            self.w("    public init(")
            for i, (pn, pt, pd) in enumerate(params):
                comma = "," if i < len(params) - 1 else ""
                self.w(f"        {pn}: {pt} = {pd}{comma}")
            self.w("    ) {")
            for pn, _, _ in params:
                bare = pn.strip("`")
                self.w(f"        self.{bare} = {pn}")
            self.w("    }")
        else:
            self.w("    public init() {}")
        self.w("}")
        self.w()
        self.gen_conversion(m, name, oneofs)

    # -- conversion -------------------------------------------------------------------------------

    def decode_expr(self, f, src):
        """Swift expression that reads field f (non-repeated) from C value expression src."""
        if f.type == FD.TYPE_STRING:
            return f"try cString({src})"
        if f.type == FD.TYPE_BYTES:
            return f"cBytes({src})"
        if f.type == FD.TYPE_BOOL:
            return f"({src} != 0)"
        if f.type == FD.TYPE_ENUM:
            return f"{swift_type_name(self.short(f.type_name))}(cValue: {src})"
        if f.type == FD.TYPE_MESSAGE:
            return f"try {swift_type_name(self.short(f.type_name))}(c: {src})"
        return src

    def encode_expr(self, f, value):
        if f.type == FD.TYPE_STRING:
            return f"arena.cString({value})"
        if f.type == FD.TYPE_BYTES:
            return f"arena.binary({value})"
        if f.type == FD.TYPE_BOOL:
            return f"({value} ? 1 : 0)"
        if f.type == FD.TYPE_ENUM:
            return f"{value}.cValue"
        if f.type == FD.TYPE_MESSAGE:
            return f"{value}.makeC(arena)"
        return value

    def gen_conversion(self, m, name, oneofs):
        c = self.c_struct(m.name)
        self.w(f"extension {name}: ProtobufCConvertible, WireMessage {{")
        self.w(f"    typealias CMessage = {c}")
        self.w()
        # decode
        self.w(f"    init(c pointer: UnsafePointer<{c}>) throws {{")
        if m.field:
            self.w("        let c = pointer.pointee")
        else:
            self.w("        _ = pointer")
        self.w("        self.init()")
        for f in m.field:
            if f.HasField("oneof_index") and not f.proto3_optional:
                continue
            sw = snake_to_camel(f.name).strip("`")
            cf = f.name
            if f.label == FD.LABEL_REPEATED:
                if f.type == FD.TYPE_MESSAGE:
                    t = swift_type_name(self.short(f.type_name))
                    self.w(f"        self.{sw} = try cMessages(c.{cf}, c.n_{cf}).map {{ try {t}(c: $0) }}")
                elif f.type == FD.TYPE_STRING:
                    self.w(f"        self.{sw} = try cStrings(c.{cf}, c.n_{cf})")
                elif f.type in (FD.TYPE_BYTES, FD.TYPE_BOOL, FD.TYPE_ENUM):
                    raise SystemExit(f"repeated {f.type} not supported by gen_swift.py: {m.name}.{f.name}")
                else:
                    self.w(f"        self.{sw} = cScalars(c.{cf}, c.n_{cf})")
            elif f.type == FD.TYPE_MESSAGE:
                t = swift_type_name(self.short(f.type_name))
                self.w(f"        self.{sw} = try c.{cf}.map {{ try {t}(c: $0) }}")
            else:
                self.w(f"        self.{sw} = {self.decode_expr(f, 'c.' + cf)}")
        for oi, fields in oneofs.items():
            oname = m.oneof_decl[oi].name
            self.w(f"        switch Int(c.{oname}_case.rawValue) {{")
            for _, f in fields:
                case = snake_to_camel(f.name)
                if f.type == FD.TYPE_MESSAGE:
                    t = swift_type_name(self.short(f.type_name))
                    self.w(f"        case {f.number}: self.{oname} = try c.{f.name}.map {{ .{case}(try {t}(c: $0)) }}")
                else:
                    self.w(f"        case {f.number}: self.{oname} = .{case}({self.decode_expr(f, 'c.' + f.name)})")
            self.w(f"        default: self.{snake_to_camel(oname)} = nil")
            self.w("        }")
        self.w("    }")
        self.w()
        # encode
        self.w(f"    func makeC(_ arena: CArena) -> UnsafeMutablePointer<{c}> {{")
        self.w(f"        let pointer = arena.allocate({c}.self)")
        self.w(f"        {self.c_fn(m.name, 'init')}(pointer)")
        has_fields = any(True for _ in m.field)
        if has_fields:
            self.w("        var c = pointer.pointee")
        for f in m.field:
            if f.HasField("oneof_index") and not f.proto3_optional:
                continue
            sw = snake_to_camel(f.name).strip("`")
            cf = f.name
            if f.label == FD.LABEL_REPEATED:
                if f.type == FD.TYPE_MESSAGE:
                    self.w(f"        (c.n_{cf}, c.{cf}) = arena.messages({sw})")
                elif f.type == FD.TYPE_STRING:
                    self.w(f"        (c.n_{cf}, c.{cf}) = arena.cStrings({sw})")
                else:
                    self.w(f"        (c.n_{cf}, c.{cf}) = arena.scalars({sw})")
            elif f.type == FD.TYPE_MESSAGE:
                self.w(f"        c.{cf} = {sw}.map {{ $0.makeC(arena) }}")
            else:
                self.w(f"        c.{cf} = {self.encode_expr(f, sw)}")
        for oi, fields in oneofs.items():
            oname = m.oneof_decl[oi].name
            case_type = f"{c}__{snake_to_camel(oname, upper_first=True)}Case"
            self.w(f"        switch {snake_to_camel(oname)} {{")
            self.w("        case nil: break")
            for _, f in fields:
                case = snake_to_camel(f.name)
                self.w(f"        case .{case}(let value)?:")
                self.w(f"            c.{oname}_case = {case_type}(rawValue: {f.number})")
                self.w(f"            c.{f.name} = {self.encode_expr(f, 'value')}")
            self.w("        }")
        if has_fields:
            self.w("        pointer.pointee = c")
        self.w("        return pointer")
        self.w("    }")
        self.w()
        # top-level pack/unpack entry points
        self.w("    public func serializedBytes() -> [UInt8] { protobufCSerializedBytes(self) }")
        self.w("    @discardableResult")
        self.w("    public func serialize(into buffer: inout ByteBuffer) -> Int { protobufCSerialize(self, into: &buffer) }")
        self.w(f"    public init(serializedBytes bytes: some Collection<UInt8>) throws {{ self = try protobufCDecode({name}.self, bytes: bytes) }}")
        self.w(f"    public init(buffer: ByteBuffer) throws {{ self = try protobufCDecode({name}.self, buffer: buffer) }}")
        self.w()
        self.w(f"    static func cUnpack(_ length: Int, _ bytes: UnsafePointer<UInt8>) -> UnsafeMutablePointer<{c}>? {{")
        self.w(f"        {self.c_fn(m.name, 'unpack')}(nil, length, bytes)")
        self.w("    }")
        self.w(f"    static func cFree(_ pointer: UnsafeMutablePointer<{c}>) {{")
        self.w(f"        {self.c_fn(m.name, 'free_unpacked')}(pointer, nil)")
        self.w("    }")
        self.w(f"    static func cPackedSize(_ pointer: UnsafePointer<{c}>) -> Int {{")
        self.w(f"        {self.c_fn(m.name, 'get_packed_size')}(pointer)")
        self.w("    }")
        self.w(f"    static func cPack(_ pointer: UnsafePointer<{c}>, _ out: UnsafeMutablePointer<UInt8>) -> Int {{")
        self.w(f"        {self.c_fn(m.name, 'pack')}(pointer, out)")
        self.w("    }")
        self.w("}")
        self.w()

    def run(self):
        self.enums = {e.name: e for e in self.file.enum_type}
        for m in self.file.message_type:
            if m.nested_type or m.enum_type:
                raise SystemExit(f"nested types are not supported by gen_swift.py: {m.name}")
        self.w("// Generated by Proto/gen_swift.py from Proto/junction.proto. Do not edit: run `make proto`.")
        self.w("// swiftlint:disable all")
        self.w()
        self.w("import CJunctionProto")
        self.w("import CProtobufC")
        self.w("import NIOCore")
        self.w()
        for i, e in enumerate(self.file.enum_type):
            self.gen_enum(e, i)
        for i, m in enumerate(self.file.message_type):
            self.gen_message(m, i)
        text = "\n".join(self.out).rstrip() + "\n"
        return re.sub(r"\n{3,}", "\n\n", text)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    fdset = d.FileDescriptorSet()
    with open(sys.argv[1], "rb") as fh:
        fdset.ParseFromString(fh.read())
    with open(sys.argv[2], "w") as fh:
        fh.write(Gen(fdset).run())


if __name__ == "__main__":
    main()
