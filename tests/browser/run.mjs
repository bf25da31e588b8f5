// tests/browser/run.mjs — the web pages in a real browser (docs/WEB.md): starts a four-region
// cluster, loads sample supply chains and a few credit records of its own, waits for
// replication, then drives Debian's Chromium (playwright-core, no downloaded browser) through
// the search page, a journey (every step and its proof status, checked against the API), the
// language switch, a phone-sized screen, and a credit report as the public (restricted fields
// absent from the DOM) and with an authority's token typed into the page.
//
// Transport: a browser speaks HTTP/2 only over TLS. When cluster.json gives a node a `web_url`
// (https) the browser goes there, trusting the cluster's CA (`ca_cert`: the test checks the chain
// with Node's TLS and pins the node's key in Chromium); without TLS in the node yet, the browser
// goes through a small HTTP/1.1 → cleartext-h2 relay started here (same bytes, same origin).
//
// Environment: SJ_BIN (folder of sanjiao and sanjiao-node; default build/bin), SJ_SHOTS
// (screenshots; default build/browser), SJ_CHROMIUM (default /usr/bin/chromium), SJ_KEEP=1 keeps
// the cluster's folder. Prints "N passed, M failed" and exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { sgtinToDigitalLink, tracePath } from '../../node/web/i18n.mjs';
import { startRelay } from './relay.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(process.env.SJ_BIN || path.join(ROOT, 'build', 'bin'));
const SHOTS = path.resolve(process.env.SJ_SHOTS || path.join(ROOT, 'build', 'browser'));
const CHROMIUM = process.env.SJ_CHROMIUM || '/usr/bin/chromium';
const PERSON_ID = '11010519491231002X'; // docs/FORMAT.md's test identity number (valid check character)
const PHONE = '13800138000';
const SERVE = '330000'; // Zhejiang's node serves the pages: most steps are other regions' entries

let passed = 0, failed = 0;
const t0 = Date.now();
function check(name, cond, detail = '') {
  if (cond) passed++;
  else failed++;
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${name}${!cond && detail ? ` — ${detail}` : ''}`);
}
const log = (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ---- HTTP/2 from Node (setup, expectations) ---------------------------------------------------- */

const sessions = new Map();
function session(origin, ca) {
  let s = sessions.get(origin);
  if (!s || s.closed || s.destroyed) {
    s = http2.connect(origin, ca ? { ca } : {});
    s.on('error', () => {});
    sessions.set(origin, s);
  }
  return s;
}

function h2(url, { method = 'GET', headers = {}, body = null, ca = null } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = session(u.origin, ca).request({ ':method': method, ':path': u.pathname + u.search, ...headers });
    const chunks = [];
    let status = 0;
    req.setTimeout(10000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({ status, text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}
const getJson = async (url, opts) => JSON.parse((await h2(url, opts)).text);

/* ---- Cluster and data ------------------------------------------------------------------------- */

async function freeBase() {
  const tryPort = (p) => new Promise((res) => {
    const s = net.createServer().once('error', () => res(false)).listen(p, '127.0.0.1', () => s.close(() => res(true)));
  });
  for (let i = 0; i < 50; i++) {
    const base = 17000 + 4 * Math.floor(Math.random() * 2000);
    let ok = true;
    for (let k = 0; k < 4 && ok; k++) ok = (await tryPort(base + k)) && (await tryPort(base + 100 + k)); // h2c and TLS
    if (ok) return base;
  }
  throw new Error('no four free ports');
}

const sj = (args, env = {}) => execFileSync(path.join(BIN, 'sanjiao'), args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });

/* YYYY-MM-DD in China Standard Time, days from today. */
const cstDay = (days) => new Date(Date.now() + 8 * 3600e3 + days * 86400e3).toISOString().slice(0, 10);

/* Credit records of our own, dated from today so that they are inside their publication windows. */
function creditRecords(uscc, authorityUscc) {
  const subject = { type: 'enterprise', id: uscc, name: '测试浏览器食品有限公司(TEST)' };
  const authority = { name: '江苏省市场监督管理局（测试数据）', uscc: authorityUscc };
  return [
    { kind: 'credit', type: 'penalty', subject, disclosure: 'public', severity: 'serious', domain: 'food',
      decision: { number: '苏市监罚〔测试〕1号', violation: '销售不符合食品安全标准的食品（测试）', legal_basis: '《中华人民共和国食品安全法》第一百二十四条',
        content: '罚款人民币50000元（测试）', measures: ['fine'], fine_cny: 50000, date: cstDay(-20), authority },
      legal_representative: { name: '张测试', id_number: PERSON_ID, phone: PHONE }, test_data: true },
    { kind: 'credit', type: 'blacklist', subject, disclosure: 'public', list: { name: '严重违法失信名单' },
      period: { from: cstDay(-10), until: cstDay(300) }, decision: { date: cstDay(-10), authority }, test_data: true },
    { kind: 'credit', type: 'penalty', subject, disclosure: 'authorities', severity: 'general',
      decision: { number: '苏市监罚〔测试〕2号（内部）', date: cstDay(-5), authority }, test_data: true },
    { kind: 'credit', type: 'penalty', subject: { type: 'person', id: PERSON_ID, name: '张测试' }, disclosure: 'public',
      severity: 'general', decision: { number: '苏市监罚〔测试〕3号', date: cstDay(-5), authority }, test_data: true },
  ];
}

async function setup(dir) {
  const base = await freeBase();
  log(`cluster up in ${dir} on ports ${base}..${base + 3}`);
  sj(['cluster', 'up', '--dir', dir, '--base-port', String(base)]);
  const cluster = JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8'));
  const ca = cluster.ca_cert ? fs.readFileSync(cluster.ca_cert) : null;
  const node = (r) => cluster.nodes.find((n) => n.region === r);
  const sample = path.join(dir, 'sample');
  const codes = sj(['sample', '--records', '200', '--seed', '11', '--out', sample]);
  const code = /sample-trace-code (\S+)/.exec(codes)[1];
  const enterprise = /sample-enterprise (\S+)/.exec(codes)[1];
  for (const n of cluster.nodes) {
    sj(['submit', path.join(sample, `${n.region}.ndjson`), '--ndjson', '--node', n.url], { SANJIAO_TOKEN: n.submit_token });
  }
  // An authority code from the sample data (valid check character), for our own records.
  const authorityUscc = /"uscc":"(1132[0-9A-Z]{14})"/.exec(fs.readFileSync(path.join(sample, '320000.ndjson'), 'utf8'))[1];
  const own = path.join(dir, 'credit.ndjson');
  fs.writeFileSync(own, creditRecords(enterprise, authorityUscc).map((r) => JSON.stringify(r)).join('\n') + '\n');
  sj(['submit', own, '--ndjson', '--node', node('320000').url], { SANJIAO_TOKEN: node('320000').submit_token });
  await waitReplicated(cluster, ca);
  return { cluster, ca, code, enterprise, node };
}

/* Until every node holds every region's log up to its origin's size, and the serving node's own
 * newest checkpoint carries the other three regions' cosignatures. */
async function waitReplicated(cluster, ca) {
  const until = Date.now() + 60000;
  for (;;) {
    const st = await Promise.all(cluster.nodes.map((n) => getJson(`${n.url}/v1/status`, { ca }).catch(() => null)));
    const own = {};
    for (const s of st) if (s) own[s.region] = s.regions.find((x) => x.region === s.region).local_size;
    const behind = st.some((s) => !s || s.regions.some((x) => x.local_size < (own[x.region] ?? Infinity)));
    const serving = cluster.nodes.find((n) => n.region === SERVE);
    const cp = (await h2(`${serving.url}/v1/logs/${SERVE}/checkpoint`, { ca }).catch(() => ({ text: '' }))).text;
    const cosigned = cp.split('\n').filter((l) => l.startsWith('\u2014 ')).length >= 4;
    if (!behind && cosigned) return log('replicated; the serving node\'s checkpoint is cosigned by 3 regions');
    if (Date.now() > until) throw new Error('replication did not finish within 60 s');
    await sleep(250);
  }
}

/* ---- How the browser reaches the node --------------------------------------------------------- */

/* The SHA-256 of the node's public key (SPKI), after Node checked its chain against the CA. */
function spkiPin(url, ca) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: u.hostname, port: +u.port, ca, servername: net.isIP(u.hostname) ? undefined : u.hostname, ALPNProtocols: ['h2'] }, () => {
      const der = sock.getPeerCertificate(false).raw;
      const spki = new crypto.X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
      sock.end();
      resolve(crypto.createHash('sha256').update(spki).digest('base64'));
    });
    sock.on('error', reject);
  });
}

async function browserOrigin(env, args) {
  const n = env.node(SERVE);
  if (n.web_url && n.web_url.startsWith('https://')) {
    if (env.ca) args.push(`--ignore-certificate-errors-spki-list=${await spkiPin(n.web_url, env.ca)}`);
    else args.push('--ignore-certificate-errors');
    log(`browser → ${n.web_url} (HTTP/2 over TLS${env.ca ? ', key pinned after a CA-checked handshake' : ', certificate not checked: no ca_cert'})`);
    return { origin: new URL(n.web_url).origin, relay: null, transport: 'https' };
  }
  const relay = await startRelay(n.url);
  const origin = `http://127.0.0.1:${relay.address().port}`;
  log(`browser → ${origin} → ${n.url} (no web_url in cluster.json: HTTP/1.1 relay to the node's cleartext HTTP/2)`);
  return { origin, relay, transport: 'relay' };
}

/* ---- The pages over HTTP/2, without a browser ------------------------------------------------- */

async function httpChecks(env) {
  const base = env.node(SERVE).url;
  const get = (p, headers) => new Promise((resolve, reject) => {
    const req = session(new URL(base).origin, env.ca).request({ ':path': p, ...headers });
    let head = {}, n = 0;
    req.on('response', (h) => { head = h; });
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => resolve({ h: head, n }));
    req.on('error', reject);
    req.end();
  });
  const pages = await Promise.all(['/', tracePath(env.code), `/subject/${env.enterprise}`, '/subject/person'].map((p) => get(p)));
  check('pages: /, /trace/{code}, /subject/{id} answer 200 text/html with a same-origin-only CSP and no referrer',
    pages.every(({ h }) => h[':status'] === 200 && h['content-type'] === 'text/html; charset=utf-8' &&
      /default-src 'none'; script-src 'self'/.test(h['content-security-policy']) && h['referrer-policy'] === 'no-referrer'));
  const assets = { 'app.js': 'text/javascript', 'verify.mjs': 'text/javascript', 'i18n.mjs': 'text/javascript',
    'style.css': 'text/css', 'map.svg': 'image/svg+xml', 'icon.svg': 'image/svg+xml' };
  const got = await Promise.all(Object.keys(assets).map((a) => get(`/web/${a}`)));
  check('assets: embedded, right content types, nosniff, non-empty', got.every(({ h, n }, i) =>
    h[':status'] === 200 && h['content-type'].startsWith(Object.values(assets)[i]) && h['x-content-type-options'] === 'nosniff' && n > 100));
  const again = await get('/web/app.js', { 'if-none-match': got[0].h.etag });
  check('assets: ETag revalidation answers 304', again.h[':status'] === 304 && again.n === 0);
  const missing = await get('/web/nope.js');
  const api404 = await get('/v1/no-such-thing');
  check('unknown asset 404; API paths are not swallowed by the pages', missing.h[':status'] === 404 && api404.h[':status'] === 404 &&
    !String(api404.h['content-type']).startsWith('text/html'));
}

/* ---- The browser checks ---------------------------------------------------------------------- */

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function waitProofs(page, n) {
  await page.waitForFunction((count) => {
    const p = document.querySelectorAll('.proof');
    return p.length === count && [...p].every((e) => e.dataset.state !== 'pending');
  }, n, { timeout: 30000 });
}

async function searchAndTrace(page, origin, env) {
  await page.goto(`${origin}/`);
  check('search page: Chinese first (html lang zh-CN)', (await page.getAttribute('html', 'lang')) === 'zh-CN');
  check('search page: one main landmark, a labelled search box', await page.locator('main').count() === 1 &&
    await page.getByLabel('追溯码、统一社会信用代码或身份证号').count() === 1);
  await shot(page, 'search');
  await page.getByLabel('追溯码、统一社会信用代码或身份证号').fill(env.code);
  await page.keyboard.press('Enter'); // keyboard only
  await page.waitForURL(/\/trace\//);
  check('search for a code opens /trace/{code} (percent-encoded)', page.url() === `${origin}${tracePath(env.code)}`, page.url());
  const journey = await getJson(`${env.node(SERVE).url}/v1/trace/${encodeURIComponent(env.code)}/journey?direction=both`, { ca: env.ca });
  const n = journey.steps.length;
  await page.waitForSelector('li.step');
  await waitProofs(page, n);
  const steps = await page.$$eval('li.step', (lis) => lis.map((li) => ({
    region: li.dataset.region, seq: li.dataset.seq,
    time: li.querySelector('time')?.textContent ?? '', event: li.querySelector('.event')?.textContent ?? '',
    operator: li.querySelector('.operator')?.textContent ?? '', place: li.querySelector('.place')?.textContent ?? '',
    state: li.querySelector('.proof')?.dataset.state, proof: li.querySelector('.proof')?.textContent ?? '',
    verifier: li.querySelector('.proof .by')?.dataset.verifier,
  })));
  check(`journey: all ${n} steps shown, in the API's order`, steps.length === n &&
    steps.every((s, i) => s.region === journey.steps[i].region && +s.seq === journey.steps[i].seq), `${steps.length} vs ${n}`);
  check('journey spans the four regions', new Set(steps.map((s) => s.region)).size === 4);
  check('every step names operator, place, time and event', steps.every((s) => s.time && s.event && s.operator.length > 5 && s.place));
  check('every step is proven in the browser (record, inclusion, signatures)',
    steps.every((s) => s.state === 'ok' && s.verifier === 'browser'), JSON.stringify(steps.find((s) => s.state !== 'ok')));
  const zh = { 310000: '上海', 320000: '江苏', 330000: '浙江', 340000: '安徽' };
  check('proof status names the log and position ("在江苏的日志中 #N")',
    steps.every((s) => s.proof.includes(`在${zh[s.region]}的日志中 #${Number(s.seq).toLocaleString('en-US')}`)));
  check('own-region steps: checkpoint cosigned by 3 of the other 3 regions, verified here',
    steps.filter((s) => s.region === SERVE).every((s) => s.proof.includes('其他 3 个地区中 3 个共同签署')) &&
    steps.some((s) => s.region === SERVE));
  check('summary counts every step verified', (await page.textContent('#proof-summary')).trim() === `${n}/${n} 条已验证`);
  check('map marks the four regions and the route', await page.locator('svg.map .region.on').count() === 4 &&
    await page.locator('svg.map circle.stop').count() >= 4);
  await shot(page, 'trace-zh');
  return { journey, n };
}

async function languageAndPhone(page, origin, env, n) {
  await page.click('#lang');
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  check('English switch: headings and proof text in English',
    (await page.textContent('h1')) === 'Trace' && (await page.textContent('.proof')).includes("'s log at "));
  check('English switch remembered in localStorage', (await page.evaluate(() => localStorage.getItem('sj.lang'))) === 'en');
  await shot(page, 'trace-en');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForSelector('li.step');
  await waitProofs(page, n);
  check('phone-sized screen: still English after reload; no horizontal scrolling',
    (await page.getAttribute('html', 'lang')) === 'en' &&
    (await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)));
  await shot(page, 'trace-phone');
  // The same journey from the GS1 Digital Link form of the code: one percent-encoded segment.
  const dl = sgtinToDigitalLink(env.code);
  if (dl) {
    await page.goto(`${origin}${tracePath(dl)}`);
    await page.waitForSelector('li.step');
    check('Digital Link URI (slashes percent-encoded) finds the same journey',
      (await page.locator('li.step').count()) === n && (await page.textContent('#trace-code')) === dl);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.click('#lang'); // back to Chinese
}

async function creditReport(page, origin, env, requests) {
  await page.goto(`${origin}/`);
  await page.getByLabel('追溯码、统一社会信用代码或身份证号').fill(env.enterprise.toLowerCase());
  await page.click('form.search button[type=submit]');
  await page.waitForURL(/\/subject\//);
  await page.waitForSelector('#status');
  const items = await page.locator('article.item').count();
  await waitProofs(page, items);
  const html = await page.content();
  const text = await page.evaluate(() => document.body.innerText);
  check('report (public): status comes first, then the categories',
    await page.evaluate(() => document.querySelector('main section')?.id === 'status'));
  check('report (public): active blacklist and penalty shown with authority, dates and region',
    text.includes('严重违法失信名单') && text.includes('苏市监罚〔测试〕1号') && text.includes('江苏省市场监督管理局') &&
    text.includes(env.day20) && text.includes('江苏'));
  check('report (public): no identity number, phone or personal member anywhere in the DOM',
    !html.includes(PERSON_ID) && !html.includes(PHONE) && !html.includes('id_number') && !html.includes('"phone"') &&
    !text.includes('phone'));
  check('report (public): authorities-only record absent', !html.includes('（内部）'));
  check('report (public): history sections absent, not blanked',
    await page.locator('section[data-category=expired], section[data-category=actions], section[data-category=withheld]').count() === 0);
  check('report (public): every item proven', await page.locator('.proof[data-state=ok], .proof[data-state=partial]').count() === items && items > 0);
  await shot(page, 'subject-public');

  // An authority's token typed into the page: sessionStorage only, sent as Authorization.
  await page.goto(`${origin}/`);
  await page.click('details.token summary');
  await page.fill('#token', env.node(SERVE).authority_token);
  await page.click('#token-save');
  const stored = await page.evaluate(() => ({ s: sessionStorage.getItem('sj.token'), l: JSON.stringify(localStorage) }));
  check('token kept in sessionStorage, not in localStorage', stored.s === env.node(SERVE).authority_token && !stored.l.includes(stored.s));
  requests.length = 0;
  await page.goto(`${origin}/subject/${env.enterprise}`);
  await page.waitForSelector('#status');
  await waitProofs(page, await page.locator('article.item').count());
  const html2 = await page.content();
  const view = await page.textContent('#view');
  check('report (authority): the personal data the public did not see is there now (the check above is real)',
    html2.includes(PERSON_ID) && html2.includes(PHONE) && view === '主管部门视图', `view ${view}`);
  // The authorities-only record's body stays at its origin (Jiangsu): Zhejiang's report lists it
  // as withheld, a section the public view does not have at all.
  check('report (authority): history and withheld sections present',
    await page.locator('section[data-category=expired]').count() === 1 &&
    await page.locator('section[data-category=withheld] article.item[data-region="320000"]').count() >= 1);
  const rep = requests.find((r) => r.url.endsWith(`/v1/subjects/${env.enterprise}/report`));
  check('report (authority): every item proven (withheld bodies: header only)',
    await page.locator('.proof[data-state=fail]').count() === 0);
  check('token sent as Authorization on the report request only to the same origin',
    rep?.auth === `Bearer ${env.node(SERVE).authority_token}` && requests.every((r) => r.sameOrigin));
  check('proof material fetched without the token (no audit rows for proofs)',
    requests.filter((r) => /\/v1\/(records|logs)\//.test(r.url)).every((r) => !r.auth));
  await shot(page, 'subject-authority');

  // A person by identity number (with the token): the number never enters the URL.
  await page.goto(`${origin}/`);
  await page.getByLabel('追溯码、统一社会信用代码或身份证号').fill(PERSON_ID);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/subject\/person$/);
  await page.waitForSelector('#status');
  check('person search: /subject/person, identity number not in the URL; report shown',
    !page.url().includes(PERSON_ID) && (await page.textContent('main')).includes('苏市监罚〔测试〕3号'));
}

/* ---- Main ----------------------------------------------------------------------------------- */

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-browser-'));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sj-chromium-'));
  let ctx, relay;
  try {
    const env = { ...(await setup(dir)), day20: cstDay(-20) };
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'];
    await httpChecks(env);
    const where = await browserOrigin(env, args);
    relay = where.relay;
    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args,
      viewport: { width: 1280, height: 900 }, locale: 'zh-CN' });
    const page = ctx.pages()[0] ?? await ctx.newPage();
    const requests = [], errors = [];
    page.on('request', (r) => requests.push({ url: r.url(), auth: r.headers().authorization, sameOrigin: new URL(r.url()).origin === where.origin }));
    page.on('pageerror', (e) => errors.push(String(e)));
    let netChanged = 0; // Chromium reports interface changes on this shared machine; app.js retries
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (/ERR_NETWORK_CHANGED/.test(m.text())) netChanged++;
      else errors.push(m.text());
    });
    log(`Chromium ${ctx.browser()?.version() ?? ''} at ${CHROMIUM}`);
    check('WebCrypto Ed25519 available in this Chromium', await (async () => {
      await page.goto(`${where.origin}/`);
      return page.evaluate(() => crypto.subtle.importKey('raw', new Uint8Array(32).fill(1), { name: 'Ed25519' }, false, ['verify']).then(() => true, () => false));
    })());
    const proto = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol);
    if (where.transport === 'https') check('Chromium speaks HTTP/2 over TLS to the node', proto === 'h2', proto);
    else log(`page protocol ${proto} (relay)`);
    const { n } = await searchAndTrace(page, where.origin, env);
    log('search and journey done');
    await languageAndPhone(page, where.origin, env, n);
    log('language, phone and Digital Link done');
    await creditReport(page, where.origin, env, requests);
    log('credit reports done');
    check('no request left the node\'s origin (no CDN, works offline)', requests.every((r) => r.sameOrigin),
      requests.filter((r) => !r.sameOrigin).map((r) => r.url).join(' '));
    check('no script errors in the pages', errors.length === 0, errors.join(' | '));
    if (netChanged) log(`${netChanged} request(s) hit ERR_NETWORK_CHANGED and were retried by the page`);
    log(`screenshots in ${SHOTS}; transport ${where.transport}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${e.stack || e}`);
  } finally {
    await ctx?.close().catch(() => {});
    relay?.close();
    for (const s of sessions.values()) s.close();
    try { sj(['cluster', 'down', '--dir', dir]); } catch { /* already down */ }
    if (!process.env.SJ_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(`browser test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
