/**
 * One registration for every tab of an origin (voxgate-telnyx's `shareAcrossTabs`).
 *
 * The tabs elect a leader with the Web Locks API (`navigator.locks`), or, where it is missing,
 * with a heartbeat election over `BroadcastChannel`. Only the leader's TelnyxRTC opens the
 * socket and registers. Followers hear the leader's events over a `BroadcastChannel`: ready,
 * inbound call updates (each follower's app sees a call object it can answer or hang up) and
 * warnings. The 34001 token warning stays with the leader, so a token is refreshed once for
 * all tabs.
 *
 * Answering in a follower moves the call to that tab, because the audio must play where the
 * user clicked and an RTCPeerConnection cannot cross tabs. The follower takes the lead (it
 * steals the lock) and logs in *as the leader's session*: it seeds the SDK's own reconnect
 * keys (`telnyx-voice-sdk-id`, `telnyx-voice-sdk-session-id` and its timestamp), so the SDK
 * sends `reconnection: true` with the leader's sessid, and adds `voxgate_takeover` to its
 * userVariables. voxgate reattaches the session, with its registration and the ringing call,
 * to the follower's socket, closes the old leader's, and offers the ringing call again; the
 * helper answers it. The old leader stops its SDK from reconnecting and, once the new leader
 * is ready, purges its copy of the call without a bye (the call lives on in the new tab).
 *
 * When the leader tab closes, the lock passes to a waiting tab, which logs in with a fresh
 * token from `getToken` (the app's own token endpoint): one new socket, one login.
 */

const SDK_ID = 'telnyx-voice-sdk-id';
const SESSION_ID = 'telnyx-voice-sdk-session-id';
const SESSION_ID_AT = 'telnyx-voice-sdk-session-id-stored-at';
const TOKEN_EXPIRING = 34001;
const BEAT_MS = 500; // the fallback election: a leader's heartbeat ...
const SILENCE_MS = 1500; // ... missed for this long starts an election
const CLAIM_MS = 300; // ... and a claim stands if nobody lower-ranked contests it in this time

export class TabShare {
  /**
   * @param client   the TelnyxRTC instance of this tab
   * @param connect  the real connect (with voxgate's wiring), called once this tab leads
   * @param emit     (event, payload) => void: deliver an event to this tab's app handlers
   * @param options  { getToken?: () => Promise<string>|string, channel?: string }
   */
  constructor(client, connect, emit, options = {}, subscribe) {
    this.client = client;
    this.connect = connect;
    this.emit = emit;
    this.subscribe = subscribe; // (event, handler) => void: listen to the SDK itself
    this.getToken = options.getToken;
    this.name = 'voxgate-telnyx:' + (options.channel || 'default');
    this.id = Math.random().toString(36).slice(2) + Date.now().toString(36);
    this.role = 'follower';
    this.calls = new Map(); // follower: the leader's inbound calls, as call objects for the app
    this.known = null; // the leader's session: { sessid, voiceSdkId }
    this.readyShown = false;
    this.pendingAnswer = null; // a call the user answered here, before this tab led
    this.channel = new BroadcastChannel(this.name);
    this.channel.onmessage = (event) => this.onMessage(event.data || {});
    this.lease = typeof navigator !== 'undefined' && navigator.locks
      ? new LockLease(this.name, (handoff) => this.lead(handoff))
      : new ChannelLease(this, (handoff) => this.lead(handoff));
    window.addEventListener('pagehide', () => this.lease.leave());
  }

  start() {
    this.post({ t: 'hello' });
    this.lease.queue();
    return Promise.resolve();
  }

  post(message) {
    this.channel.postMessage({ ...message, from: this.id });
  }

  // -- leading ------------------------------------------------------------------------------
  async lead(handoff) {
    this.role = 'leader';
    this.post({ t: 'leading', handoff });
    const client = this.client;
    const variables = { ...(client.options.userVariables || {}) };
    delete variables.voxgate_takeover;
    if (handoff && this.known && this.known.sessid) {
      // The SDK resumes a session when these say so: the leader's session becomes ours.
      sessionStorage.setItem(SDK_ID, this.known.voiceSdkId || 'voxgate-tab');
      sessionStorage.setItem(SESSION_ID, this.known.sessid);
      sessionStorage.setItem(SESSION_ID_AT, String(Date.now()));
      variables.voxgate_takeover = true;
    } else {
      for (const key of [SDK_ID, SESSION_ID, SESSION_ID_AT]) sessionStorage.removeItem(key);
    }
    client.options.userVariables = variables;
    if (this.getToken) client.options.login_token = await this.getToken();
    this.calls.clear();
    this.wire();
    this.connect.call(client);
  }

  wire() {
    if (this.wired) return;
    this.wired = true;
    this.subscribe('telnyx.ready', () => {
      if (this.role === 'leader') this.post(this.state());
    });
    this.subscribe('telnyx.notification', (notice) => {
      const call = notice && notice.type === 'callUpdate' && notice.call;
      if (!call || this.role !== 'leader') return;
      if (call.id === this.pendingAnswer && call.state === 'ringing') {
        this.pendingAnswer = null;
        call.answer();
      }
      if (call.direction === 'inbound') this.post({ t: 'call', call: describe(call) });
    });
    this.subscribe('telnyx.warning', (payload) => {
      const warning = (payload && payload.warning) || payload || {};
      if (this.role === 'leader' && warning.code !== TOKEN_EXPIRING) {
        this.post({ t: 'warning', payload: JSON.parse(JSON.stringify(payload)) });
      }
    });
  }

  state() {
    const calls = Object.values(this.client.calls || {})
      .filter((c) => c.direction === 'inbound')
      .map(describe);
    const ready = Boolean(this.client.connected && this.client.sessionid);
    return {
      t: 'state',
      ready,
      sessid: this.client.sessionid,
      voiceSdkId: sessionStorage.getItem(SDK_ID),
      calls,
    };
  }

  demote() {
    if (this.role !== 'leader') return;
    this.role = 'follower';
    this.readyShown = true; // the app saw ready as the leader; a follower is ready too
    // The new leader is resuming our session: our SDK must not reconnect and take it back.
    this.client._autoReconnect = false;
    this.retiring = true;
  }

  retire() {
    // The session lives in the new leader's tab now: drop our copy of it without a bye.
    this.retiring = false;
    const client = this.client;
    if (typeof client.serverDisconnect === 'function') client.serverDisconnect();
    this.lease.queue();
  }

  // -- following ----------------------------------------------------------------------------
  onMessage(msg) {
    if (msg.from === this.id) return;
    this.lease.heard(msg);
    if (msg.t === 'leading' && this.role === 'leader') this.demote(); // another tab has the lead
    if (msg.t === 'hello' && this.role === 'leader') this.post(this.state());
    if (msg.t === 'token' && this.role === 'leader') this.client.updateToken(msg.token).catch(() => {});
    if (msg.t === 'hangup' && this.role === 'leader') {
      const call = this.client.calls && this.client.calls[msg.callId];
      if (call) call.hangup();
    }
    if (this.role === 'leader') return;
    if (msg.t === 'state') this.followState(msg);
    if (msg.t === 'call') this.followCall(msg.call);
    if (msg.t === 'warning') this.emit('telnyx.warning', msg.payload);
  }

  followState(msg) {
    if (msg.sessid) this.known = { sessid: msg.sessid, voiceSdkId: msg.voiceSdkId };
    if (this.retiring && msg.ready) this.retire();
    const live = new Set(msg.calls.map((c) => c.id));
    for (const [id, call] of this.calls) {
      if (!live.has(id)) this.followCall({ ...describe(call), state: 'hangup' });
    }
    for (const call of msg.calls) this.followCall(call);
    if (msg.ready && !this.readyShown) {
      this.readyShown = true;
      this.emit('telnyx.ready', {});
    }
  }

  followCall(info) {
    let call = this.calls.get(info.id);
    if (!call) {
      if (['hangup', 'destroy', 'purge'].includes(info.state)) return;
      call = followerCall(this, info);
      this.calls.set(info.id, call);
    }
    Object.assign(call, { state: info.state, cause: info.cause, causeCode: info.causeCode });
    if (['hangup', 'destroy', 'purge'].includes(info.state)) this.calls.delete(info.id);
    this.emit('telnyx.notification', { type: 'callUpdate', call });
  }

  answerHere(callId) {
    if (this.role === 'leader') return;
    this.pendingAnswer = callId;
    this.lease.take();
  }

  updateToken(token) {
    this.post({ t: 'token', token });
    return Promise.resolve();
  }
}

function describe(call) {
  const o = call.options || {};
  return {
    id: call.id,
    state: call.state,
    direction: call.direction,
    cause: call.cause || null,
    causeCode: call.causeCode || null,
    remoteCallerName: o.remoteCallerName,
    remoteCallerNumber: o.remoteCallerNumber,
    destinationNumber: o.destinationNumber,
  };
}

/** The call object a follower's app gets: what it reads, and answer/hangup that work. */
function followerCall(share, info) {
  return {
    id: info.id,
    direction: info.direction,
    state: info.state,
    options: {
      remoteCallerName: info.remoteCallerName,
      remoteCallerNumber: info.remoteCallerNumber,
      destinationNumber: info.destinationNumber,
    },
    answer: () => share.answerHere(info.id),
    hangup: () => share.post({ t: 'hangup', callId: info.id }),
  };
}

/** Leadership with the Web Locks API: the lock's holder leads; a waiting tab gets it when the
 * holder's tab closes; a tab that must lead now (an answer) steals it. */
class LockLease {
  constructor(name, onLead) {
    this.name = name;
    this.onLead = onLead;
  }

  queue(steal = false) {
    if (this.waiting) this.waiting.abort();
    const waiting = steal ? null : new AbortController();
    this.waiting = waiting;
    const options = steal ? { steal: true } : { signal: waiting.signal };
    navigator.locks
      .request(this.name, options, () => new Promise((release) => {
        if (this.waiting === waiting) this.waiting = null;
        this.release = release;
        this.onLead(steal);
      }))
      .catch(() => {
        // AbortError: our queued request was withdrawn, or our lock was stolen (the thief
        // says so on the channel: 'leading').
        if (!this.waiting) this.release = null;
      });
  }

  take() {
    this.queue(true);
  }

  heard() {}

  leave() {
    if (this.release) this.release();
  }
}

/** Leadership without Web Locks: the leader beats on the channel; after a silence the tabs
 * claim, and the lowest id among the claims of one round leads. */
class ChannelLease {
  constructor(share, onLead) {
    this.share = share;
    this.onLead = onLead;
    this.lastBeat = 0;
    this.claims = new Set();
  }

  queue() {
    this.lastBeat = Date.now();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), BEAT_MS);
  }

  tick() {
    const share = this.share;
    if (share.role === 'leader') return share.post({ t: 'beat' });
    if (this.claiming || Date.now() - this.lastBeat < SILENCE_MS) return;
    this.claiming = true;
    this.claims = new Set([share.id]);
    share.post({ t: 'claim' });
    setTimeout(() => {
      this.claiming = false;
      const winner = [...this.claims].sort()[0];
      if (winner === share.id && Date.now() - this.lastBeat >= SILENCE_MS) this.onLead(false);
    }, CLAIM_MS);
  }

  heard(msg) {
    if (msg.t === 'beat' || msg.t === 'leading') this.lastBeat = Date.now();
    if (msg.t === 'claim') {
      this.claims.add(msg.from);
      if (this.share.role === 'leader') this.share.post({ t: 'beat' });
    }
  }

  take() {
    this.onLead(true);
  }

  leave() {
    clearInterval(this.timer);
  }
}
