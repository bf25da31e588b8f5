// node/web/app.js — the pages (docs/WEB.md): search (/), a trace code's journey (/trace/{code})
// and a credit report (/subject/{id}), rendered from the node's API on the same origin. Every
// journey step and report item is proven here, in the browser, where WebCrypto allows
// (verify.mjs); what only the node verified is labelled so. The DOM is built with textContent
// and attributes only (never innerHTML with data), so nothing a record says can become markup.
//
// State that must not leak: a bearer token typed into the page lives only in sessionStorage
// ("sj.token") and goes only into the Authorization header of same-origin API requests; a
// person's identity number searched for is passed to /subject/person through sessionStorage,
// never in a URL (history, logs). The language choice is kept in localStorage ("sj.lang").
import * as V from './verify.mjs';
import {
  t as tr, word, regionName, formatInt, formatEventTime, formatCst, cbvWord, classify, tracePath,
  codeFromPath,
} from './i18n.mjs';

const state = {
  lang: localStorage.getItem('sj.lang') === 'en' ? 'en' : 'zh',
  token: sessionStorage.getItem('sj.token') || '',
  node: null, // {region} of the serving node (/healthz)
  view: null, // render function of the current page
  proofs: new Map(), // "region/seq" → proof result (see proveEntry)
  names: new Map(), // operator USCC → enterprise name, when some record names it
};
const t = (key, vars) => tr(key, vars, state.lang);
const w = (value) => word(value, state.lang);
const rname = (code) => regionName(code, state.lang);

/* ---- DOM ----------------------------------------------------------------------------------- */

/* el('a', {href: '/x', class: 'c'}, 'text', child): attributes set as attributes, children
 * appended (strings become text nodes; null/false skipped). */
function el(tag, attrs = {}, ...children) {
  const svg = ['svg', 'g', 'path', 'circle', 'text', 'line', 'polyline', 'marker'].includes(tag);
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}
const main = () => document.getElementById('main');

function setMain(title, ...nodes) {
  document.title = `${title} · 三角`;
  main().replaceChildren(...nodes.flat().filter((x) => x !== null && x !== undefined && x !== false));
}

function shell() {
  const html = document.documentElement;
  html.lang = state.lang === 'en' ? 'en' : 'zh-CN';
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  const b = document.getElementById('lang');
  b.textContent = t('langToggle');
  b.lang = state.lang === 'en' ? 'zh-CN' : 'en';
  b.setAttribute('aria-label', t('langToggleLabel'));
  const served = document.getElementById('served');
  served.textContent = state.node ? t('served', { region: rname(state.node.region) }) : '';
}

function render() {
  shell();
  state.view?.();
}

/* ---- API ----------------------------------------------------------------------------------- */

class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/* GET a same-origin API path. auth: send the token (if any). A request that fails below HTTP (a
 * phone changing networks, a connection reset) is retried twice; an HTTP error is not. Throws
 * HttpError or TypeError. */
async function api(path, { text = false, auth = true } = {}) {
  const headers = {};
  if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
  const opts = { headers, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' };
  let r;
  for (let attempt = 0; ; attempt++) {
    try {
      r = await fetch(path, opts);
      break;
    } catch (e) {
      if (attempt === 2) throw e;
      await new Promise((res) => setTimeout(res, 250 * (attempt + 1)));
    }
  }
  if (!r.ok) {
    let detail = r.statusText;
    try {
      const j = await r.json();
      detail = j.errors?.[0]?.message || j.detail || j.title || j.error || detail;
    } catch { /* not JSON */ }
    throw new HttpError(r.status, detail);
  }
  return text ? r.text() : r.json();
}

function errorBox(err) {
  const msg = err instanceof HttpError ? t('err_http', { status: err.status, detail: err.message })
    : t('err_network', { detail: err.message });
  return el('p', { class: 'error', role: 'alert' }, msg);
}

/* ---- Proofs (shared by the trace and subject pages) ----------------------------------------- */

const proofCtx = { keys: null, status: null, cps: new Map(), ed: null };

/* region → {vkey text, parsed} from /v1/keys (the node's own key and its pinned peers' keys). */
function keys() {
  proofCtx.keys ??= api('/v1/keys', { auth: false }).then((j) => {
    const m = new Map();
    for (const k of j.keys) {
      try { m.set(k.region, { text: k.vkey, ...V.parseVkey(k.vkey) }); } catch { /* skip a bad key */ }
    }
    return m;
  });
  return proofCtx.keys;
}

function nodeStatus() {
  proofCtx.status ??= api('/v1/status', { auth: false }).catch(() => null);
  return proofCtx.status;
}

/* A region's newest checkpoint, parsed and its signatures checked:
 * {note, sig: true|false|null (null: not checkable here), k, m, edInBrowser}. */
function checkpoint(region) {
  if (!proofCtx.cps.has(region)) proofCtx.cps.set(region, loadCheckpoint(region));
  return proofCtx.cps.get(region);
}

async function loadCheckpoint(region) {
  const [text, ks, ed] = await Promise.all([
    api(`/v1/logs/${region}/checkpoint`, { text: true, auth: false }), keys(), V.ed25519Supported()]);
  const note = V.parseNote(text);
  const own = ks.get(region);
  const others = [...ks.entries()].filter(([r]) => r !== region).map(([, k]) => k);
  let sig = null, k = 0;
  if (ed) {
    sig = own ? (await V.verifyNoteSignature(note, own)) === true : false;
    for (const o of others) if ((await V.verifyCosignature(note, o))?.ok) k++;
  } else { // the node verified (or made) the signatures before storing the note: count lines by key name
    k = others.filter((o) => note.sigs.some((s) => s.name === o.name && s.raw.length === 76)).length;
  }
  return { note, sig, k, m: others.length, edInBrowser: ed };
}

/* Proves one entry: {region, seq, leafHash, timeMs?, bizStep?}. Stores and returns
 * {state: 'ok'|'partial'|'fail', ...}: 'partial' = proven, but the signature only by the node or
 * the body withheld. Never throws. */
async function proveEntry(item) {
  const key = `${item.region}/${item.seq}`;
  let res;
  try {
    const cp = await checkpoint(item.region);
    if (BigInt(item.seq) >= cp.note.size) {
      res = { state: 'partial', notYet: true, cp };
    } else {
      const [rec, proof] = await Promise.all([
        api(`/v1/records/${item.region}/${item.seq}`, { auth: false }),
        api(`/v1/logs/${item.region}/proof/inclusion?index=${item.seq}&size=${cp.note.size}`, { auth: false }),
      ]);
      const v = await V.verifyEntry(rec, { region: item.region, seq: item.seq, leafHash: item.leafHash }, cp.note, proof.audit_path);
      if (v.body === 'verified' && item.timeMs !== undefined) summaryCheck(rec, item, v.reasons);
      if (cp.sig === false) v.reasons.push('sig');
      const st = v.reasons.length ? 'fail' : cp.sig === null || v.body !== 'verified' ? 'partial' : 'ok';
      res = { state: st, reasons: v.reasons, body: v.body, cp };
    }
  } catch (e) {
    res = { state: 'fail', reasons: ['fetch'], error: e.message };
  }
  res.follows = await followState(item.region);
  state.proofs.set(key, res);
  return res;
}

/* The node's journey step is a summary of the record: once the record's bytes are verified, the
 * summary must agree with them (event time and business step). */
function summaryCheck(rec, item, reasons) {
  const ev = rec.record?.event;
  if (!ev) return;
  const ms = Date.parse(ev.eventTime);
  if ((!Number.isNaN(ms) && ms !== item.timeMs) || (item.bizStep && cbvWord(ev.bizStep) !== item.bizStep)) reasons.push('summary');
}

/* Whether the serving node follows the region (and in what state), from /v1/status. */
async function followState(region) {
  const st = await nodeStatus();
  if (!st || st.region === region) return null;
  const r = st.regions?.find((x) => x.region === region);
  return r ? { node: st.region, state: r.state } : null;
}

const WHY = { 'leaf-hash': 'why_leaf', 'header-position': 'why_position', 'body-hash': 'why_body',
  inclusion: 'why_inclusion', sig: 'why_sig', fetch: 'why_fetch', summary: 'why_summary' };

/* The proof status of an entry as a small block, in the current language. */
function proofBlock(item) {
  const res = state.proofs.get(`${item.region}/${item.seq}`);
  const id = `proof-${item.region}-${item.seq}`;
  const box = el('div', { class: 'proof', id, 'data-state': res ? res.state : 'pending', 'data-key': `${item.region}/${item.seq}` });
  const where = t('proof_where', { region: rname(item.region), seq: formatInt(item.seq) });
  if (!res) {
    box.append(el('p', {}, `${where} · ${t('proof_pending')}`));
    return box;
  }
  if (res.state === 'fail' && !res.cp) {
    box.append(el('p', {}, where), el('p', { class: 'by' }, '✘ ', t('proof_fail', { why: t(WHY.fetch) })));
    return box;
  }
  const size = formatInt(res.cp.note.size);
  const cpText = res.cp.sig === false ? t('proof_cp_nosig', { region: rname(item.region), size })
    : t('proof_cp', { region: rname(item.region), size, k: res.cp.k, m: res.cp.m });
  box.append(el('p', { class: 'where' }, `${where}${t('sep')}${cpText}`));
  let by;
  if (res.notYet) by = `… ${t('proof_not_yet')}`;
  else if (res.state === 'fail') by = `✘ ${t('proof_fail', { why: res.reasons.map((r) => t(WHY[r])).join('; ') })}`;
  else if (res.cp.sig === null) by = `✔ ${t('proof_by_mixed')}`;
  else by = `✔ ${t(res.body === 'verified' ? 'proof_by_browser' : 'proof_by_browser_header')}`;
  box.append(el('p', { class: 'by', 'data-verifier': res.cp.sig === null ? 'node' : 'browser' }, by));
  if (res.body === 'withheld') box.append(el('p', {}, t('proof_body_withheld')));
  if (res.follows) {
    box.append(el('p', { class: 'follows' }, t('proof_node_follows',
      { node: rname(res.follows.node), region: rname(item.region), state: w(res.follows.state) }),
      res.cp.k === 0 ? `${t('sep')}${t('proof_cosig_origin')}` : ''));
  }
  return box;
}

/* Proves items a few at a time (HTTP/2 multiplexes them on one connection), updating each block
 * in place and the live summary as results come. */
async function proveAll(items, summaryId) {
  const queue = items.filter((i) => !state.proofs.has(`${i.region}/${i.seq}`));
  const worker = async () => {
    for (let it; (it = queue.shift());) {
      await proveEntry(it);
      document.getElementById(`proof-${it.region}-${it.seq}`)?.replaceWith(proofBlock(it));
      updateSummary(items, summaryId);
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  updateSummary(items, summaryId);
}

function proofSummary(items) {
  const done = items.map((i) => state.proofs.get(`${i.region}/${i.seq}`)).filter(Boolean);
  const ok = done.filter((r) => r.state !== 'fail' && !r.notYet).length;
  return t('proof_summary', { ok, n: items.length });
}

function updateSummary(items, id) {
  const s = document.getElementById(id);
  if (s) s.textContent = proofSummary(items);
}

async function keysBlock() {
  const ks = await keys().catch(() => new Map());
  const list = el('ul', {});
  for (const [region, k] of ks) list.append(el('li', {}, `${rname(region)}: `, el('code', {}, k.text)));
  return el('details', { class: 'keys' }, el('summary', {}, t('keys_title')), el('p', {}, t('keys_lead')), list);
}

/* ---- Search page ----------------------------------------------------------------------------- */

function searchView() {
  const errId = 'search-error';
  const input = el('input', { type: 'text', id: 'q', name: 'q', autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'q-hint', autocapitalize: 'off' });
  input.value = state.searchText ?? '';
  const form = el('form', { class: 'search', role: 'search', id: 'search' },
    el('label', { for: 'q' }, t('search_label')),
    el('div', { class: 'row' }, input, el('button', { type: 'submit', class: 'primary' }, t('search_button'))),
    el('p', { class: 'hint', id: 'q-hint' }, t('search_hint')),
    el('div', { id: errId, 'aria-live': 'assertive' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.searchText = input.value;
    const c = classify(input.value);
    const fail = (k) => { document.getElementById(errId).replaceChildren(el('p', { class: 'error' }, t(k))); input.focus(); };
    if (c.kind === 'empty') return fail('err_empty');
    if (c.kind === 'unknown') return fail('err_unknown');
    if (c.kind === 'trace') return location.assign(tracePath(c.id));
    if (c.kind === 'enterprise') return location.assign(`/subject/${encodeURIComponent(c.id)}`);
    if (!state.token) return fail('err_person_token');
    sessionStorage.setItem('sj.person', c.id); // not in the URL: identity numbers stay out of history
    location.assign('/subject/person');
  });
  setMain(t('search_title'), el('h1', {}, t('search_title')), el('p', { class: 'lead' }, t('search_lead')), form, tokenForm());
}

function tokenForm() {
  const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', spellcheck: 'false' });
  const status = el('p', { id: 'token-status', 'aria-live': 'polite' }, t(state.token ? 'token_set' : 'token_none'));
  const save = el('button', { type: 'button', class: 'secondary', id: 'token-save' }, t('token_save'));
  const clear = el('button', { type: 'button', class: 'secondary', id: 'token-clear' }, t('token_clear'));
  save.addEventListener('click', () => {
    state.token = input.value.trim();
    if (state.token) sessionStorage.setItem('sj.token', state.token);
    input.value = '';
    status.textContent = t(state.token ? 'token_set' : 'token_none');
  });
  clear.addEventListener('click', () => {
    state.token = '';
    sessionStorage.removeItem('sj.token');
    sessionStorage.removeItem('sj.person');
    status.textContent = t('token_none');
  });
  return el('details', { class: 'token', open: state.token ? '' : null },
    el('summary', {}, t('token_title')), el('p', { class: 'hint' }, t('token_lead')),
    el('label', { for: 'token' }, t('token_label')),
    el('div', { class: 'row' }, input, save, clear), status);
}

/* ---- Trace page ------------------------------------------------------------------------------ */

const DIRS = ['both', 'back', 'forward'];

async function traceLoad() {
  const code = codeFromPath(location.pathname);
  const q = new URLSearchParams(location.search).get('direction');
  const tv = { code, dir: DIRS.includes(q) ? q : 'both', journey: null, error: null };
  state.trace = tv;
  state.view = traceView;
  render();
  try {
    tv.journey = await api(`/v1/trace/${encodeURIComponent(code)}/journey?direction=${tv.dir}`);
  } catch (e) {
    tv.error = e;
  }
  render();
  if (!tv.journey) return;
  const items = tv.journey.steps.map((s) => ({ region: s.region, seq: s.seq, leafHash: s.leaf_hash,
    timeMs: s.time_ms, bizStep: s.biz_step }));
  loadNames(tv.journey.steps);
  await proveAll(items, 'proof-summary');
}

/* Enterprise names of the operators, where some public record about them names them. */
async function loadNames(steps) {
  const ops = [...new Set(steps.map((s) => s.operator).filter(Boolean))].filter((o) => !state.names.has(o));
  await Promise.all(ops.map(async (o) => {
    try {
      const j = await api(`/v1/subjects/${encodeURIComponent(o)}?limit=1`, { auth: false });
      const name = j.records?.[0]?.record?.subject?.name;
      if (name) state.names.set(o, name);
    } catch { /* no name: the code is shown */ }
  }));
  for (const e of document.querySelectorAll('[data-operator]')) {
    const name = state.names.get(e.dataset.operator);
    if (name) e.textContent = name;
  }
}

function traceView() {
  const tv = state.trace;
  const head = [el('h1', {}, t('trace_title')), el('p', {}, el('code', { class: 'code', id: 'trace-code' }, tv.code ?? ''))];
  const nav = el('nav', { class: 'dirs', 'aria-label': t('dir_label') }, el('ul', {}, DIRS.map((d) =>
    el('li', {}, el('a', { href: tracePath(tv.code, d), 'aria-current': d === tv.dir ? 'page' : null }, t(`dir_${d}`))))));
  if (tv.error) return setMain(t('trace_title'), ...head, nav, errorBox(tv.error));
  if (!tv.journey) return setMain(t('trace_title'), ...head, nav, el('p', { role: 'status' }, t('loading')));
  const steps = tv.journey.steps;
  if (!steps.length) return setMain(t('trace_title'), ...head, nav, el('p', { class: 'note' }, t('trace_none')));
  const items = steps.map((s) => ({ region: s.region, seq: s.seq }));
  const summary = el('p', { class: 'summary' },
    t('trace_summary', { steps: formatInt(steps.length), regions: tv.journey.regions.length }), ' · ',
    el('span', { id: 'proof-summary', role: 'status', 'aria-live': 'polite' }, proofSummary(items)));
  const timeline = el('ol', { class: 'timeline', 'aria-label': t('trace_title') },
    steps.map((s, i) => el('li', { class: 'step', 'data-region': s.region, 'data-seq': s.seq }, stepCard(s, i))));
  setMain(t('trace_title'), ...head, nav, summary,
    tv.journey.truncated ? el('p', { class: 'note' }, t('trace_truncated')) : null,
    el('div', { class: 'journey' }, mapFigure(steps), el('section', { 'aria-label': t('trace_title') }, timeline)),
    el('div', { id: 'keys-slot' }));
  keysBlock().then((k) => document.getElementById('keys-slot')?.replaceChildren(k));
}

function listText(s, name) {
  const v = s[name];
  if (!v || (Array.isArray(v) && !v.length)) return null;
  const arr = Array.isArray(v) ? v : [v];
  const more = s[`${name}_count`] > arr.length ? ` (+${formatInt(s[`${name}_count`] - arr.length)})` : '';
  return arr.join(', ') + more;
}

function stepCard(s, i) {
  const hid = `step-${s.region}-${s.seq}-h`;
  const ev = [s.biz_step ? `${w(cbvWord(s.biz_step))}` : null, w(s.event_type), s.action].filter(Boolean).join(' · ');
  const objs = ['epcs', 'parent', 'children', 'inputs', 'outputs'].map((k) => listText(s, k)).filter(Boolean).join(' → ');
  const fields = el('dl', { class: 'fields' },
    el('dt', {}, t('time')), el('dd', {}, el('time', { datetime: s.time }, formatEventTime(s.time))),
    el('dt', {}, t('event')), el('dd', { class: 'event' }, ev, s.disposition ? ` (${w(cbvWord(s.disposition))})` : ''),
    el('dt', {}, t('operator')), el('dd', { class: 'operator' }, s.operator
      ? [el('span', { 'data-operator': s.operator }, state.names.get(s.operator) ?? ''), ' ',
        el('a', { href: `/subject/${encodeURIComponent(s.operator)}`, class: 'mono' }, s.operator)]
      : t('withheld')),
    el('dt', {}, t('place')), el('dd', { class: 'place' }, rname(s.region), s.location ? [' · ', el('code', {}, s.location)] : ''),
    objs ? [el('dt', {}, t('items')), el('dd', {}, el('code', {}, objs))] : null,
    s.withheld ? [el('dt', {}, t('withheld')), el('dd', {}, s.withheld)] : null);
  return el('article', { class: 'card', 'aria-labelledby': hid },
    el('h3', { id: hid }, `${t('step', { n: i + 1 })} · ${ev}`), fields, proofBlock(s));
}

let mapSvgText = null;
/* The SVG map of the regions (map.svg) with the regions passed through coloured and the route
 * drawn between their centres in the order of the journey. */
function mapFigure(steps) {
  const route = [];
  for (const s of steps) if (route[route.length - 1] !== s.region) route.push(s.region);
  const label = t('map_label', { route: route.map(rname).join(' → ') });
  const fig = el('figure', { class: 'mapfig' }, el('figcaption', {}, t('map_title'), ': ', route.map(rname).join(' → ')));
  const place = (text) => {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const svg = document.importNode(doc.documentElement, true);
    svg.setAttribute('aria-label', label);
    svg.removeAttribute('aria-labelledby');
    for (const g of svg.querySelectorAll('.region')) {
      g.classList.toggle('on', route.includes(g.id.slice(1)));
      const txt = g.querySelector('text');
      if (txt) txt.textContent = txt.dataset[state.lang] ?? txt.textContent;
    }
    drawRoute(svg, route);
    fig.prepend(svg);
  };
  if (mapSvgText) place(mapSvgText);
  else api('/web/map.svg', { text: true, auth: false }).then((x) => { mapSvgText = x; place(x); }).catch(() => {});
  return fig;
}

function drawRoute(svg, route) {
  const g = svg.querySelector('#route');
  const pts = route.map((r) => {
    const c = svg.querySelector(`#r${r}`);
    return c ? [+c.dataset.cx, +c.dataset.cy] : null;
  });
  const known = pts.filter(Boolean);
  if (known.length > 1) g.append(el('polyline', { class: 'leg', points: known.map((p) => p.join(',')).join(' ') }));
  pts.forEach((p, i) => {
    if (!p) return;
    const off = route.slice(0, i).filter((r) => r === route[i]).length * 12; // revisits side by side
    g.append(el('circle', { class: 'stop', cx: p[0] + off, cy: p[1] + 6, r: 9 }),
      el('text', { class: 'stopn', x: p[0] + off, y: p[1] + 6 }, String(i + 1)));
  });
}

/* ---- Subject page ---------------------------------------------------------------------------- */

const PUBLIC_CATS = ['lists', 'penalties', 'bans', 'ratings', 'other'];
const HISTORY_CATS = ['expired', 'repaired', 'revoked', 'actions', 'withheld'];

async function subjectLoad() {
  const seg = decodeURIComponent(location.pathname.replace(/^\/subject\/?/, ''));
  const id = seg === 'person' ? sessionStorage.getItem('sj.person') ?? '' : seg;
  const sv = { id, person: seg === 'person', report: null, error: null };
  state.subject = sv;
  state.view = subjectView;
  render();
  try {
    sv.report = await api(`/v1/subjects/${encodeURIComponent(id)}/report`);
  } catch (e) {
    sv.error = e;
  }
  render();
  if (sv.report) await proveAll(reportItems(sv.report), 'proof-summary');
}

function reportItems(rep) {
  return [...PUBLIC_CATS, ...HISTORY_CATS].flatMap((c) => (Array.isArray(rep[c]) ? rep[c] : []))
    .filter((i) => i.region && i.seq !== undefined && i.leaf_hash)
    .map((i) => ({ region: i.region, seq: i.seq, leafHash: i.leaf_hash }));
}

function subjectName(rep) {
  for (const c of [...PUBLIC_CATS, ...HISTORY_CATS]) for (const i of rep[c] ?? []) if (i.record?.subject?.name) return i.record.subject.name;
  return null;
}

function subjectView() {
  const sv = state.subject;
  const h1 = el('h1', {}, t('subject_title'));
  const idLine = el('p', {}, el('code', { class: 'code', id: 'subject-id' }, sv.id || '—'));
  if (sv.error) {
    const box = sv.error.status === 403 || sv.error.status === 401 ? el('p', { class: 'error', role: 'alert' }, t('subject_forbidden')) : errorBox(sv.error);
    return setMain(t('subject_title'), h1, idLine, box);
  }
  if (!sv.report) return setMain(t('subject_title'), h1, idLine, el('p', { role: 'status' }, t('loading')));
  const rep = sv.report;
  const name = subjectName(rep);
  const items = reportItems(rep);
  const head = [el('h1', {}, name ? `${name}` : t('subject_title')),
    el('p', {}, el('span', { class: 'badge', id: 'view' }, t(`view_${rep.view}`)), ' ', t('subject_title'), ' · ',
      el('code', { class: 'code', id: 'subject-id' }, sv.person ? t('subject_person') : rep.subject))];
  const sections = [statusSection(rep)];
  for (const c of PUBLIC_CATS) sections.push(category(rep, c, true));
  for (const c of HISTORY_CATS) if (Array.isArray(rep[c])) sections.push(category(rep, c, false)); // absent for the public
  const regions = (rep.regions ?? []).map(rname).join(t('and')) || t('regions_none');
  setMain(name ?? t('subject_title'), ...head, ...sections,
    el('p', { class: 'hint' }, t('entries', { n: formatInt(rep.entries), regions }), ' · ',
      el('span', { id: 'proof-summary', role: 'status', 'aria-live': 'polite' }, proofSummary(items))),
    el('div', { id: 'keys-slot' }));
  keysBlock().then((k) => document.getElementById('keys-slot')?.replaceChildren(k));
}

function statusSection(rep) {
  const active = (c) => (rep[c] ?? []).filter((i) => i.status === 'active').length;
  const lines = [];
  if (active('lists')) lines.push(t('status_lists', { n: active('lists') }));
  if (active('penalties')) lines.push(t('status_penalties', { n: active('penalties') }));
  if (active('bans')) lines.push(t('status_bans', { n: active('bans') }));
  const adverse = lines.length > 0;
  if (active('ratings')) {
    const r = rep.ratings.filter((i) => i.status === 'active').map((i) => `${w(i.scheme)} ${i.grade}`);
    lines.push(`${t('status_ratings', { n: r.length })}: ${r.join(t('and'))}`);
  }
  return el('section', { class: `status${adverse ? ' adverse' : ''}`, 'aria-labelledby': 'status-h', id: 'status' },
    el('h2', { id: 'status-h' }, t('status_title')),
    adverse || lines.length ? el('ul', {}, lines.map((l) => el('li', {}, l))) : null,
    adverse ? null : el('p', {}, t('status_clean')),
    el('p', { class: 'hint' }, t('as_of', { time: `${formatCst(rep.as_of)} (UTC+08:00)` })));
}

function category(rep, c, always) {
  const list = rep[c] ?? [];
  const hid = `cat-${c}`;
  const body = list.length ? el('ul', { class: 'items' }, list.map((i) => el('li', {}, itemCard(i))))
    : always ? el('p', { class: 'hint' }, t('none')) : null;
  return el('section', { 'aria-labelledby': hid, class: 'category', 'data-category': c }, el('h2', { id: hid }, t(`cat_${c}`)), body);
}

function itemCard(i) {
  const d = i.record?.decision ?? {};
  const title = [w(i.type), i.list, i.scheme ? `${w(i.scheme)} ${i.grade ?? ''}` : null, i.decision_number ?? d.number]
    .filter(Boolean).join(' · ');
  const row = (k, v) => (v === undefined || v === null || v === '' ? null : [el('dt', {}, t(k)), el('dd', {}, v)]);
  const fine = typeof d.fine_cny === 'number' ? t('yuan', { n: formatInt(d.fine_cny) }) : null;
  const fields = el('dl', { class: 'fields' },
    row('status', w(i.status)),
    row('severity', i.severity ? w(i.severity) : null),
    row('authority', i.authority ?? d.authority?.name),
    row('date', d.date),
    row('period', i.from || i.until ? `${i.from ?? ''} – ${i.until ?? t('until_open')}` : null),
    row('violation', d.violation), row('basis', d.legal_basis), row('content', d.content),
    row('measures', Array.isArray(d.measures) ? d.measures.map(w).join(t('and')) : null), row('fine', fine),
    row('region', rname(i.region)));
  return el('article', { class: 'card item', 'data-region': i.region, 'data-seq': i.seq },
    el('h3', {}, title || t('untitled')), fields,
    i.record ? el('details', { class: 'record' }, el('summary', {}, t('full_record')), recordList(i.record)) : null,
    proofBlock({ region: i.region, seq: i.seq }));
}

/* A record as nested definition lists: every member the node disclosed to this caller, nothing
 * else (what the role may not see is not in the JSON, so it is not on the page either). */
function recordList(v) {
  if (v === null || typeof v !== 'object') return el('span', {}, String(v));
  if (Array.isArray(v)) return el('span', {}, v.every((x) => typeof x !== 'object') ? v.join(t('and')) : v.map((x) => recordList(x)));
  return el('dl', { class: 'record' }, Object.entries(v).flatMap(([k, x]) => [el('dt', {}, k), el('dd', {}, recordList(x))]));
}

/* ---- Start ------------------------------------------------------------------------------------ */

function route() {
  const p = location.pathname;
  if (p.startsWith('/trace/')) return traceLoad();
  if (p.startsWith('/subject/')) return subjectLoad();
  state.view = searchView;
  render();
  return null;
}

document.getElementById('lang').addEventListener('click', () => {
  state.lang = state.lang === 'en' ? 'zh' : 'en';
  localStorage.setItem('sj.lang', state.lang);
  render();
});
api('/healthz', { auth: false }).then((j) => { state.node = j; shell(); }).catch(() => {});
route();
