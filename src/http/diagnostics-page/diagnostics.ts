/**
 * The diagnostics page's script (runs in the browser, served as /diagnostics.js).
 * It reads the admin API with the token typed once (kept in sessionStorage)
 * or given as ?token=, and follows /api/events live. The answers are typed by
 * the admin API's own row types (type-only imports: nothing is loaded).
 */
import type { ClusterJobRow, ClusterNodeRow, ClusterView, Connector, HistoryRow, UserDetail, UserRow } from '../admin-json.js';

interface StatusAnswer {
  connectors: Connector[];
  /** the nodes of the service (absent: the gateway does not describe them) */
  cluster?: ClusterView;
}
interface RenderAnswer {
  contentType: string;
  body: string;
}
interface ResyncAnswer {
  ok: boolean;
  detail: string;
}

const KEY = 'presence-gateway.admin-token';
const STATES: Record<string, string> = {
  available: 'Available',
  ringing: 'Ringing',
  'on-the-phone': 'On the phone',
  dnd: 'Do not disturb',
  busy: 'Busy',
  meeting: 'In a meeting',
  away: 'Away',
  offline: 'Offline',
};
const KIND: Record<string, string> = {
  trunk: 'Trunk',
  'graph-auth': 'Graph sign-in',
  'graph-subscription': 'Graph subscription',
  'graph-poll': 'Graph polling',
  'graph-calendar': 'Graph calendar',
  webhook: 'Webhook',
  security: 'Security',
  store: 'Store',
};
const GRAPH_JOBS: Record<string, string> = {
  subscriptions: 'Graph subscriptions',
  poller: 'Graph polling',
  directory: 'Graph directory sync',
  writer: 'Graph writer',
  calendar: 'Graph calendar',
};

/** The page's element with this id, of the kind the markup declares it as. */
function $<T extends HTMLElement = HTMLElement>(id: string, kind?: new () => T): T {
  const e = document.getElementById(id);
  if (e === null || (kind !== undefined && !(e instanceof kind))) throw new Error(`the page has no ${kind?.name ?? 'element'} #${id}`);
  return e as T;
}

interface Row {
  data: UserRow;
  tr: HTMLTableRowElement;
}
const rows = new Map<string, Row>();
let source: EventSource | null = null;
let token: string | null = null;
let probeUser: string | null = null;

type Child = Node | string | null | false;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Record<string, string> | null, children?: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
  }
  for (const c of children ?? []) if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}
function ago(ms: number | undefined): string {
  if (!ms) return 'never';
  let s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) {
    s = -s;
    return 'in ' + (s < 60 ? s + ' s' : s < 3600 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h');
  }
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return new Date(ms).toLocaleString();
}
function timeEl(ms: number): HTMLTimeElement {
  return el('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString(), 'data-at': String(ms), text: ago(ms) });
}
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

// ---- token ----
function readToken(): string | null {
  const params = new URLSearchParams(location.search);
  const given = params.get('token');
  if (given) {
    sessionStorage.setItem(KEY, given);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }
  return sessionStorage.getItem(KEY);
}
function showLogin(text: string): void {
  if (source) {
    source.close();
    source = null;
  }
  token = null;
  sessionStorage.removeItem(KEY);
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = text;
  setLive('down', 'Signed out');
  $('token', HTMLInputElement).focus();
}
function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  init.headers = Object.assign({ authorization: 'Bearer ' + token, accept: 'application/json' }, init.headers ?? {});
  return fetch('/api' + path, init).then((r) => {
    if (r.status === 401) {
      showLogin('The token was not accepted. Enter the admin token (admin.token in the config).');
      throw new Error('unauthorized');
    }
    return r.json().then((body: unknown) => {
      const answer = typeof body === 'object' && body !== null ? (body as { ok?: unknown; message?: unknown }) : null;
      if (!r.ok && !(answer !== null && 'ok' in answer)) throw new Error((answer !== null && typeof answer.message === 'string' && answer.message) || 'HTTP ' + r.status);
      return body as T;
    });
  });
}
function setLive(state: string, text: string): void {
  const l = $('live');
  l.setAttribute('data-state', state);
  l.textContent = text;
}

// ---- connectors ----
function renderConnectors(status: StatusAnswer | undefined): void {
  const ul = $('connectors');
  ul.textContent = '';
  const list = status?.connectors ?? [];
  if (list.length === 0) ul.appendChild(el('li', { 'data-ok': 'null' }, [el('span', { class: 'conn-detail', text: 'No trunks and no Graph side configured.' })]));
  for (const c of list) {
    const okText = c.badge || (c.ok === true ? 'Up' : c.ok === false ? 'Down' : 'Unknown');
    let detail = c.detail;
    if (c.at && c.kind === 'webhook') detail += '; last delivery ' + ago(c.at);
    if (c.at && c.kind === 'graph-subscription') detail += ' (' + ago(c.at) + ')';
    ul.appendChild(
      el('li', { 'data-ok': String(c.ok), 'data-kind': c.kind }, [
        el('div', { class: 'conn-head' }, [
          el('span', { class: 'conn-name' }, [(KIND[c.kind] || c.kind) + ': ' + c.name]),
          el('span', { class: 'badge', 'data-ok': String(c.ok), text: okText }),
        ]),
        el('div', { class: 'conn-detail', text: detail }),
        c.prompt
          ? el('div', { class: 'conn-detail sign-in-code' }, [
              'Open ',
              el('a', { href: c.prompt.verificationUri, target: '_blank', rel: 'noopener', text: c.prompt.verificationUri }),
              ' and enter ',
              el('strong', { 'data-user-code': c.prompt.userCode, text: c.prompt.userCode }),
              ' (expires ' + ago(c.prompt.expiresAt) + ')',
            ])
          : null,
        c.job ? jobLine(c.job) : null,
        c.action === 'sign-in' && !c.prompt ? signInButton(c.name) : null,
      ]),
    );
  }
  renderCluster(status?.cluster);
}
function jobLine(job: NonNullable<Connector['job']>): HTMLElement {
  const text = job.holder === null ? 'No node runs it now' : 'Run by ' + job.holder + (job.self ? ' (this node)' : '');
  return el('div', { class: 'conn-job', 'data-job': job.job, 'data-held': String(job.holder !== null), text });
}

// ---- nodes ----
function upText(up: boolean | null): string {
  return up === true ? 'Up' : up === false ? 'Down' : 'Not known';
}
function nodeRow(n: ClusterNodeRow): HTMLTableRowElement {
  const where = n.sip.concat(n.http ? [n.http] : []).join(' · ');
  const tr = el('tr', { 'data-node': n.id, 'data-up': String(n.up), 'data-self': String(n.self) }, [
    cell('Node', [el('strong', { text: n.id }), n.self ? el('span', { class: 'self-mark', text: ' (this node)' }) : null, el('span', { class: 'sub', text: where })]),
    cell('State', [el('span', { class: 'badge', 'data-ok': String(n.up), text: upText(n.up) }), el('span', { class: 'sub' }, [n.seenAt > 0 ? 'heartbeat ' : 'no heartbeat yet', n.seenAt > 0 ? timeEl(n.seenAt) : null])]),
    cell('Subscriptions', [el('span', { class: 'node-subscriptions', text: String(n.subscriptions) })]),
    cell('Leases', [el('span', { class: 'node-leases', text: n.leases.length ? n.leases.join(', ') : 'none' })]),
    cell('Started', [n.startedAt ? timeEl(n.startedAt) : 'not known']),
  ]);
  return tr;
}
function jobName(j: ClusterJobRow): string {
  if (j.kind === 'trunk') return 'Trunk ' + j.name;
  if (j.kind === 'graph') return GRAPH_JOBS[j.name] ?? 'Graph ' + j.name;
  return j.name;
}
function jobRow(j: ClusterJobRow): HTMLTableRowElement {
  const holder: Child[] =
    j.holder === null
      ? [el('span', { class: 'badge', 'data-ok': 'null', text: 'Nobody' })]
      : [
          el('strong', { class: 'job-holder', text: j.holder }),
          j.self ? el('span', { class: 'self-mark', text: ' (this node)' }) : null,
          j.holderUp === false ? el('span', { class: 'sub', text: 'that node is down: the lease runs out and another node takes the job' }) : null,
        ];
  let lease = j.token !== null ? 'grant ' + j.token : '';
  if (j.expiresInMs !== null) lease += (lease ? ', ' : '') + (j.expiresInMs > 0 ? 'runs out in ' + Math.ceil(j.expiresInMs / 1000) + ' s unless renewed' : 'ran out');
  else if (j.holder !== null) lease += (lease ? ', ' : '') + 'held until released';
  return el('tr', { 'data-job': j.job, 'data-holder': j.holder ?? '' }, [
    cell('Job', [el('span', { text: jobName(j) }), el('span', { class: 'sub', text: j.job })]),
    cell('Run by', holder),
    cell('Lease', [el('span', { class: 'sub', text: lease })]),
  ]);
}
function renderCluster(c: ClusterView | undefined): void {
  const panel = $('nodes-panel');
  panel.hidden = c === undefined;
  if (c === undefined) return;
  const up = c.nodes.filter((n) => n.up === true).length;
  $('nodes-count').textContent = up + ' of ' + c.nodes.length + ' up';
  const line = $('store-line');
  line.textContent = '';
  line.setAttribute('data-ok', String(c.connected));
  const store = c.store === 'redis' ? 'Redis ' + (c.storeUrl ?? '') : c.store === 'sqlite' ? 'SQLite, this node alone' : 'in memory, this node alone';
  line.appendChild(el('span', { text: 'Store: ' + store }));
  line.appendChild(el('span', { class: 'badge', id: 'store-state', 'data-ok': String(c.connected), text: c.connected ? 'Connected' : 'Unreachable' }));
  if (!c.connected) line.appendChild(el('span', { class: 'conn-detail', text: 'This node cannot reach the shared store: it is not ready, and what it shows of the other nodes is stale.' }));
  const nodes = $('node-rows');
  nodes.textContent = '';
  for (const n of c.nodes) nodes.appendChild(nodeRow(n));
  const jobs = $('job-rows');
  jobs.textContent = '';
  for (const j of c.jobs) jobs.appendChild(jobRow(j));
  if (!c.jobs.length) jobs.appendChild(el('tr', null, [el('td', { colspan: '3', text: 'No job runs under a lease.' })]));
}
function signInButton(account: string): HTMLButtonElement {
  const b = el('button', { type: 'button', 'data-action': 'sign-in', 'aria-label': 'Sign in ' + account, text: 'Sign in' });
  b.addEventListener('click', () => {
    b.disabled = true;
    b.textContent = 'Asking for a code…';
    api('/graph/accounts/' + encodeURIComponent(account) + '/signin', { method: 'POST' })
      .then(() => api<StatusAnswer>('/status'))
      .then(renderConnectors, (e: unknown) => {
        b.disabled = false;
        b.textContent = 'Sign in (failed: ' + message(e) + ')';
      });
  });
  return b;
}

// ---- users ----
function teamsText(u: UserRow): [string, string] {
  if (!u.teams) return ['Not mapped', u.teamsExcluded || 'no Teams identity'];
  if (!u.teamsPresence) return ['Unknown', u.teams.upn || u.teams.userId || ''];
  const p = u.teamsPresence;
  const main = p.availability === p.activity ? p.availability : p.availability + ' / ' + p.activity;
  return [main, (p.statusMessage ? '"' + p.statusMessage + '" ' : '') + (u.teams.upn || '')];
}
function telephonyText(u: UserRow): [string, string] {
  if (!u.telephony) return ['No PBX state', ''];
  const t = u.telephony;
  const main = t.line + (t.dnd ? ', DND' : '') + (t.calls ? ', ' + t.calls + (t.calls === 1 ? ' call' : ' calls') : '');
  return [main, 'from ' + t.origin];
}
const FORWARD: Record<string, string> = { forwardImmediate: 'always', forwardBusy: 'when busy', forwardNoAns: 'on no answer' };
function forwardingText(u: UserRow): string {
  return u.phoneForwarding
    .filter((f) => f.on)
    .map((f) => `Forward ${FORWARD[f.type] ?? f.type}${f.to !== null ? ` to ${f.to}` : ''}`)
    .join(' · ');
}

function cell(label: string, children: Child[]): HTMLTableCellElement {
  return el('td', { 'data-label': label }, [el('div', null, children)]);
}
function renderRow(u: UserRow, tr: HTMLTableRowElement): void {
  const teams = teamsText(u);
  const tel = telephonyText(u);
  const w = u.watchersSee;
  const seen = [w.basic];
  if (w.activities.length) seen.push(w.activities.join(', '));
  if (w.calls.length) seen.push(w.calls.length + ' dialog' + (w.calls.length === 1 ? '' : 's') + ' ' + w.calls.map((c) => c.phase).join('/'));
  if (w.note) seen.push('"' + w.note + '"');
  if (w.consoleNotes) for (const n of w.consoleNotes) if (n !== w.note) seen.push('"' + n + '"');
  if (u.sourcePriority && u.sourcePriority.length) seen.push('priority ' + u.sourcePriority.join(' > '));
  const probe = el('button', { type: 'button', 'data-action': 'probe', 'aria-label': 'Test subscribe to ' + u.name, text: 'Test subscribe' });
  const hist = el('button', { type: 'button', 'data-action': 'history', 'aria-label': 'History of ' + u.name, text: 'History' });
  probe.addEventListener('click', () => openProbe(u.id));
  hist.addEventListener('click', () => openHistory(u.id));
  tr.textContent = '';
  tr.setAttribute('data-id', u.id);
  tr.setAttribute('data-state', w.state);
  tr.setAttribute('data-revision', String(u.revision));
  tr.appendChild(
    cell('User', [el('strong', { text: u.name }), el('span', { class: 'sub', text: u.id + (u.extension ? ' · ext ' + u.extension : '') + (u.aors.length ? ' · ' + u.aors[0] : '') })]),
  );
  tr.appendChild(cell('Teams', [el('span', { class: 'teams', text: teams[0] }), el('span', { class: 'sub', text: teams[1] })]));
  tr.appendChild(
    cell('Telephony', [el('span', { class: 'telephony', text: tel[0] }), el('span', { class: 'sub', text: tel[1] }), el('span', { class: 'sub forwarding', text: forwardingText(u) })]),
  );
  tr.appendChild(
    cell('Watchers see', [el('span', { class: 'state', 'data-state': w.state, text: STATES[w.state] || w.state }), el('span', { class: 'sub seen', text: seen.join(' · ') })]),
  );
  tr.appendChild(
    cell('Last change', [timeEl(u.lastChange.at), el('span', { class: 'sub', text: u.lastChange.source === 'none' ? 'no change since start' : 'by ' + u.lastChange.source })]),
  );
  tr.appendChild(cell('Actions', [el('div', { class: 'actions' }, [probe, hist])]));
}
function upsert(u: UserRow, flash: boolean): void {
  let entry = rows.get(u.id);
  if (entry && entry.data.revision > u.revision) return;
  if (!entry) {
    entry = { data: u, tr: el('tr') };
    rows.set(u.id, entry);
    $('user-rows').appendChild(entry.tr);
  }
  entry.data = u;
  renderRow(u, entry.tr);
  if (flash) {
    entry.tr.classList.remove('changed');
    void entry.tr.offsetWidth; // restart the flash animation
    entry.tr.classList.add('changed');
  }
  applyFilters();
}
function loadUsers(): Promise<void> {
  return api<{ users: UserRow[] }>('/users').then((body) => {
    const seen = new Set<string>();
    for (const u of body.users) {
      seen.add(u.id);
      upsert(u, false);
    }
    rows.forEach((entry, id) => {
      if (!seen.has(id)) {
        entry.tr.remove();
        rows.delete(id);
      }
    });
    applyFilters();
  });
}
function applyFilters(): void {
  const state = $('filter-state', HTMLSelectElement).value;
  const q = $('filter-text', HTMLInputElement).value.trim().toLowerCase();
  let shown = 0;
  rows.forEach((entry) => {
    const u = entry.data;
    const hay = [u.id, u.name, u.extension || '', (u.teams && u.teams.upn) || ''].concat(u.aors).join('\n').toLowerCase();
    const ok = (!state || u.watchersSee.state === state) && (!q || hay.indexOf(q) >= 0);
    entry.tr.hidden = !ok;
    if (ok) shown++;
  });
  $('count').textContent = shown + ' of ' + rows.size + ' users';
  $('empty').hidden = shown !== 0 || rows.size === 0;
}

// ---- live ----
function connect(): void {
  if (source) source.close();
  setLive('connecting', 'Connecting…');
  // EventSource cannot send headers: the token goes in the query
  const es = new EventSource('/api/events?token=' + encodeURIComponent(token ?? ''));
  source = es;
  es.addEventListener('open', () => {
    setLive('live', 'Live');
    loadUsers().catch(() => {});
  });
  es.addEventListener('user', (ev: MessageEvent<string>) => {
    try {
      upsert(JSON.parse(ev.data) as UserRow, true);
    } catch {
      /* ignore a bad event */
    }
  });
  es.addEventListener('connectors', (ev: MessageEvent<string>) => {
    try {
      renderConnectors(JSON.parse(ev.data) as StatusAnswer);
    } catch {
      /* ignore */
    }
  });
  es.addEventListener('error', () => {
    setLive('down', 'Reconnecting…');
    if (source && source.readyState === EventSource.CLOSED) {
      // closed for good: a refused token, or the gateway went away; ask which
      api('/status').then(
        () => setTimeout(connect, 3000),
        () => {
          if (token) setTimeout(connect, 5000);
        },
      );
    }
  });
}
function start(): void {
  $('login').hidden = true;
  $('app').hidden = false;
  api<StatusAnswer>('/status').then(
    (s) => {
      renderConnectors(s);
      connect();
    },
    () => {
      if (token) {
        setLive('down', 'Gateway not reachable');
        setTimeout(start, 5000);
      }
    },
  );
}

// ---- dialogs ----
function openProbe(id: string): void {
  probeUser = id;
  const entry = rows.get(id);
  $('probe-title').textContent = 'Test subscribe: ' + (entry ? entry.data.name : id);
  $('probe-body').textContent = '';
  $('probe-type').textContent = '';
  $('probe-panel').hidden = false;
  $('history-panel').hidden = true;
  $('dialog', HTMLDialogElement).showModal();
  runProbe();
}
function runProbe(): void {
  if (!probeUser) return;
  const ev = $('probe-event', HTMLSelectElement).value;
  const prof = $('probe-profile', HTMLSelectElement).value;
  $('probe-body').textContent = 'Loading…';
  api<RenderAnswer>('/users/' + encodeURIComponent(probeUser) + '/render?event=' + encodeURIComponent(ev) + '&profile=' + encodeURIComponent(prof)).then(
    (r) => {
      $('probe-type').textContent = 'Content-Type: ' + r.contentType;
      $('probe-body').textContent = r.body;
    },
    (e: unknown) => {
      $('probe-body').textContent = 'Failed: ' + message(e);
    },
  );
}
function historyRow(h: HistoryRow): HTMLTableRowElement {
  return el('tr', null, [
    el('td', { 'data-label': 'When' }, [timeEl(h.at)]),
    el('td', { 'data-label': 'Shown', text: (STATES[h.state] || h.state) + (h.note ? ' "' + h.note + '"' : '') }),
    el('td', { 'data-label': 'Source', text: h.source }),
  ]);
}
function openHistory(id: string): void {
  probeUser = id;
  const entry = rows.get(id);
  $('probe-title').textContent = 'History: ' + (entry ? entry.data.name : id);
  $('probe-panel').hidden = true;
  $('history-panel').hidden = false;
  const tbody = $('history-rows');
  tbody.textContent = '';
  $('history-watchers').textContent = 'Loading…';
  $('dialog', HTMLDialogElement).showModal();
  api<UserDetail>('/users/' + encodeURIComponent(id)).then(
    (d) => {
      const w = Object.keys(d.watchers).map((k) => k + ': ' + d.watchers[k]);
      $('history-watchers').textContent = 'Watchers now: ' + (w.length ? w.join(', ') : 'none');
      for (const h of d.history.slice().reverse()) tbody.appendChild(historyRow(h));
      if (!d.history.length) tbody.appendChild(el('tr', null, [el('td', { colspan: '3', text: 'No change since the gateway started.' })]));
    },
    (e: unknown) => {
      $('history-watchers').textContent = 'Failed: ' + message(e);
    },
  );
}
function resync(): void {
  if (!probeUser) return;
  const out = $('resync-result');
  out.textContent = 'Resyncing…';
  api<ResyncAnswer>('/users/' + encodeURIComponent(probeUser) + '/resync', { method: 'POST' }).then(
    (r) => {
      out.textContent = (r.ok ? 'Done: ' : 'Not done: ') + r.detail;
    },
    (e: unknown) => {
      out.textContent = 'Failed: ' + message(e);
    },
  );
}

// ---- wiring ----
for (const s of Object.keys(STATES)) $('filter-state', HTMLSelectElement).appendChild(el('option', { value: s, text: STATES[s] ?? s }));
$('filter-state').addEventListener('change', applyFilters);
$('filter-text').addEventListener('input', applyFilters);
$('probe-event').addEventListener('change', runProbe);
$('probe-profile').addEventListener('change', runProbe);
$('resync').addEventListener('click', resync);
$('dialog-close').addEventListener('click', () => {
  $('dialog', HTMLDialogElement).close();
  $('resync-result').textContent = '';
});
$('signout').addEventListener('click', () => showLogin('Signed out.'));
$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('token', HTMLInputElement);
  const t = input.value.trim();
  if (!t) return;
  sessionStorage.setItem(KEY, t);
  token = t;
  input.value = '';
  start();
});
setInterval(() => {
  document.querySelectorAll('time[data-at]').forEach((t) => {
    t.textContent = ago(Number(t.getAttribute('data-at')));
  });
}, 10000);
token = readToken();
if (token) start();
else showLogin('');
