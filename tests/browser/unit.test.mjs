// tests/browser/unit.test.mjs — the web pages' pure JS (node/web/verify.mjs, node/web/i18n.mjs)
// run in Node.js against the project's own vectors (tests/vectors, docs/FORMAT.md §3): Merkle
// inclusion (RFC 6962/9162), leaf hashes of entry headers, signed notes, Ed25519 note signatures
// and cosignature/v1, and the formatting and classification helpers. Each test also checks that a
// tampered input is refused, so a verifier that says "yes" to everything fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as V from '../../node/web/verify.mjs';
import * as I from '../../node/web/i18n.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vec = (p) => JSON.parse(readFileSync(join(root, 'tests', 'vectors', p), 'utf8'));
const hx = V.hexdecode;

test('Merkle: every RFC 6962 inclusion vector leads to its root; a wrong path or index does not', async () => {
  const m = vec('merkle/rfc6962-vectors.json');
  const leaves = await Promise.all(m.leaves_hex.map((l) => V.leafHash(hx(l))));
  assert.ok(m.inclusion.length >= 10);
  for (const c of m.inclusion) {
    const idx = c.Index;
    const size = c.Size;
    const path = c.Path.map(hx);
    const want = hx(m.roots_hex[String(size)]);
    const got = await V.rootFromInclusion(idx, size, leaves[idx], path);
    assert.ok(got && V.equal(got, want), `leaf ${idx} of ${size}`);
    if (path.length) {
      const bad = path.map((p) => p.slice());
      bad[0][0] ^= 1;
      const g2 = await V.rootFromInclusion(idx, size, leaves[idx], bad);
      assert.ok(!g2 || !V.equal(g2, want), 'a flipped path bit must not verify');
      const g3 = await V.rootFromInclusion(idx, size, leaves[(idx + 1) % size], path);
      assert.ok(!g3 || !V.equal(g3, want) || size === 1, 'another leaf must not verify');
    }
  }
  assert.equal(await V.rootFromInclusion(5, 5, leaves[0], []), null, 'index beyond size');
});

// docs/FORMAT.md §3, vector 1 and 2: header bytes and leaf hashes.
const VEC1 = '010004baf000000000000000000000019ac29c14000000000000000000000000' +
  '0000000000000000000000000000000000000000000100a33c36f177b3df0f43' +
  'cf3a0bb87aa52364c17c249924892c544179d383d1c35d000000310770656e61' +
  '6c7479000101001239313331303030304d4131464c3858513337';
const VEC2 = '010004e20000000000000000010000019ac29c18d247c85f7c37323a2f16828d' +
  '1f3810dd30a37042f3a915ed3a546c9a1a5e41151d0201b3bec07ab899d9f56c' +
  'f9870887ba2b7ae00f37a6a9305c0a65fa2b737dc55ca40000001b0b4f626a65' +
  '63744576656e74000203002475726e3a6570633a69643a736774696e3a303631' +
  '343134312e3130373334362e3230313703002975726e3a6570633a636c617373' +
  '3a6c6774696e3a343031323334352e3031323334352e393938383737';

test('entry header: FORMAT.md vectors decode and hash to their leaf hashes; truncation is refused', async () => {
  const h1 = V.parseHeader(hx(VEC1));
  assert.equal(h1.region, '310000');
  assert.equal(h1.seq, 0n);
  assert.equal(h1.type, 'penalty');
  assert.equal(h1.bodyLen, 49);
  assert.equal(new TextDecoder().decode(h1.keys[0].bytes), '91310000MA1FL8XQ37');
  assert.equal(V.hex(await V.leafHash(hx(VEC1))), '47c85f7c37323a2f16828d1f3810dd30a37042f3a915ed3a546c9a1a5e41151d');
  const body = new TextEncoder().encode('{"kind":"penalty","subject":"91310000MA1FL8XQ37"}');
  assert.ok(V.equal(await V.sha256(body), h1.bodyHash));
  const h2 = V.parseHeader(hx(VEC2));
  assert.equal(h2.region, '320000');
  assert.equal(h2.seq, 1n);
  assert.equal(h2.keys.length, 2);
  assert.equal(V.hex(await V.leafHash(hx(VEC2))), '35483321d7edc1a890e64623c8ba3b2f055cee4ce9e5e3aca99373a3de66b2f4');
  assert.throws(() => V.parseHeader(hx(VEC1).slice(0, 100)), /truncated/);
  assert.throws(() => V.parseHeader(V.concat(hx(VEC1), Uint8Array.of(0))), /after the last key/);
});

test('verifyEntry: record bytes, header, leaf hash and inclusion together; each tampering is named', async () => {
  const header = hx(VEC1);
  const body = new TextEncoder().encode('{"kind":"penalty","subject":"91310000MA1FL8XQ37"}');
  const leaf = await V.leafHash(header);
  const other = await V.leafHash(hx(VEC2));
  const rootHash = await V.nodeHash(leaf, other); // a two-leaf tree: entry 0 and another
  const note = { size: 2n, root: rootHash };
  const rec = { leaf: V.b64encode(header), body: V.b64encode(body) };
  const want = { region: '310000', seq: 0, leafHash: V.b64encode(leaf) };
  const ok = await V.verifyEntry(rec, want, note, [V.b64encode(other)]);
  assert.deepEqual(ok.reasons, []);
  assert.equal(ok.body, 'verified');
  const noBody = await V.verifyEntry({ leaf: rec.leaf }, want, note, [V.b64encode(other)]);
  assert.equal(noBody.ok, true);
  assert.equal(noBody.body, 'withheld');
  const badBody = await V.verifyEntry({ ...rec, body: V.b64encode(body.map((b, i) => (i ? b : b ^ 1))) }, want, note, [V.b64encode(other)]);
  assert.deepEqual(badBody.reasons, ['body-hash']);
  const badLeaf = await V.verifyEntry(rec, { ...want, leafHash: V.b64encode(other) }, note, [V.b64encode(other)]);
  assert.ok(badLeaf.reasons.includes('leaf-hash'));
  const badPos = await V.verifyEntry(rec, { ...want, seq: 1 }, note, [V.b64encode(other)]);
  assert.ok(badPos.reasons.includes('header-position'));
  const badProof = await V.verifyEntry(rec, want, note, [V.b64encode(leaf)]);
  assert.deepEqual(badProof.reasons, ['inclusion']);
});

test('signed note: origin signature and cosignature/v1 verify with WebCrypto Ed25519; tampering fails', async () => {
  assert.equal(await V.ed25519Supported(), true, 'Node.js WebCrypto has Ed25519');
  const sn = vec('signed-note/vectors.json');
  const cs = vec('signed-note/cosignature-vectors.json');
  const note = V.parseNote(cs.checkpoint_signed_and_cosigned);
  assert.equal(note.origin, 'example.test/log/310000');
  assert.equal(note.size, 8n);
  assert.equal(note.sigs.length, 2);
  const signer = V.parseVkey(sn.signer_vkey);
  assert.equal(await V.verifyNoteSignature(note, signer), true);
  // The cosigner's verifier key has type 0x04; verifyCosignature takes any key of that holder.
  const cos = V.parseVkey(cs.cosigner_vkey);
  assert.equal(cos.type, 4);
  const c = await V.verifyCosignature(note, cos);
  assert.deepEqual(c, { ok: true, time: cs.timestamp });
  // An unknown key: no line. A changed text: neither signature verifies.
  assert.equal(await V.verifyNoteSignature(note, V.parseVkey(sn.other_vkey)), null);
  const forged = V.parseNote(cs.checkpoint_signed_and_cosigned.replace('\n8\n', '\n9\n'));
  assert.equal(await V.verifyNoteSignature(forged, signer), false);
  assert.equal((await V.verifyCosignature(forged, cos)).ok, false);
  assert.throws(() => V.parseNote('no blank line\n'), /signed note/);
  assert.throws(() => V.parseVkey('name+zz+AAAA'), /verifier key/);
});

test('key ids follow C2SP: SHA-256(name || \\n || type || key)[:4]', async () => {
  const k = V.parseVkey(vec('signed-note/vectors.json').signer_vkey);
  assert.ok(V.equal(await V.keyId(k.name, 1, k.pub), k.keyId));
  assert.ok(!V.equal(await V.keyId(k.name, 4, k.pub), k.keyId));
});

test('formatting: thousands, event times in their own offset, China Standard Time, regions', () => {
  assert.equal(I.formatInt(1234567), '1,234,567');
  assert.equal(I.formatInt(12n), '12');
  assert.equal(I.formatInt('1000'), '1,000');
  assert.equal(I.formatEventTime('2024-01-30T23:00:00.000+08:00'), '2024-01-30 23:00 (UTC+08:00)');
  assert.equal(I.formatEventTime('2024-01-30T15:00:00Z'), '2024-01-30 15:00 (UTC)');
  assert.equal(I.formatCst('2026-11-27T14:48:00Z'), '2026-11-27 22:48');
  assert.equal(I.regionName('320000', 'zh'), '江苏');
  assert.equal(I.regionName('320000', 'en'), 'Jiangsu');
  assert.equal(I.regionName('360000', 'en'), '360000');
  assert.equal(I.t('proof_where', { region: 'Jiangsu', seq: I.formatInt(1234567) }, 'en'), "in Jiangsu's log at 1,234,567");
  assert.equal(I.t('proof_where', { region: '江苏', seq: '1,234,567' }, 'zh'), '在江苏的日志中 #1,234,567');
  assert.equal(I.word('shipping', 'zh'), '发货');
  assert.equal(I.word('no_such_word', 'en'), 'no_such_word');
  assert.equal(I.cbvWord('urn:epcglobal:cbv:bizstep:shipping'), 'shipping');
  assert.equal(I.cbvWord('https://ref.gs1.org/cbv/BizStep-receiving'), 'BizStep-receiving');
});

test('every Chinese string has an English one and the other way round', async () => {
  const src = readFileSync(join(root, 'node', 'web', 'i18n.mjs'), 'utf8');
  const used = new Set([...readFileSync(join(root, 'node', 'web', 'app.js'), 'utf8').matchAll(/\bt\('([a-z_]+)'/g)].map((m) => m[1]));
  for (const k of used) {
    assert.notEqual(I.t(k, {}, 'zh'), k, `zh string ${k}`);
    assert.notEqual(I.t(k, {}, 'en'), k, `en string ${k}`);
  }
  assert.ok(src.includes("langToggle: 'English'"));
});

test('classify: trace codes, USCCs, identity numbers (checksums), garbage', () => {
  assert.equal(I.classify('urn:epc:id:sgtin:6920009.000003.1-1').kind, 'trace');
  assert.equal(I.classify(' https://id.gs1.org/01/09506000134352/21/1 ').kind, 'trace');
  assert.deepEqual(I.classify('91310000ma1fl8xq37'), { kind: 'enterprise', id: '91310000MA1FL8XQ37' });
  assert.equal(I.classify('91310000MA1FL8XQ38').kind, 'unknown', 'USCC check character');
  assert.deepEqual(I.classify('11010519491231002x'), { kind: 'person', id: '11010519491231002X' });
  assert.equal(I.classify('110105194912310021').kind, 'unknown', 'identity check character');
  assert.equal(I.classify('').kind, 'empty');
  assert.equal(I.classify('hello').kind, 'unknown');
  assert.equal(I.isUscc('1132030008WJRAA89T'), true);
});

test('trace paths: Digital Link URIs are one percent-encoded segment and come back intact', () => {
  const dl = I.sgtinToDigitalLink('urn:epc:id:sgtin:9506000.013435.1');
  assert.equal(dl, 'https://id.gs1.org/01/09506000134352/21/1');
  assert.equal(I.gs1CheckDigit('0950600013435'), '2');
  const p = I.tracePath(dl);
  assert.equal(p, '/trace/https%3A%2F%2Fid.gs1.org%2F01%2F09506000134352%2F21%2F1');
  assert.equal(p.split('/').length, 3);
  assert.equal(I.codeFromPath(p), dl);
  assert.equal(I.tracePath('urn:epc:id:sgtin:1.2.a/b', 'back'), '/trace/urn%3Aepc%3Aid%3Asgtin%3A1.2.a%2Fb?direction=back');
  assert.equal(I.codeFromPath('/trace/%E0%A4%A'), null);
});
