"""An independent implementation of the outproc device-state stream, registry canonical form and handshake
messages, written from migration-format/docs/ (stream-format.md, registry-format.md, integration.md) alone.

Python 3 standard library; X25519 and Ed25519 come from Debian's python3-cryptography.
"""

import base64
import hashlib
import hmac
import json
import re
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives import serialization


class FormatError(Exception):
    """A stream, message or document breaks a rule of the spec ("reject")."""


# ---------------------------------------------------------------- registry (registry-format.md)

INTEGER_TEXT = re.compile(r'(0|-?[1-9][0-9]*|0x[0-9a-fA-F]{1,16})')
PARAM_RANGES = {'uint8': (0, 2**8 - 1), 'uint16': (0, 2**16 - 1), 'uint32': (0, 2**32 - 1),
                'uint64': (0, 2**64 - 1), 'int64': (-2**63, 2**63 - 1)}
FIELD_TYPES = ['bool', 'int8', 'int16', 'int32', 'int64', 'bytes', 'string', 'array', 'record']
FIELD_BITS = {'int8': 8, 'int16': 16, 'int32': 32, 'int64': 64}


def parse_integer_text(text, lo, hi):
    """§3.4: decimal without + or leading zeros, or lower-case 0x and 1-16 hex digits; must fit [lo, hi]."""
    if not isinstance(text, str) or not INTEGER_TEXT.fullmatch(text):
        raise FormatError('not integer text: %r' % (text,))
    v = int(text[2:], 16) if text.startswith('0x') else int(text)
    if text.startswith('-') and lo >= 0:
        raise FormatError('minus sign for an unsigned type: %r' % text)
    if not lo <= v <= hi:
        raise FormatError('%s does not fit [%d, %d]' % (text, lo, hi))
    return v


def integer_value(v, lo, hi):
    """An integer given as a JSON integer or as integer text."""
    if isinstance(v, bool):
        raise FormatError('boolean where an integer is expected')
    if isinstance(v, int):
        if not lo <= v <= hi:
            raise FormatError('%d does not fit [%d, %d]' % (v, lo, hi))
        return v
    return parse_integer_text(v, lo, hi)


def _pairs(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise FormatError('duplicate key %r' % k)
        seen[k] = v
    return seen


def _no_constant(c):
    raise FormatError('non-finite number %s' % c)


def _check_tree(v, depth=0):
    """§1: no null, no lone surrogates, depth at most 24, numbers integral where used (checked by the users)."""
    if depth > 24:
        raise FormatError('nesting deeper than 24')
    if v is None:
        raise FormatError('JSON null is not a value')
    if isinstance(v, str):
        try:
            v.encode('utf-8')
        except UnicodeEncodeError:
            raise FormatError('string with an unpaired surrogate')
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_tree(k, depth + 1)
            _check_tree(x, depth + 1)
    elif isinstance(v, list):
        for x in v:
            _check_tree(x, depth + 1)
    elif isinstance(v, float):
        raise FormatError('non-integer number %r' % v)


def parse_json(data):
    if len(data) > 4 * 1024 * 1024:
        raise FormatError('document over 4 MiB')
    tree = json.loads(data.decode('utf-8'), object_pairs_hook=_pairs, parse_constant=_no_constant)
    _check_tree(tree)
    return tree


def _keys(obj, allowed, required, at):
    if not isinstance(obj, dict):
        raise FormatError('%s must be an object' % at)
    for k in obj:
        if k not in allowed:
            raise FormatError('%s: unknown key %r' % (at, k))
    for k in required:
        if k not in obj:
            raise FormatError('%s: missing key %r' % (at, k))


def _int(v, at):
    if isinstance(v, bool) or not isinstance(v, int):
        raise FormatError('%s must be an integer' % at)
    return v


def _param_value(v, ptype, at):
    """A parameter-typed value in its normalized form: bool, str, or canonical decimal text for integers."""
    if ptype == 'bool':
        if not isinstance(v, bool):
            raise FormatError('%s must be a boolean' % at)
        return v
    if ptype == 'string':
        if not isinstance(v, str):
            raise FormatError('%s must be a string' % at)
        return v
    lo, hi = PARAM_RANGES[ptype]
    return str(integer_value(v, lo, hi))


def _field_int_default(v, ftype, signed):
    bits = FIELD_BITS[ftype]
    lo, hi = (-2**(bits - 1), 2**(bits - 1) - 1) if signed else (0, 2**bits - 1)
    return str(integer_value(v, lo, hi))


def _normalize_fields(fields, at, depth):
    out = []
    for i, f in enumerate(fields):
        a = '%s[%d]' % (at, i)
        _keys(f, {'tag', 'name', 'type', 'signed', 'element', 'fields', 'default'}, {'tag', 'name', 'type'}, a)
        t = f['type']
        if t not in FIELD_TYPES:
            raise FormatError('%s.type %r' % (a, t))
        n = {'tag': _int(f['tag'], a), 'name': f['name'], 'type': t}
        element = f.get('element')
        if t == 'array':
            if element not in FIELD_TYPES or element == 'array':
                raise FormatError('%s.element %r' % (a, element))
            n['element'] = element
        elif 'element' in f:
            raise FormatError('%s.element only for arrays' % a)
        scalar = element if t == 'array' else t
        if scalar.startswith('int'):
            n['signed'] = bool(f.get('signed', False))
        elif 'signed' in f:
            raise FormatError('%s.signed only for integers' % a)
        if scalar == 'record':
            if 'fields' not in f or depth + 1 > 32:
                raise FormatError('%s needs fields' % a)
            n['fields'] = _normalize_fields(f['fields'], a + '.fields', depth + 1)
        elif 'fields' in f:
            raise FormatError('%s.fields only for records' % a)
        if 'default' in f:
            d = f['default']
            if t == 'bool':
                if not isinstance(d, bool):
                    raise FormatError('%s.default must be boolean' % a)
                n['default'] = d
            elif t == 'string':
                n['default'] = d
            elif t == 'bytes':
                if not isinstance(d, str) or not re.fullmatch(r'([0-9a-f]{2})*', d):
                    raise FormatError('%s.default must be lower-case hex' % a)
                n['default'] = d
            elif t == 'array':
                if d != []:
                    raise FormatError('%s.default of an array must be []' % a)
                n['default'] = []
            elif t == 'record':
                raise FormatError('%s: a record has no default' % a)
            else:
                n['default'] = _field_int_default(d, t, n['signed'])
        out.append(n)
    return out


def normalize_model(m, at='model'):
    """registry-format.md §4: the normalized tree of a model entry."""
    _keys(m, {'id', 'revision', 'description', 'pciAliases', 'parameters', 'constraints', 'formatClasses',
              'implementations'}, {'id', 'revision'}, at)
    t = {'id': m['id'], 'revision': _int(m['revision'], at + '.revision'), 'description': m.get('description', '')}
    aliases = []
    for a in m.get('pciAliases', []):
        x = {}
        for k, width in (('vendor', 4), ('device', 4), ('subsystemVendor', 4), ('subsystemDevice', 4), ('revision', 2)):
            if k in a:
                x[k] = '0x%0*x' % (width, integer_value(a[k], 0, 0xff if width == 2 else 0xffff))
        aliases.append(x)
    t['pciAliases'] = aliases
    types = {}
    params = []
    for p in m.get('parameters', []):
        _keys(p, {'name', 'type', 'default', 'allowed', 'min', 'max', 'mustMatch', 'description'}, {'name', 'type'}, at)
        types[p['name']] = p['type']
        x = {'name': p['name'], 'type': p['type']}
        if 'default' in p:
            x['default'] = _param_value(p['default'], p['type'], at)
        x['allowed'] = [_param_value(v, p['type'], at) for v in p.get('allowed', [])]
        for k in ('min', 'max'):
            if k in p:
                x[k] = _param_value(p[k], p['type'], at)
        x['mustMatch'] = p.get('mustMatch', True)
        x['description'] = p.get('description', '')
        params.append(x)
    t['parameters'] = params

    def condition(c):
        x = {'param': c['param'], 'op': c['op']}
        if 'otherParam' in c:
            x['otherParam'] = c['otherParam']
        else:
            x['value'] = _param_value(c['value'], types[c['param']], at)
        return x
    cons = []
    for c in m.get('constraints', []):
        x = {'id': c['id']}
        if 'when' in c:
            x['when'] = condition(c['when'])
        x['require'] = condition(c['require'])
        x['description'] = c.get('description', '')
        cons.append(x)
    t['constraints'] = cons
    classes = []
    for fc in m.get('formatClasses', []):
        versions = []
        for v in fc['versions']:
            sections = []
            for s in v['sections']:
                _keys(s, {'id', 'name', 'version', 'mustUnderstand', 'envelope', 'optional', 'fields'}, {'id', 'name', 'version'}, at)
                sections.append({'id': s['id'], 'name': s['name'], 'version': s['version'],
                                 'mustUnderstand': s.get('mustUnderstand', False), 'envelope': s.get('envelope', False),
                                 'optional': s.get('optional', False),
                                 'fields': _normalize_fields(s.get('fields', []), at + '.fields', 1)})
            checks = []
            for c in v.get('checks', []):
                def operand(o):
                    if 'value' in o:
                        return {'value': str(integer_value(o['value'], -2**63, 2**63 - 1))}
                    return dict(o)
                checks.append({'id': c['id'], 'left': operand(c['left']), 'op': c['op'], 'right': operand(c['right']),
                               'description': c.get('description', '')})
            versions.append({'version': v['version'], 'sections': sections, 'checks': checks})
        classes.append({'id': fc['id'], 'description': fc.get('description', ''), 'versions': versions})
    t['formatClasses'] = classes
    impls = []
    for i in m.get('implementations', []):
        impls.append({'id': i['id'], 'vendor': i.get('vendor', ''), 'formatClass': i['formatClass'],
                      'read': list(i['read']), 'write': list(i['write']),
                      'signers': [base64.b64encode(base64.b64decode(k, validate=True)).decode('ascii') for k in i.get('signers', [])]})
    t['implementations'] = impls
    return t


def jcs(v):
    """RFC 8785 serialization of the values a normalized tree holds."""
    if v is True:
        return 'true'
    if v is False:
        return 'false'
    if isinstance(v, int):
        if abs(v) > 2**53 - 1:
            raise FormatError('integer beyond 2^53-1 in a canonical form')
        return str(v)
    if isinstance(v, str):
        out = ['"']
        for ch in v:
            o = ord(ch)
            if ch == '"':
                out.append('\\"')
            elif ch == '\\':
                out.append('\\\\')
            elif ch == '\b':
                out.append('\\b')
            elif ch == '\f':
                out.append('\\f')
            elif ch == '\n':
                out.append('\\n')
            elif ch == '\r':
                out.append('\\r')
            elif ch == '\t':
                out.append('\\t')
            elif o < 0x20:
                out.append('\\u%04x' % o)
            else:
                out.append(ch)
        out.append('"')
        return ''.join(out)
    if isinstance(v, list):
        return '[' + ','.join(jcs(x) for x in v) + ']'
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode('utf-16-be'))
        return '{' + ','.join(jcs(k) + ':' + jcs(v[k]) for k in keys) + '}'
    raise FormatError('no canonical form for %r' % (v,))


def canonical_model(m):
    return jcs(normalize_model(m)).encode('utf-8')


def model_digest(m):
    return hashlib.sha256(canonical_model(m)).digest()


def load_registry(data):
    doc = parse_json(data)
    _keys(doc, {'registryFormat', 'models', 'signatures'}, {'registryFormat', 'models'}, '$')
    if doc['registryFormat'] != 1:
        raise FormatError('registryFormat %r' % doc['registryFormat'])
    return {m['id']: m for m in doc['models']}


# ---------------------------------------------------------------- field encoding (stream-format.md §5)

T_END, T_BOOL, T_INT8, T_INT16, T_INT32, T_INT64, T_BYTES, T_STRING, T_ARRAY, T_RECORD = range(10)
TYPE_CODES = {'bool': T_BOOL, 'int8': T_INT8, 'int16': T_INT16, 'int32': T_INT32, 'int64': T_INT64,
              'bytes': T_BYTES, 'string': T_STRING, 'array': T_ARRAY, 'record': T_RECORD}
INT_SIZES = {T_INT8: 1, T_INT16: 2, T_INT32: 4, T_INT64: 8}
MIN_ELEMENT = {T_BOOL: 1, T_INT8: 1, T_INT16: 2, T_INT32: 4, T_INT64: 8, T_BYTES: 8, T_STRING: 4, T_RECORD: 3}
MUST_UNDERSTAND_TAG = 0x8000
MAX_DEPTH = 32


class Cursor:
    def __init__(self, data, base=0):
        self.data = data
        self.pos = 0
        self.base = base

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n > self.remaining():
            raise FormatError('value overruns its body at offset %d: need %d, %d remain' % (self.base + self.pos, n, self.remaining()))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack('<H', self.take(2))[0]

    def u32(self):
        return struct.unpack('<I', self.take(4))[0]

    def u64(self):
        return struct.unpack('<Q', self.take(8))[0]


def _utf8(b):
    try:
        return b.decode('utf-8', errors='strict')
    except UnicodeDecodeError:
        raise FormatError('malformed UTF-8')


def read_value(c, t, depth):
    """A raw value of wire type t: ints unsigned, records as {tag: (type, value)}, arrays as (element, [values])."""
    if t == T_BOOL:
        b = c.u8()
        if b > 1:
            raise FormatError('BOOL value %d' % b)
        return b == 1
    if t in INT_SIZES:
        return int.from_bytes(c.take(INT_SIZES[t]), 'little')
    if t == T_BYTES:
        n = c.u64()
        if n >= 2**63:
            raise FormatError('BYTES length %d' % n)
        return c.take(n)
    if t == T_STRING:
        n = c.u32()
        if n > 1024 * 1024:
            raise FormatError('STRING length %d over 1 MiB' % n)
        return _utf8(c.take(n))
    if t == T_ARRAY:
        if depth + 1 > MAX_DEPTH:
            raise FormatError('nesting deeper than 32')
        e = c.u8()
        if e in (T_END, T_ARRAY) or e > T_RECORD:
            raise FormatError('invalid array element type %d' % e)
        n = c.u32()
        if n * MIN_ELEMENT[e] > c.remaining():
            raise FormatError('array count %d exceeds the remaining body' % n)
        if e == T_RECORD:
            return (e, [read_list(c, depth + 1, True) for _ in range(n)])  # records share the array's level
        return (e, [read_value(c, e, depth + 1) for _ in range(n)])
    if t == T_RECORD:
        if depth + 1 > MAX_DEPTH:
            raise FormatError('nesting deeper than 32')
        return read_list(c, depth + 1, True)
    raise FormatError('undefined type code %d' % t)


def read_list(c, depth, record):
    """A field list: {tag: (type, value)}; repeated tags rejected; a record ends with END."""
    fields = {}
    while True:
        if not record and c.remaining() == 0:
            return fields
        tag = c.u16()
        t = c.u8()
        if t > T_RECORD:
            raise FormatError('undefined type code 0x%02x for tag %d' % (t, tag))
        if t == T_END or tag == 0:
            if record and t == T_END and tag == 0:
                return fields
            raise FormatError('END must be tag 0 type 0 and close a record')
        if tag in fields:
            raise FormatError('tag %d appears twice in one field list' % tag)
        fields[tag] = (t, read_value(c, t, depth))


def signed_value(v, t, signed):
    bits = INT_SIZES[t] * 8
    if signed and v >= 2**(bits - 1):
        return v - 2**bits
    return v


def apply_schema(fields, schema, where):
    """stream-format.md §5.3 with the registry schema: names, defaults, required fields, must-understand tags."""
    out = {}
    by_tag = {f['tag']: f for f in schema}
    for tag, (t, v) in fields.items():
        f = by_tag.get(tag)
        if f is None:
            if tag >= MUST_UNDERSTAND_TAG:
                raise FormatError('%s: unknown must-understand tag 0x%04x' % (where, tag))
            continue
        if TYPE_CODES[f['type']] != t:
            raise FormatError('%s: field %s has type code %d, schema type %s' % (where, f['name'], t, f['type']))
        out[f['name']] = typed(v, t, f, where)
    for f in schema:
        if f['name'] not in out:
            if 'default' not in f:
                raise FormatError('%s: required field %s (tag %d) is absent' % (where, f['name'], f['tag']))
            d = f['default']
            if f['type'] == 'bytes':
                d = bytes.fromhex(d)
            elif f['type'] in FIELD_BITS:
                d = int(d)
            out[f['name']] = d
    return out


def typed(v, t, f, where):
    if t in INT_SIZES:
        return signed_value(v, t, f.get('signed', False))
    if t == T_RECORD:
        return apply_schema(v, f['fields'], where + '.' + f['name'])
    if t == T_ARRAY:
        e, items = v
        if e != TYPE_CODES[f['element']]:
            raise FormatError('%s: array %s holds type %d, schema %s' % (where, f['name'], e, f['element']))
        if e == T_RECORD:
            return [apply_schema(x, f['fields'], where + '.' + f['name']) for x in items]
        if e in INT_SIZES:
            return [signed_value(x, e, f.get('signed', False)) for x in items]
        return items
    return v


class Fields:
    """Field-list encoder (stream-format.md §5)."""

    def __init__(self):
        self.out = bytearray()

    def _h(self, tag, t):
        self.out += struct.pack('<HB', tag, t)
        return self

    def bool(self, tag, v):
        self._h(tag, T_BOOL).out.append(1 if v else 0)
        return self

    def int(self, tag, t, v):
        self._h(tag, t).out += (v % 2**(8 * INT_SIZES[t])).to_bytes(INT_SIZES[t], 'little')
        return self

    def bytes(self, tag, v):
        self._h(tag, T_BYTES).out += struct.pack('<Q', len(v)) + v
        return self

    def string(self, tag, v):
        b = v.encode('utf-8')
        self._h(tag, T_STRING).out += struct.pack('<I', len(b)) + b
        return self

    def int_array(self, tag, t, values):
        self._h(tag, T_ARRAY).out += struct.pack('<BI', t, len(values))
        for v in values:
            self.out += (v % 2**(8 * INT_SIZES[t])).to_bytes(INT_SIZES[t], 'little')
        return self

    def bytes_array(self, tag, values):
        self._h(tag, T_ARRAY).out += struct.pack('<BI', T_BYTES, len(values))
        for v in values:
            self.out += struct.pack('<Q', len(v)) + v
        return self

    def record_array(self, tag, records):
        self._h(tag, T_ARRAY).out += struct.pack('<BI', T_RECORD, len(records))
        for r in records:
            self.out += r.out + b'\x00\x00\x00'
        return self

    def record(self, tag, r):
        self._h(tag, T_RECORD).out += r.out + b'\x00\x00\x00'
        return self


# ---------------------------------------------------------------- stream (stream-format.md §3-7)

MAGIC = b'OPMS\r\n\x1a\n'
F_DIGESTS, F_MAC, F_SIGNATURE = 1, 2, 4
S_MUST_UNDERSTAND, S_ENVELOPE = 1, 2


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def ed25519_verify(public, message, signature):
    if len(signature) != 64 or int.from_bytes(signature[32:], 'little') >= 2**252 + 27742317777372353535851937790883648493:
        return False
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def ed25519_public(seed):
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Stream:
    """A decoded, verified stream: header fields, raw sections and trailer facts."""


def read_stream(data, mac_key=None, pinned=None, require_digests=False, expect=None):
    """Decodes and verifies a whole stream (§7.4 steps 1-3). expect: dict of header values the agreement fixes."""
    c = Cursor(data)
    if c.take(8) != MAGIC:
        raise FormatError('bad magic')
    s = Stream()
    s.version, s.flags, H, s.format_version, reserved = struct.unpack('<HHIII', c.take(16))
    if s.version != 1:
        raise FormatError('stream version %d' % s.version)
    if s.flags & ~7 or (s.flags and not s.flags & F_DIGESTS):
        raise FormatError('flags 0x%x' % s.flags)
    if not 94 <= H <= 4096 or H > len(data):
        raise FormatError('header length %d' % H)
    if reserved != 0 or s.format_version < 1:
        raise FormatError('reserved word or format version 0')
    s.nonce = c.take(32)
    s.handshake_hash = c.take(32)
    hc = Cursor(data[88:H], 88)
    ids = []
    for _ in range(3):
        n = hc.u16()
        if n > 256:
            raise FormatError('header id of %d bytes' % n)
        ids.append(_utf8(hc.take(n)))
    s.model, s.format_class, s.implementation = ids
    s.extensions = []
    while hc.remaining():
        kind, ver, fl, n = struct.unpack('<HBBH', hc.take(6))
        value = hc.take(n)
        if ver == 0 or fl & ~1:
            raise FormatError('header extension entry kind %d version %d flags %d' % (kind, ver, fl))
        if fl & 1:
            raise FormatError('critical header extension kind %d unknown to this reader' % kind)
        s.extensions.append((kind, ver, value))
    header = data[:H]
    c.pos = H
    if expect:
        for k, v in expect.items():
            if getattr(s, k) != v:
                raise FormatError('header %s is %r, the agreement says %r' % (k, getattr(s, k), v))
    digests = bool(s.flags & F_DIGESTS)
    if require_digests and not digests:
        raise FormatError('stream has no digests')
    if mac_key is not None and not s.flags & F_MAC:
        raise FormatError('stream has no MAC but one is required')
    if pinned and not s.flags & F_SIGNATURE:
        raise FormatError('stream is not signed but a signer is pinned')
    transcript = sha256(header)
    s.t = [transcript]
    s.sections = []
    seen = set()
    while True:
        start = c.pos
        frame = c.u8()
        if frame == 0x54:
            break
        if frame != 0x53:
            raise FormatError('frame type 0x%02x at %d' % (frame, start))
        flags, version, sid, seq = struct.unpack('<BHII', c.take(11))
        if flags & ~3 or version == 0:
            raise FormatError('section flags or version 0')
        if seq != len(s.sections):
            raise FormatError('sequence %d where %d was expected' % (seq, len(s.sections)))
        if sid in seen:
            raise FormatError('section id %d appears twice' % sid)
        seen.add(sid)
        body = bytearray()
        while True:
            n = c.u32()
            if n == 0:
                break
            if n > 16 * 1024 * 1024:
                raise FormatError('chunk of %d bytes' % n)
            body += c.take(n)
        if digests:
            d = sha256(data[start:c.pos])
            if c.take(32) != d:
                raise FormatError('digest of section %d does not match' % sid)
            transcript = sha256(transcript, d)
            s.t.append(transcript)
        s.sections.append({'id': sid, 'version': version, 'mustUnderstand': bool(flags & 1),
                           'envelope': bool(flags & 2), 'body': bytes(body)})
    fixed = bytes([0x54]) + c.take(7)
    reserved, tflags, count = struct.unpack('<BHI', fixed[1:])
    if reserved or tflags != s.flags or count != len(s.sections):
        raise FormatError('trailer reserved, flags or count wrong')
    s.mac_verified = False
    s.signer = None
    if digests:
        if c.take(32) != transcript:
            raise FormatError('transcript does not match')
        mac = b''
        if s.flags & F_MAC:
            mac = c.take(32)
            if mac_key is not None:
                want = hmac.new(mac_key, b'outproc-migration-mac-v1' + transcript + fixed, hashlib.sha256).digest()
                if not hmac.compare_digest(want, mac):
                    raise FormatError('MAC does not verify')
                s.mac_verified = True
        if s.flags & F_SIGNATURE:
            pk = c.take(32)
            sig = c.take(64)
            if not ed25519_verify(pk, b'outproc-migration-sig-v1' + transcript + fixed + mac, sig):
                raise FormatError('signature does not verify')
            if pinned and pk not in pinned:
                raise FormatError('signed by a key that is not pinned')
            s.signer = pk
    if c.remaining():
        raise FormatError('%d bytes after the trailer' % c.remaining())
    s.transcript = transcript if digests else None
    return s


def decode_state(stream, format_version):
    """§4.4, §4.5, §5 and registry §3.3-3.5: the sections by name, decoded by the normalized format version."""
    state = {}
    by_id = {x['id']: x for x in format_version['sections']}
    for sec in stream.sections:
        schema = by_id.get(sec['id'])
        if schema is None or schema['version'] != sec['version'] or schema['envelope'] != sec['envelope']:
            if sec['mustUnderstand']:
                raise FormatError('must-understand section %d version %d is unknown' % (sec['id'], sec['version']))
            continue
        c = Cursor(sec['body'])
        fields = read_list(c, 0, False)
        if schema['envelope']:
            if list(fields) != [1, 2, 3] or [fields[k][0] for k in (1, 2, 3)] != [T_STRING, T_INT32, T_BYTES]:
                raise FormatError('envelope %s must hold exactly vendor, schema, payload' % schema['name'])
            state[schema['name']] = {'vendor': fields[1][1], 'schema': fields[2][1], 'payload': fields[3][1]}
        else:
            state[schema['name']] = apply_schema(fields, schema['fields'], schema['name'])
    for x in format_version['sections']:
        if not x['optional'] and x['name'] not in state:
            raise FormatError('required section %s is missing' % x['name'])
    for chk in format_version['checks']:
        vals = []
        for o in (chk['left'], chk['right']):
            if 'value' in o:
                vals.append(int(o['value']))
                continue
            path = o.get('field') or o.get('count')
            sname, fname = path.split('.', 1)
            if sname not in state:
                vals = None
                break
            v = state[sname][fname]
            vals.append(len(v) if 'count' in o else v)
        if vals is None:
            continue
        a, b = vals
        ok = {'eq': a == b, 'ne': a != b, 'lt': a < b, 'le': a <= b, 'gt': a > b, 'ge': a >= b}[chk['op']]
        if not ok:
            raise FormatError('check %s failed: %d %s %d' % (chk['id'], a, chk['op'], b))
    return state


def write_stream(model, format_class, format_version, sections, nonce=bytes(32), handshake_hash=bytes(32),
                 implementation='', digests=True, mac_key=None, signing_seed=None, extensions=()):
    """sections: [(id, version, flags, body bytes)]; extensions: [(kind, version, critical, value)]."""
    flags = (F_DIGESTS if digests else 0) | (F_MAC if mac_key else 0) | (F_SIGNATURE if signing_seed else 0)
    var = b''.join(struct.pack('<H', len(x.encode())) + x.encode() for x in (model, format_class, implementation))
    var += b''.join(struct.pack('<HBBH', k, v, 1 if crit else 0, len(val)) + val for k, v, crit, val in extensions)
    H = 88 + len(var)
    header = MAGIC + struct.pack('<HHIII', 1, flags, H, format_version, 0) + nonce + handshake_hash + var
    out = bytearray(header)
    transcript = sha256(header)
    for seq, (sid, version, sflags, body) in enumerate(sections):
        sec = struct.pack('<BBHII', 0x53, sflags, version, sid, seq)
        if body:
            sec += struct.pack('<I', len(body)) + body
        sec += struct.pack('<I', 0)
        out += sec
        if digests:
            d = sha256(sec)
            out += d
            transcript = sha256(transcript, d)
    fixed = struct.pack('<BBHI', 0x54, 0, flags, len(sections))
    out += fixed
    if digests:
        out += transcript
        mac = b''
        if mac_key:
            mac = hmac.new(mac_key, b'outproc-migration-mac-v1' + transcript + fixed, hashlib.sha256).digest()
            out += mac
        if signing_seed:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(signing_seed)
            out += ed25519_public(signing_seed) + key.sign(b'outproc-migration-sig-v1' + transcript + fixed + mac)
    return bytes(out)


# ---------------------------------------------------------------- handshake (stream-format.md §9, integration.md §7)

HS_MAGIC = b'OPMH'
OFFER, ACCEPT, REFUSE, BEGIN, RESULT = 1, 2, 3, 4, 5


def frame(mtype, body):
    if len(body) > 65536 - 12:
        raise FormatError('handshake body too large')
    return HS_MAGIC + struct.pack('<BBHI', 1, mtype, 0, len(body)) + bytes(body)


def unframe(m, *types):
    if not 12 <= len(m) <= 65536 or m[:4] != HS_MAGIC or m[4] != 1 or m[6:8] != b'\0\0':
        raise FormatError('bad handshake frame')
    if m[5] not in types:
        raise FormatError('message type %d where %s was expected' % (m[5], types))
    if struct.unpack('<I', m[8:12])[0] != len(m) - 12:
        raise FormatError('body length mismatch')
    return m[5], read_list(Cursor(m[12:]), 0, False)


def _need(fields, spec):
    """spec: {tag: type code}; every listed field required with that type."""
    out = {}
    for tag, t in spec.items():
        if tag not in fields:
            raise FormatError('message lacks field %d' % tag)
        if fields[tag][0] != t:
            raise FormatError('field %d has type %d, expected %d' % (tag, fields[tag][0], t))
        out[tag] = fields[tag][1]
    return out


def _versions(v):
    e, items = v
    if e != T_INT32 or len(items) > 256 or any(x < 1 or x >= 2**31 for x in items):
        raise FormatError('versions must be at most 256 INT32 >= 1')
    return items


def encode_offer(o):
    params = [Fields().string(1, k).string(2, v) for k, v in o['parameters']]
    f = (Fields().string(1, o['model']).string(2, o['implementation']).string(3, o['formatClass'])
         .record_array(4, params).int_array(5, T_INT32, o['read']).int_array(6, T_INT32, o['write'])
         .bytes(7, o['nonce']).bytes(8, o['modelDigest']).bytes(9, o['x25519']))
    return frame(OFFER, f.out)


def decode_offer(m):
    _, fields = unframe(m, OFFER)
    f = _need(fields, {1: T_STRING, 2: T_STRING, 3: T_STRING, 4: T_ARRAY, 5: T_ARRAY, 6: T_ARRAY, 7: T_BYTES, 8: T_BYTES, 9: T_BYTES})
    e, recs = f[4]
    if e != T_RECORD or len(recs) > 256:
        raise FormatError('parameters must be at most 256 records')
    params = []
    for r in recs:
        p = _need(r, {1: T_STRING, 2: T_STRING})
        if any(p[1] == n for n, _ in params):
            raise FormatError('parameter %s twice' % p[1])
        params.append((p[1], p[2]))
    if len(f[7]) != 32 or len(f[8]) not in (0, 32) or len(f[9]) not in (0, 32):
        raise FormatError('offer nonce, digest or key length')
    return {'model': f[1], 'implementation': f[2], 'formatClass': f[3], 'parameters': params,
            'read': _versions(f[5]), 'write': _versions(f[6]), 'nonce': f[7], 'modelDigest': f[8], 'x25519': f[9]}


def encode_accept(a):
    f = (Fields().bytes(1, a['nonce']).int(2, T_INT32, a['formatVersion']).string(3, a['model']).string(4, a['formatClass'])
         .string(5, a['implementation']).bytes(6, a['x25519']).bytes(7, a['destinationNonce'])
         .int(8, T_INT32, a['requirements']).bytes_array(9, a['signers']))
    return frame(ACCEPT, f.out)


def decode_answer(m):
    t, fields = unframe(m, ACCEPT, REFUSE)
    if t == ACCEPT:
        f = _need(fields, {1: T_BYTES, 2: T_INT32, 3: T_STRING, 4: T_STRING, 5: T_STRING, 6: T_BYTES, 7: T_BYTES, 8: T_INT32, 9: T_ARRAY})
        e, signers = f[9]
        if e != T_BYTES or len(signers) > 16 or any(len(k) != 32 for k in signers):
            raise FormatError('signers must be at most 16 keys of 32 bytes')
        if len(f[1]) != 32 or len(f[7]) != 32 or len(f[6]) not in (0, 32) or not 1 <= f[2] < 2**31 or f[8] & ~3:
            raise FormatError('accept field out of range')
        if signers and not f[8] & 2:
            raise FormatError('signers without SIGNATURE')
        return {'type': 'accept', 'nonce': f[1], 'formatVersion': f[2], 'model': f[3], 'formatClass': f[4],
                'implementation': f[5], 'x25519': f[6], 'destinationNonce': f[7], 'requirements': f[8], 'signers': signers}
    f = _need(fields, {1: T_BYTES, 2: T_ARRAY})
    e, recs = f[2]
    if len(f[1]) != 32 or e != T_RECORD or len(recs) > 1024:
        raise FormatError('refusal nonce or reasons')
    reasons = [tuple(_need(r, {1: T_STRING, 2: T_STRING, 3: T_STRING}).values()) for r in recs]
    return {'type': 'refuse', 'nonce': f[1], 'reasons': reasons}


def encode_refuse(nonce, reasons):
    return frame(REFUSE, Fields().bytes(1, nonce).record_array(2, [Fields().string(1, c).string(2, s).string(3, d) for c, s, d in reasons]).out)


def encode_begin(role):
    return frame(BEGIN, Fields().int(1, T_INT32, role).out)


def encode_result(agreed, detail, version, hh):
    return frame(RESULT, Fields().int(1, T_INT32, 0 if agreed else 1).string(2, detail).int(3, T_INT32, version).bytes(4, hh).out)


def handshake_hash(offer, accept):
    return sha256(b'outproc-migration-handshake-v1', struct.pack('<I', len(offer)), offer, struct.pack('<I', len(accept)), accept)


def x25519_public(private):
    return x25519.X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x25519_shared(private, peer):
    shared = x25519.X25519PrivateKey.from_private_bytes(private).exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    if shared == bytes(32):
        raise FormatError('low-order X25519 key')
    return shared


def hkdf_sha256(ikm, salt, info, length):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, i = b'', b'', 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
        i += 1
    return okm[:length]


def mac_key(own_private, peer_public, hh):
    return hkdf_sha256(x25519_shared(own_private, peer_public), hh, b'outproc-migration-mac-key-v1', 32)
