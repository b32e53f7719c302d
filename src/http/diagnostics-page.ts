/**
 * The diagnostics page: one self-contained HTML document (inline CSS and JS,
 * no build step, nothing fetched from elsewhere) for the administrator who
 * asks "why is Anna's lamp wrong". It reads the admin API with the token
 * typed once (kept in sessionStorage) or given as ?token=, and follows
 * /api/events live. Served with a Content-Security-Policy that allows only
 * this script and this style (by hash) and requests to the gateway itself.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

const STYLE = String.raw`
:root { --ok: #1a7f37; --bad: #b42318; --unknown: #57606a; --warn: #9a6700; --fg: #1f2328; --muted: #57606a;
  --bg: #ffffff; --panel: #f6f8fa; --line: #d0d7de; --accent: #0969da; --flash: #fff8c5; }
* { box-sizing: border-box; }
html { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between;
  padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); background: var(--panel); }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.25rem 0 .5rem; }
main { padding: 0 1.25rem 2rem; max-width: 1400px; margin: 0 auto; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.live { display: inline-block; line-height: 1.5; font-size: .9rem; padding: .15rem .6rem; border-radius: 999px; border: 1px solid var(--line); background: var(--bg); }
.live[data-state="live"] { color: var(--ok); border-color: var(--ok); }
.live[data-state="down"] { color: var(--bad); border-color: var(--bad); }
button, select, input { font: inherit; }
button { cursor: pointer; border: 1px solid var(--line); background: var(--bg); border-radius: 6px; padding: .3rem .7rem; }
button:hover { background: var(--panel); }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
input, select { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .5rem; background: var(--bg); color: var(--fg); }
.login { max-width: 28rem; margin: 3rem auto; padding: 1.25rem; border: 1px solid var(--line); border-radius: 8px; background: var(--panel); }
.login label { display: block; margin-bottom: .35rem; font-weight: 600; }
.login input { width: 100%; margin-bottom: .75rem; }
.error { color: var(--bad); min-height: 1.2em; }
ul.connectors { list-style: none; padding: 0; margin: 0; display: grid; gap: .5rem; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); }
ul.connectors li { border: 1px solid var(--line); border-left: 6px solid var(--unknown); border-radius: 6px; padding: .45rem .65rem; background: var(--bg); }
ul.connectors li[data-ok="true"] { border-left-color: var(--ok); }
ul.connectors li[data-ok="false"] { border-left-color: var(--bad); background: #fff5f5; }
.conn-head { display: flex; gap: .5rem; align-items: baseline; justify-content: space-between; }
.conn-name { font-weight: 600; overflow-wrap: anywhere; }
.conn-detail { color: var(--muted); font-size: .85rem; overflow-wrap: anywhere; }
.badge { display: inline-block; font-size: .8rem; font-weight: 600; padding: 0 .5rem; border-radius: 999px; color: #fff; background: var(--unknown); white-space: nowrap; }
.badge[data-ok="true"] { background: var(--ok); }
.badge[data-ok="false"] { background: var(--bad); }
.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin-bottom: .5rem; }
.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .15rem; }
.filters input { min-width: 16rem; }
.count { color: var(--muted); font-weight: normal; font-size: .9rem; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .45rem .5rem; border-bottom: 1px solid var(--line); }
thead th { position: sticky; top: 0; background: var(--panel); font-size: .85rem; color: var(--muted); }
td .sub { display: block; color: var(--muted); font-size: .83rem; overflow-wrap: anywhere; }
tr.changed td { animation: flash 2.5s ease-out; }
@keyframes flash { from { background: var(--flash); } to { background: transparent; } }
@media (prefers-reduced-motion: reduce) { tr.changed td { animation: none; background: var(--flash); } }
.state { display: inline-block; font-weight: 600; padding: .05rem .55rem; border-radius: 999px; border: 1px solid currentColor; white-space: nowrap; }
.state[data-state="available"] { color: var(--ok); }
.state[data-state="on-the-phone"], .state[data-state="ringing"], .state[data-state="busy"], .state[data-state="dnd"] { color: var(--bad); }
.state[data-state="meeting"], .state[data-state="away"] { color: var(--warn); }
.state[data-state="offline"] { color: var(--unknown); }
.actions { display: flex; gap: .35rem; flex-wrap: wrap; }
.empty { color: var(--muted); padding: 1rem 0; }
dialog { width: min(52rem, calc(100vw - 2rem)); max-height: calc(100vh - 2rem); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem; }
dialog::backdrop { background: rgba(0,0,0,.35); }
dialog .row { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin-bottom: .75rem; }
dialog label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .15rem; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .6rem; overflow: auto; max-height: 50vh; font-size: .8rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.dialog-head { display: flex; justify-content: space-between; align-items: center; gap: 1rem; }
.dialog-head h2 { margin: 0; }
@media (max-width: 760px) {
  main { padding: 0 .75rem 2rem; }
  .filters input { min-width: 0; width: 100%; }
  .filters label { flex: 1 1 12rem; }
  table, thead, tbody, tr, td { display: block; width: 100%; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  tr { border: 1px solid var(--line); border-radius: 8px; margin-bottom: .6rem; padding: .25rem .5rem; }
  td { border: 0; padding: .3rem 0; display: grid; grid-template-columns: 8.5rem 1fr; gap: .5rem; }
  td::before { content: attr(data-label); color: var(--muted); font-size: .85rem; }
  td > div { min-width: 0; }
}
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var KEY = 'presence-gateway.admin-token';
  var STATES = { 'available': 'Available', 'ringing': 'Ringing', 'on-the-phone': 'On the phone', 'dnd': 'Do not disturb',
    'busy': 'Busy', 'meeting': 'In a meeting', 'away': 'Away', 'offline': 'Offline' };
  var $ = function (id) { return document.getElementById(id); };
  var rows = new Map();      // id -> { data, tr }
  var order = [];
  var source = null;
  var token = null;
  var probeUser = null;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'class') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function ago(ms) {
    if (!ms) return 'never';
    var s = Math.round((Date.now() - ms) / 1000);
    if (s < 0) { s = -s; return 'in ' + (s < 60 ? s + ' s' : s < 3600 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h'); }
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return new Date(ms).toLocaleString();
  }
  function timeEl(ms) {
    return el('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString(), 'data-at': String(ms), text: ago(ms) });
  }

  // ---- token ----
  function readToken() {
    var params = new URLSearchParams(location.search);
    var given = params.get('token');
    if (given) {
      sessionStorage.setItem(KEY, given);
      params.delete('token');
      var rest = params.toString();
      history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
    }
    return sessionStorage.getItem(KEY);
  }
  function showLogin(message) {
    if (source) { source.close(); source = null; }
    token = null;
    sessionStorage.removeItem(KEY);
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    setLive('down', 'Signed out');
    $('token').focus();
  }
  function api(path, init) {
    init = init || {};
    init.headers = Object.assign({ 'authorization': 'Bearer ' + token, 'accept': 'application/json' }, init.headers || {});
    return fetch('/api' + path, init).then(function (r) {
      if (r.status === 401) { showLogin('The token was not accepted. Enter the admin token (admin.token in the config).'); throw new Error('unauthorized'); }
      return r.json().then(function (body) {
        if (!r.ok && !(body && 'ok' in body)) throw new Error((body && body.message) || ('HTTP ' + r.status));
        return body;
      });
    });
  }
  function setLive(state, text) {
    var l = $('live');
    l.setAttribute('data-state', state);
    l.textContent = text;
  }

  // ---- connectors ----
  var KIND = { 'trunk': 'Trunk', 'graph-auth': 'Graph sign-in', 'graph-subscription': 'Graph subscription', 'graph-poll': 'Graph polling', 'graph-calendar': 'Graph calendar', 'webhook': 'Webhook', 'security': 'Security' };
  function renderConnectors(status) {
    var ul = $('connectors');
    ul.textContent = '';
    var list = (status && status.connectors) || [];
    if (list.length === 0) ul.appendChild(el('li', { 'data-ok': 'null' }, [el('span', { 'class': 'conn-detail', text: 'No trunks and no Graph side configured.' })]));
    list.forEach(function (c) {
      var okText = c.badge || (c.ok === true ? 'Up' : c.ok === false ? 'Down' : 'Unknown');
      var detail = c.detail;
      if (c.at && c.kind === 'webhook') detail += '; last delivery ' + ago(c.at);
      if (c.at && c.kind === 'graph-subscription') detail += ' (' + ago(c.at) + ')';
      ul.appendChild(el('li', { 'data-ok': String(c.ok), 'data-kind': c.kind }, [
        el('div', { 'class': 'conn-head' }, [
          el('span', { 'class': 'conn-name' }, [(KIND[c.kind] || c.kind) + ': ' + c.name]),
          el('span', { 'class': 'badge', 'data-ok': String(c.ok), text: okText }),
        ]),
        el('div', { 'class': 'conn-detail', text: detail }),
        c.prompt ? el('div', { 'class': 'conn-detail sign-in-code' }, ['Open ', el('a', { href: c.prompt.verificationUri, target: '_blank', rel: 'noopener', text: c.prompt.verificationUri }),
          ' and enter ', el('strong', { 'data-user-code': c.prompt.userCode, text: c.prompt.userCode }), ' (expires ' + ago(c.prompt.expiresAt) + ')']) : null,
        c.action === 'sign-in' && !c.prompt ? signInButton(c.name) : null,
      ]));
    });
  }
  function signInButton(account) {
    var b = el('button', { type: 'button', 'data-action': 'sign-in', 'aria-label': 'Sign in ' + account, text: 'Sign in' });
    b.addEventListener('click', function () {
      b.disabled = true;
      b.textContent = 'Asking for a code…';
      api('/graph/accounts/' + encodeURIComponent(account) + '/signin', { method: 'POST' })
        .then(function () { return api('/status'); })
        .then(renderConnectors, function (e) { b.disabled = false; b.textContent = 'Sign in (failed: ' + e.message + ')'; });
    });
    return b;
  }

  // ---- users ----
  function teamsText(u) {
    if (!u.teams) return ['Not mapped', u.teamsExcluded || 'no Teams identity'];
    if (!u.teamsPresence) return ['Unknown', u.teams.upn || u.teams.userId || ''];
    var p = u.teamsPresence;
    var main = p.availability === p.activity ? p.availability : p.availability + ' / ' + p.activity;
    return [main, (p.statusMessage ? '"' + p.statusMessage + '" ' : '') + (u.teams.upn || '')];
  }
  function telephonyText(u) {
    if (!u.telephony) return ['No PBX state', ''];
    var t = u.telephony;
    var main = t.line + (t.dnd ? ', DND' : '') + (t.calls ? ', ' + t.calls + (t.calls === 1 ? ' call' : ' calls') : '');
    return [main, 'from ' + t.origin];
  }
  var FORWARD = { forwardImmediate: 'always', forwardBusy: 'when busy', forwardNoAns: 'on no answer' };
  function forwardingText(u) {
    return (u.phoneForwarding || []).filter(function (f) { return f.on; }).map(function (f) { return 'Forward ' + (FORWARD[f.type] || f.type) + (f.to ? ' to ' + f.to : ''); }).join(' · ');
  }
  function cell(label, children) { return el('td', { 'data-label': label }, [el('div', null, children)]); }
  function renderRow(u, tr) {
    var teams = teamsText(u);
    var tel = telephonyText(u);
    var w = u.watchersSee;
    var seen = [w.basic];
    if (w.activities.length) seen.push(w.activities.join(', '));
    if (w.calls.length) seen.push(w.calls.length + ' dialog' + (w.calls.length === 1 ? '' : 's') + ' ' + w.calls.map(function (c) { return c.phase; }).join('/'));
    if (w.note) seen.push('"' + w.note + '"');
    if (w.consoleNotes) for (var ni = 0; ni < w.consoleNotes.length; ni++) if (w.consoleNotes[ni] !== w.note) seen.push('"' + w.consoleNotes[ni] + '"');
    if (u.sourcePriority && u.sourcePriority.length) seen.push('priority ' + u.sourcePriority.join(' > '));
    var probe = el('button', { type: 'button', 'data-action': 'probe', 'aria-label': 'Test subscribe to ' + u.name, text: 'Test subscribe' });
    var hist = el('button', { type: 'button', 'data-action': 'history', 'aria-label': 'History of ' + u.name, text: 'History' });
    probe.addEventListener('click', function () { openProbe(u.id); });
    hist.addEventListener('click', function () { openHistory(u.id); });
    tr.textContent = '';
    tr.setAttribute('data-id', u.id);
    tr.setAttribute('data-state', w.state);
    tr.setAttribute('data-revision', String(u.revision));
    tr.appendChild(cell('User', [el('strong', { text: u.name }), el('span', { 'class': 'sub', text: u.id + (u.extension ? ' · ext ' + u.extension : '') + (u.aors.length ? ' · ' + u.aors[0] : '') })]));
    tr.appendChild(cell('Teams', [el('span', { 'class': 'teams', text: teams[0] }), el('span', { 'class': 'sub', text: teams[1] })]));
    tr.appendChild(cell('Telephony', [el('span', { 'class': 'telephony', text: tel[0] }), el('span', { 'class': 'sub', text: tel[1] }), el('span', { 'class': 'sub forwarding', text: forwardingText(u) })]));
    tr.appendChild(cell('Watchers see', [el('span', { 'class': 'state', 'data-state': w.state, text: STATES[w.state] || w.state }), el('span', { 'class': 'sub seen', text: seen.join(' · ') })]));
    tr.appendChild(cell('Last change', [timeEl(u.lastChange.at), el('span', { 'class': 'sub', text: u.lastChange.source === 'none' ? 'no change since start' : 'by ' + u.lastChange.source })]));
    tr.appendChild(cell('Actions', [el('div', { 'class': 'actions' }, [probe, hist])]));
  }
  function upsert(u, flash) {
    var entry = rows.get(u.id);
    if (entry && entry.data.revision > u.revision) return;
    if (!entry) {
      entry = { data: u, tr: el('tr') };
      rows.set(u.id, entry);
      order.push(u.id);
      $('user-rows').appendChild(entry.tr);
    }
    entry.data = u;
    renderRow(u, entry.tr);
    if (flash) {
      entry.tr.classList.remove('changed');
      void entry.tr.offsetWidth;
      entry.tr.classList.add('changed');
    }
    applyFilters();
  }
  function loadUsers() {
    return api('/users').then(function (body) {
      var seen = new Set();
      body.users.forEach(function (u) { seen.add(u.id); upsert(u, false); });
      rows.forEach(function (entry, id) { if (!seen.has(id)) { entry.tr.remove(); rows.delete(id); } });
      order = order.filter(function (id) { return seen.has(id); });
      applyFilters();
    });
  }
  function applyFilters() {
    var state = $('filter-state').value;
    var q = $('filter-text').value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (entry) {
      var u = entry.data;
      var hay = [u.id, u.name, u.extension || '', (u.teams && u.teams.upn) || ''].concat(u.aors).join('\n').toLowerCase();
      var ok = (!state || u.watchersSee.state === state) && (!q || hay.indexOf(q) >= 0);
      entry.tr.hidden = !ok;
      if (ok) shown++;
    });
    $('count').textContent = shown + ' of ' + rows.size + ' users';
    $('empty').hidden = shown !== 0 || rows.size === 0;
  }

  // ---- live ----
  function connect() {
    if (source) source.close();
    setLive('connecting', 'Connecting…');
    source = new EventSource('/api/events?token=' + encodeURIComponent(token));
    source.addEventListener('open', function () {
      setLive('live', 'Live');
      loadUsers().catch(function () {});
    });
    source.addEventListener('user', function (ev) {
      try { upsert(JSON.parse(ev.data), true); } catch (e) { /* ignore a bad event */ }
    });
    source.addEventListener('connectors', function (ev) {
      try { renderConnectors(JSON.parse(ev.data)); } catch (e) { /* ignore */ }
    });
    source.addEventListener('error', function () {
      setLive('down', 'Reconnecting…');
      if (source && source.readyState === EventSource.CLOSED) {
        // closed for good: a refused token, or the gateway went away; ask which
        api('/status').then(function () { setTimeout(connect, 3000); }, function () { if (token) setTimeout(connect, 5000); });
      }
    });
  }
  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    api('/status').then(function (s) { renderConnectors(s); connect(); }, function (e) {
      if (token) { setLive('down', 'Gateway not reachable'); setTimeout(start, 5000); }
    });
  }

  // ---- dialogs ----
  function openProbe(id) {
    probeUser = id;
    var entry = rows.get(id);
    $('probe-title').textContent = 'Test subscribe: ' + (entry ? entry.data.name : id);
    $('probe-body').textContent = '';
    $('probe-type').textContent = '';
    $('probe-panel').hidden = false;
    $('history-panel').hidden = true;
    $('dialog').showModal();
    runProbe();
  }
  function runProbe() {
    if (!probeUser) return;
    var ev = $('probe-event').value, prof = $('probe-profile').value;
    $('probe-body').textContent = 'Loading…';
    api('/users/' + encodeURIComponent(probeUser) + '/render?event=' + encodeURIComponent(ev) + '&profile=' + encodeURIComponent(prof)).then(function (r) {
      $('probe-type').textContent = 'Content-Type: ' + r.contentType;
      $('probe-body').textContent = r.body;
    }, function (e) { $('probe-body').textContent = 'Failed: ' + e.message; });
  }
  function openHistory(id) {
    probeUser = id;
    var entry = rows.get(id);
    $('probe-title').textContent = 'History: ' + (entry ? entry.data.name : id);
    $('probe-panel').hidden = true;
    $('history-panel').hidden = false;
    var tbody = $('history-rows');
    tbody.textContent = '';
    $('history-watchers').textContent = 'Loading…';
    $('dialog').showModal();
    api('/users/' + encodeURIComponent(id)).then(function (d) {
      var w = Object.keys(d.watchers).map(function (k) { return k + ': ' + d.watchers[k]; });
      $('history-watchers').textContent = 'Watchers now: ' + (w.length ? w.join(', ') : 'none');
      d.history.slice().reverse().forEach(function (h) {
        tbody.appendChild(el('tr', null, [
          el('td', { 'data-label': 'When' }, [timeEl(h.at)]),
          el('td', { 'data-label': 'Shown', text: (STATES[h.state] || h.state) + (h.note ? ' "' + h.note + '"' : '') }),
          el('td', { 'data-label': 'Source', text: h.source }),
        ]));
      });
      if (!d.history.length) tbody.appendChild(el('tr', null, [el('td', { colspan: '3', text: 'No change since the gateway started.' })]));
    }, function (e) { $('history-watchers').textContent = 'Failed: ' + e.message; });
  }
  function resync() {
    if (!probeUser) return;
    var out = $('resync-result');
    out.textContent = 'Resyncing…';
    api('/users/' + encodeURIComponent(probeUser) + '/resync', { method: 'POST' }).then(function (r) {
      out.textContent = (r.ok ? 'Done: ' : 'Not done: ') + r.detail;
    }, function (e) { out.textContent = 'Failed: ' + e.message; });
  }

  // ---- wiring ----
  Object.keys(STATES).forEach(function (s) { $('filter-state').appendChild(el('option', { value: s, text: STATES[s] })); });
  $('filter-state').addEventListener('change', applyFilters);
  $('filter-text').addEventListener('input', applyFilters);
  $('probe-event').addEventListener('change', runProbe);
  $('probe-profile').addEventListener('change', runProbe);
  $('resync').addEventListener('click', resync);
  $('dialog-close').addEventListener('click', function () { $('dialog').close(); $('resync-result').textContent = ''; });
  $('signout').addEventListener('click', function () { showLogin('Signed out.'); });
  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = $('token').value.trim();
    if (!t) return;
    sessionStorage.setItem(KEY, t);
    token = t;
    $('token').value = '';
    start();
  });
  setInterval(function () {
    document.querySelectorAll('time[data-at]').forEach(function (t) { t.textContent = ago(Number(t.getAttribute('data-at'))); });
  }, 10000);
  token = readToken();
  if (token) start(); else showLogin('');
})();
`;

const BODY = `
<header class="top">
  <h1>Presence gateway diagnostics</h1>
  <div class="actions">
    <span id="live" class="live" role="status" aria-live="polite" data-state="down">Not connected</span>
    <button type="button" id="signout">Sign out</button>
  </div>
</header>
<main>
  <section id="login" class="login" hidden aria-labelledby="login-h">
    <h2 id="login-h">Sign in</h2>
    <form id="login-form">
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required spellcheck="false">
      <button type="submit" class="primary">Open diagnostics</button>
      <p id="login-error" class="error" role="alert"></p>
    </form>
  </section>
  <div id="app" hidden>
    <section aria-labelledby="conn-h">
      <h2 id="conn-h">Connectors</h2>
      <ul id="connectors" class="connectors"></ul>
    </section>
    <section aria-labelledby="users-h">
      <h2 id="users-h">Users <span id="count" class="count"></span></h2>
      <div class="filters" role="search">
        <label for="filter-state">What watchers see
          <select id="filter-state"><option value="">All states</option></select>
        </label>
        <label for="filter-text">Search
          <input id="filter-text" type="search" placeholder="Name, id, extension, address" autocomplete="off">
        </label>
      </div>
      <table id="users">
        <caption class="sr-only">Users with their Teams presence, telephony state and what SIP watchers see</caption>
        <thead><tr>
          <th scope="col">User</th><th scope="col">Teams presence</th><th scope="col">Telephony</th>
          <th scope="col">Watchers see</th><th scope="col">Last change</th><th scope="col"><span class="sr-only">Actions</span></th>
        </tr></thead>
        <tbody id="user-rows"></tbody>
      </table>
      <p id="empty" class="empty" hidden>No user matches the filters.</p>
    </section>
  </div>
  <dialog id="dialog" aria-labelledby="probe-title">
    <div class="dialog-head">
      <h2 id="probe-title">Test subscribe</h2>
      <button type="button" id="dialog-close">Close</button>
    </div>
    <div id="probe-panel">
      <div class="row">
        <label for="probe-event">Event package
          <select id="probe-event"><option value="presence">presence (PIDF)</option><option value="dialog">dialog (dialog-info)</option></select>
        </label>
        <label for="probe-profile">Watcher profile
          <select id="probe-profile"><option value="rfc">RFC</option><option value="cisco">Cisco</option><option value="polycom">Polycom</option><option value="asterisk">Asterisk</option></select>
        </label>
      </div>
      <p id="probe-type" class="count"></p>
      <pre id="probe-body" aria-live="polite"></pre>
    </div>
    <div id="history-panel" hidden>
      <p id="history-watchers" class="count"></p>
      <table><thead><tr><th scope="col">When</th><th scope="col">Watchers saw</th><th scope="col">Source</th></tr></thead>
        <tbody id="history-rows"></tbody></table>
    </div>
    <div class="row">
      <button type="button" id="resync">Resync this user</button>
      <span id="resync-result" role="status"></span>
    </div>
  </dialog>
</main>`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page, complete. */
export const DIAGNOSTICS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Presence gateway diagnostics</title>
<style>${STYLE}</style>
</head>
<body>${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`;

/** Only this page's own script and style, and requests back to the gateway. */
export const DIAGNOSTICS_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** GET / and GET /diagnostics: the page (it holds no data; the data needs the token). */
export const diagnosticsPage: FastifyPluginAsync = async (app) => {
  const send = async (_request: unknown, reply: FastifyReply) =>
    reply
      .header('content-security-policy', DIAGNOSTICS_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(DIAGNOSTICS_HTML);
  app.get('/', send);
  app.get('/diagnostics', send);
};
