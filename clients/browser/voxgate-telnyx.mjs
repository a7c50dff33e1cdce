/**
 * voxgate helper for the unmodified @telnyx/webrtc (tested with 2.27.10).
 *
 *   import { TelnyxRTC } from '@telnyx/webrtc';
 *   import { install } from './voxgate-telnyx.mjs';
 *   install(TelnyxRTC, { host: 'wss://rtc.example.com' });
 *
 * What it adds, and why:
 *  - client.updateToken(token): Telnyx's docs call it, 2.27.10 has no such method. It is a
 *    re-login on the same socket (client.login({creds: {login_token}})); same session, calls
 *    untouched. Returns a Promise that rejects with the server's error.
 *  - A default `host` for clients created without one, so snippets written for Telnyx Cloud
 *    connect to voxgate unchanged.
 *  - voxgate's server-side expiry notice (sent 1 h before the token's exp, measured on the
 *    server's clock) is raised as a `telnyx.warning` with code 34001 (TOKEN_EXPIRING_SOON),
 *    like the SDK's own 120-second warning.
 *  - Every `telnyx.warning` payload also carries `code`, `name` and `message` at the top level
 *    (the SDK nests them under `warning`), so `if (warning.code === 34001)` works as the docs
 *    show.
 *  - Hold that holds: the SDK only flips a call's state when `call.hold()` is answered; media
 *    keeps flowing. voxgate tells both parties (`voxgate.hold` notices, also delivered as
 *    `telnyx.notification`) and this helper stops sending on each side while the call is held
 *    and resumes on unhold, so no audio passes either way.
 *  - ICE restart across the gateway: when the other party's SDK restarts ICE (its network
 *    changed), voxgate hands its new offer to this side (`voxgate.update_media`); the helper
 *    answers it on the call's own RTCPeerConnection and sends the answer back, so the restart
 *    completes instead of failing (which would cost the other side a reconnect).
 *  - ICE servers from your deployment: voxgate mints TURN credentials for every login
 *    (`voxgate.ice_servers`) and the helper sets them as the client's `iceServers` before any
 *    call, instead of the SDK's defaults (Telnyx's and Google's servers).
 *  - One registration for all tabs of an origin, opt-in:
 *      install(TelnyxRTC, { shareAcrossTabs: true, getToken: () => fetch('/api/telnyx-token')
 *        .then((r) => r.text()) });
 *    one tab leads (one socket, one login), the others see its ready, calls and warnings and
 *    can answer a call, which moves it to them (share-tabs.mjs says how).
 */

import { TabShare } from './share-tabs.mjs';

const WARNING = 'telnyx.warning';
const NOTIFICATION = 'telnyx.notification';
const EXPIRING = 'voxgate.token_expiring';
const HOLD = 'voxgate.hold';
const UPDATE_MEDIA = 'voxgate.update_media';
const ICE_SERVERS = 'voxgate.ice_servers';

export function install(TelnyxRTC, options = {}) {
  const proto = TelnyxRTC && TelnyxRTC.prototype;
  if (!proto || typeof proto.on !== 'function' || typeof proto.login !== 'function') {
    throw new TypeError('install(TelnyxRTC): pass the TelnyxRTC class from @telnyx/webrtc');
  }
  if (proto.__voxgate) return TelnyxRTC;
  proto.__voxgate = true;
  const { on, off, connect } = proto;

  proto.connect = function (...args) {
    if (options.host && this.options && !this.options.host) {
      this.options.host = options.host;
      // The SDK builds its Connection in the constructor, from the options it had then;
      // drop that idle one so connect() builds a new one that reads the host.
      if (this.connection && !this.connection.isAlive) this.connection = null;
    }
    if (!this.__voxgateWired) {
      this.__voxgateWired = true;
      on.call(this, NOTIFICATION, (notice) => {
        if (notice && notice.eventType === EXPIRING) emitServerWarning(this, notice);
        if (notice && notice.eventType === HOLD) applyHold(this, notice);
        if (notice && notice.eventType === UPDATE_MEDIA) answerRestart(this, notice);
        if (notice && notice.eventType === ICE_SERVERS && Array.isArray(notice.iceServers)) {
          this.iceServers = notice.iceServers;
        }
      });
    }
    if (options.shareAcrossTabs && !this.__voxgateShare) {
      const client = this;
      this.__voxgateShare = new TabShare(
        this,
        () => connect.apply(client, args),
        (event, payload) => deliver(client, event, payload),
        { getToken: options.getToken, channel: options.channel },
        (event, handler) => on.call(client, event, handler),
      );
      return this.__voxgateShare.start();
    }
    return connect.apply(this, args);
  };

  proto.on = function (event, handler) {
    if (typeof handler !== 'function') return on.call(this, event, handler);
    const wrapped = event === WARNING ? (payload) => handler(normalize(payload)) : handler;
    appHandlers(this, event).set(handler, wrapped);
    return on.call(this, event, wrapped);
  };

  proto.off = function (event, handler) {
    const handlers = appHandlers(this, event);
    if (handler && handlers.has(handler)) {
      const wrapped = handlers.get(handler);
      handlers.delete(handler);
      return off.call(this, event, wrapped);
    }
    return off.call(this, event, handler);
  };

  if (typeof proto.updateToken !== 'function') {
    proto.updateToken = function (token) {
      if (typeof token !== 'string' || token.split('.').length !== 3) {
        return Promise.reject(new TypeError('updateToken(token): expected a JWT string'));
      }
      const share = this.__voxgateShare;
      if (share && share.role !== 'leader') return share.updateToken(token); // the leader logs in
      if (!this.connected) return Promise.reject(new Error('updateToken: the client is not connected'));
      return new Promise((resolve, reject) => {
        this.login({ creds: { login_token: token }, onSuccess: resolve, onError: reject });
      });
    };
  }
  return TelnyxRTC;
}

/** The app's handlers, by event (as registered with the SDK: warnings wrapped), so the helper
 * can raise events itself: server warnings, and a follower tab's events from its leader. */
function appHandlers(client, event) {
  if (!client.__voxgateHandlers) client.__voxgateHandlers = new Map();
  if (!client.__voxgateHandlers.has(event)) client.__voxgateHandlers.set(event, new Map());
  return client.__voxgateHandlers.get(event);
}

function deliver(client, event, payload) {
  for (const wrapped of [...appHandlers(client, event).values()]) wrapped(payload);
}

function normalize(payload) {
  const warning = payload && payload.warning;
  if (!warning || payload.code !== undefined) return payload;
  return { ...payload, code: warning.code, name: warning.name, message: warning.message };
}

function emitServerWarning(client, notice) {
  const warning = {
    code: 34001,
    name: 'TOKEN_EXPIRING_SOON',
    message: 'The login token expires soon (server notice); fetch a new one and call updateToken().',
    description: 'Sent by the voxgate gateway at its configured lead time before the token expires.',
    source: 'server',
    serverTime: notice.server_time,
    expiresAt: notice.expires_at,
    expiresIn: notice.expires_in,
    clockSkew: typeof notice.server_time === 'number' ? Date.now() / 1000 - notice.server_time : undefined,
  };
  deliver(client, WARNING, { warning, sessionId: client.sessionid });
}

function applyHold(client, notice) {
  const call = client.calls && client.calls[notice.callID];
  const pc = call && call.peer && call.peer.instance;
  if (!pc) return;
  for (const sender of pc.getSenders()) {
    if (notice.held && sender.track) {
      sender.__voxgateHeldTrack = sender.track;
      sender.replaceTrack(null);
    } else if (!notice.held && sender.__voxgateHeldTrack) {
      sender.replaceTrack(sender.__voxgateHeldTrack);
      sender.__voxgateHeldTrack = null;
    }
  }
}

async function answerRestart(client, notice) {
  const call = client.calls && client.calls[notice.callID];
  const pc = call && call.peer && call.peer.instance;
  if (!pc || typeof notice.sdp !== 'string') return;
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp: notice.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc, 3000);
    const body = JSON.stringify({ type: 'update_media_answer', sdp: pc.localDescription.sdp });
    call.message('voxgate', body);
  } catch (error) {
    // No answer: the gateway refuses the restart in time and the other side reconnects.
    console.warn('voxgate: could not answer an ICE restart', error);
  }
}

function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      resolve();
    };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, timeoutMs);
  });
}
