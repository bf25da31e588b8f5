// node/web/i18n.mjs — the pages' words in Chinese (first) and English, and the pure helpers that
// format and classify what the pages show: numbers, times, region names, identifier kinds, trace
// code conversions. No DOM here, so tests/browser/unit.test.mjs runs it in Node.js.

export const LANGS = ['zh', 'en'];

export const REGIONS = {
  '310000': { zh: '上海', en: 'Shanghai' },
  '320000': { zh: '江苏', en: 'Jiangsu' },
  '330000': { zh: '浙江', en: 'Zhejiang' },
  '340000': { zh: '安徽', en: 'Anhui' },
};

const S = {
  zh: {
    brand: '长三角信用与追溯', skip: '跳到主要内容', langToggle: 'English', langToggleLabel: '切换到英文',
    noscript: '本页面需要 JavaScript。', served: '本页由{region}节点提供',
    api: '接口说明',
    search_title: '查询', search_lead: '输入产品包装上的追溯码、企业的统一社会信用代码，或（持令牌）个人身份证号。',
    search_label: '追溯码、统一社会信用代码或身份证号', search_button: '查询',
    search_hint: '追溯码示例：urn:epc:id:sgtin:… 或 https://id.gs1.org/01/…/21/…',
    token_title: '访问令牌（可选）',
    token_lead: '令牌只保存在本标签页（sessionStorage），关闭标签页即清除，仅随本站的查询请求发送。',
    token_label: '访问令牌', token_save: '使用此令牌', token_clear: '清除令牌',
    token_set: '已设置令牌：查询将以令牌的身份进行。', token_none: '未设置令牌：以公众身份查询。',
    err_empty: '请输入要查询的代码。', err_unknown: '无法识别：既不是追溯码，也不是有效的统一社会信用代码或身份证号。',
    err_person_token: '查询个人需要令牌（本人或主管部门）。请先在下方设置令牌。',
    loading: '正在加载…', err_http: '请求失败（{status}）：{detail}', err_network: '无法连接节点：{detail}',
    trace_title: '追溯', dir_label: '方向', dir_back: '来源', dir_forward: '去向', dir_both: '全部',
    trace_summary: '共 {steps} 个环节，经过 {regions} 个地区', trace_truncated: '结果已截断（超过上限）。',
    trace_none: '未找到与此追溯码相关的记录。', map_title: '经过的地区', map_label: '路线：{route}',
    step: '第 {n} 步', operator: '经营者', place: '地点', time: '时间', event: '事件',
    items: '对象', withheld: '未公开',
    proof: '证明', proof_pending: '正在验证…', sep: '；', and: '、',
    proof_cosig_origin: '共同签名汇集在源地区的节点，本节点的副本尚未带有',
    proof_where: '在{region}的日志中 #{seq}',
    proof_cp: '检查点（共 {size} 条）由{region}签名，其他 {m} 个地区中 {k} 个共同签署',
    proof_cp_nosig: '检查点（共 {size} 条）的{region}签名未能验证',
    proof_by_browser: '由本浏览器验证：记录、包含证明与签名',
    proof_by_mixed: '包含证明由本浏览器验证；检查点签名由节点验证（此浏览器不支持 Ed25519）',
    proof_by_browser_header: '由本浏览器验证：记录头、包含证明与签名',
    proof_body_withheld: '原始记录正文不对此身份公开：所显示的内容由节点给出',
    proof_node_follows: '本节点（{node}）跟随并核验{region}的日志（{state}）',
    proof_fail: '验证失败：{why}', proof_not_yet: '尚未包含在检查点中',
    proof_summary: '{ok}/{n} 条已验证', keys_title: '所用公钥',
    keys_lead: '公钥取自本节点的 /v1/keys；可与各地区公布的公钥核对。',
    why_leaf: '记录头的哈希不符', why_position: '记录位置不符', why_body: '记录正文的哈希不符',
    why_inclusion: '包含证明不成立', why_sig: '检查点签名无效', why_fetch: '无法获取证明材料',
    why_summary: '节点摘要与已签名记录不一致',
    subject_title: '信用报告', view_public: '公众视图', view_authority: '主管部门视图', view_subject: '本人视图',
    status_title: '当前状态', as_of: '截至 {time}',
    status_clean: '目前没有公开的失信记录。',
    status_lists: '列入 {n} 个名单', status_penalties: '{n} 项行政处罚在公示期内',
    status_bans: '{n} 项禁止或限制', status_ratings: '{n} 项有效评级',
    cat_lists: '名单', cat_ratings: '信用评级', cat_penalties: '行政处罚', cat_bans: '禁止与限制',
    cat_other: '其他信息', cat_expired: '已到期或已移出', cat_repaired: '已修复', cat_revoked: '已撤销',
    cat_actions: '修复、移出与撤销', cat_withheld: '本节点未持有正文', none: '无',
    authority: '决定机关', date: '决定日期', period: '期间', region: '地区', status: '状态',
    severity: '失信程度', number: '决定书文号', violation: '违法行为', basis: '处罚依据',
    content: '处罚内容', measures: '处罚类别', fine: '罚款金额', list: '名单', rating: '评级',
    full_record: '记录全文', entries: '共 {n} 条记录，来自 {regions}', regions_none: '无',
    subject_not_found: '未找到此主体的记录。', subject_forbidden: '查看个人的信用报告需要本人或主管部门的令牌。',
    subject_person: '个人', untitled: '（未命名）', until_open: '至今', yuan: '{n} 元',
  },
  en: {
    brand: 'Yangtze Delta credit and traceability', skip: 'Skip to main content', langToggle: '中文',
    langToggleLabel: 'Switch to Chinese', noscript: 'This page needs JavaScript.',
    served: "Served by {region}'s node", api: 'API',
    search_title: 'Search',
    search_lead: "Type the trace code on a product's pack, an enterprise's unified social credit code, or (with a token) a person's identity number.",
    search_label: 'Trace code, unified social credit code or identity number', search_button: 'Search',
    search_hint: 'Trace codes look like urn:epc:id:sgtin:… or https://id.gs1.org/01/…/21/…',
    token_title: 'Access token (optional)',
    token_lead: 'The token is kept only in this tab (sessionStorage), gone when the tab closes, and sent only with this site\'s lookups.',
    token_label: 'Access token', token_save: 'Use this token', token_clear: 'Forget the token',
    token_set: 'A token is set: lookups are made with it.', token_none: 'No token: you look up as the public.',
    err_empty: 'Type a code to look up.',
    err_unknown: 'Not recognised: neither a trace code nor a valid unified social credit code or identity number.',
    err_person_token: "Looking up a person needs a token (the person's own or an authority's). Set one below first.",
    loading: 'Loading…', err_http: 'Request failed ({status}): {detail}', err_network: 'Cannot reach the node: {detail}',
    trace_title: 'Trace', dir_label: 'Direction', dir_back: 'Where from', dir_forward: 'Where to', dir_both: 'Both',
    trace_summary: '{steps} steps across {regions} regions', trace_truncated: 'The journey was cut at its limit.',
    trace_none: 'No records name this trace code.', map_title: 'Regions on the way', map_label: 'Route: {route}',
    step: 'Step {n}', operator: 'Operator', place: 'Place', time: 'Time', event: 'Event',
    items: 'Items', withheld: 'not public',
    proof: 'Proof', proof_pending: 'Verifying…', sep: '; ', and: ', ',
    proof_cosig_origin: "cosignatures are gathered at the origin's node; this node's copy carries none yet",
    proof_where: "in {region}'s log at {seq}",
    proof_cp: 'checkpoint (size {size}) signed by {region}, cosigned by {k} of the other {m} regions',
    proof_cp_nosig: "{region}'s signature on the checkpoint (size {size}) did not verify",
    proof_by_browser: 'verified in this browser: record, inclusion proof and signatures',
    proof_by_mixed: 'inclusion proof verified in this browser; checkpoint signature verified by the node (this browser lacks Ed25519)',
    proof_by_browser_header: 'verified in this browser: record header, inclusion proof and signatures',
    proof_body_withheld: 'the original record bytes are not open to this viewer: what is shown comes from the node',
    proof_node_follows: "this node ({node}) follows and checks {region}'s log ({state})",
    proof_fail: 'verification failed: {why}', proof_not_yet: 'not in a checkpoint yet',
    proof_summary: '{ok} of {n} verified', keys_title: 'Keys used',
    keys_lead: "Keys as published by this node at /v1/keys; compare them with each region's published keys.",
    why_leaf: 'header hash differs', why_position: 'entry position differs', why_body: 'body hash differs',
    why_inclusion: 'inclusion proof fails', why_sig: 'checkpoint signature invalid', why_fetch: 'proof material unavailable',
    why_summary: "the node's summary differs from the signed record",
    subject_title: 'Credit report', view_public: 'public view', view_authority: 'authority view', view_subject: 'own view',
    status_title: 'Status now', as_of: 'as of {time}',
    status_clean: 'No adverse public records now.',
    status_lists: 'on {n} list(s)', status_penalties: '{n} penalty(ies) in their publication period',
    status_bans: '{n} ban(s) or restriction(s)', status_ratings: '{n} current rating(s)',
    cat_lists: 'Lists', cat_ratings: 'Credit ratings', cat_penalties: 'Administrative penalties', cat_bans: 'Bans and restrictions',
    cat_other: 'Other information', cat_expired: 'Expired or removed', cat_repaired: 'Repaired', cat_revoked: 'Revoked',
    cat_actions: 'Repairs, removals and revocations', cat_withheld: 'Body not held by this node', none: 'None',
    authority: 'Authority', date: 'Decision date', period: 'Period', region: 'Region', status: 'Status',
    severity: 'Severity', number: 'Decision number', violation: 'Violation', basis: 'Legal basis',
    content: 'Decision', measures: 'Measures', fine: 'Fine', list: 'List', rating: 'Rating',
    full_record: 'Full record', entries: '{n} entries, from {regions}', regions_none: 'none',
    subject_not_found: 'No records about this subject.', subject_forbidden: "A person's credit report needs the person's own token or an authority's.",
    subject_person: 'Person', untitled: '(unnamed)', until_open: 'open', yuan: 'CNY {n}',
  },
};

// Vocabulary: record types, statuses, severities, measures, CBV business steps, dispositions, EPCIS
// event types, rating schemes. Unknown values are shown as they are.
const V = {
  penalty: ['行政处罚', 'Penalty'], blacklist: ['严重失信名单', 'Blacklist'],
  abnormal_list: ['经营异常名录', 'Abnormal operations list'], rating: ['信用评级', 'Rating'],
  procurement_ban: ['政府采购禁入', 'Procurement ban'], commitment: ['信用承诺', 'Commitment'],
  commendation: ['表彰', 'Commendation'], repair: ['信用修复', 'Credit repair'],
  active: ['有效', 'active'], pending: ['尚未生效', 'pending'], expired: ['已到期', 'expired'],
  repaired: ['已修复', 'repaired'], removed: ['已移出', 'removed'], revoked: ['已撤销', 'revoked'],
  replaced: ['已被替代', 'replaced'], action: ['行动', 'action'], unknown: ['未知（未持有正文）', 'unknown (body not held)'],
  minor: ['轻微', 'minor'], general: ['一般', 'general'], serious: ['严重', 'serious'],
  warning: ['警告', 'warning'], criticism: ['通报批评', 'criticism'], fine: ['罚款', 'fine'],
  confiscation: ['没收', 'confiscation'], licence_downgrade: ['降低资质等级', 'licence downgrade'],
  licence_suspension: ['暂扣许可证件', 'licence suspension'], licence_revocation: ['吊销许可证件', 'licence revocation'],
  business_restriction: ['限制开展生产经营活动', 'business restriction'], detention: ['行政拘留', 'detention'], other: ['其他', 'other'],
  commissioning: ['赋码登记', 'commissioning'], creating_class_instance: ['生产批次', 'lot created'],
  killing: ['屠宰', 'slaughter'], loading: ['装载', 'loading'], packing: ['包装', 'packing'],
  receiving: ['收货', 'receiving'], repackaging: ['分装', 'repackaging'], retail_selling: ['零售', 'retail sale'],
  shipping: ['发货', 'shipping'], unloading: ['卸货', 'unloading'], unpacking: ['拆包', 'unpacking'],
  transforming: ['加工', 'transforming'], storing: ['储存', 'storing'], inspecting: ['检验', 'inspecting'],
  accepting: ['验收', 'accepting'], arriving: ['到达', 'arriving'], departing: ['离开', 'departing'],
  destroying: ['销毁', 'destroying'], recalling: ['召回', 'recalling'], holding: ['暂扣', 'holding'],
  ObjectEvent: ['对象事件', 'object event'], AggregationEvent: ['聚合事件', 'aggregation event'],
  TransformationEvent: ['转化事件', 'transformation event'], TransactionEvent: ['交易事件', 'transaction event'],
  AssociationEvent: ['关联事件', 'association event'],
  road_transport_driver: ['道路运输驾驶员诚信考核', 'road transport driver'],
  environmental_credit: ['企业环境信用评价', 'environmental credit'], tax_credit: ['纳税信用', 'tax credit'],
  following: ['跟随中', 'following'], catching_up: ['追赶中', 'catching up'], checking: ['核验中', 'checking'],
  origin: ['本地区', 'origin'], equivocated: ['发现分叉，已停止跟随', 'equivocated; no longer followed'],
};

export function word(value, lang) {
  const w = V[value];
  return w ? w[lang === 'en' ? 1 : 0] : String(value ?? '');
}

/* t('proof_where', {region: 'Jiangsu', seq: '1,234'}, 'en') */
export function t(key, vars = {}, lang = 'zh') {
  const s = S[lang]?.[key] ?? S.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

export function regionName(code, lang) {
  return REGIONS[code]?.[lang === 'en' ? 'en' : 'zh'] ?? String(code);
}

/* 1234567 → "1,234,567" (both languages group by thousands); accepts numbers, BigInts, strings. */
export function formatInt(n) {
  const s = String(n);
  return /^\d+$/.test(s) ? s.replace(/\B(?=(\d{3})+(?!\d))/g, ',') : s;
}

/* An RFC 3339 time as written by the event's own clock: "2024-01-30 23:00 (UTC+08:00)". */
export function formatEventTime(s) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.exec(s ?? '');
  if (!m) return String(s ?? '');
  return `${m[1]} ${m[2]} (UTC${m[3] === 'Z' ? '' : m[3]})`;
}

/* A UTC instant in China Standard Time, the time of the credit rules: "2026-11-27 22:48". */
export function formatCst(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso ?? '');
  return new Date(ms + 8 * 3600e3).toISOString().slice(0, 16).replace('T', ' ');
}

/* Business steps and dispositions may be CBV URIs or bare words: keep the last word. */
export const cbvWord = (s) => String(s ?? '').replace(/^.*[:/]/, '');

/* ---- Identifiers --------------------------------------------------------------------------- */

const USCC_CHARS = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const USCC_PAIRS = { 1: '1239', 2: '19', 3: '123459', 4: '19', 5: '1239', 6: '129', 7: '129', 8: '19', 9: '123', A: '19', N: '1239', Y: '1' };

/* GB 32100-2015: charset, registration authority / category pair, division digits, check char. */
export function isUscc(s) {
  if (!/^[0-9A-HJ-NP-RTUW-Y]{18}$/.test(s)) return false;
  if (!(USCC_PAIRS[s[0]] ?? '').includes(s[1]) || !/^\d{6}$/.test(s.slice(2, 8))) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += USCC_CHARS.indexOf(s[i]) * (3 ** i % 31);
  return USCC_CHARS[(31 - (sum % 31)) % 31] === s[17];
}

/* GB 11643-1999: 17 digits, a real birth date, ISO 7064 MOD 11-2 check character. */
export function isIdNumber(s) {
  if (!/^\d{17}[\dX]$/.test(s)) return false;
  const y = +s.slice(6, 10), mo = +s.slice(10, 12), d = +s.slice(12, 14);
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (y < 1850 || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || date > new Date()) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += +s[i] * (2 ** (17 - i) % 11);
  return '10X98765432'[sum % 11] === s[17];
}

/* What a search box holds: {kind: 'trace'|'enterprise'|'person'|'empty'|'unknown', id}. */
export function classify(input) {
  const s = String(input ?? '').trim();
  if (!s) return { kind: 'empty', id: '' };
  if (/^urn:epc:/i.test(s) || /^https?:\/\//i.test(s)) return { kind: 'trace', id: s };
  const up = s.toUpperCase();
  if (isIdNumber(up)) return { kind: 'person', id: up };
  if (isUscc(up)) return { kind: 'enterprise', id: up };
  return { kind: 'unknown', id: s };
}

/* GS1 mod-10 check digit of the digits given (without the check digit). */
export function gs1CheckDigit(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) sum += +digits[digits.length - 1 - i] * (i % 2 === 0 ? 3 : 1);
  return String((10 - (sum % 10)) % 10);
}

/* urn:epc:id:sgtin:CP.IR.S → the GS1 Digital Link URI https://id.gs1.org/01/{GTIN-14}/21/{S}. */
export function sgtinToDigitalLink(urn) {
  const m = /^urn:epc:id:sgtin:(\d+)\.(\d+)\.(.+)$/.exec(urn);
  if (!m || m[1].length + m[2].length !== 13) return null;
  const body = m[2][0] + m[1] + m[2].slice(1);
  return `https://id.gs1.org/01/${body}${gs1CheckDigit(body)}/21/${m[3]}`;
}

/* The path of a page for a trace code: one segment, slashes and all percent-encoded. */
export const tracePath = (code, direction) =>
  `/trace/${encodeURIComponent(code)}${direction ? `?direction=${encodeURIComponent(direction)}` : ''}`;

/* The trace code of a /trace/... path, or null. */
export function codeFromPath(pathname) {
  const m = /^\/trace\/(.+)$/.exec(pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}
