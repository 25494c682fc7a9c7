"""An independent implementation of the outproc migration format, written from its documents.

Sources, and nothing else: ``docs/stream-format.md`` (the device-state stream and the handshake),
``docs/registry-format.md`` (the model registry, canonical form, descriptors), ``docs/integration.md`` (begin and
result messages) and the published test vectors in ``docs/vectors/``. Section numbers below (``stream §5.3``,
``registry §3.4``) refer to those documents.

What it provides:

* the field encoding (stream §5) with the reader rules of §5.3/§5.4, schema-driven and generic;
* the stream writer and reader (stream §3-§8): header with extension entries, chunked sections, digests,
  transcript, HMAC, Ed25519 trailer, the reader's checks in the order of stream §7.4, with or without a handshake
  agreement (stream §7.5);
* a strict registry parser (registry §1-§3), the canonical form and model digest (registry §4), entry signatures,
  merging (registry §5) and device descriptors (registry §7);
* the handshake messages (stream §9.1-§9.2, integration.md §7), the handshake hash and MAC key (§9.3-§9.4), the
  destination's decision (§9.5) and the source's checks (§9.6).

A stream is held in memory (the documents' bounded-memory streaming is a property of the Java library, not of the
format). Cryptography: SHA-256 and HMAC from the standard library, HKDF written out from RFC 5869, X25519 and Ed25519
from Debian's python3-cryptography; Ed25519 verification adds the encoding checks of stream §7.6 before the
library's cofactorless check.

The command line is ``run_interop.py`` (its docstring and README.md list the commands).
"""

import base64
import hashlib
import hmac
import json
import re
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey


class MigrationFormatError(Exception):
    """A stream, message, registry or descriptor violates the documents; the text names the value and offset."""


def fail(message, offset=None):
    if offset is not None:
        message = "%s (offset %d)" % (message, offset)
    raise MigrationFormatError(message)


ZERO32 = bytes(32)

# ---------------------------------------------------------------------------------------------------------------
# Field encoding (stream §5)
# ---------------------------------------------------------------------------------------------------------------

END, BOOL, INT8, INT16, INT32, INT64, BYTES, STRING, ARRAY, RECORD = range(10)
TYPE_NAMES = {END: "END", BOOL: "BOOL", INT8: "INT8", INT16: "INT16", INT32: "INT32", INT64: "INT64",
              BYTES: "BYTES", STRING: "STRING", ARRAY: "ARRAY", RECORD: "RECORD"}
REGISTRY_TYPES = {"bool": BOOL, "int8": INT8, "int16": INT16, "int32": INT32, "int64": INT64, "bytes": BYTES,
                  "string": STRING, "array": ARRAY, "record": RECORD}
INTEGER_WIDTH = {INT8: 1, INT16: 2, INT32: 4, INT64: 8}
# Smallest encoding of one array element (stream §5.1), checked against the remaining body before anything else.
MIN_ELEMENT_SIZE = {BOOL: 1, INT8: 1, INT16: 2, INT32: 4, INT64: 8, BYTES: 8, STRING: 4, RECORD: 3}
MAX_STRING = 1 << 20
MAX_DEPTH = 32
MUST_UNDERSTAND_TAG = 0x8000


class Cursor:
    """Reads little-endian integers from a byte string, checking every length against what remains."""

    def __init__(self, data, pos=0, end=None, base=0):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.base = base  # added to positions in error messages (offset of data[0] in the whole stream)

    def offset(self):
        return self.base + self.pos

    def remaining(self):
        return self.end - self.pos

    def take(self, n, what):
        if n > self.remaining():
            fail("%s needs %d bytes but %d remain" % (what, n, self.remaining()), self.offset())
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what):
        return self.take(1, what)[0]

    def u16(self, what):
        return struct.unpack("<H", self.take(2, what))[0]

    def u32(self, what):
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what):
        return struct.unpack("<Q", self.take(8, what))[0]


def decode_utf8(raw, what, offset):
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        fail("%s is not well-formed UTF-8 (%s)" % (what, e.reason), offset)


class Field:
    """One decoded field: tag, type code, raw value (integers unsigned as on the wire), offset of its tag."""

    __slots__ = ("tag", "type", "value", "offset")

    def __init__(self, tag, type_code, value, offset):
        self.tag = tag
        self.type = type_code
        self.value = value
        self.offset = offset


class ArrayValue:
    __slots__ = ("element", "items")

    def __init__(self, element, items):
        self.element = element
        self.items = items


def _decode_value(cur, type_code, depth, where):
    start = cur.offset()
    if type_code == BOOL:
        v = cur.u8("BOOL value")
        if v > 1:
            fail("BOOL value %d is neither 0 nor 1 in %s" % (v, where), start)
        return bool(v)
    if type_code in INTEGER_WIDTH:
        return int.from_bytes(cur.take(INTEGER_WIDTH[type_code], TYPE_NAMES[type_code] + " value"), "little")
    if type_code == BYTES:
        n = cur.u64("BYTES length")
        if n >= 1 << 63:
            fail("BYTES length %d is not below 2^63 in %s" % (n, where), start)
        return bytes(cur.take(n, "BYTES value of length %d" % n))
    if type_code == STRING:
        n = cur.u32("STRING length")
        if n > MAX_STRING:
            fail("STRING length %d exceeds 1 MiB in %s" % (n, where), start)
        return decode_utf8(cur.take(n, "STRING value of length %d" % n), "STRING value", start)
    if type_code == ARRAY:
        if depth + 1 > MAX_DEPTH:
            fail("nesting depth %d exceeds 32 in %s" % (depth + 1, where), start)
        element = cur.u8("ARRAY element type")
        if element not in MIN_ELEMENT_SIZE:
            fail("ARRAY element type 0x%02x is not allowed in %s" % (element, where), start)
        count = cur.u32("ARRAY count")
        if count * MIN_ELEMENT_SIZE[element] > cur.remaining():
            fail("ARRAY count %d of %s cannot fit the %d bytes that remain in %s"
                 % (count, TYPE_NAMES[element], cur.remaining(), where), start)
        items = []
        for _ in range(count):
            if element == RECORD:
                # The records of an array at depth d have their field lists at depth d (stream §5.2).
                items.append(decode_field_list(cur, depth + 1, where, in_record=True))
            else:
                items.append(_decode_value(cur, element, depth + 1, where))
        return ArrayValue(element, items)
    if type_code == RECORD:
        if depth + 1 > MAX_DEPTH:
            fail("nesting depth %d exceeds 32 in %s" % (depth + 1, where), start)
        return decode_field_list(cur, depth + 1, where, in_record=True)
    fail("type code 0x%02x is not defined in %s" % (type_code, where), start)


def decode_field_list(cur, depth, where, in_record):
    """Decodes a field list (stream §5) structurally: type codes, lengths, BOOL values, UTF-8, depth, END.

    Tag rules (repeats, unknown must-understand tags) are the schema's business (``interpret``): a value the
    schema skips is only checked structurally (stream §5.3, rule 6)."""
    fields = []
    while True:
        if not in_record and cur.remaining() == 0:
            return fields
        start = cur.offset()
        tag = cur.u16("field tag")
        type_code = cur.u8("field type code")
        if type_code == END:
            if tag != 0:
                fail("END with tag %d (must be 0) in %s" % (tag, where), start)
            if not in_record:
                fail("END outside a RECORD in %s" % where, start)
            return fields
        if tag == 0:
            fail("tag 0 on a %s field in %s" % (TYPE_NAMES.get(type_code, hex(type_code)), where), start)
        fields.append(Field(tag, type_code, _decode_value(cur, type_code, depth, where), start))


# -- writing ------------------------------------------------------------------------------------------------------

def _encode_value(out, type_code, value):
    if type_code == BOOL:
        out += bytes([1 if value else 0])
    elif type_code in INTEGER_WIDTH:
        width = INTEGER_WIDTH[type_code]
        out += (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    elif type_code == BYTES:
        out += struct.pack("<Q", len(value)) + bytes(value)
    elif type_code == STRING:
        raw = value.encode("utf-8")
        out += struct.pack("<I", len(raw)) + raw
    elif type_code == ARRAY:
        element, items = value
        out += struct.pack("<BI", element, len(items))
        for item in items:
            if element == RECORD:
                encode_field_list(item, out)
                out += b"\x00\x00\x00"
            else:
                _encode_value(out, element, item)
    elif type_code == RECORD:
        encode_field_list(value, out)
        out += b"\x00\x00\x00"
    else:
        raise ValueError("cannot encode type %r" % type_code)


def encode_field_list(fields, out=None):
    """Encodes [(tag, type, value), ...]; ARRAY values are (element type, items), RECORD values field lists."""
    if out is None:
        out = bytearray()
    for tag, type_code, value in fields:
        out += struct.pack("<HB", tag, type_code)
        _encode_value(out, type_code, value)
    return out


# -- schemas ------------------------------------------------------------------------------------------------------

class FieldSpec:
    """A field of a schema: registry §3.3 FIELD, or one of the handshake message tables (stream §9.2)."""

    def __init__(self, tag, name, type_code, signed=False, element=None, fields=None, has_default=False,
                 default=None):
        self.tag = tag
        self.name = name
        self.type = type_code
        self.signed = signed
        self.element = element
        self.fields = fields
        self.has_default = has_default
        self.default = default


def to_signed(value, width):
    bits = 8 * width
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _typed(spec_type, signed, value):
    if spec_type in INTEGER_WIDTH and signed:
        return to_signed(value, INTEGER_WIDTH[spec_type])
    return value


def interpret(fields, specs, where):
    """Applies the field-list rules of stream §5.3 and §5.4 to a decoded list; returns {name: typed value}."""
    by_tag = {s.tag: s for s in specs}
    seen = {}
    result = {}
    for f in fields:
        if f.tag in seen:
            fail("tag %d appears twice in %s" % (f.tag, where), f.offset)
        seen[f.tag] = f
        spec = by_tag.get(f.tag)
        if spec is None:
            if f.tag >= MUST_UNDERSTAND_TAG:
                fail("unknown must-understand tag 0x%04x in %s" % (f.tag, where), f.offset)
            continue  # skipped: nothing inside it is looked at (stream §5.3 rule 6, §5.4)
        if f.type != spec.type:
            fail("tag %d (%s) has type %s, the schema says %s in %s"
                 % (f.tag, spec.name, TYPE_NAMES.get(f.type), TYPE_NAMES[spec.type], where), f.offset)
        if spec.type == ARRAY:
            if f.value.element != spec.element:
                fail("tag %d (%s) is an ARRAY of %s, the schema says of %s in %s"
                     % (f.tag, spec.name, TYPE_NAMES[f.value.element], TYPE_NAMES[spec.element], where), f.offset)
            if spec.element == RECORD:
                result[spec.name] = [interpret(item, spec.fields, "%s.%s[%d]" % (where, spec.name, i))
                                     for i, item in enumerate(f.value.items)]
            else:
                result[spec.name] = [_typed(spec.element, spec.signed, v) for v in f.value.items]
        elif spec.type == RECORD:
            result[spec.name] = interpret(f.value, spec.fields, "%s.%s" % (where, spec.name))
        else:
            result[spec.name] = _typed(spec.type, spec.signed, f.value)
    for spec in specs:
        if spec.name not in result:
            if not spec.has_default:
                fail("required field %d (%s) is absent from %s" % (spec.tag, spec.name, where))
            result[spec.name] = list(spec.default) if isinstance(spec.default, list) else spec.default
    return result


def encode_by_schema(specs, values):
    """Encodes {name: value} in the order of the tags; absent names are left out."""
    fields = []
    for spec in sorted(specs, key=lambda s: s.tag):
        if spec.name not in values:
            continue
        v = values[spec.name]
        if spec.type == ARRAY:
            items = v if spec.element != RECORD else [encode_by_schema_fields(spec.fields, r) for r in v]
            fields.append((spec.tag, ARRAY, (spec.element, items)))
        elif spec.type == RECORD:
            fields.append((spec.tag, RECORD, encode_by_schema_fields(spec.fields, v)))
        else:
            fields.append((spec.tag, spec.type, v))
    return fields


def encode_by_schema_fields(specs, values):
    return encode_by_schema(specs, values)


def generic_json(fields):
    """A field list as JSON-friendly data without a schema (tag -> value; integers unsigned)."""
    out = {}
    for f in fields:
        out[str(f.tag)] = _generic_value(f.type, f.value)
    return out


def _generic_value(type_code, value):
    if type_code == BYTES:
        return value.hex()
    if type_code == ARRAY:
        return [generic_json(v) if value.element == RECORD else _generic_value(value.element, v)
                for v in value.items]
    if type_code == RECORD:
        return generic_json(value)
    return value


# ---------------------------------------------------------------------------------------------------------------
# Strict JSON (registry §1)
# ---------------------------------------------------------------------------------------------------------------

MAX_JSON_BYTES = 4194304
MAX_JSON_DEPTH = 24
MAX_JSON_VALUES = 200000
MAX_JSON_STRING_UNITS = 262144
MAX_JSON_NAME_UNITS = 256
MAX_JSON_DIGITS = 40


class JsonNonInteger(str):
    """A JSON number with a fraction or exponent; refused wherever the documents expect an integer."""


def _utf16_units(s):
    return len(s.encode("utf-16-le", errors="surrogatepass")) // 2


def _check_json_string(s, what):
    try:
        s.encode("utf-8", errors="strict")
    except UnicodeEncodeError:
        fail("%s holds an unpaired surrogate" % what)


def parse_strict_json(raw, what):
    """Parses a registry or descriptor file with the rules of registry §1."""
    if len(raw) > MAX_JSON_BYTES:
        fail("%s is %d bytes, more than 4 MiB" % (what, len(raw)))
    text = decode_utf8(raw, what, None)

    def pairs(items):
        obj = {}
        for k, v in items:
            if k in obj:
                fail("%s: duplicate key %r" % (what, k))
            obj[k] = v
        return obj

    def parse_int(t):
        if len(t.lstrip("-")) > MAX_JSON_DIGITS:
            fail("%s: number %s has more than 40 digits" % (what, t[:50]))
        return int(t)

    def parse_float(t):
        if sum(c.isdigit() for c in t) > MAX_JSON_DIGITS:
            fail("%s: number %s has more than 40 digits" % (what, t[:50]))
        return JsonNonInteger(t)

    def parse_constant(t):
        fail("%s: %s is not JSON" % (what, t))

    try:
        value = json.JSONDecoder(object_pairs_hook=pairs, parse_int=parse_int, parse_float=parse_float,
                                 parse_constant=parse_constant, strict=True).decode(text)
    except json.JSONDecodeError as e:
        fail("%s is not JSON: %s" % (what, e))
    count = [0]

    def walk(v, depth):
        count[0] += 1
        if count[0] > MAX_JSON_VALUES:
            fail("%s has more than 200000 values" % what)
        if depth > MAX_JSON_DEPTH:
            fail("%s nests deeper than 24" % what)
        if v is None:
            fail("%s holds null" % what)
        if isinstance(v, str) and not isinstance(v, JsonNonInteger):
            _check_json_string(v, what)
            if _utf16_units(v) > MAX_JSON_STRING_UNITS:
                fail("%s holds a string over 262144 UTF-16 code units" % what)
        elif isinstance(v, dict):
            for k, item in v.items():
                _check_json_string(k, what)
                if _utf16_units(k) > MAX_JSON_NAME_UNITS:
                    fail("%s holds a member name over 256 UTF-16 code units" % what)
                walk(item, depth + 1)
        elif isinstance(v, list):
            for item in v:
                walk(item, depth + 1)

    walk(value, 1)
    return value


# ---------------------------------------------------------------------------------------------------------------
# Registry (registry-format.md)
# ---------------------------------------------------------------------------------------------------------------

PARAM_TYPES = {"bool": None, "uint8": (0, 0xFF), "uint16": (0, 0xFFFF), "uint32": (0, 0xFFFFFFFF),
               "uint64": (0, 0xFFFFFFFFFFFFFFFF), "int64": (-(1 << 63), (1 << 63) - 1), "string": None}
CONDITION_OPS = ("eq", "ne", "le", "ge", "bits_set", "bits_clear")
CHECK_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
NAME_PARAM = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
NAME_SCHEMA = re.compile(r"[a-z][a-z0-9_-]{0,63}\Z")
LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
DOMAIN_ROOTED_ID = re.compile(r"%s(?:\.%s)+(?:/[A-Za-z0-9._-]+)+\Z" % (LABEL, LABEL))
INT_DECIMAL = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")
INT_HEX = re.compile(r"0x[0-9a-fA-F]{1,16}\Z")


def is_domain_rooted_id(s):
    return isinstance(s, str) and len(s.encode("utf-8")) <= 256 and DOMAIN_ROOTED_ID.match(s) is not None


def parse_integer_text(text, lo, hi):
    """Integer text of registry §3.4; returns the value or None when it is not valid for [lo, hi]."""
    if INT_HEX.match(text):
        value = int(text[2:], 16)
    elif INT_DECIMAL.match(text):
        value = int(text)
    else:
        return None
    if value < 0 and lo >= 0:
        return None
    return value if lo <= value <= hi else None


def json_integer(v, lo, hi, what, text_allowed=True):
    """A JSON integer, or integer text where the table says "integer or text", that fits [lo, hi]."""
    if isinstance(v, bool) or isinstance(v, JsonNonInteger):
        fail("%s: %r is not an integer" % (what, v))
    if isinstance(v, int):
        if not lo <= v <= hi:
            fail("%s: %d is out of range %d..%d" % (what, v, lo, hi))
        return v
    if isinstance(v, str) and text_allowed:
        value = parse_integer_text(v, lo, hi)
        if value is None:
            fail("%s: %r is not integer text for %d..%d" % (what, v, lo, hi))
        return value
    fail("%s: %r is not an integer" % (what, v))


def parse_param_text(type_name, text):
    """An offer's or descriptor's text for a parameter type (stream §9.2); None when it does not parse."""
    if type_name == "bool":
        return {"true": True, "false": False}.get(text)
    if type_name == "string":
        return text
    lo, hi = PARAM_TYPES[type_name]
    return parse_integer_text(text, lo, hi)


def typed_param_value(type_name, v, what):
    """A registry value of a parameter type (registry §3.1)."""
    if type_name == "bool":
        if not isinstance(v, bool):
            fail("%s: %r is not a JSON boolean" % (what, v))
        return v
    if type_name == "string":
        if not isinstance(v, str) or isinstance(v, JsonNonInteger):
            fail("%s: %r is not a JSON string" % (what, v))
        return v
    lo, hi = PARAM_TYPES[type_name]
    return json_integer(v, lo, hi, what)


def param_text(type_name, value):
    """Canonical text of a typed parameter value: decimal for integers, true/false, strings as they are."""
    if type_name == "bool":
        return "true" if value else "false"
    if type_name == "string":
        return value
    return str(value)


def _object(v, what, required, optional):
    if not isinstance(v, dict):
        fail("%s is not an object" % what)
    for k in v:
        if k not in required and k not in optional:
            fail("%s: unknown key %r" % (what, k))
    for k in required:
        if k not in v:
            fail("%s: required key %r is missing" % (what, k))
    return v


def _string(v, what):
    if not isinstance(v, str) or isinstance(v, JsonNonInteger):
        fail("%s: %r is not a string" % (what, v))
    return v


def _bool(v, what):
    if not isinstance(v, bool):
        fail("%s: %r is not a boolean" % (what, v))
    return v


def _array(v, what):
    if not isinstance(v, list):
        fail("%s: %r is not an array" % (what, v))
    return v


class Parameter:
    def __init__(self, name, type_name, default, allowed, minimum, maximum, must_match, description):
        self.name = name
        self.type = type_name
        self.default = default  # None when the parameter is required
        self.allowed = allowed
        self.min = minimum
        self.max = maximum
        self.must_match = must_match
        self.description = description


class Model:
    """A parsed model entry; ``tree`` is its normalized tree (registry §4), ``canonical`` its canonical form."""

    def __init__(self, model_id, revision, parameters, constraints, format_classes, implementations, tree):
        self.id = model_id
        self.revision = revision
        self.parameters = parameters            # name -> Parameter, in file order
        self.constraints = constraints          # list of (id, when, require) with typed conditions
        self.format_classes = format_classes    # id -> {version: FormatVersion}
        self.implementations = implementations  # id -> dict(formatClass, read, write, signers)
        self.tree = tree
        self.canonical = canonical_json(tree)
        self.digest = hashlib.sha256(self.canonical.encode("utf-8")).digest()
        self.signatures = []                    # (signer, public key bytes, signature bytes)


class SectionSpec:
    def __init__(self, section_id, name, version, must_understand, envelope, optional, fields):
        self.id = section_id
        self.name = name
        self.version = version
        self.must_understand = must_understand
        self.envelope = envelope
        self.optional = optional
        self.fields = fields


class FormatVersion:
    def __init__(self, version, sections, checks):
        self.version = version
        self.sections = sections  # section id -> SectionSpec
        self.checks = checks      # list of (id, left, op, right); operands ("field"|"count"|"value", x)


def _parse_field_specs(items, what, depth):
    if depth > MAX_DEPTH:
        fail("%s: field lists nest deeper than 32" % what)
    specs, trees, tags, names = [], [], set(), set()
    for i, raw in enumerate(_array(items, what)):
        w = "%s[%d]" % (what, i)
        _object(raw, w, ("tag", "name", "type"), ("signed", "element", "fields", "default"))
        tag = json_integer(raw["tag"], 1, 0xFFFF, w + ".tag", text_allowed=False)
        name = _string(raw["name"], w + ".name")
        if not NAME_SCHEMA.match(name):
            fail("%s: field name %r does not match [a-z][a-z0-9_-]{0,63}" % (w, name))
        if tag in tags or name in names:
            fail("%s: tag %d or name %r repeats" % (w, tag, name))
        tags.add(tag)
        names.add(name)
        type_name = _string(raw["type"], w + ".type")
        if type_name not in REGISTRY_TYPES:
            fail("%s: unknown field type %r" % (w, type_name))
        type_code = REGISTRY_TYPES[type_name]
        element = None
        if type_code == ARRAY:
            if "element" not in raw:
                fail("%s: an array field needs an element type" % w)
            element_name = _string(raw["element"], w + ".element")
            if element_name not in REGISTRY_TYPES or element_name == "array":
                fail("%s: element type %r is not allowed" % (w, element_name))
            element = REGISTRY_TYPES[element_name]
        elif "element" in raw:
            fail("%s: element is only for arrays" % w)
        integer_like = type_code in INTEGER_WIDTH or (type_code == ARRAY and element in INTEGER_WIDTH)
        if "signed" in raw and not integer_like:
            fail("%s: signed is only for integer fields and arrays of integers" % w)
        signed = _bool(raw.get("signed", False), w + ".signed")
        needs_fields = type_code == RECORD or (type_code == ARRAY and element == RECORD)
        sub_specs = sub_trees = None
        if needs_fields:
            if "fields" not in raw:
                fail("%s: a record needs fields" % w)
            sub_specs, sub_trees = _parse_field_specs(raw["fields"], w + ".fields", depth + 1)
        elif "fields" in raw:
            fail("%s: fields are only for records and arrays of records" % w)
        tree = {"tag": tag, "name": name, "type": type_name}
        if integer_like:
            tree["signed"] = signed
        if element is not None:
            tree["element"] = raw["element"]
        if needs_fields:
            tree["fields"] = sub_trees
        has_default = "default" in raw
        default = None
        if has_default:
            d = raw["default"]
            if type_code == BOOL:
                default = _bool(d, w + ".default")
                tree["default"] = default
            elif type_code in INTEGER_WIDTH:
                bits = 8 * INTEGER_WIDTH[type_code]
                lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1))
                default = json_integer(d, lo, hi, w + ".default")
                tree["default"] = str(default)
            elif type_code == STRING:
                default = _string(d, w + ".default")
                tree["default"] = default
            elif type_code == BYTES:
                d = _string(d, w + ".default")
                if not re.match(r"(?:[0-9a-f]{2})*\Z", d):
                    fail("%s: bytes default %r is not even-length lower-case hex" % (w, d))
                default = bytes.fromhex(d)
                tree["default"] = d
            elif type_code == ARRAY:
                if d != []:
                    fail("%s: an array default can only be []" % w)
                default = []
                tree["default"] = []
            else:
                fail("%s: a record has no default" % w)
        specs.append(FieldSpec(tag, name, type_code, signed, element, sub_specs, has_default, default))
        trees.append(tree)
    return specs, trees


def _parse_condition(raw, what, params):
    _object(raw, what, ("param", "op"), ("value", "otherParam"))
    name = _string(raw["param"], what + ".param")
    if name not in params:
        fail("%s: unknown parameter %r" % (what, name))
    op = _string(raw["op"], what + ".op")
    if op not in CONDITION_OPS:
        fail("%s: unknown op %r" % (what, op))
    p = params[name]
    if ("value" in raw) == ("otherParam" in raw):
        fail("%s: exactly one of value and otherParam" % what)
    tree = {"param": name, "op": op}
    if op not in ("eq", "ne") and p.type in ("bool", "string"):
        fail("%s: op %s needs an integer parameter, %s is %s" % (what, op, name, p.type))
    if "value" in raw:
        value = typed_param_value(p.type, raw["value"], what + ".value")
        tree["value"] = value if p.type in ("bool", "string") else str(value)
        return ("value", name, op, value), tree
    other = _string(raw["otherParam"], what + ".otherParam")
    if other not in params:
        fail("%s: unknown parameter %r" % (what, other))
    kind = lambda t: t if t in ("bool", "string") else "integer"
    if kind(params[other].type) != kind(p.type):
        fail("%s: %s and %s have incompatible types" % (what, name, other))
    tree["otherParam"] = other
    return ("other", name, op, other), tree


def _parse_operand(raw, what, version_sections):
    _object(raw, what, (), ("field", "count", "value"))
    if len(raw) != 1:
        fail("%s: exactly one of field, count, value" % what)
    (kind, v), = raw.items()
    if kind == "value":
        value = json_integer(v, -(1 << 63), (1 << 63) - 1, what + ".value")
        return (kind, value), {"value": str(value)}
    path = _string(v, what + "." + kind)
    parts = path.split(".")
    if len(parts) != 2:
        fail("%s: %r is not SECTION.FIELD" % (what, path))
    section = next((s for s in version_sections.values() if s.name == parts[0]), None)
    spec = None if section is None else next((f for f in section.fields if f.name == parts[1]), None)
    if spec is None:
        fail("%s: %r names no field of this format version" % (what, path))
    if kind == "field" and spec.type not in INTEGER_WIDTH:
        fail("%s: %r is not an integer field" % (what, path))
    if kind == "count" and spec.type != ARRAY:
        fail("%s: %r is not an array field" % (what, path))
    return (kind, (section.id, spec)), {kind: path}


def parse_model(raw, what):
    _object(raw, what, ("id", "revision"), ("description", "pciAliases", "parameters", "constraints",
                                            "formatClasses", "implementations"))
    model_id = _string(raw["id"], what + ".id")
    if not is_domain_rooted_id(model_id):
        fail("%s: %r is not a domain-rooted id" % (what, model_id))
    what = "model %s" % model_id
    revision = json_integer(raw["revision"], 1, (1 << 31) - 1, what + ".revision", text_allowed=False)
    tree = {"id": model_id, "revision": revision,
            "description": _string(raw.get("description", ""), what + ".description")}
    aliases = []
    for i, a in enumerate(_array(raw.get("pciAliases", []), what + ".pciAliases")):
        w = "%s.pciAliases[%d]" % (what, i)
        _object(a, w, ("vendor", "device"), ("subsystemVendor", "subsystemDevice", "revision"))
        t = {}
        for key in ("vendor", "device", "subsystemVendor", "subsystemDevice", "revision"):
            if key in a:
                limit = 0xFF if key == "revision" else 0xFFFF
                t[key] = ("0x%02x" if key == "revision" else "0x%04x") % json_integer(a[key], 0, limit, w + "." + key)
        aliases.append(t)
    tree["pciAliases"] = aliases
    params, ptrees = {}, []
    for i, p in enumerate(_array(raw.get("parameters", []), what + ".parameters")):
        w = "%s.parameters[%d]" % (what, i)
        _object(p, w, ("name", "type"), ("default", "allowed", "min", "max", "mustMatch", "description"))
        name = _string(p["name"], w + ".name")
        if not NAME_PARAM.match(name) or name in params:
            fail("%s: parameter name %r is invalid or repeated" % (w, name))
        type_name = _string(p["type"], w + ".type")
        if type_name not in PARAM_TYPES:
            fail("%s: unknown parameter type %r" % (w, type_name))
        allowed = [typed_param_value(type_name, v, w + ".allowed") for v in _array(p.get("allowed", []), w)]
        bounds = {}
        for key in ("min", "max"):
            if key in p:
                if type_name in ("bool", "string"):
                    fail("%s: %s is only for integer types" % (w, key))
                bounds[key] = typed_param_value(type_name, p[key], w + "." + key)
        default = None
        if "default" in p:
            default = typed_param_value(type_name, p["default"], w + ".default")
            if allowed and default not in allowed:
                fail("%s: default %r is not allowed" % (w, default))
            if ("min" in bounds and default < bounds["min"]) or ("max" in bounds and default > bounds["max"]):
                fail("%s: default %r is out of range" % (w, default))
        param = Parameter(name, type_name, default, allowed, bounds.get("min"), bounds.get("max"),
                          _bool(p.get("mustMatch", True), w + ".mustMatch"),
                          _string(p.get("description", ""), w + ".description"))
        params[name] = param
        text = (lambda v: v if type_name in ("bool", "string") else str(v))
        t = {"name": name, "type": type_name, "allowed": [text(v) for v in allowed], "mustMatch": param.must_match,
             "description": param.description}
        if default is not None:
            t["default"] = text(default)
        for key in ("min", "max"):
            if key in bounds:
                t[key] = text(bounds[key])
        ptrees.append(t)
    tree["parameters"] = ptrees
    constraints, ctrees = [], []
    for i, c in enumerate(_array(raw.get("constraints", []), what + ".constraints")):
        w = "%s.constraints[%d]" % (what, i)
        _object(c, w, ("id", "require"), ("when", "description"))
        cid = _string(c["id"], w + ".id")
        if any(cid == seen for seen, _, _ in constraints):
            fail("%s: constraint id %r repeats" % (w, cid))
        require, rtree = _parse_condition(c["require"], w + ".require", params)
        t = {"id": cid, "require": rtree, "description": _string(c.get("description", ""), w + ".description")}
        when = None
        if "when" in c:
            when, t["when"] = _parse_condition(c["when"], w + ".when", params)
        constraints.append((cid, when, require))
        ctrees.append(t)
    tree["constraints"] = ctrees
    classes, ftrees = {}, []
    for i, fc in enumerate(_array(raw.get("formatClasses", []), what + ".formatClasses")):
        w = "%s.formatClasses[%d]" % (what, i)
        _object(fc, w, ("id", "versions"), ("description",))
        fc_id = _string(fc["id"], w + ".id")
        if not is_domain_rooted_id(fc_id) or fc_id in classes:
            fail("%s: format class id %r is invalid or repeated" % (w, fc_id))
        versions, vtrees = {}, []
        for j, v in enumerate(_array(fc["versions"], w + ".versions")):
            wv = "%s.versions[%d]" % (w, j)
            _object(v, wv, ("version", "sections"), ("checks",))
            number = json_integer(v["version"], 1, (1 << 31) - 1, wv + ".version", text_allowed=False)
            if number in versions:
                fail("%s: version %d repeats" % (wv, number))
            sections, stree, names = {}, [], set()
            for k, s in enumerate(_array(v["sections"], wv + ".sections")):
                ws = "%s.sections[%d]" % (wv, k)
                _object(s, ws, ("id", "name", "version"), ("mustUnderstand", "envelope", "optional", "fields"))
                sid = json_integer(s["id"], 0, 0xFFFFFFFF, ws + ".id", text_allowed=False)
                sname = _string(s["name"], ws + ".name")
                if not NAME_SCHEMA.match(sname) or sname in names or sid in sections:
                    fail("%s: section id %d or name %r is invalid or repeated" % (ws, sid, sname))
                names.add(sname)
                sversion = json_integer(s["version"], 1, 0xFFFF, ws + ".version", text_allowed=False)
                envelope = _bool(s.get("envelope", False), ws + ".envelope")
                if envelope and s.get("fields", []) != []:
                    fail("%s: an envelope section has no fields" % ws)
                fspecs, ftree = _parse_field_specs(s.get("fields", []), ws + ".fields", 1)
                spec = SectionSpec(sid, sname, sversion, _bool(s.get("mustUnderstand", False), ws),
                                   envelope, _bool(s.get("optional", False), ws), fspecs)
                sections[sid] = spec
                stree.append({"id": sid, "name": sname, "version": sversion, "mustUnderstand": spec.must_understand,
                              "envelope": envelope, "optional": spec.optional, "fields": ftree})
            checks, ktrees = [], []
            for k, c in enumerate(_array(v.get("checks", []), wv + ".checks")):
                wc = "%s.checks[%d]" % (wv, k)
                _object(c, wc, ("id", "left", "op", "right"), ("description",))
                op = _string(c["op"], wc + ".op")
                if op not in CHECK_OPS:
                    fail("%s: unknown op %r" % (wc, op))
                left, ltree = _parse_operand(c["left"], wc + ".left", sections)
                right, rtree = _parse_operand(c["right"], wc + ".right", sections)
                cid = _string(c["id"], wc + ".id")
                checks.append((cid, left, op, right))
                ktrees.append({"id": cid, "left": ltree, "op": op, "right": rtree,
                               "description": _string(c.get("description", ""), wc + ".description")})
            versions[number] = FormatVersion(number, sections, checks)
            vtrees.append({"version": number, "sections": stree, "checks": ktrees})
        classes[fc_id] = versions
        ftrees.append({"id": fc_id, "description": _string(fc.get("description", ""), w + ".description"),
                       "versions": vtrees})
    tree["formatClasses"] = ftrees
    impls, itrees = {}, []
    for i, im in enumerate(_array(raw.get("implementations", []), what + ".implementations")):
        w = "%s.implementations[%d]" % (what, i)
        _object(im, w, ("id", "formatClass", "read", "write"), ("vendor", "signers"))
        iid = _string(im["id"], w + ".id")
        if not is_domain_rooted_id(iid) or iid in impls:
            fail("%s: implementation id %r is invalid or repeated" % (w, iid))
        fc_id = _string(im["formatClass"], w + ".formatClass")
        if fc_id not in classes:
            fail("%s: format class %r is not one of the model's" % (w, fc_id))
        lists = {}
        for key in ("read", "write"):
            lists[key] = [json_integer(x, 1, (1 << 31) - 1, w + "." + key, text_allowed=False)
                          for x in _array(im[key], w + "." + key)]
        signers = [decode_base64_key(_string(s, w + ".signers"), 32, w + ".signers")
                   for s in _array(im.get("signers", []), w + ".signers")]
        impls[iid] = {"formatClass": fc_id, "read": lists["read"], "write": lists["write"], "signers": signers}
        itrees.append({"id": iid, "vendor": _string(im.get("vendor", ""), w + ".vendor"), "formatClass": fc_id,
                       "read": lists["read"], "write": lists["write"],
                       "signers": [base64.b64encode(k).decode("ascii") for k in signers]})
    tree["implementations"] = itrees
    return Model(model_id, revision, params, constraints, classes, impls, tree)


def decode_base64_key(text, size, what):
    try:
        key = base64.b64decode(text, validate=True)
    except (ValueError, base64.binascii.Error):
        fail("%s: %r is not base64" % (what, text))
    if len(key) != size:
        fail("%s: %r decodes to %d bytes, not %d" % (what, text, len(key), size))
    return key


class Registry:
    """Models by id, merged from one or more registry files (registry §2, §5)."""

    def __init__(self):
        self.models = {}

    @staticmethod
    def parse(raw, what):
        doc = parse_strict_json(raw, what)
        _object(doc, what, ("registryFormat", "models"), ("signatures",))
        if json_integer(doc["registryFormat"], 1, 1, what + ".registryFormat", text_allowed=False) != 1:
            fail("%s: registryFormat must be 1" % what)
        models = _array(doc["models"], what + ".models")
        if len(models) > 10000:
            fail("%s: more than 10000 models" % what)
        reg = Registry()
        for i, m in enumerate(models):
            model = parse_model(m, "%s.models[%d]" % (what, i))
            if model.id in reg.models:
                fail("%s: model id %s repeats" % (what, model.id))
            reg.models[model.id] = model
        for i, s in enumerate(_array(doc.get("signatures", []), what + ".signatures")):
            w = "%s.signatures[%d]" % (what, i)
            _object(s, w, ("model", "signer", "publicKey", "signature"), ())
            key = decode_base64_key(_string(s["publicKey"], w), 32, w + ".publicKey")
            sig = decode_base64_key(_string(s["signature"], w), 64, w + ".signature")
            model = reg.models.get(_string(s["model"], w + ".model"))
            signer = _string(s["signer"], w + ".signer")
            if model is not None:  # a signature for a model this file does not hold is ignored (registry §4)
                model.signatures.append((signer, key, sig))
        return reg

    @staticmethod
    def load(paths):
        merged = Registry()
        for path in paths:
            with open(path, "rb") as f:
                merged.merge(Registry.parse(f.read(), path))
        return merged

    def merge(self, other):
        for model_id, model in other.models.items():
            mine = self.models.get(model_id)
            if mine is None or model.revision > mine.revision:
                self.models[model_id] = model
            elif model.revision == mine.revision:
                if model.canonical != mine.canonical:
                    fail("merge conflict: model %s revision %d differs between files" % (model_id, model.revision))
                for s in model.signatures:
                    if s not in mine.signatures:
                        mine.signatures.append(s)

    def entry_status(self, model, trusted_keys):
        """INVALID, TRUSTED, UNTRUSTED_SIGNER or UNSIGNED (registry §4)."""
        message = REGISTRY_SIGNATURE_LABEL + model.canonical.encode("utf-8")
        verdicts = [(key, ed25519_verify(key, sig, message)) for _, key, sig in model.signatures]
        if any(not ok for _, ok in verdicts):
            return "INVALID"
        if any(key in trusted_keys for key, _ in verdicts):
            return "TRUSTED"
        return "UNTRUSTED_SIGNER" if verdicts else "UNSIGNED"


REGISTRY_SIGNATURE_LABEL = b"outproc-registry-entry-v1\n"


# -- canonical form (registry §4: RFC 8785 over the normalized tree) ----------------------------------------------

def _jcs_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_json(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _jcs_string(v)
    if isinstance(v, list):
        return "[" + ",".join(canonical_json(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be", errors="surrogatepass"))
        return "{" + ",".join(_jcs_string(k) + ":" + canonical_json(v[k]) for k in keys) + "}"
    raise TypeError("not canonicalizable: %r" % (v,))


# -- descriptors (registry §7) ------------------------------------------------------------------------------------

class Descriptor:
    def __init__(self, model, implementation, format_class, parameters, read, write):
        self.model = model
        self.implementation = implementation
        self.format_class = format_class
        self.parameters = parameters  # list of (name, text) in file order
        self.read = read
        self.write = write

    @staticmethod
    def load(path):
        with open(path, "rb") as f:
            raw = f.read()
        doc = parse_strict_json(raw, path)
        _object(doc, path, ("model", "formatClass"), ("implementation", "parameters", "read", "write"))
        params = doc.get("parameters", {})
        if not isinstance(params, dict) or len(params) > 256:
            fail("%s: parameters must be an object of at most 256 members" % path)
        texts = []
        for name, v in params.items():
            if isinstance(v, bool):
                texts.append((name, "true" if v else "false"))
            elif isinstance(v, int) and not isinstance(v, JsonNonInteger):
                texts.append((name, str(v)))
            elif isinstance(v, str) and not isinstance(v, JsonNonInteger):
                texts.append((name, v))
            else:
                fail("%s: parameter %s value %r is not a string, boolean or integer" % (path, name, v))
        lists = {}
        for key in ("read", "write"):
            items = _array(doc.get(key, []), path + "." + key)
            if len(items) > 256:
                fail("%s: more than 256 %s versions" % (path, key))
            lists[key] = [json_integer(x, 1, (1 << 31) - 1, path + "." + key, text_allowed=False) for x in items]
        return Descriptor(_string(doc["model"], path), _string(doc.get("implementation", ""), path),
                          _string(doc["formatClass"], path), texts, lists["read"], lists["write"])


# ---------------------------------------------------------------------------------------------------------------
# Cryptography (stream §1, §7, §9.3, §9.4)
# ---------------------------------------------------------------------------------------------------------------

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P


def _ed25519_encoding_ok(encoded):
    """True when 32 bytes are the canonical encoding of a curve point (RFC 8032 §5.1.3 decoding, strictly)."""
    if len(encoded) != 32:
        return False
    y = int.from_bytes(encoded, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return False
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    if (v * x * x - u) % _P != 0:
        x = (x * pow(2, (_P - 1) // 4, _P)) % _P
        if (v * x * x - u) % _P != 0:
            return False
    return not (x == 0 and sign == 1)


def ed25519_verify(public_key, signature, message):
    """Stream §7.6: S below L, canonical A and R, then the cofactorless equation (OpenSSL's check)."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    if int.from_bytes(signature[32:], "little") >= _L:
        return False
    if not _ed25519_encoding_ok(public_key) or not _ed25519_encoding_ok(signature[:32]):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(bytes(signature), bytes(message))
        return True
    except (InvalidSignature, ValueError):
        return False


def ed25519_public(seed):
    return Ed25519PrivateKey.from_private_bytes(bytes(seed)).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_sign(seed, message):
    return Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(bytes(message))


def x25519_public(private):
    return X25519PrivateKey.from_private_bytes(bytes(private)).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x25519_shared(private, peer_public):
    try:
        shared = X25519PrivateKey.from_private_bytes(bytes(private)).exchange(
            X25519PublicKey.from_public_bytes(bytes(peer_public)))
    except ValueError as e:
        fail("X25519 with peer key %s failed: %s" % (bytes(peer_public).hex(), e))
    if shared == ZERO32:
        fail("X25519 result is all zero (low-order peer key %s)" % bytes(peer_public).hex())
    return shared


def hkdf_sha256(ikm, salt, info, length):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


HANDSHAKE_HASH_LABEL = b"outproc-migration-handshake-v1"
MAC_KEY_INFO = b"outproc-migration-mac-key-v1"
MAC_LABEL = b"outproc-migration-mac-v1"
SIGNATURE_LABEL = b"outproc-migration-sig-v1"


def handshake_hash_input(offer, accept):
    return (HANDSHAKE_HASH_LABEL + struct.pack("<I", len(offer)) + bytes(offer)
            + struct.pack("<I", len(accept)) + bytes(accept))


def handshake_hash(offer, accept):
    return hashlib.sha256(handshake_hash_input(offer, accept)).digest()


def mac_key(own_private, peer_public, hh):
    return hkdf_sha256(x25519_shared(own_private, peer_public), hh, MAC_KEY_INFO, 32)


# ---------------------------------------------------------------------------------------------------------------
# Stream (stream §3-§8)
# ---------------------------------------------------------------------------------------------------------------

MAGIC = b"OPMS\r\n\x1a\n"
STREAM_VERSION = 1
FLAG_DIGESTS, FLAG_MAC, FLAG_SIGNATURE = 1, 2, 4
SECTION_MUST_UNDERSTAND, SECTION_ENVELOPE = 1, 2
EXTENSION_CRITICAL = 1
MAX_CHUNK = 16 * 1024 * 1024
WRITER_CHUNK = 64 * 1024
HEADER_MIN, HEADER_MAX = 94, 4096
# Header extension kinds this implementation understands (kind -> versions): none in stream version 1.
KNOWN_EXTENSIONS = {}


def _id_string(s):
    raw = s.encode("utf-8")
    if len(raw) > 256:
        raise ValueError("header string over 256 bytes: %r" % s)
    return struct.pack("<H", len(raw)) + raw


def encode_header(model_id, format_class, implementation_id, format_version, flags, nonce=ZERO32,
                  handshake_hash_value=ZERO32, extensions=()):
    """extensions: (kind, version, flags, value) entries (stream §3.1)."""
    strings = _id_string(model_id) + _id_string(format_class) + _id_string(implementation_id)
    ext = b"".join(struct.pack("<HBBH", k, v, f, len(val)) + bytes(val) for k, v, f, val in extensions)
    length = 88 + len(strings) + len(ext)
    return (MAGIC + struct.pack("<HHII I", STREAM_VERSION, flags, length, format_version, 0)
            + bytes(nonce) + bytes(handshake_hash_value) + strings + ext)


def encode_section(section_id, version, flags, sequence, body):
    out = bytearray(struct.pack("<BBHII", 0x53, flags, version, section_id, sequence))
    for i in range(0, len(body), WRITER_CHUNK):
        chunk = body[i:i + WRITER_CHUNK]
        out += struct.pack("<I", len(chunk)) + chunk
    out += b"\x00\x00\x00\x00"
    return bytes(out)


def write_stream(model_id, format_class, implementation_id, format_version, sections, digests=True,
                 nonce=ZERO32, handshake_hash_value=ZERO32, mac_key_value=None, signing_seed=None, extensions=()):
    """sections: (id, version, flags, body bytes). Returns (stream bytes, dict of every intermediate value)."""
    flags = FLAG_DIGESTS if digests else 0
    if mac_key_value is not None:
        flags |= FLAG_MAC
    if signing_seed is not None:
        flags |= FLAG_SIGNATURE
    if flags & (FLAG_MAC | FLAG_SIGNATURE) and not digests:
        raise ValueError("MAC and SIGNATURE need DIGESTS")
    header = encode_header(model_id, format_class, implementation_id, format_version, flags, nonce,
                           handshake_hash_value, extensions)
    parts = {"header": header}
    out = bytearray(header)
    transcript = hashlib.sha256(header).digest()
    parts["t0"] = transcript
    for seq, (sid, version, sflags, body) in enumerate(sections):
        raw = encode_section(sid, version, sflags, seq, bytes(body))
        out += raw
        parts["section%d" % seq] = raw
        if digests:
            d = hashlib.sha256(raw).digest()
            out += d
            parts["section%dDigest" % seq] = d
            transcript = hashlib.sha256(transcript + d).digest()
            parts["t%d" % (seq + 1)] = transcript
    fixed = struct.pack("<BBHI", 0x54, 0, flags, len(sections))
    parts["trailerFixed"] = fixed
    out += fixed
    mac = b""
    if digests:
        out += transcript
        if mac_key_value is not None:
            parts["macInput"] = MAC_LABEL + transcript + fixed
            mac = hmac.new(bytes(mac_key_value), parts["macInput"], hashlib.sha256).digest()
            parts["mac"] = mac
            out += mac
        if signing_seed is not None:
            parts["signatureInput"] = SIGNATURE_LABEL + transcript + fixed + mac
            sig = ed25519_sign(signing_seed, parts["signatureInput"])
            parts["signature"] = sig
            out += ed25519_public(signing_seed) + sig
    parts["stream"] = bytes(out)
    return bytes(out), parts


class Expectations:
    """What the reader holds before it reads: an agreement (stream §7.4) or its own configuration (§7.5)."""

    def __init__(self, model_id=None, format_class=None, versions=None, nonce=None, handshake_hash_value=None,
                 require_digests=True, mac_key_value=None, require_mac=False, pinned_signers=None,
                 require_signature=False):
        self.model_id = model_id
        self.format_class = format_class
        self.versions = versions                # set of acceptable format versions, or None for any
        self.nonce = nonce
        self.handshake_hash = handshake_hash_value
        self.require_digests = require_digests
        self.mac_key = mac_key_value
        self.require_mac = require_mac or mac_key_value is not None
        self.pinned_signers = pinned_signers    # list of keys; empty or None: any signer
        self.require_signature = require_signature or bool(pinned_signers)


class Section:
    def __init__(self, section_id, version, flags, sequence, body, offset, skipped=False):
        self.id = section_id
        self.version = version
        self.flags = flags
        self.sequence = sequence
        self.body = body
        self.offset = offset
        self.skipped = skipped
        self.fields = None   # decoded generic fields, when decoded
        self.values = None   # by schema: {name: value}; envelope: {"vendor", "schemaVersion", "payload"}


class StreamResult:
    def __init__(self):
        self.header = {}
        self.sections = []
        self.transcript = None
        self.mac_verified = False
        self.signer = None
        self.signer_pinned = False
        self.model = None
        self.format = None


def parse_header(data):
    cur = Cursor(data)
    if len(data) < 16:
        fail("stream ends inside the header (%d bytes)" % len(data), 0)
    magic = cur.take(8, "magic")
    if magic != MAGIC:
        fail("wrong magic %s" % magic.hex(), 0)
    version = cur.u16("stream version")
    if version != STREAM_VERSION:
        fail("unknown stream version %d" % version, 8)
    flags = cur.u16("flags")
    if flags & ~7:
        fail("undefined header flags 0x%04x" % flags, 10)
    if flags & (FLAG_MAC | FLAG_SIGNATURE) and not flags & FLAG_DIGESTS:
        fail("flags 0x%04x set MAC or SIGNATURE without DIGESTS" % flags, 10)
    length = cur.u32("header length")
    if not HEADER_MIN <= length <= HEADER_MAX:
        fail("header length %d is outside 94..4096" % length, 12)
    if length > len(data):
        fail("header length %d exceeds the %d bytes of the stream" % (length, len(data)), 12)
    hcur = Cursor(data, 16, length)
    format_version = hcur.u32("format version")
    if format_version == 0:
        fail("format version 0", 16)
    reserved = hcur.u32("reserved")
    if reserved:
        fail("reserved header word 0x%08x is not 0" % reserved, 20)
    header = {"flags": flags, "length": length, "formatVersion": format_version,
              "nonce": hcur.take(32, "nonce"), "handshakeHash": hcur.take(32, "handshake hash")}
    for key in ("model", "formatClass", "implementation"):
        at = hcur.offset()
        n = hcur.u16(key + " length")
        if n > 256:
            fail("%s length %d exceeds 256" % (key, n), at)
        header[key] = decode_utf8(hcur.take(n, key), key, at + 2)
    extensions = []
    while hcur.remaining():
        at = hcur.offset()
        kind = hcur.u16("extension kind")
        ext_version = hcur.u8("extension version")
        ext_flags = hcur.u8("extension flags")
        size = hcur.u16("extension length")
        value = hcur.take(size, "extension value of kind 0x%04x" % kind)
        if ext_version == 0:
            fail("extension kind 0x%04x has version 0" % kind, at)
        if ext_flags & ~EXTENSION_CRITICAL:
            fail("extension kind 0x%04x has undefined flags 0x%02x" % (kind, ext_flags), at)
        if ext_flags & EXTENSION_CRITICAL and ext_version not in KNOWN_EXTENSIONS.get(kind, ()):
            fail("critical extension kind 0x%04x version %d is not implemented" % (kind, ext_version), at)
        extensions.append((kind, ext_version, ext_flags, value))
    header["extensions"] = extensions
    header["bytes"] = data[:length]
    return header


def read_stream(data, expect, registry=None, generic=False):
    """Reads and verifies a whole stream in the order of stream §7.4.

    ``expect`` is an Expectations. With ``registry`` the sections are read by the model's schema (§4.1, §4.4,
    §5.3, registry §3.5); with ``generic=True`` and no schema for the model, they are decoded without one (the
    stream's syntax and integrity only, as ``migration inspect`` does)."""
    data = bytes(data)
    res = StreamResult()
    header = parse_header(data)
    res.header = header
    flags = header["flags"]
    # Step 1: the header against what the reader holds.
    if expect.model_id is not None and header["model"] != expect.model_id:
        fail("model %r is not the agreed %r" % (header["model"], expect.model_id), 88)
    if expect.format_class is not None and header["formatClass"] != expect.format_class:
        fail("format class %r is not the agreed %r" % (header["formatClass"], expect.format_class))
    if expect.versions is not None and header["formatVersion"] not in expect.versions:
        fail("format version %d is not one of %s" % (header["formatVersion"], sorted(expect.versions)), 16)
    if expect.nonce is not None and header["nonce"] != expect.nonce:
        fail("nonce %s is not this migration's %s (replay)" % (header["nonce"].hex(), expect.nonce.hex()), 24)
    if expect.handshake_hash is not None and header["handshakeHash"] != expect.handshake_hash:
        fail("handshake hash %s is not the agreed %s" % (header["handshakeHash"].hex(), expect.handshake_hash.hex()),
             56)
    if expect.require_digests and not flags & FLAG_DIGESTS:
        fail("stream has no DIGESTS (flags 0x%04x) and the reader requires them" % flags, 10)
    if expect.require_mac and not flags & FLAG_MAC:
        fail("stream has no MAC (flags 0x%04x) and the reader requires one" % flags, 10)
    if expect.require_signature and not flags & FLAG_SIGNATURE:
        fail("stream has no SIGNATURE (flags 0x%04x) and the reader requires one" % flags, 10)
    schema = None
    if registry is not None:
        model = registry.models.get(header["model"])
        if model is None:
            if not generic:
                fail("model %r is not in the registry" % header["model"], 88)
        else:
            res.model = model
            versions = model.format_classes.get(header["formatClass"])
            if versions is None:
                fail("format class %r is not defined by model %s" % (header["formatClass"], model.id))
            schema = versions.get(header["formatVersion"])
            if schema is None:
                fail("format version %d is not defined by format class %s"
                     % (header["formatVersion"], header["formatClass"]), 16)
            res.format = schema
    digests = bool(flags & FLAG_DIGESTS)
    transcript = hashlib.sha256(header["bytes"]).digest()
    cur = Cursor(data, header["length"])
    seen_ids = set()
    # Step 2: sections.
    while True:
        at = cur.offset()
        frame = cur.u8("frame type")
        if frame == 0x54:
            break
        if frame != 0x53:
            fail("frame type 0x%02x is neither a section nor the trailer" % frame, at)
        sflags = cur.u8("section flags")
        sversion = cur.u16("section version")
        sid = cur.u32("section id")
        seq = cur.u32("sequence number")
        if sflags & ~3:
            fail("section %d has undefined flags 0x%02x" % (sid, sflags), at + 1)
        if sversion == 0:
            fail("section %d has version 0" % sid, at + 2)
        if seq != len(res.sections):
            fail("section %d has sequence number %d, expected %d" % (sid, seq, len(res.sections)), at + 8)
        if sid in seen_ids:
            fail("section id %d appears twice" % sid, at + 4)
        seen_ids.add(sid)
        body = bytearray()
        while True:
            cat = cur.offset()
            n = cur.u32("chunk length")
            if n == 0:
                break
            if n > MAX_CHUNK:
                fail("chunk length %d exceeds 16 MiB in section %d" % (n, sid), cat)
            body += cur.take(n, "chunk of section %d" % sid)
        end = cur.offset()
        if digests:
            dat = cur.offset()
            digest = cur.take(32, "section digest")
            actual = hashlib.sha256(data[at:end]).digest()
            if digest != actual:
                fail("section %d digest %s does not match %s" % (sid, digest.hex(), actual.hex()), dat)
            transcript = hashlib.sha256(transcript + actual).digest()
        section = Section(sid, sversion, sflags, seq, bytes(body), at)
        spec = schema.sections.get(sid) if schema is not None else None
        if spec is not None and spec.version == sversion:
            pass  # read by the schema; its flags are for readers that do not know it (stream §4.1)
        elif schema is not None:
            if sflags & SECTION_MUST_UNDERSTAND:
                fail("must-understand section %d version %d is unknown to format %s version %d"
                     % (sid, sversion, header["formatClass"], header["formatVersion"]), at)
            section.skipped = True
        res.sections.append(section)
    # Step 3: trailer.
    at = cur.offset() - 1
    reserved = cur.u8("trailer reserved byte")
    if reserved:
        fail("trailer reserved byte 0x%02x is not 0" % reserved, at + 1)
    tflags = cur.u16("trailer flags")
    if tflags != flags:
        fail("trailer flags 0x%04x differ from the header's 0x%04x" % (tflags, flags), at + 2)
    count = cur.u32("trailer section count")
    if count != len(res.sections):
        fail("trailer counts %d sections, %d were read" % (count, len(res.sections)), at + 4)
    fixed = data[at:at + 8]
    mac = b""
    if digests:
        tat = cur.offset()
        claimed = cur.take(32, "transcript")
        if claimed != transcript:
            fail("transcript %s does not match %s" % (claimed.hex(), transcript.hex()), tat)
        res.transcript = transcript
        if flags & FLAG_MAC:
            mat = cur.offset()
            mac = cur.take(32, "MAC")
            if expect.mac_key is not None:
                want = hmac.new(expect.mac_key, MAC_LABEL + transcript + fixed, hashlib.sha256).digest()
                if not hmac.compare_digest(mac, want):
                    fail("MAC does not verify under the agreed key", mat)
                res.mac_verified = True
        if flags & FLAG_SIGNATURE:
            sat = cur.offset()
            key = cur.take(32, "signer public key")
            sig = cur.take(64, "signature")
            if not ed25519_verify(key, sig, SIGNATURE_LABEL + transcript + fixed + mac):
                fail("Ed25519 signature by %s does not verify" % key.hex(), sat)
            if expect.pinned_signers and key not in expect.pinned_signers:
                fail("stream is signed by %s, which is not a required signer" % key.hex(), sat)
            res.signer = key
            res.signer_pinned = bool(expect.pinned_signers)
    if cur.remaining():
        fail("%d bytes follow the trailer" % cur.remaining(), cur.offset())
    # Step 4: the schema of the format version.
    if schema is not None:
        _apply_schema(res, schema, header)
    else:
        for s in res.sections:
            s.fields = decode_field_list(Cursor(s.body), 0, "section %d" % s.id, in_record=False)
            s.values = generic_json(s.fields)
    return res


def _apply_schema(res, schema, header):
    present = {s.id: s for s in res.sections}
    for spec in schema.sections.values():
        if not spec.optional and spec.id not in present:
            fail("required section %d (%s) of format version %d is missing"
                 % (spec.id, spec.name, header["formatVersion"]))
    for s in res.sections:
        if s.skipped:
            continue
        spec = schema.sections[s.id]
        where = "section %d (%s)" % (s.id, spec.name)
        fields = decode_field_list(Cursor(s.body, base=0), 0, where, in_record=False)
        s.fields = fields
        if spec.envelope:
            s.values = read_envelope(fields, where)
        else:
            s.values = interpret(fields, spec.fields, where)
    named = {schema.sections[s.id].name: s.values for s in res.sections if not s.skipped}
    for cid, left, op, right in schema.checks:
        lv, rv = _operand(left, present, schema), _operand(right, present, schema)
        if lv is None or rv is None:
            continue  # operand in an absent optional section
        ok = {"eq": lv == rv, "ne": lv != rv, "lt": lv < rv, "le": lv <= rv, "gt": lv > rv, "ge": lv >= rv}[op]
        if not ok:
            fail("load-time check %s fails: %d %s %d" % (cid, lv, op, rv))
    res.named = named


def _operand(operand, present, schema):
    kind, v = operand
    if kind == "value":
        return v
    section_id, spec = v
    section = present.get(section_id)
    if section is None:
        return None
    value = section.values[spec.name]
    if kind == "count":
        return len(value)
    return to_signed(value & 0xFFFFFFFFFFFFFFFF, 8)  # compared as signed 64-bit integers (registry §3.5)


def read_envelope(fields, where):
    """Stream §4.5: exactly tag 1 STRING vendor id, tag 2 INT32 schema version, tag 3 BYTES payload."""
    shape = [(1, STRING), (2, INT32), (3, BYTES)]
    if len(fields) != 3 or [(f.tag, f.type) for f in fields] != shape:
        fail("%s is an envelope but holds %s instead of 1 STRING, 2 INT32, 3 BYTES"
             % (where, [(f.tag, TYPE_NAMES.get(f.type)) for f in fields]))
    return {"vendor": fields[0].value, "schemaVersion": fields[1].value, "payload": fields[2].value}


# ---------------------------------------------------------------------------------------------------------------
# Handshake messages (stream §9.1, §9.2; integration.md §7)
# ---------------------------------------------------------------------------------------------------------------

MESSAGE_MAGIC = b"OPMH"
OFFER, ACCEPT, REFUSE, BEGIN, RESULT = 1, 2, 3, 4, 5
MAX_MESSAGE = 65536
REQUIRE_MAC, REQUIRE_SIGNATURE = 1, 2

_PARAMETER_RECORD = [FieldSpec(1, "name", STRING), FieldSpec(2, "value", STRING)]
_REASON_RECORD = [FieldSpec(1, "code", STRING), FieldSpec(2, "subject", STRING), FieldSpec(3, "detail", STRING)]
MESSAGE_SCHEMAS = {
    OFFER: [FieldSpec(1, "model", STRING), FieldSpec(2, "implementation", STRING),
            FieldSpec(3, "formatClass", STRING),
            FieldSpec(4, "parameters", ARRAY, element=RECORD, fields=_PARAMETER_RECORD),
            FieldSpec(5, "read", ARRAY, signed=True, element=INT32),
            FieldSpec(6, "write", ARRAY, signed=True, element=INT32),
            FieldSpec(7, "nonce", BYTES), FieldSpec(8, "modelDigest", BYTES), FieldSpec(9, "x25519", BYTES)],
    ACCEPT: [FieldSpec(1, "nonce", BYTES), FieldSpec(2, "formatVersion", INT32, signed=True),
             FieldSpec(3, "model", STRING), FieldSpec(4, "formatClass", STRING),
             FieldSpec(5, "implementation", STRING), FieldSpec(6, "x25519", BYTES),
             FieldSpec(7, "destinationNonce", BYTES), FieldSpec(8, "requirements", INT32, signed=True),
             FieldSpec(9, "signers", ARRAY, element=BYTES)],
    REFUSE: [FieldSpec(1, "nonce", BYTES), FieldSpec(2, "reasons", ARRAY, element=RECORD, fields=_REASON_RECORD)],
    BEGIN: [FieldSpec(1, "role", INT32, signed=True)],
    RESULT: [FieldSpec(1, "status", INT32, signed=True), FieldSpec(2, "detail", STRING),
             FieldSpec(3, "formatVersion", INT32, signed=True), FieldSpec(4, "handshakeHash", BYTES)],
}
MESSAGE_NAMES = {OFFER: "offer", ACCEPT: "accept", REFUSE: "refuse", BEGIN: "begin", RESULT: "result"}


def encode_message(message_type, values):
    body = bytes(encode_field_list(encode_by_schema(MESSAGE_SCHEMAS[message_type], values)))
    if 12 + len(body) > MAX_MESSAGE:
        raise ValueError("message of %d bytes exceeds 64 KiB" % (12 + len(body)))
    return MESSAGE_MAGIC + struct.pack("<BBHI", 1, message_type, 0, len(body)) + body


def _check_len(value, sizes, what):
    if len(value) not in sizes:
        fail("%s has %d bytes, expected %s" % (what, len(value), " or ".join(map(str, sizes))))


def decode_message(data, expected_types=None):
    """Decodes and checks one whole handshake message; returns (type, {name: value})."""
    data = bytes(data)
    if len(data) < 12:
        fail("handshake message of %d bytes is shorter than its 12-byte header" % len(data), 0)
    if data[:4] != MESSAGE_MAGIC:
        fail("handshake magic %s is not OPMH" % data[:4].hex(), 0)
    version, message_type, reserved, length = struct.unpack("<BBHI", data[4:12])
    if version != 1:
        fail("handshake message version %d" % version, 4)
    if message_type not in MESSAGE_SCHEMAS:
        fail("handshake message type %d is not defined" % message_type, 5)
    if reserved:
        fail("handshake reserved field 0x%04x is not 0" % reserved, 6)
    if length > MAX_MESSAGE - 12:
        fail("handshake body length %d exceeds 65524" % length, 8)
    if length != len(data) - 12:
        fail("handshake body length %d but %d bytes follow the header" % (length, len(data) - 12), 8)
    if expected_types is not None and message_type not in expected_types:
        fail("expected a %s message, got a %s" % ("/".join(MESSAGE_NAMES[t] for t in expected_types),
                                                  MESSAGE_NAMES[message_type]), 5)
    name = MESSAGE_NAMES[message_type]
    fields = decode_field_list(Cursor(data, 12), 0, name, in_record=False)
    v = interpret(fields, MESSAGE_SCHEMAS[message_type], name)
    if message_type == OFFER:
        if len(v["parameters"]) > 256:
            fail("offer carries %d parameters, more than 256" % len(v["parameters"]))
        names = set()
        for p in v["parameters"]:
            # Uniqueness is syntax; a name of any spelling that the model lacks is UNKNOWN_PARAMETER (§9.1).
            if p["name"] in names:
                fail("offer parameter name %r is repeated" % p["name"])
            names.add(p["name"])
        for key in ("read", "write"):
            if len(v[key]) > 256 or any(x < 1 for x in v[key]):
                fail("offer %s versions %s: at most 256, each at least 1" % (key, v[key]))
        _check_len(v["nonce"], (32,), "offer nonce")
        _check_len(v["modelDigest"], (0, 32), "offer model digest")
        _check_len(v["x25519"], (0, 32), "offer X25519 key")
    elif message_type == ACCEPT:
        _check_len(v["nonce"], (32,), "accept nonce")
        if v["formatVersion"] < 1:
            fail("accept format version %d" % v["formatVersion"])
        _check_len(v["x25519"], (0, 32), "accept X25519 key")
        _check_len(v["destinationNonce"], (32,), "accept destination nonce")
        if v["requirements"] & ~3:
            fail("accept requirements 0x%x have undefined bits" % v["requirements"])
        if len(v["signers"]) > 16:
            fail("accept lists %d signers, more than 16" % len(v["signers"]))
        for k in v["signers"]:
            _check_len(k, (32,), "accept signer key")
        if v["signers"] and not v["requirements"] & REQUIRE_SIGNATURE:
            fail("accept lists signers without requiring a signature")
    elif message_type == REFUSE:
        _check_len(v["nonce"], (32,), "refuse nonce")
        if not 1 <= len(v["reasons"]) <= 1024:
            fail("refusal carries %d reasons, expected 1 to 1024" % len(v["reasons"]))
    elif message_type == BEGIN:
        if v["role"] not in (1, 2):
            fail("begin role %d is neither 1 (source) nor 2 (destination)" % v["role"])
    elif message_type == RESULT:
        if v["status"] not in (0, 1):
            fail("result status %d" % v["status"])
        _check_len(v["handshakeHash"], (32,) if v["status"] == 0 else (0,), "result handshake hash")
    return message_type, v


def read_message_from(stream):
    """Reads one self-delimiting message from a byte stream (stream §9.1): the header, the capped body length, the
    body. Returns the message bytes, or None at a clean end of the stream before a header."""
    header = _read_exactly(stream, 12, allow_eof=True)
    if header is None:
        return None
    if header[:4] != MESSAGE_MAGIC:
        fail("handshake magic %s is not OPMH" % header[:4].hex(), 0)
    length = struct.unpack("<I", header[8:12])[0]
    if length > MAX_MESSAGE - 12:
        fail("handshake body length %d exceeds 65524" % length, 8)
    return header + _read_exactly(stream, length)


def _read_exactly(stream, n, allow_eof=False):
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            if allow_eof and not out:
                return None
            fail("byte stream ended after %d of %d bytes of a handshake message" % (len(out), n))
        out += chunk
    return bytes(out)


REASON_CODES = ("UNKNOWN_MODEL", "MODEL_MISMATCH", "MODEL_DEFINITION_MISMATCH", "SIGNATURE_INVALID",
                "UNTRUSTED_MODEL", "UNKNOWN_PARAMETER", "PARAMETER_MISSING", "PARAMETER_TYPE",
                "PARAMETER_NOT_ALLOWED", "PARAMETER_MISMATCH", "CONSTRAINT_VIOLATED", "UNKNOWN_FORMAT_CLASS",
                "FORMAT_CLASS_MISMATCH", "UNKNOWN_FORMAT_VERSION", "NO_COMMON_VERSION", "MAC_REQUIRED",
                "MALFORMED_OFFER", "SIGNER_NOT_BOUND", "IMPLEMENTATION_MISMATCH")


def build_offer(descriptor, registry, nonce, x25519_private=None):
    """The source's offer (stream §9.2): parameters and versions in the descriptor's order."""
    model = registry.models.get(descriptor.model)
    return encode_message(OFFER, {
        "model": descriptor.model, "implementation": descriptor.implementation,
        "formatClass": descriptor.format_class,
        "parameters": [{"name": n, "value": t} for n, t in descriptor.parameters],
        "read": descriptor.read, "write": descriptor.write, "nonce": bytes(nonce),
        "modelDigest": model.digest if model is not None else b"",
        "x25519": x25519_public(x25519_private) if x25519_private is not None else b""})


def build_refuse(nonce, reasons):
    return encode_message(REFUSE, {"nonce": bytes(nonce), "reasons": [
        {"code": c, "subject": s, "detail": d} for c, s, d in reasons]})


# -- the destination's decision (stream §9.5) ---------------------------------------------------------------------

class DestinationPolicy:
    def __init__(self, require_mac=False, require_signature=False, pinned_signers=(), trusted_model_keys=(),
                 require_trusted_model=False):
        self.require_mac = require_mac
        self.require_signature = require_signature
        self.pinned_signers = list(pinned_signers)
        self.trusted_model_keys = list(trusted_model_keys)
        self.require_trusted_model = require_trusted_model


def _fmt(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _side_values(model, side, pairs, reasons):
    """Item 4 for one side: returns {name: typed value} with defaults applied (None where unusable)."""
    values = {}
    given = set()
    for name, text in pairs:
        given.add(name)
        p = model.parameters.get(name)
        if p is None:
            reasons.append(("UNKNOWN_PARAMETER", name, "%s: parameter %s is not defined by model %s"
                            % (side, name, model.id)))
            continue
        value = parse_param_text(p.type, text)
        if value is None:
            reasons.append(("PARAMETER_TYPE", name, "%s: parameter %s value %r is not a %s"
                            % (side, name, text, p.type)))
            values[name] = None
            continue
        if p.allowed and value not in p.allowed:
            reasons.append(("PARAMETER_NOT_ALLOWED", name, "%s: parameter %s value %s is not one of [%s]"
                            % (side, name, _fmt(value), ", ".join(_fmt(a) for a in p.allowed))))
        elif (p.min is not None and value < p.min) or (p.max is not None and value > p.max):
            reasons.append(("PARAMETER_NOT_ALLOWED", name, "%s: parameter %s value %s is outside [%s, %s]"
                            % (side, name, value, p.min, p.max)))
        values[name] = value
    for name, p in model.parameters.items():
        if name not in given:
            if p.default is None:
                reasons.append(("PARAMETER_MISSING", name, "%s: required parameter %s is not set" % (side, name)))
                values[name] = None
            else:
                values[name] = p.default
    return values


def _condition_holds(cond, values):
    kind, name, op, operand = cond
    a = values.get(name)
    b = values.get(operand) if kind == "other" else operand
    if a is None or b is None:
        return None
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if op == "le":
        return a <= b
    if op == "ge":
        return a >= b
    if op == "bits_set":
        return a & b == b
    return a & b == 0  # bits_clear


def _describe_condition(cond):
    kind, name, op, operand = cond
    return "%s %s %s" % (name, op, _fmt(operand))


def _check_constraints(model, side, values, reasons):
    for cid, when, require in model.constraints:
        if when is not None:
            w = _condition_holds(when, values)
            if w is None:
                continue
            if not w:
                continue
        r = _condition_holds(require, values)
        if r is None or r:
            continue
        involved = sorted({c[1] for c in (when, require) if c} | {c[3] for c in (when, require)
                                                                   if c and c[0] == "other"})
        text = ("if %s then %s" % (_describe_condition(when), _describe_condition(require)) if when
                else _describe_condition(require))
        reasons.append(("CONSTRAINT_VIOLATED", cid, "%s violates %s (%s)" % (
            side, text, ", ".join("%s=%s" % (n, _fmt(values[n])) for n in involved))))


def decide(offer_bytes, descriptor, registry, policy, destination_nonce, destination_x25519_private=None):
    """Runs the destination's decision on an offer. Returns (answer bytes, reasons, agreement or None)."""
    try:
        _, offer = decode_message(offer_bytes, (OFFER,))
    except MigrationFormatError as e:
        nonce = ZERO32
        try:
            # The nonce of an offer that is otherwise malformed is echoed when it can be read (stream §9.5).
            fields = decode_field_list(Cursor(bytes(offer_bytes), 12), 0, "offer", in_record=False)
            n = [f for f in fields if f.tag == 7 and f.type == BYTES]
            if len(n) == 1 and len(n[0].value) == 32 and bytes(offer_bytes[:4]) == MESSAGE_MAGIC:
                nonce = n[0].value
        except MigrationFormatError:
            pass
        reasons = [("MALFORMED_OFFER", "offer", str(e))]
        return build_refuse(nonce, reasons), reasons, None
    reasons = []
    model = registry.models.get(offer["model"])
    # 1. the model is ours and is known; the other items use the offered model's entry, when there is one.
    if offer["model"] != descriptor.model:
        reasons.append(("MODEL_MISMATCH", offer["model"], "source offers %s, destination is %s"
                        % (offer["model"], descriptor.model)))
    if model is None:
        reasons.append(("UNKNOWN_MODEL", offer["model"], "model %s is not in the destination's registry"
                        % offer["model"]))
    chosen = None
    required_signers = list(policy.pinned_signers)
    if model is not None:
        # 2. entry signatures.
        status = registry.entry_status(model, set(policy.trusted_model_keys))
        if status == "INVALID":
            reasons.append(("SIGNATURE_INVALID", model.id, "a signature of the entry of %s does not verify"
                            % model.id))
        elif policy.require_trusted_model and status != "TRUSTED":
            reasons.append(("UNTRUSTED_MODEL", model.id, "entry of %s is %s, a trusted signature is required"
                            % (model.id, status)))
        # 3. model definition.
        if offer["modelDigest"] != model.digest:
            reasons.append(("MODEL_DEFINITION_MISMATCH", model.id, "source's entry digest %s, destination's %s"
                            % (offer["modelDigest"].hex() or "(empty)", model.digest.hex())))
        # 4. parameters on both sides, then constraints, then mustMatch.
        source_values = _side_values(model, "source", [(p["name"], p["value"]) for p in offer["parameters"]],
                                     reasons)
        _check_constraints(model, "source", source_values, reasons)
        destination_values = _side_values(model, "destination", descriptor.parameters, reasons)
        _check_constraints(model, "destination", destination_values, reasons)
        for name, p in model.parameters.items():
            a, b = source_values.get(name), destination_values.get(name)
            if p.must_match and a is not None and b is not None and a != b:
                reasons.append(("PARAMETER_MISMATCH", name, "source has %s, destination has %s"
                                % (_fmt(a), _fmt(b))))
        # 5. format class: at most one reason; item 6 needs the one class both sides use.
        fc = offer["formatClass"]
        if fc != descriptor.format_class:
            reasons.append(("FORMAT_CLASS_MISMATCH", fc, "source uses %s, destination uses %s"
                            % (fc, descriptor.format_class)))
        elif fc not in model.format_classes:
            reasons.append(("UNKNOWN_FORMAT_CLASS", fc, "format class %s is not defined by model %s"
                            % (fc, model.id)))
        # 6. implementations and versions.
        for side, impl_id, side_fc, claimed, key in (() if chosen_class_unusable(fc, descriptor, model) else (
                ("source", offer["implementation"], fc, offer["write"], "write"),
                ("destination", descriptor.implementation, descriptor.format_class, descriptor.read, "read"))):
            entry = model.implementations.get(impl_id)
            if entry is None:
                continue
            extra = [v for v in claimed if v not in entry[key]]
            if side_fc != entry["formatClass"] or extra:
                reasons.append(("IMPLEMENTATION_MISMATCH", impl_id,
                                "%s implementation %s is listed with format class %s %s %s; it claims %s %s"
                                % (side, impl_id, entry["formatClass"], key, entry[key], side_fc, claimed)))
        if fc == descriptor.format_class and fc in model.format_classes:
            defined = sorted(model.format_classes[fc])
            for side, claimed, verb in (("source", offer["write"], "write"),
                                        ("destination", descriptor.read, "read")):
                for v in claimed:
                    if v not in defined:
                        reasons.append(("UNKNOWN_FORMAT_VERSION", fc, "%s claims to %s version %d, defined "
                                        "versions are [%s]" % (side, verb, v, ", ".join(map(str, defined)))))
            common = [v for v in offer["write"] if v in descriptor.read and v in defined]
            if common:
                chosen = max(common)
            else:
                reasons.append(("NO_COMMON_VERSION", fc, "source writes [%s], destination reads [%s]" % (
                    ", ".join(map(str, offer["write"])), ", ".join(map(str, descriptor.read)))))
    # 7. MAC.
    if policy.require_mac and not offer["x25519"]:
        reasons.append(("MAC_REQUIRED", "offer", "destination requires a MAC, the offer has no X25519 key"))
    # 8. signers.
    if model is not None:
        entry = model.implementations.get(offer["implementation"])
        bound = entry["signers"] if entry is not None else []
        if bound and policy.pinned_signers:
            required_signers = [k for k in bound if k in policy.pinned_signers]
            if not required_signers:
                reasons.append(("SIGNER_NOT_BOUND", offer["implementation"],
                                "none of the %d pinned signers is bound to implementation %s"
                                % (len(policy.pinned_signers), offer["implementation"])))
        elif bound:
            required_signers = list(bound)
    if reasons:
        return build_refuse(offer["nonce"], reasons), reasons, None
    requirements = 0
    x25519 = b""
    if offer["x25519"]:
        requirements |= REQUIRE_MAC
        if destination_x25519_private is None:
            raise ValueError("the offer carries an X25519 key: the destination needs its own private key")
        x25519 = x25519_public(destination_x25519_private)
    if policy.require_signature or required_signers:
        requirements |= REQUIRE_SIGNATURE
    accept = encode_message(ACCEPT, {
        "nonce": offer["nonce"], "formatVersion": chosen, "model": descriptor.model,
        "formatClass": descriptor.format_class, "implementation": descriptor.implementation, "x25519": x25519,
        "destinationNonce": bytes(destination_nonce), "requirements": requirements, "signers": required_signers})
    agreement = destination_agreement(bytes(offer_bytes), accept, destination_x25519_private)
    return accept, [], agreement


def chosen_class_unusable(fc, descriptor, model):
    return fc != descriptor.format_class or fc not in model.format_classes


class Agreement:
    """What a handshake agreed (stream §9): the reader's Expectations or the writer's parameters."""

    def __init__(self, offer, accept, hh, key):
        self.offer = offer
        self.accept = accept
        self.handshake_hash = hh
        self.mac_key = key
        self.format_version = accept["formatVersion"]
        self.model = accept["model"]
        self.format_class = accept["formatClass"]
        self.nonce = offer["nonce"]
        self.requirements = accept["requirements"]
        self.signers = list(accept["signers"])

    def expectations(self):
        return Expectations(model_id=self.model, format_class=self.format_class, versions={self.format_version},
                            nonce=self.nonce, handshake_hash_value=self.handshake_hash, require_digests=True,
                            mac_key_value=self.mac_key, require_mac=bool(self.requirements & REQUIRE_MAC),
                            pinned_signers=self.signers,
                            require_signature=bool(self.requirements & REQUIRE_SIGNATURE))


def destination_agreement(offer_bytes, accept_bytes, destination_x25519_private):
    """The destination's agreement from the exact offer and accept bytes and its own X25519 private key."""
    _, offer = decode_message(offer_bytes, (OFFER,))
    _, accept = decode_message(accept_bytes, (ACCEPT,))
    hh = handshake_hash(offer_bytes, accept_bytes)
    key = None
    if accept["requirements"] & REQUIRE_MAC:
        if destination_x25519_private is None:
            fail("the accept requires a MAC: the destination's X25519 private key is needed")
        if x25519_public(destination_x25519_private) != accept["x25519"]:
            fail("the X25519 private key does not belong to the accept's key %s" % accept["x25519"].hex())
        key = mac_key(destination_x25519_private, offer["x25519"], hh)
    return Agreement(offer, accept, hh, key)


class MigrationRefused(MigrationFormatError):
    def __init__(self, reasons, message):
        super().__init__(message)
        self.reasons = reasons


def source_complete(offer_bytes, answer_bytes, source_x25519_private=None, signing_seed=None):
    """The source's checks (stream §9.6). Returns the source's Agreement or raises MigrationRefused."""
    _, offer = decode_message(offer_bytes, (OFFER,))
    answer_type, answer = decode_message(answer_bytes, (ACCEPT, REFUSE))
    if answer_type == REFUSE and answer["nonce"] == ZERO32:
        raise MigrationRefused(answer["reasons"], "destination could not read the offer: " + "; ".join(
            "%s %s: %s" % (r["code"], r["subject"], r["detail"]) for r in answer["reasons"]))
    if answer["nonce"] != offer["nonce"]:
        fail("answer nonce %s is not this offer's %s (an answer of another migration)"
             % (answer["nonce"].hex(), offer["nonce"].hex()))
    if answer_type == REFUSE:
        raise MigrationRefused(answer["reasons"], "refused: " + "; ".join(
            "%s %s: %s" % (r["code"], r["subject"], r["detail"]) for r in answer["reasons"]))
    if answer["formatVersion"] not in offer["write"]:
        fail("accept chose format version %d, the source writes %s" % (answer["formatVersion"], offer["write"]))
    if answer["model"] != offer["model"] or answer["formatClass"] != offer["formatClass"]:
        fail("accept names %s / %s, the source offered %s / %s" % (answer["model"], answer["formatClass"],
                                                                 offer["model"], offer["formatClass"]))
    requirements = answer["requirements"]
    if requirements & REQUIRE_MAC and not offer["x25519"]:
        fail("accept requires a MAC but the offer carried no X25519 key")
    if bool(offer["x25519"]) != bool(answer["x25519"]):
        fail("accept X25519 key presence does not match the offer's")
    if requirements & REQUIRE_SIGNATURE:
        if signing_seed is None:
            fail("accept requires a signature and the source has no signing key")
        if answer["signers"] and ed25519_public(signing_seed) not in answer["signers"]:
            fail("accept requires a signer of %s; the source's key %s is not one"
                 % ([k.hex() for k in answer["signers"]], ed25519_public(signing_seed).hex()))
    hh = handshake_hash(offer_bytes, answer_bytes)
    key = None
    if requirements & REQUIRE_MAC:
        if source_x25519_private is None or x25519_public(source_x25519_private) != offer["x25519"]:
            fail("the source's X25519 private key does not belong to the offer's key")
        key = mac_key(source_x25519_private, answer["x25519"], hh)
    return Agreement(offer, answer, hh, key)


# ---------------------------------------------------------------------------------------------------------------
# The example counter's state (outproc.dev/example/counter, format versions 1 and 2)
# ---------------------------------------------------------------------------------------------------------------

COUNTER_MODEL = "outproc.dev/example/counter"
COUNTER_FORMAT = "outproc.dev/example/counter/state"


def section_flags(spec):
    return (SECTION_MUST_UNDERSTAND if spec.must_understand else 0) | (SECTION_ENVELOPE if spec.envelope else 0)


def schema_sections(registry, model_id, format_class, version, values_by_section):
    """(id, version, flags, body) for each section named in values_by_section, in the registry's order."""
    fv = registry.models[model_id].format_classes[format_class][version]
    out = []
    for spec in fv.sections.values():
        if spec.name in values_by_section:
            body = bytes(encode_field_list(encode_by_schema(spec.fields, values_by_section[spec.name])))
            out.append((spec.id, spec.version, section_flags(spec), body))
    return out


def counter_state(version, label, counter, ram, queue_size=128, rings=2):
    state = {"config": {"queue_size": queue_size, "counter": counter, "label": label},
             "memory": {"ram": ram}}
    if version >= 2:
        state["config"]["flags"] = 0
        state["statistics"] = {"requests": 3, "latency_histogram": [1, 2, 3]}
        state["rings"] = {"rings": [{"index": i, "size": queue_size, "next_avail": 10 + i, "next_used": 10 + i}
                                    for i in range(rings)]}
    return state
