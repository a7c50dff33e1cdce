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
 */

const WARNING = 'telnyx.warning';
const NOTIFICATION = 'telnyx.notification';
const EXPIRING = 'voxgate.token_expiring';

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
      });
    }
    return connect.apply(this, args);
  };

  proto.on = function (event, handler) {
    if (event !== WARNING || typeof handler !== 'function') return on.call(this, event, handler);
    const wrapped = (payload) => handler(normalize(payload));
    warningHandlers(this).set(handler, wrapped);
    return on.call(this, event, wrapped);
  };

  proto.off = function (event, handler) {
    if (event === WARNING && handler && warningHandlers(this).has(handler)) {
      const wrapped = warningHandlers(this).get(handler);
      warningHandlers(this).delete(handler);
      return off.call(this, event, wrapped);
    }
    return off.call(this, event, handler);
  };

  if (typeof proto.updateToken !== 'function') {
    proto.updateToken = function (token) {
      if (typeof token !== 'string' || token.split('.').length !== 3) {
        return Promise.reject(new TypeError('updateToken(token): expected a JWT string'));
      }
      if (!this.connected) return Promise.reject(new Error('updateToken: the client is not connected'));
      return new Promise((resolve, reject) => {
        this.login({ creds: { login_token: token }, onSuccess: resolve, onError: reject });
      });
    };
  }
  return TelnyxRTC;
}

function warningHandlers(client) {
  if (!client.__voxgateWarnings) client.__voxgateWarnings = new Map();
  return client.__voxgateWarnings;
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
  const payload = normalize({ warning, sessionId: client.sessionid });
  for (const wrapped of warningHandlers(client).values()) wrapped(payload);
}
