// node/web/verify.mjs — what the browser checks by itself (docs/WEB.md, docs/FORMAT.md):
// entry headers and their RFC 9162 leaf hashes, Merkle inclusion proofs (RFC 9162 §2.1.3.2),
// C2SP signed notes, checkpoints, verifier keys, Ed25519 note signatures and cosignature/v1
// lines. Pure functions over bytes and strings, using only WebCrypto (crypto.subtle), so the same
// file runs in the page and in Node.js (tests/browser/unit.test.mjs). Functions that parse
// untrusted input throw an Error with a short reason; verifiers return booleans.

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const subtle = globalThis.crypto.subtle;

export const utf8 = (s) => enc.encode(s);

export function b64decode(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0)
    throw new Error('not base64');
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(u8) {
  let s = '';
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]);
  return btoa(s);
}

export const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');

export function hexdecode(s) {
  if (!/^([0-9a-f]{2})*$/i.test(s)) throw new Error('not hex');
  return new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export async function sha256(u8) {
  return new Uint8Array(await subtle.digest('SHA-256', u8));
}

/* RFC 9162 §2.1.1: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right). */
export const leafHash = (header) => sha256(concat(Uint8Array.of(0), header));
export const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

/* RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null when the proof's shape does
 * not fit (index, size). BigInt keeps indexes exact past 2^32 (JS bit operators are 32-bit). */
export async function rootFromInclusion(index, size, leaf, path) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn || fn < 0n) return null;
  let r = leaf;
  for (const p of path) {
    if (p.length !== 32 || sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

/* The entry header, version 1 (docs/FORMAT.md §1), decoded strictly. */
export function parseHeader(h) {
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const need = (n) => { if (h.length < n) throw new Error('header truncated'); };
  need(92);
  if (h[0] !== 1) throw new Error('header version');
  const t = h[91];
  if (t < 1 || t > 64) throw new Error('header type length');
  need(94 + t);
  const out = {
    region: String(v.getUint32(1)).padStart(6, '0'),
    seq: v.getBigUint64(5),
    timeMs: Number(v.getBigUint64(13)),
    prev: h.slice(21, 53),
    kind: h[53],
    disclosure: h[54],
    bodyHash: h.slice(55, 87),
    bodyLen: v.getUint32(87),
    type: dec.decode(h.slice(92, 92 + t)),
    keys: [],
  };
  let off = 94 + t;
  const nkeys = v.getUint16(92 + t);
  for (let i = 0; i < nkeys; i++) {
    need(off + 3);
    const type = h[off], len = v.getUint16(off + 1);
    need(off + 3 + len);
    out.keys.push({ type, bytes: h.slice(off + 3, off + 3 + len) });
    off += 3 + len;
  }
  if (off !== h.length) throw new Error('bytes after the last key');
  return out;
}

/* A C2SP signed note (docs/FORMAT.md §6) holding a tlog-checkpoint (§5). */
export function parseNote(text) {
  const cut = text.lastIndexOf('\n\n');
  if (cut < 0 || !text.endsWith('\n')) throw new Error('not a signed note');
  const body = text.slice(0, cut + 1);
  const lines = body.split('\n');
  if (lines.length < 4) throw new Error('checkpoint too short');
  const [origin, sizeText, rootText] = lines;
  if (!origin || !/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new Error('checkpoint size');
  const root = b64decode(rootText);
  if (root.length !== 32) throw new Error('checkpoint root');
  const sigs = [];
  for (const line of text.slice(cut + 2).split('\n')) {
    if (line === '') continue;
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error('signature line');
    sigs.push({ name: m[1], raw: b64decode(m[2]) });
  }
  return { text: body, origin, size: BigInt(sizeText), root, sigs };
}

/* A verifier key "<name>+<key id hex>+<base64(type || 32-byte public key)>". */
export function parseVkey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  if (!m) throw new Error('verifier key');
  const raw = b64decode(m[3]);
  if (raw.length !== 33) throw new Error('verifier key length');
  return { name: m[1], keyId: hexdecode(m[2]), type: raw[0], pub: raw.slice(1) };
}

/* Key id = SHA-256(name || "\n" || type || public key)[:4] (C2SP signed-note). */
export async function keyId(name, type, pub) {
  return (await sha256(concat(utf8(name + '\n'), Uint8Array.of(type), pub))).slice(0, 4);
}

let edSupport;
/* Whether this WebCrypto verifies Ed25519 (Chromium since 137, Firefox 129, Safari 17, Node 18+). */
export function ed25519Supported() {
  edSupport ??= subtle
    .importKey('raw', new Uint8Array(32).fill(1), { name: 'Ed25519' }, false, ['verify'])
    .then(() => true, () => false);
  return edSupport;
}

export async function verifyEd25519(pub, sig, msg) {
  try {
    const key = await subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
    return await subtle.verify({ name: 'Ed25519' }, key, sig, msg);
  } catch {
    return false;
  }
}

/* The origin's own signature (type 0x01) on a note: true, false, or null when no line of the
 * note is by that key (name and key id). */
export async function verifyNoteSignature(note, vk) {
  if (vk.type !== 1) return false;
  const id = await keyId(vk.name, 1, vk.pub);
  if (!equal(id, vk.keyId)) return false;
  const line = note.sigs.find((s) => s.name === vk.name && s.raw.length === 68 && equal(s.raw.slice(0, 4), id));
  if (!line) return null;
  return verifyEd25519(vk.pub, line.raw.slice(4), utf8(note.text));
}

/* A cosignature/v1 line (type 0x04) by the holder of vk's public key: {ok, time} or null when the
 * note has no line by that key. The signed message is "cosignature/v1\ntime T\n" || text. */
export async function verifyCosignature(note, vk) {
  const id = await keyId(vk.name, 4, vk.pub);
  const line = note.sigs.find((s) => s.name === vk.name && s.raw.length === 76 && equal(s.raw.slice(0, 4), id));
  if (!line) return null;
  const t = new DataView(line.raw.buffer, line.raw.byteOffset + 4, 8).getBigUint64(0);
  const msg = utf8(`cosignature/v1\ntime ${t}\n${note.text}`);
  return { ok: await verifyEd25519(vk.pub, line.raw.slice(12), msg), time: Number(t) };
}

/* Checks one log entry end to end, as far as the material given allows:
 *   rec     GET /v1/records/{region}/{seq}: leaf (header, base64), body (base64, optional)
 *   want    {region, seq, leafHash (base64)}: what the page shows
 *   note    parseNote() of the region's checkpoint; proof: audit path (base64 strings)
 * Returns {ok, reasons[], body: 'verified'|'withheld'|'mismatch', header}. */
export async function verifyEntry(rec, want, note, proof) {
  const reasons = [];
  const header = b64decode(rec.leaf);
  const h = parseHeader(header);
  const lh = await leafHash(header);
  if (b64encode(lh) !== want.leafHash) reasons.push('leaf-hash');
  if (h.region !== want.region || h.seq !== BigInt(want.seq)) reasons.push('header-position');
  let body = 'withheld';
  if (typeof rec.body === 'string') {
    const b = b64decode(rec.body);
    body = b.length === h.bodyLen && equal(await sha256(b), h.bodyHash) ? 'verified' : 'mismatch';
    if (body === 'mismatch') reasons.push('body-hash');
  }
  const root = await rootFromInclusion(want.seq, note.size, lh, proof.map(b64decode));
  if (!root || !equal(root, note.root)) reasons.push('inclusion');
  return { ok: reasons.length === 0, reasons, body, header: h };
}
