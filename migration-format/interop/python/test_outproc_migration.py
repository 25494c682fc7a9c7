"""Rules of the documents that the published vectors and golden streams do not exercise.

Run from migration-format/: /usr/bin/python3 -m unittest discover -s interop/python -v
(or: run_interop.py selftest). Every case states the rule it checks (document and section).
"""

import glob
import os
import struct
import unittest

import outproc_migration as om

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.normpath(os.path.join(HERE, "..", ".."))
REGISTRY_FILES = sorted(glob.glob(os.path.join(MODULE, "src", "main", "resources", "dev", "outproc", "migration",
                                               "registry", "*.json")))
DESCRIPTORS = os.path.join(MODULE, "src", "test", "resources", "descriptors")


def registry():
    return om.Registry.load(REGISTRY_FILES)


def descriptor(name):
    return om.Descriptor.load(os.path.join(DESCRIPTORS, name))


def body(fields):
    return bytes(om.encode_field_list(fields))


def counter_v1(config_fields, memory=None, **kw):
    if memory is None:
        memory = [(1, om.BYTES, b"\x00" * 4)]
    return om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, "example.com/t", 1,
                           [(1, 1, 1, body(config_fields)), (2, 1, 1, body(memory))], **kw)[0]


GOOD_CONFIG = [(1, om.INT16, 128), (2, om.INT64, 7), (3, om.STRING, "x")]
ANY_FILE = om.Expectations(require_digests=True)


class FieldRules(unittest.TestCase):
    """stream-format.md §5."""

    def read(self, config, **kw):
        return om.read_stream(counter_v1(config, **kw), ANY_FILE, registry())

    def test_accepts_fields_in_any_order(self):  # §5.3 rule 5
        res = self.read(list(reversed(GOOD_CONFIG)))
        self.assertEqual(res.sections[0].values["label"], "x")

    def test_rejects_repeated_tag_even_if_unknown(self):  # §5.3 rule 1
        with self.assertRaisesRegex(om.MigrationFormatError, "tag 9 appears twice"):
            self.read(GOOD_CONFIG + [(9, om.INT8, 1), (9, om.INT8, 2)])

    def test_skips_unknown_ordinary_tag(self):  # §5.3 rule 2
        self.assertEqual(self.read(GOOD_CONFIG + [(77, om.STRING, "extra")]).sections[0].values["counter"], 7)

    def test_rejects_unknown_must_understand_tag(self):  # §5.4
        with self.assertRaisesRegex(om.MigrationFormatError, "must-understand tag 0x8000"):
            self.read(GOOD_CONFIG + [(0x8000, om.BOOL, True)])

    def test_must_understand_tag_inside_a_skipped_record_is_fine(self):  # §5.4, §5.3 rule 6
        inner = [(0x8001, om.INT32, 1), (0x8001, om.INT32, 2)]  # repeated and must-understand: inside, not checked
        self.assertEqual(self.read(GOOD_CONFIG + [(40, om.RECORD, inner)]).sections[0].values["label"], "x")

    def test_rejects_wrong_integer_width(self):  # §5.3 rule 3
        with self.assertRaisesRegex(om.MigrationFormatError, "type INT32"):
            self.read([(1, om.INT32, 128)] + GOOD_CONFIG[1:])

    def test_rejects_missing_required_field(self):  # §5.3 rule 4
        with self.assertRaisesRegex(om.MigrationFormatError, "required field 3"):
            self.read(GOOD_CONFIG[:2])

    def test_rejects_bool_other_than_0_or_1(self):  # §5
        raw = bytearray(body(GOOD_CONFIG + [(50, om.BOOL, True)]))
        raw[-1] = 2
        with self.assertRaisesRegex(om.MigrationFormatError, "BOOL value 2"):
            om.decode_field_list(om.Cursor(bytes(raw)), 0, "t", in_record=False)

    def test_depth_counts_an_array_of_records_once(self):  # §5.2
        def nest(levels):
            value = [(1, om.INT8, 1)]
            for _ in range(levels):
                value = [(1, om.ARRAY, (om.RECORD, [value]))]
            return value
        om.decode_field_list(om.Cursor(body(nest(32))), 0, "t", in_record=False)
        with self.assertRaisesRegex(om.MigrationFormatError, "depth 33"):
            om.decode_field_list(om.Cursor(body(nest(33))), 0, "t", in_record=False)

    def test_array_count_is_checked_before_allocation(self):  # §5.1
        raw = struct.pack("<HBBI", 1, om.ARRAY, om.INT64, 1000) + bytes(16)
        with self.assertRaisesRegex(om.MigrationFormatError, "ARRAY count 1000"):
            om.decode_field_list(om.Cursor(raw), 0, "t", in_record=False)

    def test_rejects_overlong_utf8(self):  # §1
        raw = struct.pack("<HBI", 1, om.STRING, 2) + b"\xc0\xaf"
        with self.assertRaisesRegex(om.MigrationFormatError, "UTF-8"):
            om.decode_field_list(om.Cursor(raw), 0, "t", in_record=False)


class StreamRules(unittest.TestCase):
    """stream-format.md §3, §4, §6, §7."""

    def test_rejects_stream_without_digests_when_reading_a_file(self):  # §7.5
        with self.assertRaisesRegex(om.MigrationFormatError, "no DIGESTS"):
            om.read_stream(counter_v1(GOOD_CONFIG, digests=False), ANY_FILE, registry())

    def test_rejects_missing_required_section(self):  # §4.1
        data = om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, "", 1, [(1, 1, 1, body(GOOD_CONFIG))])[0]
        with self.assertRaisesRegex(om.MigrationFormatError, "required section 2"):
            om.read_stream(data, ANY_FILE, registry())

    def test_rejects_repeated_section_id(self):  # §4.1
        data = om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, "", 1,
                               [(1, 1, 1, body(GOOD_CONFIG)), (1, 1, 1, body(GOOD_CONFIG))])[0]
        with self.assertRaisesRegex(om.MigrationFormatError, "appears twice"):
            om.read_stream(data, ANY_FILE, registry())

    def test_skips_unknown_skippable_section_and_rejects_unknown_must_understand(self):  # §4.4
        sections = [(1, 1, 1, body(GOOD_CONFIG)), (2, 1, 1, body([(1, om.BYTES, b"")])), (9, 1, 0, b"\xff junk")]
        data = om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, "", 1, sections)[0]
        self.assertTrue(om.read_stream(data, ANY_FILE, registry()).sections[2].skipped)
        sections[2] = (9, 1, 1, b"")
        data = om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, "", 1, sections)[0]
        with self.assertRaisesRegex(om.MigrationFormatError, "must-understand section 9"):
            om.read_stream(data, ANY_FILE, registry())

    def test_reads_a_known_section_by_its_schema_whatever_its_flags(self):  # §4.1 flags of a known section
        for flags in (0, 3):
            data = om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, "", 1,
                                   [(1, 1, flags, body(GOOD_CONFIG)), (2, 1, 1, body([(1, om.BYTES, b"")]))])[0]
            self.assertEqual(om.read_stream(data, ANY_FILE, registry()).sections[0].values["label"], "x")

    def test_envelope_with_a_fourth_field_is_rejected(self):  # §4.5
        env = body([(1, om.STRING, "example.com/v"), (2, om.INT32, 1), (3, om.BYTES, b"x"), (4, om.INT8, 0)])
        data = om.write_stream(om.COUNTER_MODEL, om.COUNTER_FORMAT, "", 1,
                               [(1, 1, 1, body(GOOD_CONFIG)), (2, 1, 1, body([(1, om.BYTES, b"")])),
                                (100, 1, om.SECTION_ENVELOPE, env)])[0]
        with self.assertRaisesRegex(om.MigrationFormatError, "envelope"):
            om.read_stream(data, ANY_FILE, registry())

    def test_header_extensions(self):  # §3.1
        ok = counter_v1(GOOD_CONFIG, extensions=[(0x8001, 1, 0, b"v")])
        self.assertEqual(om.read_stream(ok, ANY_FILE, registry()).header["extensions"][0][0], 0x8001)
        for ext, message in (((0x8001, 1, 1, b""), "critical"), ((0x8001, 0, 0, b""), "version 0"),
                             ((0x8001, 1, 2, b""), "undefined flags")):
            with self.assertRaisesRegex(om.MigrationFormatError, message):
                om.read_stream(counter_v1(GOOD_CONFIG, extensions=[ext]), ANY_FILE, registry())

    def test_mac_key_and_pinned_signer(self):  # §7.4, §7.5
        seed, other = bytes([9]) * 32, bytes([8]) * 32
        data = counter_v1(GOOD_CONFIG, mac_key_value=bytes(32), signing_seed=seed)
        pinned = om.Expectations(mac_key_value=bytes(32), pinned_signers=[om.ed25519_public(seed)])
        res = om.read_stream(data, pinned, registry())
        self.assertTrue(res.mac_verified and res.signer_pinned)
        with self.assertRaisesRegex(om.MigrationFormatError, "MAC does not verify"):
            om.read_stream(data, om.Expectations(mac_key_value=bytes([1]) * 32), registry())
        with self.assertRaisesRegex(om.MigrationFormatError, "not a required signer"):
            om.read_stream(data, om.Expectations(pinned_signers=[om.ed25519_public(other)]), registry())
        with self.assertRaisesRegex(om.MigrationFormatError, "no SIGNATURE"):
            om.read_stream(counter_v1(GOOD_CONFIG), om.Expectations(pinned_signers=[om.ed25519_public(seed)]),
                           registry())
        self.assertFalse(om.read_stream(data, ANY_FILE, registry()).mac_verified)  # no key: not checked

    def test_ed25519_rejects_non_canonical_s(self):  # §7.6
        seed = bytes([9]) * 32
        sig = om.ed25519_sign(seed, b"m")
        s = int.from_bytes(sig[32:], "little") + om._L
        self.assertTrue(om.ed25519_verify(om.ed25519_public(seed), sig, b"m"))
        self.assertFalse(om.ed25519_verify(om.ed25519_public(seed), sig[:32] + s.to_bytes(32, "little"), b"m"))

    def test_load_time_check(self):  # registry §3.5
        reg = registry()
        fv = reg.models["virtio-spec.org/pci/virtio-blk"].format_classes["virtio-spec.org/pci/virtio-blk/state"][1]
        device = {"capacity": 8, "blk_size": 512, "num_queues": 2, "read_only": False, "device_features": 1,
                  "driver_features": 1, "device_status": 15}
        queue = {"index": 0, "size": 256, "enabled": True, "next_avail": 0, "next_used": 0}

        def stream(queues):
            sections = [(s.id, s.version, om.section_flags(s), body(om.encode_by_schema(s.fields, v)))
                        for s, v in ((fv.sections[1], device), (fv.sections[2], {"queues": queues}))]
            return om.write_stream("virtio-spec.org/pci/virtio-blk", "virtio-spec.org/pci/virtio-blk/state", "", 1,
                                   sections)[0]
        om.read_stream(stream([queue, dict(queue, index=1)]), ANY_FILE, reg)
        with self.assertRaisesRegex(om.MigrationFormatError, "queue-count"):
            om.read_stream(stream([queue]), ANY_FILE, reg)


class RegistryRules(unittest.TestCase):
    """registry-format.md §1, §3, §4."""

    MODEL = ('{"registryFormat": 1, "models": [{"id": "example.org/m", "revision": 1, "parameters": '
             '[{"name": "n", "type": "uint16", "default": %s}]}]}')

    def parse(self, text):
        return om.Registry.parse(text.encode("utf-8"), "test")

    def test_integer_text(self):  # §3.4
        self.assertEqual(self.parse(self.MODEL % '"0x10"').models["example.org/m"].parameters["n"].default, 16)
        for bad in ('"+5"', '"007"', '"0X10"', '" 5"', '"1e3"', '"0x"', '"-1"', "1.0", "65536", "true"):
            with self.assertRaises(om.MigrationFormatError, msg=bad):
                self.parse(self.MODEL % bad)

    def test_rejects_null_duplicate_keys_and_unknown_keys(self):  # §1
        for bad in ('{"registryFormat": 1, "models": [], "signatures": null}',
                    '{"registryFormat": 1, "registryFormat": 1, "models": []}',
                    '{"registryFormat": 1, "models": [], "extra": 1}',
                    '{"registryFormat": 1, "models": ["\\ud800"]}'):
            with self.assertRaises(om.MigrationFormatError, msg=bad):
                self.parse(bad)

    def test_canonical_escaping(self):  # §4
        self.assertEqual(om.canonical_json({"b": "\u001f/\u2028\U0001F600\"", "a": [1, True]}),
                         '{"a":[1,true],"b":"\\u001f/\u2028\U0001F600\\""}')

    def test_condition_ops_need_integer_parameters(self):  # §3.2
        text = ('{"registryFormat": 1, "models": [{"id": "example.org/m", "revision": 1, "parameters": '
                '[{"name": "s", "type": "string", "default": "a"}], "constraints": [{"id": "c", "require": '
                '{"param": "s", "op": "ge", "value": "a"}}]}]}')
        with self.assertRaisesRegex(om.MigrationFormatError, "needs an integer parameter"):
            self.parse(text)

    def test_ids_unique_within_the_model(self):  # §3.2, §3.3, §3.6
        constraint = '{"id": "c", "require": {"param": "n", "op": "ge", "value": 0}}'
        model = ('{"registryFormat": 1, "models": [{"id": "example.org/m", "revision": 1, "parameters": '
                 '[{"name": "n", "type": "uint16", "default": 1}], "constraints": [%s]}]}')
        self.parse(model % constraint)
        with self.assertRaisesRegex(om.MigrationFormatError, "constraint id 'c' repeats"):
            self.parse(model % (constraint + ", " + constraint))

    def test_merge_keeps_higher_revision_and_refuses_conflicts(self):  # §5
        a = self.parse(self.MODEL % "1")
        b = self.parse((self.MODEL % "2").replace('"revision": 1', '"revision": 2'))
        a.merge(b)
        self.assertEqual(a.models["example.org/m"].parameters["n"].default, 2)
        with self.assertRaisesRegex(om.MigrationFormatError, "conflict"):
            self.parse(self.MODEL % "1").merge(self.parse(self.MODEL % "3"))


class Decision(unittest.TestCase):
    """stream-format.md §9.5, §9.6."""

    def decide(self, source, destination, policy=None, x25519=None, reg=None):
        reg = reg or registry()
        offer = om.build_offer(source, reg, bytes([1]) * 32, x25519)
        return om.decide(offer, destination, reg, policy or om.DestinationPolicy(), bytes([4]) * 32,
                         bytes([3]) * 32)

    def codes(self, reasons):
        return [(r[0], r[1]) for r in reasons]

    def test_compatible_blk_pair_chooses_version_2(self):
        answer, reasons, agreement = self.decide(descriptor("blk-source.json"), descriptor("blk-dest-memory.json"))
        self.assertEqual(reasons, [])
        self.assertEqual(agreement.format_version, 2)

    def test_v1_only_destination_gets_a_downgrade(self):
        _, _, agreement = self.decide(descriptor("blk-source.json"), descriptor("blk-dest-v1-only.json"))
        self.assertEqual(agreement.format_version, 1)

    def test_unknown_model_stops_after_item_1_but_mac_is_still_checked(self):
        src = descriptor("blk-source.json")
        src.model = "example.org/nope"
        _, reasons, _ = self.decide(src, descriptor("blk-dest-memory.json"), om.DestinationPolicy(require_mac=True))
        self.assertEqual(self.codes(reasons), [("MODEL_MISMATCH", "example.org/nope"),
                                               ("UNKNOWN_MODEL", "example.org/nope"),
                                               ("MAC_REQUIRED", "offer")])

    def test_other_known_model_is_checked_against_the_offered_entry(self):
        _, reasons, _ = self.decide(descriptor("blk-source.json"), descriptor("counter-dest-v1.json"))
        self.assertEqual(self.codes(reasons), [("MODEL_MISMATCH", "virtio-spec.org/pci/virtio-blk"),
                                               ("UNKNOWN_PARAMETER", "mode"), ("PARAMETER_MISSING", "capacity"),
                                               ("PARAMETER_MISMATCH", "num_queues"),
                                               ("PARAMETER_MISMATCH", "queue_size"),
                                               ("FORMAT_CLASS_MISMATCH", "virtio-spec.org/pci/virtio-blk/state")])

    def test_format_class_mismatch_gives_one_reason_and_skips_item_6(self):
        src = descriptor("blk-source.json")
        src.format_class = "example.org/x/state"  # file-blk is listed with another class: not reported
        _, reasons, _ = self.decide(src, descriptor("blk-dest-memory.json"))
        self.assertEqual(self.codes(reasons), [("FORMAT_CLASS_MISMATCH", "example.org/x/state")])

    def test_parameter_reasons_on_the_source_side(self):
        src = descriptor("blk-source.json")
        src.parameters = [("capacity", "+5"), ("colour", "red"), ("num_queues", "0x2"),
                          ("features", "0x100001244")]
        _, reasons, _ = self.decide(src, descriptor("blk-dest-memory.json"))
        self.assertEqual(self.codes(reasons), [("PARAMETER_TYPE", "capacity"), ("UNKNOWN_PARAMETER", "colour")])

    def test_missing_required_parameter(self):
        src = descriptor("blk-source.json")
        src.parameters = [p for p in src.parameters if p[0] != "capacity"]
        _, reasons, _ = self.decide(src, descriptor("blk-dest-memory.json"))
        self.assertEqual(self.codes(reasons), [("PARAMETER_MISSING", "capacity")])

    def test_empty_model_digest_is_a_mismatch(self):
        reg = registry()
        offer = om.build_offer(descriptor("blk-source.json"), om.Registry(), bytes([1]) * 32)
        _, reasons, _ = om.decide(offer, descriptor("blk-dest-memory.json"), reg, om.DestinationPolicy(),
                                  bytes([4]) * 32)
        self.assertEqual(self.codes(reasons), [("MODEL_DEFINITION_MISMATCH", "virtio-spec.org/pci/virtio-blk")])

    def test_implementation_listed_with_fewer_versions(self):
        src = descriptor("counter-source-v2.json")
        src.implementation = "outproc.dev/example/counter-v1"  # listed with write [1], claims [1, 2]
        _, reasons, _ = self.decide(src, descriptor("counter-dest-v1.json"))
        self.assertEqual(self.codes(reasons), [("IMPLEMENTATION_MISMATCH", "outproc.dev/example/counter-v1")])

    def test_untrusted_model_when_trust_is_required(self):
        _, reasons, _ = self.decide(descriptor("blk-source.json"), descriptor("blk-dest-memory.json"),
                                    om.DestinationPolicy(require_trusted_model=True))
        self.assertEqual(self.codes(reasons), [("UNTRUSTED_MODEL", "virtio-spec.org/pci/virtio-blk")])

    def test_malformed_offer_gets_one_reason_and_the_zero_nonce(self):
        answer, reasons, _ = om.decide(b"OPMH\x01\x01\x00\x00", descriptor("blk-dest-memory.json"), registry(),
                                       om.DestinationPolicy(), bytes(32))
        _, refuse = om.decode_message(answer, (om.REFUSE,))
        self.assertEqual((refuse["nonce"], self.codes(reasons)), (bytes(32), [("MALFORMED_OFFER", "offer")]))

    def test_source_refuses_an_accept_it_cannot_honour(self):
        reg = registry()
        seed = bytes([5]) * 32
        offer = om.build_offer(descriptor("counter-source-v2.json"), reg, bytes([1]) * 32)
        accept, _, _ = om.decide(offer, descriptor("counter-dest-v1.json"), reg,
                                 om.DestinationPolicy(pinned_signers=[om.ed25519_public(seed)]), bytes([4]) * 32)
        om.source_complete(offer, accept, None, seed)
        with self.assertRaisesRegex(om.MigrationFormatError, "no signing key"):
            om.source_complete(offer, accept, None, None)
        with self.assertRaisesRegex(om.MigrationFormatError, "is not one"):
            om.source_complete(offer, accept, None, bytes([6]) * 32)
        other = om.build_offer(descriptor("counter-source-v2.json"), reg, bytes([2]) * 32)
        with self.assertRaisesRegex(om.MigrationFormatError, "another migration"):
            om.source_complete(other, accept, None, seed)

    def test_replayed_stream_is_rejected_by_a_new_agreement(self):  # §9.2 destination nonce
        reg = registry()
        seed = bytes([5]) * 32
        offer = om.build_offer(descriptor("counter-source-v2.json"), reg, bytes([1]) * 32, bytes([2]) * 32)
        accept, _, first = om.decide(offer, descriptor("counter-dest-v1.json"), reg, om.DestinationPolicy(),
                                     bytes([4]) * 32, bytes([3]) * 32)
        src = om.source_complete(offer, accept, bytes([2]) * 32, None)
        data = counter_v1(GOOD_CONFIG, nonce=src.nonce, handshake_hash_value=src.handshake_hash,
                          mac_key_value=src.mac_key)
        om.read_stream(data, first.expectations(), reg)
        _, _, second = om.decide(offer, descriptor("counter-dest-v1.json"), reg, om.DestinationPolicy(),
                                 bytes([7]) * 32, bytes([3]) * 32)
        with self.assertRaisesRegex(om.MigrationFormatError, "handshake hash"):
            om.read_stream(data, second.expectations(), reg)


if __name__ == "__main__":
    unittest.main()
