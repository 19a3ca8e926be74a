#!/usr/bin/env python3
"""Generates src/aws/ec2_json.rs (and, with `--crate autoscaling`,
src/aws/autoscaling_json.rs): JSON for aws-sdk-ec2 (aws-sdk-autoscaling) types
in the shape the Go plugin emits (aws-sdk-go-v2 structs through encoding/json).

The Go structs carry no JSON tags, so keys are the Smithy member names
(PascalCase, original acronym casing); nil pointers and nil slices are `null`,
and enum members are value types, so an absent enum is `""`. This script reads
the crate's own sources: each type's fields from `src/types/_<name>.rs` and
each field's Smithy member name from the comment in its XML deserializer
`src/protocol_serde/shape_<name>.rs` (EC2 speaks ec2Query, Auto Scaling
awsQuery: both are XML, and both deserializers carry that comment).

Usage: tools/gen_ec2_json.py [--crate ec2|autoscaling] [CRATE_SRC_DIR] > src/aws/<crate>_json.rs
Without a directory it finds the crate version locked in Cargo.lock in ~/.cargo/registry.
`--crate` defaults to ec2.
"""
import glob
import os
import re
import sys

ROOTS = [
    "CapacityReservationSpecificationResponse",
    "InstanceBlockDeviceMapping",
    "ElasticGpuAssociation",
    "ElasticInferenceAcceleratorAssociation",
    "EnclaveOptions",
    "HibernationOptions",
    "StateReason",
    "ResponseLaunchTemplateData",
    "LicenseConfiguration",
    "InstanceMaintenanceOptions",
    "InstanceMetadataOptionsResponse",
    "InstanceNetworkInterface",
    "PrivateDnsNameOptionsResponse",
    "ProductCode",
    "GroupIdentifier",
    "InstanceStatus",
    "Tag",
    # aws_ec2_ami, aws_ec2_ami_shared
    "BlockDeviceMapping",
    "LaunchPermission",
]


# Members the Go plugin cannot emit: turbot's aws plugin v1.31.0 is built
# on aws-sdk-go-v2 service/ec2 v1.236.0, whose structs lack these newer ones.
# `tools/gen_ec2_json.py --go-absent <ec2@v1.236.0>/types/types.go` prints
# this table again from the Go module's source.
GO_ABSENT = {
    "EbsBlockDevice": ["EbsCardIndex"],
    "EbsInstanceBlockDevice": ["EbsCardIndex"],
    "InstanceRequirements": ["RequireEncryptionInTransit"],
    "InstanceStatus": ["ApplicationStatus", "AvailabilityZoneId", "PerformanceStatus"],
    "LaunchTemplateCpuOptions": ["NestedVirtualization"],
    "LaunchTemplateEbsBlockDevice": ["EbsCardIndex"],
    "LaunchTemplatePlacement": ["AvailabilityZoneId"],
    "OperatorResponse": ["HiddenByDefault"],
    "ResponseLaunchTemplateData": ["SecondaryInterfaces"],
}

# The aws-sdk-autoscaling types the tables emit as JSON.
AUTOSCALING_ROOTS = [
    "BlockDeviceMapping",
]

# As GO_ABSENT, against aws-sdk-go-v2 service/autoscaling v1.40.5 (what
# turbot's plugin v1.31.0 pins): `tools/gen_ec2_json.py --crate autoscaling
# --go-absent <autoscaling@v1.40.5>/types/types.go` prints it again.
AUTOSCALING_GO_ABSENT = {}

RUST_KEYWORDS = {"type", "match", "ref", "struct", "enum", "fn", "mod", "move", "loop", "use"}


def rust_field(field):
    return f"r#{field}" if field in RUST_KEYWORDS else field


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def locate_src():
    if len(sys.argv) > 1:
        return sys.argv[1]
    lock = open(os.path.join(os.path.dirname(__file__), "..", "Cargo.lock")).read()
    m = re.search(rf'name = "aws-sdk-{CRATE}"\nversion = "([^"]+)"', lock)
    if not m:
        sys.exit(f"aws-sdk-{CRATE} is not in Cargo.lock")
    version = m.group(1)
    hits = glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/aws-sdk-{CRATE}-{version}/src"))
    if not hits:
        sys.exit(f"aws-sdk-{CRATE} {version} sources not found; run cargo fetch")
    return hits[0]


def go_absent(types_go):
    """The GO_ABSENT table: members of the generated types missing from Go's structs."""
    go = open(types_go).read()
    structs = {}
    for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", go, re.S | re.M):
        structs[m.group(1)] = {f.group(1) for f in re.finditer(r"^\t([A-Z]\w*) ", m.group(2), re.M)}
    done, todo, absent = set(), list(ROOTS), {}
    while todo:
        t = todo.pop(0)
        if t in done:
            continue
        done.add(t)
        names = member_names(t)
        missing = sorted(names[f] for f, _ in fields(t) if t in structs and names[f] not in structs[t])
        if missing:
            absent[t] = missing
        if t not in structs:
            continue  # a type Go does not have is only reached through an absent member
        for f, ty in fields(t):
            if names[f] in absent.get(t, ()):
                continue
            for inner in re.findall(r"crate::types::(\w+)", ty):
                if kind(inner) == "struct":
                    todo.append(inner)
    return absent


CRATE = "ec2"
if len(sys.argv) > 2 and sys.argv[1] == "--crate":
    CRATE = sys.argv[2]
    del sys.argv[1:3]
if CRATE == "autoscaling":
    ROOTS, GO_ABSENT = AUTOSCALING_ROOTS, AUTOSCALING_GO_ABSENT
elif CRATE != "ec2":
    sys.exit(f"--crate {CRATE}: expected ec2 or autoscaling")
if len(sys.argv) > 2 and sys.argv[1] == "--go-absent":
    types_go = sys.argv[2]
    sys.argv[1:] = []
    SRC = locate_src()
else:
    types_go = None
    SRC = locate_src()
VERSION = re.search(rf"aws-sdk-{CRATE}-([0-9.]+)", SRC).group(1)
kinds = {}
TYPE_FILES = {}
SERDE_FILES = {}
for f in glob.glob(os.path.join(SRC, "types", "_*.rs")):
    for m in re.finditer(r"^pub (?:struct|enum) (\w+)", open(f).read(), re.M):
        TYPE_FILES.setdefault(m.group(1), f)
for f in glob.glob(os.path.join(SRC, "protocol_serde", "shape_*.rs")):
    text = open(f).read()
    m = re.search(r"let mut builder = crate::types::(\w+)::builder\(\);", text)
    if m and re.search(r"pub fn de_\w+\(\s*decoder", text):
        SERDE_FILES.setdefault(m.group(1), f)


def type_file(name):
    return TYPE_FILES[name]


def fn_name(name):
    return os.path.basename(TYPE_FILES[name])[1:-3]


def kind(name):
    if name not in kinds:
        text = open(type_file(name)).read()
        if re.search(rf"pub enum {name}\b", text):
            kinds[name] = "enum"
        elif re.search(rf"pub struct {name}\b", text):
            kinds[name] = "struct"
        else:
            sys.exit(f"cannot tell what {name} is")
    return kinds[name]


def fields(name):
    text = open(type_file(name)).read()
    body = re.search(rf"pub struct {name} \{{(.*?)\n\}}", text, re.S).group(1)
    out = []
    for m in re.finditer(r"^\s*pub (?:r#)?(\w+): (.+),$", body, re.M):
        out.append((m.group(1), m.group(2)))
    return out


def member_names(name):
    text = open(SERDE_FILES[name]).read()
    names = {}
    pattern = re.compile(
        rf'/\* (\w+) com\.amazonaws\.{CRATE}#\w+\$(\w+) \*/ =>.*?builder = builder\.set_(\w+)\(', re.S
    )
    for m in pattern.finditer(text):
        names[m.group(3)] = m.group(2)
    return names


def strip_option(ty):
    m = re.fullmatch(r"::std::option::Option<(.+)>", ty)
    return (True, m.group(1)) if m else (False, ty)


def writer(ty, var, todo):
    """Rust statements appending `var` (a reference to `ty`) as JSON to `out`."""
    m = re.fullmatch(r"::std::vec::Vec<(.+)>", ty)
    if m:
        inner = writer(m.group(1), "x", todo)
        return (f"out.push(b'['); for (i, x) in {var}.iter().enumerate() {{ if i > 0 {{ out.push(b','); }} {inner} }} "
                f"out.push(b']');")
    if ty == "::std::string::String":
        return f"string(out, {var});"
    if ty in ("i32", "i64"):
        return f"integer(out, *{var} as i64);"
    if ty in ("f32", "f64"):
        return f"float(out, *{var} as f64);"
    if ty == "bool":
        return f"out.extend_from_slice(if *{var} {{ b\"true\" }} else {{ b\"false\" }});"
    if ty == "::aws_smithy_types::DateTime":
        return f"date_time(out, {var});"
    if ty == "::aws_smithy_types::Blob":
        return f"blob(out, {var});"
    m = re.fullmatch(r"crate::types::(\w+)", ty)
    if m:
        t = m.group(1)
        if kind(t) == "enum":
            return f"string(out, {var}.as_str());"
        todo.append(t)
        return f"write_{fn_name(t)}({var}, out);"
    sys.exit(f"unhandled type {ty}")


def gen(name, todo):
    names = member_names(name)
    members = []
    for field, ty in fields(name):
        member = names.get(field)
        if member is None:
            sys.exit(f"{name}.{field}: no deserializer entry names its member")
        if member in GO_ABSENT.get(name, ()):
            continue
        members.append((member, rust_field(field), ty))
    members.sort()
    fname = fn_name(name)
    lines = [
        f"/// Writes `{name}` as the Go plugin emits it.",
        f"pub fn write_{fname}(v: &types::{name}, out: &mut Vec<u8>) {{",
    ]
    for i, (member, field, ty) in enumerate(members):
        key = ("," if i else "{") + f'\\"{member}\\":'
        lines.append(f'    out.extend_from_slice(b"{key}");')
        optional, inner = strip_option(ty)
        is_enum = bool(re.fullmatch(r"crate::types::(\w+)", inner)) and kind(inner.split("::")[-1]) == "enum"
        if optional:
            absent = 'b"\\"\\""' if is_enum else 'b"null"'
            lines.append(f"    match &v.{field} {{ Some(x) => {{ {writer(inner, 'x', todo)} }} None => out.extend_from_slice({absent}), }}")
        else:
            lines.append(f"    {{ let x = &v.{field}; {writer(inner, 'x', todo)} }}")
    if not members:
        lines.append('    out.push(b\'{\');')
    lines.append("    out.push(b'}');")
    lines.append("}")
    lines.append("")
    lines.append(f"/// `{name}` as a JSON value (tests and callers that need a tree).")
    lines.append(f"pub fn {fname}(v: &types::{name}) -> Value {{")
    lines.append("    let mut out = Vec::new();")
    lines.append(f"    write_{fname}(v, &mut out);")
    lines.append('    serde_json::from_slice(&out).expect("the writer emits valid JSON")')
    lines.append("}")
    return "\n".join(lines)


def main():
    done = set()
    todo = list(ROOTS)
    out = []
    while todo:
        t = todo.pop(0)
        if t in done:
            continue
        done.add(t)
        out.append(gen(t, todo))
    body = "\n\n".join(out)
    # A helper no generated writer calls is marked, so that a crate whose
    # types have no float or timestamp member still builds without warnings.
    unused = {h: "" if f"{h}(out, " in body else "#[allow(dead_code)]\n" for h in ("float", "date_time")}
    command = "tools/gen_ec2_json.py" + ("" if CRATE == "ec2" else f" --crate {CRATE}")
    print(f"""// Generated by {command} from aws-sdk-{CRATE} {VERSION}. Do not edit.
//
// JSON for aws-sdk-{CRATE} types in the shape turbot's Go plugin emits them:
// Smithy member names as keys (sorted), `null` for absent members, `""` for
// absent enums. Written straight into a byte buffer: no intermediate tree.
#![allow(clippy::all, unused_mut, unused_variables)]

use aws_sdk_{CRATE}::types;
use serde_json::Value;

fn string(out: &mut Vec<u8>, s: &str) {{
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}}

fn integer(out: &mut Vec<u8>, n: i64) {{
    use std::io::Write;
    write!(out, "{{n}}").expect("writing to a Vec cannot fail");
}}

{unused["float"]}fn float(out: &mut Vec<u8>, f: f64) {{
    if f.is_finite() {{
        serde_json::to_writer(&mut *out, &f).expect("writing to a Vec cannot fail");
    }} else {{
        out.extend_from_slice(b"null");
    }}
}}

{unused["date_time"]}fn date_time(out: &mut Vec<u8>, d: &aws_smithy_types::DateTime) {{
    match super::common::rfc3339(d) {{
        Some(s) => string(out, &s),
        None => out.extend_from_slice(b"null"),
    }}
}}

#[allow(dead_code)]
fn blob(out: &mut Vec<u8>, b: &aws_smithy_types::Blob) {{
    use base64::Engine;
    string(out, &base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
}}
""")
    print(body)


if types_go:
    for k, v in sorted(go_absent(types_go).items()):
        print(f"    {k!r}: {v!r},")
else:
    main()
