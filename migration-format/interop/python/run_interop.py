#!/usr/bin/python3
"""Command line of the independent Python implementation of the outproc migration format.

Run from ``migration-format/``; REGISTRY... are registry files (registry-format.md), HEX values are lower- or
upper-case hex. Exit status 0 on success; any failure prints one line starting with FAIL and exits 1.

  endpoint-destination DESCRIPTOR REGISTRY... --nonce HEX [--x25519 PRIVATE_HEX] [answer's policy options]
         --save-offer FILE --save-answer FILE
      the destination endpoint of integration.md §7 on stdin/stdout (for a relay's exec: endpoint): reads begin
      (role 2) and the offer, writes the answer; saves both messages for load; messages for people go to stderr.
  endpoint-source DESCRIPTOR REGISTRY... --nonce HEX [--x25519 PRIVATE_HEX] [--seed HEX]
         --save-offer FILE --save-answer FILE
      the source endpoint: reads begin (role 1), writes the offer, reads the answer, runs the source's checks and
      writes the result message (status 1 with the reason when it refuses or cannot honour the answer).
  selftest
      run test_outproc_migration.py (the documents' rules that vectors and golden streams do not exercise).
  vectors VECTOR_DIR REGISTRY...
      recompute every published test vector (docs/vectors/*.json); prints "vectors: N checks OK".
  golden GOLDEN_DIR REGISTRY...
      decode and verify every *.oms file; one line per file, "NAME: FORMAT_CLASS version V, N sections", plus
      "; MAC verified, signed by the pinned key" for a stream with MAC and signature (the golden corpus keys of
      stream-format.md §11.1).
  digests REGISTRY...
      "MODEL_ID SHA256HEX" for every model (registry-format.md §4).
  verify STREAM REGISTRY... [--mac-key HEX] [--pin HEX]...
      read a stream without a handshake (stream-format.md §7.5) and print its decoded state as one JSON object.
  write OUT_DIR
      write the py-*.oms streams for the Java reader (see README.md).
  offer DESCRIPTOR REGISTRY... --nonce HEX [--x25519 PRIVATE_HEX] --out FILE
      the source's offer (stream-format.md §9.2).
  complete OFFER ACCEPT [--x25519 PRIVATE_HEX] --seed HEX --out STREAM
      the source's checks of the answer (§9.6); prints the handshake hash hex and writes the example counter's
      stream in the chosen format version (label "handshake-python"), with the MAC and signature it requires.
  answer DESCRIPTOR REGISTRY... --offer FILE --nonce HEX [--x25519 PRIVATE_HEX] [--require-signer HEX]...
         [--require-mac] [--require-signature] [--trusted-model-key HEX]... [--require-trusted-model] --out FILE
      the destination's decision (§9.5) on the offer; writes the accept or the refusal to FILE and prints
      "accepted HANDSHAKE_HASH_HEX", or "refused" and one line "CODE SUBJECT: DETAIL" per reason. Exit status 0
      either way (the answer was produced); FAIL only when no answer could be produced.
  load STREAM REGISTRY... --offer FILE --accept FILE [--x25519 PRIVATE_HEX]
      the destination reads a stream under the agreement of that offer and its own accept (stream-format.md
      §7.4): the X25519 key is the destination's private key of the accept (needed when the accept requires a
      MAC). Prints "agreed HANDSHAKE_HASH_HEX version V" and then the decoded state as JSON, like verify.
"""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outproc_migration as om  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REGISTRY_DIR = os.path.join(HERE, "..", "..", "src", "main", "resources", "dev", "outproc", "migration",
                                    "registry")
# Keys of the golden corpus (stream-format.md §11.1).
GOLDEN_MAC_KEY = bytes([0x33]) * 32
GOLDEN_SIGNER_SEED = bytes([0x44]) * 32
# Keys of the streams written for the Java reader (README.md).
PY_MAC_KEY = bytes([0x33]) * 32
PY_SIGNER_SEED = bytes([0x71]) * 32
PY_IMPLEMENTATION = "example.com/python/counter"


class UsageError(Exception):
    pass


def parse_args(argv, options, flags=()):
    """Splits argv into positionals and --options (repeatable ones collect lists)."""
    positional, values = [], {k: [] for k in options}
    for f in flags:
        values[f] = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in options:
            if i + 1 >= len(argv):
                raise UsageError("%s needs a value" % a)
            values[a].append(argv[i + 1])
            i += 2
        elif a in flags:
            values[a] = True
            i += 1
        elif a.startswith("--"):
            raise UsageError("unknown option %s" % a)
        else:
            positional.append(a)
            i += 1
    return positional, values


def one(values, name, required=True):
    v = values[name]
    if len(v) > 1:
        raise UsageError("%s given more than once" % name)
    if not v:
        if required:
            raise UsageError("%s is required" % name)
        return None
    return v[0]


def hex_arg(text, size, what):
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise UsageError("%s %r is not hex" % (what, text))
    if size is not None and len(raw) != size:
        raise UsageError("%s has %d bytes, expected %d" % (what, len(raw), size))
    return raw


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def default_registry():
    return om.Registry.load(sorted(glob.glob(os.path.join(DEFAULT_REGISTRY_DIR, "*.json"))))


# -- decoded state as JSON ------------------------------------------------------------------------------------------

def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


def flat_value(spec, value):
    """The flat view's value: integers as the signed value of their wire width (Java's byte/short/int/long)."""
    if spec.type in om.INTEGER_WIDTH:
        width = om.INTEGER_WIDTH[spec.type]
        return om.to_signed(value & ((1 << (8 * width)) - 1), width)
    return jsonable(value)


def state_json(res, extra=None):
    h = res.header
    out = {"model": h["model"], "formatClass": h["formatClass"], "formatVersion": h["formatVersion"],
           "implementation": h["implementation"], "sections": len(res.sections),
           "digests": bool(h["flags"] & om.FLAG_DIGESTS), "macVerified": res.mac_verified,
           "signed": res.signer is not None, "signer": res.signer.hex() if res.signer else None,
           "signerPinned": res.signer_pinned}
    if extra:
        out.update(extra)
    state = {}
    for s in res.sections:
        if res.format is None:
            state["section-%d" % s.id] = jsonable(s.values)
            continue
        spec = res.format.sections.get(s.id)
        if s.skipped or spec is None:
            state["section-%d" % s.id] = {"skipped": True, "version": s.version, "bodyBytes": len(s.body)}
            continue
        state[spec.name] = jsonable(s.values)
        if spec.envelope:
            continue
        for f in spec.fields:
            if f.name not in out:
                out[f.name] = flat_value(f, s.values[f.name])
    out["state"] = state
    return json.dumps(out)


# -- commands -------------------------------------------------------------------------------------------------------

def cmd_digests(argv):
    positional, _ = parse_args(argv, ())
    if not positional:
        raise UsageError("digests REGISTRY...")
    registry = om.Registry.load(positional)
    for model_id, model in registry.models.items():
        print("%s %s" % (model_id, model.digest.hex()))


class Checker:
    def __init__(self):
        self.count = 0

    def equal(self, what, actual, expected):
        if isinstance(actual, (bytes, bytearray)):
            actual = bytes(actual).hex()
        if isinstance(expected, (bytes, bytearray)):
            expected = bytes(expected).hex()
        if actual != expected:
            raise om.MigrationFormatError("vector %s: computed %r, published %r" % (what, actual, expected))
        self.count += 1


def cmd_vectors(argv):
    positional, _ = parse_args(argv, ())
    if len(positional) < 2:
        raise UsageError("vectors VECTOR_DIR REGISTRY...")
    vector_dir, registry = positional[0], om.Registry.load(positional[1:])
    c = Checker()
    # model-digests.json: canonical forms, digests, an entry signature.
    md = json.loads(read_file(os.path.join(vector_dir, "model-digests.json")))
    escaping = om.Registry.parse(md["escapingRegistry"].encode("utf-8"), "escapingRegistry")
    for m in md["models"]:
        model = registry.models.get(m["id"]) or escaping.models.get(m["id"])
        if model is None:
            raise om.MigrationFormatError("vector model %s is in no registry given" % m["id"])
        c.equal(m["id"] + " canonical", model.canonical, m["canonical"])
        c.equal(m["id"] + " canonicalHex", model.canonical.encode("utf-8").hex(), m["canonicalHex"])
        c.equal(m["id"] + " sha256", model.digest, m["sha256"])
    rs = md["registrySignature"]
    seed = bytes.fromhex(rs["seed"])
    signed = escaping.models[rs["model"]]
    message = om.REGISTRY_SIGNATURE_LABEL + signed.canonical.encode("utf-8")
    c.equal("registrySignature.publicKey", om.ed25519_public(seed), rs["publicKey"])
    c.equal("registrySignature.message", message, rs["message"])
    c.equal("registrySignature.signature", om.ed25519_sign(seed, message), rs["signature"])
    c.equal("registrySignature verifies", om.ed25519_verify(bytes.fromhex(rs["publicKey"]),
                                                             bytes.fromhex(rs["signature"]), message), True)
    # handshake.json: messages, handshake hash, X25519, HKDF.
    hv = json.loads(read_file(os.path.join(vector_dir, "handshake.json")))
    x = {k: bytes.fromhex(hv[k]) for k in ("sourceNonce", "sourceX25519Private", "destinationX25519Private",
                                           "destinationNonce", "streamSignerSeed")}
    c.equal("sourceX25519Public", om.x25519_public(x["sourceX25519Private"]), hv["sourceX25519Public"])
    c.equal("destinationX25519Public", om.x25519_public(x["destinationX25519Private"]),
            hv["destinationX25519Public"])
    c.equal("streamSignerPublic", om.ed25519_public(x["streamSignerSeed"]), hv["streamSignerPublic"])
    source = om.Descriptor.load(hv["sourceDescriptor"])
    destination = om.Descriptor.load(hv["destinationDescriptor"])
    offer = om.build_offer(source, registry, x["sourceNonce"], x["sourceX25519Private"])
    c.equal("offer", offer, hv["offer"])
    policy = om.DestinationPolicy(pinned_signers=[bytes.fromhex(hv["streamSignerPublic"])])
    accept, reasons, dest_agreement = om.decide(offer, destination, registry, policy, x["destinationNonce"],
                                                x["destinationX25519Private"])
    c.equal("accept (reasons %s)" % reasons, accept, hv["accept"])
    c.equal("handshakeHashInput", om.handshake_hash_input(offer, accept), hv["handshakeHashInput"])
    c.equal("handshakeHash", om.handshake_hash(offer, accept), hv["handshakeHash"])
    c.equal("x25519Shared (source)", om.x25519_shared(x["sourceX25519Private"],
                                                      bytes.fromhex(hv["destinationX25519Public"])),
            hv["x25519Shared"])
    c.equal("x25519Shared (destination)", om.x25519_shared(x["destinationX25519Private"],
                                                           bytes.fromhex(hv["sourceX25519Public"])),
            hv["x25519Shared"])
    c.equal("hkdfInfo", om.MAC_KEY_INFO, hv["hkdfInfo"])
    src_agreement = om.source_complete(offer, accept, x["sourceX25519Private"], x["streamSignerSeed"])
    c.equal("macKey (source)", src_agreement.mac_key, hv["macKey"])
    c.equal("macKey (destination)", dest_agreement.mac_key, hv["macKey"])
    refuse_offer = om.build_offer(om.Descriptor.load(hv["refuseOfferSourceDescriptor"]), registry,
                                  x["sourceNonce"])
    c.equal("refuseOffer", refuse_offer, hv["refuseOffer"])
    refuse, my_reasons, _ = om.decide(refuse_offer, om.Descriptor.load(hv["refuseDestinationDescriptor"]),
                                      registry, om.DestinationPolicy(), x["destinationNonce"])
    _, published = om.decode_message(bytes.fromhex(hv["refuse"]), (om.REFUSE,))
    c.equal("refuse reasons (code, subject)", [(r[0], r[1]) for r in my_reasons],
            [(r["code"], r["subject"]) for r in published["reasons"]])
    c.equal("refuse re-encoded", om.build_refuse(published["nonce"], [
        (r["code"], r["subject"], r["detail"]) for r in published["reasons"]]), hv["refuse"])
    c.equal("refuse nonce", published["nonce"], x["sourceNonce"])
    c.equal("beginSource", om.encode_message(om.BEGIN, {"role": 1}), hv["beginSource"])
    c.equal("beginDestination", om.encode_message(om.BEGIN, {"role": 2}), hv["beginDestination"])
    c.equal("resultAgreed", om.encode_message(om.RESULT, {
        "status": 0, "detail": "", "formatVersion": src_agreement.format_version,
        "handshakeHash": src_agreement.handshake_hash}), hv["resultAgreed"])
    c.equal("resultRefused", om.encode_message(om.RESULT, {
        "status": 1, "detail": "refused", "formatVersion": 0, "handshakeHash": b""}), hv["resultRefused"])
    for key in ("offer", "accept", "refuse", "beginSource", "beginDestination", "resultAgreed", "resultRefused"):
        om.decode_message(bytes.fromhex(hv[key]))
        c.count += 1
    # stream.json: the stream of that handshake.
    sv = json.loads(read_file(os.path.join(vector_dir, "stream.json")))
    counter = registry.models[om.COUNTER_MODEL]
    config = counter.format_classes[om.COUNTER_FORMAT][src_agreement.format_version].sections[1]
    body0 = bytes(om.encode_field_list([(1, om.INT16, 256), (2, om.INT64, 0x0102030405060708),
                                        (3, om.STRING, "vector")]))
    body1 = bytes(om.encode_field_list([(1, om.BYTES, bytes.fromhex("deadbeef"))]))
    flags = om.section_flags(config)
    stream, parts = om.write_stream(src_agreement.model, src_agreement.format_class, source.implementation,
                                    src_agreement.format_version, [(1, 1, flags, body0), (2, 1, flags, body1)],
                                    nonce=src_agreement.nonce, handshake_hash_value=src_agreement.handshake_hash,
                                    mac_key_value=src_agreement.mac_key, signing_seed=x["streamSignerSeed"])
    for key in ("header", "t0", "section0", "section0Digest", "t1", "section1", "section1Digest", "t2",
                "trailerFixed", "macInput", "mac", "signatureInput", "signature", "stream"):
        c.equal("stream " + key, parts[key], sv[key])
    res = om.read_stream(bytes.fromhex(sv["stream"]), dest_agreement.expectations(), registry)
    c.equal("stream verifies under the destination's agreement", (res.mac_verified, res.signer.hex()),
            (True, hv["streamSignerPublic"]))
    c.equal("stream section 0 fields", res.sections[0].values, {"queue_size": 256, "counter": 0x0102030405060708,
                                                                "label": "vector"})
    print("vectors: %d checks OK" % c.count)


def cmd_golden(argv):
    positional, _ = parse_args(argv, ())
    if len(positional) < 2:
        raise UsageError("golden GOLDEN_DIR REGISTRY...")
    registry = om.Registry.load(positional[1:])
    files = sorted(glob.glob(os.path.join(positional[0], "*.oms")))
    if not files:
        raise om.MigrationFormatError("no *.oms file in %s" % positional[0])
    pinned = om.ed25519_public(GOLDEN_SIGNER_SEED)
    for path in files:
        name = os.path.basename(path)
        data = read_file(path)
        try:
            flags = om.parse_header(data)["flags"]
            expect = om.Expectations(require_digests=True,
                                     mac_key_value=GOLDEN_MAC_KEY if flags & om.FLAG_MAC else None,
                                     pinned_signers=[pinned] if flags & om.FLAG_SIGNATURE else None)
            res = om.read_stream(data, expect, registry, generic=True)
        except om.MigrationFormatError as e:
            raise om.MigrationFormatError("%s: %s" % (name, e))
        line = "%s: %s version %d, %d sections" % (name, res.header["formatClass"], res.header["formatVersion"],
                                                   len(res.sections))
        notes = []
        if res.mac_verified:
            notes.append("MAC verified")
        if res.signer is not None:
            notes.append("signed by the pinned key")
        if res.model is None:
            notes.append("model not in the registry: syntax and digests only")
        print(line + ("; " + ", ".join(notes) if notes else ""))
        if res.header["flags"] & om.FLAG_SIGNATURE:
            tamper_check(name, data, expect, registry)


def tamper_check(name, data, expect, registry):
    """Every single-bit flip and every truncation of a protected stream must be refused (stream §7)."""
    accepted = []
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            changed = bytearray(data)
            changed[i] ^= bit
            try:
                om.read_stream(bytes(changed), expect, registry, generic=True)
                accepted.append("flip 0x%02x at %d" % (bit, i))
            except om.MigrationFormatError:
                pass
    for n in range(len(data)):
        try:
            om.read_stream(data[:n], expect, registry, generic=True)
            accepted.append("truncation to %d" % n)
        except om.MigrationFormatError:
            pass
    if accepted:
        raise om.MigrationFormatError("%s: tampered copies were accepted: %s" % (name, ", ".join(accepted[:5])))
    print("%s: all %d bit flips and %d truncations refused" % (name, 2 * len(data), len(data)))


def _expect_from_header(path, mac_key, pins):
    return om.Expectations(require_digests=True, mac_key_value=mac_key, pinned_signers=pins or None)


def cmd_verify(argv):
    positional, opts = parse_args(argv, ("--mac-key", "--pin"))
    if len(positional) < 2:
        raise UsageError("verify STREAM REGISTRY... [--mac-key HEX] [--pin HEX]...")
    registry = om.Registry.load(positional[1:])
    mac = one(opts, "--mac-key", required=False)
    pins = [hex_arg(p, 32, "--pin") for p in opts["--pin"]]
    expect = om.Expectations(require_digests=True, mac_key_value=hex_arg(mac, 32, "--mac-key") if mac else None,
                             pinned_signers=pins or None)
    res = om.read_stream(read_file(positional[0]), expect, registry)
    print(state_json(res))


def counter_stream(registry, version, label, counter, ram, implementation, *, nonce=om.ZERO32,
                   handshake_hash_value=om.ZERO32, mac=None, seed=None, extensions=(), envelope=False,
                   tamper=None):
    state = om.counter_state(version, label, counter, ram, rings=3)
    sections = om.schema_sections(registry, om.COUNTER_MODEL, om.COUNTER_FORMAT, version, state)
    if envelope:
        body = bytes(om.encode_field_list([(1, om.STRING, "example.com/python"), (2, om.INT32, 1),
                                           (3, om.BYTES, b"opaque vendor state")]))
        sections.append((100, 1, om.SECTION_ENVELOPE, body))
    if tamper is not None:
        sections = tamper(sections)
    stream, _ = om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, implementation, version, sections,
                                nonce=nonce, handshake_hash_value=handshake_hash_value, mac_key_value=mac,
                                signing_seed=seed, extensions=extensions)
    return stream


def _config_with(extra_fields):
    """Replaces the config section (id 1) with one that carries additional raw fields."""
    def tamper(sections):
        out = []
        for sid, version, flags, body in sections:
            if sid == 1:
                body = body + bytes(om.encode_field_list(extra_fields))
            out.append((sid, version, flags, body))
        return out
    return tamper


def cmd_write(argv):
    positional, _ = parse_args(argv, ())
    if len(positional) != 1:
        raise UsageError("write OUT_DIR")
    out = positional[0]
    os.makedirs(out, exist_ok=True)
    registry = default_registry()
    ram = bytes(range(64))
    streams = {
        "py-counter-v1.oms": counter_stream(registry, 1, "from-python", (1 << 63) + 5, ram, PY_IMPLEMENTATION),
        "py-counter-v2-mac-signed.oms": counter_stream(registry, 2, "signed-python", 77, ram, PY_IMPLEMENTATION,
                                                       mac=PY_MAC_KEY, seed=PY_SIGNER_SEED, envelope=True),
        "py-extension.oms": counter_stream(registry, 1, "extension", 3, ram, PY_IMPLEMENTATION,
                                           extensions=[(0x8001, 1, 0, b"python vendor data")]),
        "py-critical-extension.oms": counter_stream(registry, 1, "critical-extension", 4, ram, PY_IMPLEMENTATION,
                                                    extensions=[(0x0002, 1, om.EXTENSION_CRITICAL, b"\x01")]),
        "py-repeated-tag.oms": counter_stream(registry, 1, "repeated-tag", 5, ram, PY_IMPLEMENTATION,
                                              tamper=_config_with([(3, om.STRING, "again")])),
        "py-unknown-subsection.oms": counter_stream(registry, 1, "unknown-subsection", 6, ram, PY_IMPLEMENTATION,
                                                    tamper=_config_with([(0x8001, om.INT32, 1)])),
    }
    for name, data in streams.items():
        write_file(os.path.join(out, name), data)
        print("%s: %d bytes" % (name, len(data)))


def cmd_offer(argv):
    positional, opts = parse_args(argv, ("--nonce", "--x25519", "--out"))
    if len(positional) < 2:
        raise UsageError("offer DESCRIPTOR REGISTRY... --nonce HEX [--x25519 HEX] --out FILE")
    registry = om.Registry.load(positional[1:])
    private = one(opts, "--x25519", required=False)
    offer = om.build_offer(om.Descriptor.load(positional[0]), registry, hex_arg(one(opts, "--nonce"), 32, "--nonce"),
                           hex_arg(private, 32, "--x25519") if private else None)
    write_file(one(opts, "--out"), offer)
    print("offer: %d bytes" % len(offer))


def cmd_complete(argv):
    positional, opts = parse_args(argv, ("--x25519", "--seed", "--out"))
    if len(positional) != 2:
        raise UsageError("complete OFFER ACCEPT [--x25519 HEX] --seed HEX --out STREAM")
    private = one(opts, "--x25519", required=False)
    seed = hex_arg(one(opts, "--seed"), 32, "--seed")
    offer = read_file(positional[0])
    agreement = om.source_complete(offer, read_file(positional[1]),
                                   hex_arg(private, 32, "--x25519") if private else None, seed)
    if agreement.model != om.COUNTER_MODEL or agreement.format_class != om.COUNTER_FORMAT:
        raise om.MigrationFormatError("this command writes the example counter only, not %s" % agreement.model)
    stream = counter_stream(default_registry(), agreement.format_version, "handshake-python", 42,
                            bytes(range(64)), agreement.offer["implementation"], nonce=agreement.nonce,
                            handshake_hash_value=agreement.handshake_hash, mac=agreement.mac_key, seed=seed)
    write_file(one(opts, "--out"), stream)
    print(agreement.handshake_hash.hex())


def cmd_answer(argv):
    positional, opts = parse_args(argv, DESTINATION_OPTIONS, DESTINATION_FLAGS)
    if len(positional) < 2:
        raise UsageError("answer DESCRIPTOR REGISTRY... --offer FILE --nonce HEX [--x25519 HEX] ... --out FILE")
    registry = om.Registry.load(positional[1:])
    descriptor = om.Descriptor.load(positional[0])
    policy = destination_policy(opts)
    private = one(opts, "--x25519", required=False)
    answer, reasons, agreement = om.decide(read_file(one(opts, "--offer")), descriptor, registry, policy,
                                           hex_arg(one(opts, "--nonce"), 32, "--nonce"),
                                           hex_arg(private, 32, "--x25519") if private else None)
    write_file(one(opts, "--out"), answer)
    if agreement is not None:
        print("accepted %s" % agreement.handshake_hash.hex())
    else:
        print("refused")
        for code, subject, detail in reasons:
            print("%s %s: %s" % (code, subject, detail))


DESTINATION_OPTIONS = ("--nonce", "--x25519", "--require-signer", "--trusted-model-key", "--out", "--offer",
                       "--save-offer", "--save-answer")
DESTINATION_FLAGS = ("--require-mac", "--require-signature", "--require-trusted-model")


def destination_policy(opts):
    return om.DestinationPolicy(
        require_mac=opts["--require-mac"], require_signature=opts["--require-signature"],
        pinned_signers=[hex_arg(k, 32, "--require-signer") for k in opts["--require-signer"]],
        trusted_model_keys=[hex_arg(k, 32, "--trusted-model-key") for k in opts["--trusted-model-key"]],
        require_trusted_model=opts["--require-trusted-model"])


def read_role(stdin, role):
    begin = om.read_message_from(stdin)
    if begin is None:
        raise om.MigrationFormatError("the relay closed the connection before its begin message")
    _, body = om.decode_message(begin, (om.BEGIN,))
    if body["role"] != role:
        raise om.MigrationFormatError("begin asks for role %d, this endpoint serves role %d" % (body["role"], role))


def cmd_endpoint_destination(argv):
    """The destination side of integration.md §7 over stdin/stdout (a relay's exec: endpoint)."""
    positional, opts = parse_args(argv, DESTINATION_OPTIONS, DESTINATION_FLAGS)
    if len(positional) < 2:
        raise UsageError("endpoint-destination DESCRIPTOR REGISTRY... --nonce HEX ... --save-offer F --save-answer F")
    registry = om.Registry.load(positional[1:])
    descriptor = om.Descriptor.load(positional[0])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    read_role(stdin, 2)
    offer = om.read_message_from(stdin)
    if offer is None:
        raise om.MigrationFormatError("the relay closed the connection before the offer")
    private = one(opts, "--x25519", required=False)
    answer, reasons, agreement = om.decide(offer, descriptor, registry, destination_policy(opts),
                                           hex_arg(one(opts, "--nonce"), 32, "--nonce"),
                                           hex_arg(private, 32, "--x25519") if private else None)
    write_file(one(opts, "--save-offer"), offer)
    write_file(one(opts, "--save-answer"), answer)
    stdout.write(answer)
    stdout.flush()
    if agreement is not None:
        sys.stderr.write("accepted %s\n" % agreement.handshake_hash.hex())
    else:
        sys.stderr.write("refused\n" + "".join("%s %s: %s\n" % r for r in reasons))


def cmd_endpoint_source(argv):
    """The source side of integration.md §7 over stdin/stdout: begin, offer, answer, result."""
    positional, opts = parse_args(argv, ("--nonce", "--x25519", "--seed", "--save-offer", "--save-answer"))
    if len(positional) < 2:
        raise UsageError("endpoint-source DESCRIPTOR REGISTRY... --nonce HEX [--x25519 HEX] [--seed HEX] ...")
    registry = om.Registry.load(positional[1:])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    read_role(stdin, 1)
    private = one(opts, "--x25519", required=False)
    private = hex_arg(private, 32, "--x25519") if private else None
    seed = one(opts, "--seed", required=False)
    seed = hex_arg(seed, 32, "--seed") if seed else None
    offer = om.build_offer(om.Descriptor.load(positional[0]), registry, hex_arg(one(opts, "--nonce"), 32, "--nonce"),
                           private)
    write_file(one(opts, "--save-offer"), offer)
    stdout.write(offer)
    stdout.flush()
    answer = om.read_message_from(stdin)
    if answer is None:
        raise om.MigrationFormatError("the relay closed the connection before the answer")
    write_file(one(opts, "--save-answer"), answer)
    try:
        agreement = om.source_complete(offer, answer, private, seed)
        result = {"status": 0, "detail": "", "formatVersion": agreement.format_version,
                  "handshakeHash": agreement.handshake_hash}
        sys.stderr.write("agreed %s version %d\n" % (agreement.handshake_hash.hex(), agreement.format_version))
    except om.MigrationFormatError as e:
        result = {"status": 1, "detail": str(e)[:4096], "formatVersion": 0, "handshakeHash": b""}
        sys.stderr.write("%s\n" % e)
    stdout.write(om.encode_message(om.RESULT, result))
    stdout.flush()


def cmd_load(argv):
    positional, opts = parse_args(argv, ("--offer", "--accept", "--x25519"))
    if len(positional) < 2:
        raise UsageError("load STREAM REGISTRY... --offer FILE --accept FILE [--x25519 HEX]")
    registry = om.Registry.load(positional[1:])
    private = one(opts, "--x25519", required=False)
    agreement = om.destination_agreement(read_file(one(opts, "--offer")), read_file(one(opts, "--accept")),
                                         hex_arg(private, 32, "--x25519") if private else None)
    res = om.read_stream(read_file(positional[0]), agreement.expectations(), registry)
    print("agreed %s version %d" % (agreement.handshake_hash.hex(), agreement.format_version))
    print(state_json(res, {"handshakeHash": agreement.handshake_hash.hex()}))


def cmd_selftest(argv):
    import unittest
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py")
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=1).run(suite)
    if not result.wasSuccessful():
        raise om.MigrationFormatError("%d self-test failures, %d errors" % (len(result.failures),
                                                                           len(result.errors)))
    print("selftest: %d cases OK" % result.testsRun)


COMMANDS = {"selftest": cmd_selftest, "vectors": cmd_vectors, "golden": cmd_golden, "digests": cmd_digests, "verify": cmd_verify,
            "write": cmd_write, "offer": cmd_offer, "complete": cmd_complete, "answer": cmd_answer,
            "load": cmd_load, "endpoint-source": cmd_endpoint_source,
            "endpoint-destination": cmd_endpoint_destination}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print("FAIL usage: run_interop.py %s ... (see the module docstring)" % "|".join(COMMANDS))
        return 1
    try:
        COMMANDS[argv[0]](argv[1:])
        return 0
    except (om.MigrationFormatError, UsageError, OSError, ValueError) as e:
        # An endpoint's stdout carries handshake bytes: its FAIL line goes to stderr.
        out = sys.stderr if argv[0].startswith("endpoint-") else sys.stdout
        out.write("FAIL %s: %s\n" % (argv[0], " ".join(str(e).split("\n"))))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
