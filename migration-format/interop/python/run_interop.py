#!/usr/bin/python3
"""Command line of the independent Python implementation; the Java build runs it (PythonInteropTest).

  vectors VECTOR_DIR REGISTRY...        check every published test vector
  golden GOLDEN_DIR REGISTRY...         decode and verify every golden stream
  digests REGISTRY...                   print "model-id sha256" of every model
  verify STREAM REGISTRY... [--mac-key HEX] [--pin HEX]...   verify and print the decoded state as JSON
  write OUT_DIR                         write streams for the Java reader
  offer DESCRIPTOR REGISTRY... --nonce HEX --x25519 HEX --out FILE          (handshake as source)
  complete OFFER ACCEPT --x25519 HEX --seed HEX --out STREAM                (write the stream the accept asks for)

Exit status 0 on success; a failure prints one line starting with FAIL.
"""

import json
import os
import sys

import outproc_migration as om

COUNTER = 'outproc.dev/example/counter'
COUNTER_FORMAT = 'outproc.dev/example/counter/state'


def load_registries(paths):
    models = {}
    for p in paths:
        with open(p, 'rb') as f:
            models.update(om.load_registry(f.read()))
    return models


def format_version(models, model, format_class, version):
    norm = om.normalize_model(models[model])
    fc = next(f for f in norm['formatClasses'] if f['id'] == format_class)
    return next(v for v in fc['versions'] if v['version'] == version)


def jsonable(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


def expect(cond, what):
    if not cond:
        raise om.FormatError(what)


def h(s):
    return bytes.fromhex(s)


def cmd_vectors(args):
    vdir, registries = args[0], args[1:]
    models = load_registries(registries)
    with open(os.path.join(vdir, 'model-digests.json'), 'rb') as f:
        md = json.loads(f.read())
    escape = om.load_registry(md['escapingRegistry'].encode('utf-8'))
    models.update(escape)
    n = 0
    for m in md['models']:
        canonical = om.canonical_model(models[m['id']])
        expect(canonical == h(m['canonicalHex']), 'canonical form of %s differs:\n%s\n%s' % (m['id'], canonical.decode(), m['canonical']))
        expect(om.sha256(canonical) == h(m['sha256']), 'digest of %s' % m['id'])
        n += 1
    rs = md['registrySignature']
    expect(om.ed25519_public(h(rs['seed'])) == h(rs['publicKey']), 'registry signer public key')
    msg = b'outproc-registry-entry-v1\n' + om.canonical_model(models[rs['model']])
    expect(msg == h(rs['message']), 'registry signature message')
    expect(om.ed25519_verify(h(rs['publicKey']), msg, h(rs['signature'])), 'registry signature')
    with open(os.path.join(vdir, 'handshake.json'), 'rb') as f:
        hs = json.loads(f.read())
    offer, accept = h(hs['offer']), h(hs['accept'])
    o = om.decode_offer(offer)
    expect(om.encode_offer(o) == offer, 'offer re-encodes byte for byte')
    expect(o['nonce'] == h(hs['sourceNonce']), 'offer nonce')
    expect(o['x25519'] == om.x25519_public(h(hs['sourceX25519Private'])) == h(hs['sourceX25519Public']), 'source X25519 key')
    expect(o['modelDigest'] == om.model_digest(models[o['model']]), 'offer model digest equals our digest of the model')
    a = om.decode_answer(accept)
    expect(a['type'] == 'accept' and om.encode_accept(a) == accept, 'accept re-encodes byte for byte')
    expect(a['destinationNonce'] == h(hs['destinationNonce']) and a['requirements'] == 3, 'accept nonce and requirements')
    expect(a['x25519'] == om.x25519_public(h(hs['destinationX25519Private'])) == h(hs['destinationX25519Public']), 'destination X25519 key')
    expect(a['signers'] == [om.ed25519_public(h(hs['streamSignerSeed']))], 'accept signers')
    hh = om.handshake_hash(offer, accept)
    expect(hh == h(hs['handshakeHash']), 'handshake hash')
    shared = om.x25519_shared(h(hs['sourceX25519Private']), a['x25519'])
    expect(shared == h(hs['x25519Shared']) == om.x25519_shared(h(hs['destinationX25519Private']), o['x25519']), 'X25519 shared secret')
    key = om.mac_key(h(hs['sourceX25519Private']), a['x25519'], hh)
    expect(key == h(hs['macKey']), 'HKDF MAC key')
    r = om.decode_answer(h(hs['refuse']))
    expect(r['type'] == 'refuse' and om.encode_refuse(r['nonce'], r['reasons']) == h(hs['refuse']), 'refuse re-encodes')
    expect(r['nonce'] == om.decode_offer(h(hs['refuseOffer']))['nonce'], 'refusal echoes the offer nonce')
    expect(any(c == 'NO_COMMON_VERSION' for c, _, _ in r['reasons']), 'refusal reasons')
    expect(om.encode_begin(1) == h(hs['beginSource']) and om.encode_begin(2) == h(hs['beginDestination']), 'begin messages')
    expect(om.encode_result(True, '', a['formatVersion'], hh) == h(hs['resultAgreed']), 'result message')
    expect(om.encode_result(False, 'refused', 0, b'') == h(hs['resultRefused']), 'refused result message')
    with open(os.path.join(vdir, 'stream.json'), 'rb') as f:
        sv = json.loads(f.read())
    data = h(sv['stream'])
    s = om.read_stream(data, mac_key=key, pinned=[om.ed25519_public(h(hs['streamSignerSeed']))], require_digests=True,
                       expect={'nonce': o['nonce'], 'handshake_hash': hh, 'model': a['model'], 'format_class': a['formatClass'],
                               'format_version': a['formatVersion']})
    expect(s.mac_verified and s.signer is not None, 'stream MAC and signature')
    expect(s.t == [h(sv['t0']), h(sv['t1']), h(sv['t2'])], 'transcript chain')
    expect(om.sha256(h(sv['section0'])) == h(sv['section0Digest']) and om.sha256(h(sv['section1'])) == h(sv['section1Digest']), 'section digests')
    expect(data[:len(h(sv['header']))] == h(sv['header']) and om.sha256(h(sv['header'])) == h(sv['t0']), 'header and T_0')
    state = om.decode_state(s, format_version(models, COUNTER, COUNTER_FORMAT, 1))
    expect(state['config'] == {'queue_size': 256, 'counter': 0x0102030405060708, 'label': 'vector'} and state['memory']['ram'] == h('deadbeef'), 'stream state')
    rebuilt = om.write_stream(a['model'], a['formatClass'], a['formatVersion'],
                              [(x['id'], x['version'], (1 if x['mustUnderstand'] else 0) | (2 if x['envelope'] else 0), x['body']) for x in s.sections],
                              nonce=o['nonce'], handshake_hash=hh, implementation=s.implementation, mac_key=key, signing_seed=h(hs['streamSignerSeed']))
    expect(rebuilt == data, 'the stream vector rewritten by this writer is byte for byte the same')
    print('vectors: %d model digests, registry signature, offer/accept/refuse/begin/result, handshake hash, X25519, HKDF, stream with MAC and signature: OK' % n)


def cmd_golden(args):
    gdir, registries = args[0], args[1:]
    models = load_registries(registries)
    mac = bytes([0x33]) * 32
    signer = om.ed25519_public(bytes([0x44]) * 32)
    names = sorted(x for x in os.listdir(gdir) if x.endswith('.oms'))
    for name in names:
        with open(os.path.join(gdir, name), 'rb') as f:
            data = f.read()
        s = om.read_stream(data, mac_key=mac if 'mac' in name else None, pinned=[signer] if 'signed' in name else None,
                           require_digests=True)
        if s.model == COUNTER:
            state = om.decode_state(s, format_version(models, s.model, s.format_class, s.format_version))
            expect(state['config']['label'].startswith('counter'), '%s label' % name)
        else:
            fields = om.read_list(om.Cursor(s.sections[0]['body']), 0, False)
            expect(fields == {1: (om.T_INT32, 7), 2: (om.T_STRING, 'hi')}, 'worked example fields')
        print('%s: %s version %d, %d sections, transcript %s%s%s' % (name, s.format_class, s.format_version, len(s.sections),
              s.transcript.hex()[:16], ', MAC verified' if s.mac_verified else '', ', signed by the pinned key' if s.signer else ''))
    expect(len(names) >= 5, 'golden corpus incomplete')


def cmd_digests(args):
    for mid, m in sorted(load_registries(args).items()):
        print(mid, om.model_digest(m).hex())


def option(args, name):
    vals = []
    while name in args:
        i = args.index(name)
        vals.append(args[i + 1])
        del args[i:i + 2]
    return vals


def cmd_verify(args):
    mac = option(args, '--mac-key')
    pins = [h(x) for x in option(args, '--pin')]
    path, registries = args[0], args[1:]
    models = load_registries(registries)
    with open(path, 'rb') as f:
        s = om.read_stream(f.read(), mac_key=h(mac[0]) if mac else None, pinned=pins or None, require_digests=True)
    state = om.decode_state(s, format_version(models, s.model, s.format_class, s.format_version))
    print(json.dumps({'model': s.model, 'formatVersion': s.format_version, 'macVerified': s.mac_verified,
                      'signer': s.signer.hex() if s.signer else None, 'state': jsonable(state)}, sort_keys=True))


def counter_sections(version, label, extra_config=None):
    config = om.Fields().int(1, om.T_INT16, 128).int(2, om.T_INT64, 2**63 + 5).string(3, label)
    if version >= 2:
        config.int(4, om.T_INT32, 9)
    if extra_config:
        extra_config(config)
    sections = [(1, 1, 1, bytes(config.out)), (2, 1, 1, bytes(om.Fields().bytes(1, bytes(range(64))).out))]
    if version >= 2:
        sections.append((3, 1, 0, bytes(om.Fields().int(1, om.T_INT64, 42).int_array(2, om.T_INT64, [1, 2, 3]).out)))
        rings = [om.Fields().int(1, om.T_INT16, i).int(2, om.T_INT16, 256).int(3, om.T_INT16, 10 + i).int(4, om.T_INT16, 9 + i) for i in range(3)]
        sections.append((4, 1, 1, bytes(om.Fields().record_array(1, rings).out)))
        sections.append((100, 1, 2, bytes(om.Fields().string(1, 'example.com/acme').int(2, om.T_INT32, 3).bytes(3, b'\x01\x02').out)))
    return sections


def cmd_write(args):
    out = args[0]
    streams = {
        'py-counter-v1.oms': om.write_stream(COUNTER, COUNTER_FORMAT, 1, counter_sections(1, 'from-python'), implementation='python'),
        'py-counter-v2-mac-signed.oms': om.write_stream(COUNTER, COUNTER_FORMAT, 2, counter_sections(2, 'signed-python'),
                                                       implementation='python', mac_key=bytes([0x33]) * 32, signing_seed=bytes([0x71]) * 32),
        'py-extension.oms': om.write_stream(COUNTER, COUNTER_FORMAT, 1, counter_sections(1, 'extension'),
                                            extensions=[(0x8001, 1, False, b'vendor note')]),
        'py-critical-extension.oms': om.write_stream(COUNTER, COUNTER_FORMAT, 1, counter_sections(1, 'critical'),
                                                     extensions=[(1, 1, True, bytes(37))]),
        'py-repeated-tag.oms': om.write_stream(COUNTER, COUNTER_FORMAT, 1, counter_sections(1, 'repeat', lambda c: c.string(3, 'again'))),
        'py-unknown-subsection.oms': om.write_stream(COUNTER, COUNTER_FORMAT, 1, counter_sections(1, 'sub', lambda c: c.bool(0x8003, True))),
    }
    os.makedirs(out, exist_ok=True)
    for name, data in streams.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('wrote', ', '.join(sorted(streams)))


def cmd_offer(args):
    nonce, priv, out = h(option(args, '--nonce')[0]), h(option(args, '--x25519')[0]), option(args, '--out')[0]
    with open(args[0], 'rb') as f:
        d = om.parse_json(f.read())
    models = load_registries(args[1:])
    params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in d.get('parameters', {}).items()]
    offer = om.encode_offer({'model': d['model'], 'implementation': d.get('implementation', ''), 'formatClass': d['formatClass'],
                             'parameters': params, 'read': d.get('read', []), 'write': d.get('write', []), 'nonce': nonce,
                             'modelDigest': om.model_digest(models[d['model']]) if d['model'] in models else b'',
                             'x25519': om.x25519_public(priv)})
    with open(out, 'wb') as f:
        f.write(offer)


def cmd_complete(args):
    priv, seed, out = h(option(args, '--x25519')[0]), h(option(args, '--seed')[0]), option(args, '--out')[0]
    with open(args[0], 'rb') as f:
        offer = f.read()
    with open(args[1], 'rb') as f:
        answer = f.read()
    o = om.decode_offer(offer)
    a = om.decode_answer(answer)
    if a['type'] == 'refuse':
        print('REFUSED', json.dumps(a['reasons']))
        sys.exit(3)
    expect(a['nonce'] == o['nonce'], 'accept nonce is not our offer nonce')
    expect(a['formatVersion'] in o['write'] and a['model'] == o['model'] and a['formatClass'] == o['formatClass'], 'accept names what we offered')
    expect(not a['requirements'] & 2 or not a['signers'] or om.ed25519_public(seed) in a['signers'], 'our key is not among the required signers')
    hh = om.handshake_hash(offer, answer)
    key = om.mac_key(priv, a['x25519'], hh) if a['x25519'] else None
    expect(key is not None or not a['requirements'] & 1, 'a MAC is required')
    data = om.write_stream(o['model'], o['formatClass'], a['formatVersion'], counter_sections(a['formatVersion'], 'handshake-python'),
                           nonce=o['nonce'], handshake_hash=hh, implementation=o['implementation'], mac_key=key,
                           signing_seed=seed if a['requirements'] & 2 else None)
    with open(out, 'wb') as f:
        f.write(data)
    print('wrote format version %d, handshake hash %s' % (a['formatVersion'], hh.hex()))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        {'vectors': cmd_vectors, 'golden': cmd_golden, 'digests': cmd_digests, 'verify': cmd_verify, 'write': cmd_write,
         'offer': cmd_offer, 'complete': cmd_complete}[cmd](args)
    except om.FormatError as e:
        print('FAIL:', e)
        sys.exit(1)


if __name__ == '__main__':
    main()
