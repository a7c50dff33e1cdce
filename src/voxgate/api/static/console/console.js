// The operator console: framework-free, talking only to this server's /v2 API with an admin
// API key kept in sessionStorage (this tab only). A 401 or 403 brings the sign-in form back.

const KEY = 'voxgate-console-key';
const POLL_MS = 2000;
const $ = (selector) => document.querySelector(selector);

class Refused extends Error {
  constructor(status) {
    super(status === 403
      ? 'This key may not read the console (403): sign in with an admin key.'
      : 'That key was refused (401).');
    this.status = status;
  }
}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new Refused(401);
  const response = await fetch('/v2' + path, {
    ...options,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
  });
  if (response.status === 401 || response.status === 403) throw new Refused(response.status);
  const body = await response.json();
  if (!response.ok) throw new Error((body.errors && body.errors[0] && body.errors[0].detail) || response.statusText);
  return body;
}

function show(id) {
  for (const view of ['signin', 'live', 'credential', 'call']) $('#' + view).hidden = view !== id;
  $('#signout').hidden = id === 'signin';
}

function signInAgain(error) {
  sessionStorage.removeItem(KEY);
  $('#signin-error').textContent = error.message;
  show('signin');
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text == null ? '' : String(text);
  td.title = td.textContent;
  return td;
}

// A record's name with its id as the tooltip; ``reveal``: a click shows the id in its place
// (a credential's click opens the credential instead, which shows its id).
function named(name, id, reveal = false) {
  const td = cell(name || id);
  if (id) {
    td.title = id;
    td.dataset.id = id;
  }
  if (id && reveal) {
    td.classList.add('named');
    td.addEventListener('click', (event) => {
      if (td.textContent === id) return;
      event.stopPropagation();
      td.textContent = id;
    });
  }
  return td;
}

function rows(tbody, items, build) {
  tbody.replaceChildren(...items.map((item) => {
    const tr = document.createElement('tr');
    build(tr, item);
    return tr;
  }));
}

function ago(iso) {
  if (!iso) return '';
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return new Date(iso).toLocaleString();
}

function until(iso) {
  if (!iso) return 'never';
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (seconds <= 0) return 'expired';
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// -- live view ------------------------------------------------------------------------------
async function refreshLive() {
  const params = new URLSearchParams({ 'page[size]': '250' });
  const conn = $('#filter-connection').value.trim();
  const name = $('#filter-name').value.trim();
  if (conn) params.set('filter[connection_id]', conn);
  if (name) params.set('filter[name]', name);
  const [regs, nodes, calls, stats] = await Promise.all([
    api('/registrations?' + params), api('/sessions'), api('/calls'), api('/stats'),
  ]);
  $('#registrations-count').textContent = `(${regs.meta.total_results})`;
  rows($('#registrations tbody'), regs.data, (tr, r) => {
    tr.className = 'registration';
    tr.dataset.credential = r.credential_id || '';
    tr.dataset.node = r.node_id;
    tr.dataset.transport = r.transport;
    tr.append(named(r.credential_name || r.sip_username, r.credential_id),
      named(r.connection_name, r.connection_id, true), cell(r.transport), cell(r.user_agent),
      cell(`${r.ip_address}:${r.port}`), cell(r.node_id), cell(r.registration_policy),
      cell(ago(r.registered_at)), cell(until(r.expires_at)));
    if (r.credential_id) tr.addEventListener('click', () => { location.hash = `#credential/${r.credential_id}`; });
  });
  rows($('#nodes tbody'), nodes.data, (tr, n) => {
    tr.dataset.node = n.node_id;
    tr.append(cell(n.node_id), cell(n.sessions), cell(n.registered), cell(n.detached),
      cell(n.calls), cell(ago(n.reported_at)));
  });
  rows($('#calls tbody'), calls.data, (tr, c) => {
    tr.append(cell(c.from), cell(c.to), cell(c.state), cell(ago(c.started_at)),
      cell(`${c.caller_node} → ${c.sip_trunk_id ? `trunk ${c.sip_trunk_id}` : c.callee_node}`));
  });
  chart($('#chart-logins'), stats.data, [['logins_ok', '#2557d6'], ['logins_failed', '#c0352b']]);
  chart($('#chart-sessions'), stats.data, [['sessions', '#1f8a5b']]);
  chart($('#chart-revocations'), stats.data, [['revocations', '#b26b00']]);
}

// Bars per minute, one colour per series side by side, scaled to the largest value; SVG by hand.
function chart(svg, data, series) {
  const NS = 'http://www.w3.org/2000/svg';
  const width = 600, height = 110, slots = 60;
  const recent = data.slice(-slots);
  const top = Math.max(1, ...recent.flatMap((row) => series.map(([key]) => row[key] || 0)));
  const slot = width / slots, bar = (slot - 1) / series.length;
  const shapes = [];
  recent.forEach((row, i) => {
    series.forEach(([key, colour], j) => {
      const value = row[key] || 0;
      const rect = document.createElementNS(NS, 'rect');
      const h = (value / top) * height;
      rect.setAttribute('x', String((slots - recent.length + i) * slot + j * bar));
      rect.setAttribute('y', String(height - h + 5));
      rect.setAttribute('width', String(Math.max(bar, 0.5)));
      rect.setAttribute('height', String(h));
      rect.setAttribute('fill', colour);
      rect.dataset.key = key;
      rect.dataset.value = String(value);
      const title = document.createElementNS(NS, 'title');
      title.textContent = `${new Date(row.minute).toLocaleTimeString()}: ${key} ${value}`;
      rect.append(title);
      shapes.push(rect);
    });
  });
  const label = document.createElementNS(NS, 'text');
  label.setAttribute('x', '4'); label.setAttribute('y', '14'); label.setAttribute('font-size', '11');
  label.setAttribute('fill', '#667085');
  label.textContent = `max ${top}`;
  svg.replaceChildren(label, ...shapes);
}

// -- credential page ------------------------------------------------------------------------
let shown = null;

async function refreshCredential(id) {
  const [cred, audit, regs] = await Promise.all([
    api(`/telephony_credentials/${id}`),
    api(`/telephony_credentials/${id}/audit?page[size]=250`),
    api(`/registrations?filter[credential_id]=${encodeURIComponent(id)}`),
  ]);
  const c = cred.data;
  $('#credential-title').textContent = `${c.name} (${c.sip_username})`;
  const attributes = {
    id: c.id, status: c.status, connection: c.connection_id, tag: c.tag, 'expires at': c.expires_at,
    'registration policy': c.registration_policy || "the connection's",
    'max registrations': c.max_registrations || 'default', created: c.created_at,
  };
  $('#credential-attributes').replaceChildren(...Object.entries(attributes).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v == null ? '' : String(v);
    dd.dataset.field = k;
    return [dt, dd];
  }));
  $('#deactivate').disabled = c.status !== 'active';
  $('#activate').disabled = c.status !== 'inactive';
  rows($('#credential-registrations tbody'), regs.data, (tr, r) => {
    tr.className = 'registration';
    tr.append(cell(r.transport), cell(r.user_agent), cell(r.contact || `${r.ip_address}:${r.port}`),
      cell(r.node_id), cell(ago(r.registered_at)));
  });
  const events = [...audit.data].sort((a, b) => Date.parse(a.occurred_at) - Date.parse(b.occurred_at));
  $('#timeline').replaceChildren(...events.map((event) => {
    const li = document.createElement('li');
    li.dataset.kind = event.kind;
    const time = document.createElement('time');
    time.dateTime = event.occurred_at;
    time.textContent = new Date(event.occurred_at).toLocaleTimeString();
    const kind = document.createElement('span');
    kind.className = `kind ${event.kind}`;
    kind.textContent = event.kind;
    li.append(time, kind, document.createTextNode(describe(event)));
    if (event.kind === 'call_report' && event.details && event.details.call_id) {
      const link = document.createElement('a');
      link.href = `#call/${encodeURIComponent(event.details.call_id)}`;
      link.textContent = ' call quality';
      link.className = 'call-link';
      li.append(link);
    }
    return li;
  }));
}

function describe(event) {
  const d = event.details || {};
  const parts = [];
  if (d.reason) parts.push(d.reason);
  if (d.address) parts.push(`from ${d.address}`);
  if (d.user_agent) parts.push(d.user_agent);
  if (d.by && d.by.user_agent) parts.push(`by ${d.by.user_agent} on ${d.by.node_id || ''}`);
  if (d.addresses) parts.push(d.addresses.join(', '));
  if (d.action) parts.push(`→ ${d.action}`);
  return parts.join(' · ');
}

async function act(action, question) {
  if (!shown || !window.confirm(question)) return;
  try {
    await api(`/telephony_credentials/${shown}/actions/${action}`, { method: 'POST' });
    $('#credential-message').textContent = `${action.replace('_', ' ')}: done`;
    await refreshCredential(shown);
  } catch (error) {
    if (error instanceof Refused) return signInAgain(error);
    $('#credential-message').textContent = error.message;
  }
}

// -- a call's quality ---------------------------------------------------------------------
async function refreshCall(callId) {
  const q = (await api(`/call_quality/${encodeURIComponent(callId)}`)).data;
  $('#call-title').textContent = callId;
  $('#call-back').href = q.credential_id ? `#credential/${q.credential_id}` : '#live';
  const figures = {
    duration: q.duration_seconds == null ? '' : `${q.duration_seconds} s`,
    'RTT avg / worst': `${q.rtt_ms_avg ?? '–'} / ${q.rtt_ms_worst ?? '–'} ms`,
    'jitter avg / worst': `${q.jitter_ms_avg ?? '–'} / ${q.jitter_ms_worst ?? '–'} ms`,
    'packet loss': `${q.packet_loss_percent} %`,
    'packets sent / received': `${q.packets_sent ?? '–'} / ${q.packets_received ?? '–'}`,
    MOS: q.mos ?? '–', reports: q.reports,
  };
  $('#call-summary').replaceChildren(...Object.entries(figures).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = String(v); dd.dataset.field = k;
    return [dt, dd];
  }));
  const rows = q.series.map((row) => ({ ...row, minute: row.at }));
  chart($('#chart-quality'), rows, [['rtt_ms', '#2557d6'], ['jitter_ms', '#b26b00']]);
}

// -- wiring ---------------------------------------------------------------------------------
async function tick() {
  if (!sessionStorage.getItem(KEY)) return show('signin');
  const [view, id] = location.hash.replace('#', '').split('/');
  try {
    if (view === 'credential' && id) {
      shown = id;
      show('credential');
      await refreshCredential(id);
    } else if (view === 'call' && id) {
      shown = null;
      show('call');
      await refreshCall(decodeURIComponent(id));
    } else {
      shown = null;
      show('live');
      await refreshLive();
    }
    document.body.dataset.loaded = String(Date.now());
  } catch (error) {
    if (error instanceof Refused) signInAgain(error);
    else console.warn('voxgate console:', error);
  }
}

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $('#key').value.trim());
  $('#key').value = '';
  $('#signin-error').textContent = '';
  await tick();
});
$('#signout').addEventListener('click', () => { sessionStorage.removeItem(KEY); show('signin'); });
$('#deactivate').addEventListener('click', () => act('deactivate', 'Deactivate this credential? Its sessions end now.'));
$('#activate').addEventListener('click', () => act('activate', 'Activate this credential?'));
$('#revoke-tokens').addEventListener('click', () => act('revoke_tokens', 'Revoke every token of this credential? Its sessions end now.'));
for (const input of ['#filter-connection', '#filter-name']) $(input).addEventListener('input', () => tick());
window.addEventListener('hashchange', () => tick());
setInterval(tick, POLL_MS);
tick();
