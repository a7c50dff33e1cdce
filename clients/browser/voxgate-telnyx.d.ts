// Types for voxgate-telnyx, the helper for the unmodified @telnyx/webrtc (2.27.10).

/** Options of `install(TelnyxRTC, options)`. */
export interface InstallOptions {
  /** The gateway for clients created without a `host` (e.g. `wss://rtc.example.com`). */
  host?: string;
  /**
   * One registration for every tab of this origin: one tab leads (one socket, one login),
   * the others see its ready, inbound calls and warnings, and answering in one of them moves
   * the call there. Off unless set.
   */
  shareAcrossTabs?: boolean;
  /**
   * A fresh login token from your backend, e.g. `() => fetch('/api/telnyx-token').then(r =>
   * r.text())`. With `shareAcrossTabs`, a tab that takes the lead logs in with it.
   */
  getToken?: () => Promise<string> | string;
  /** Tabs share within one channel name; give each app (or identity) its own. */
  channel?: string;
}

/** The TelnyxRTC class as the helper needs it (any version with `on`, `login`, `connect`). */
export interface TelnyxRTCClass {
  prototype: {
    on(event: string, handler: (payload: any) => void): unknown;
    off(event: string, handler?: (payload: any) => void): unknown;
    login(params: unknown): unknown;
    connect(): unknown;
  };
}

/** Adds the helper to the class (once) and returns it. */
export function install<T extends TelnyxRTCClass>(TelnyxRTC: T, options?: InstallOptions): T;

/** The 34001 warning as the helper raises it from voxgate's server-side expiry notice. */
export interface ServerTokenWarning {
  code: 34001;
  name: 'TOKEN_EXPIRING_SOON';
  message: string;
  warning: {
    code: 34001;
    name: 'TOKEN_EXPIRING_SOON';
    message: string;
    description: string;
    source: 'server';
    serverTime?: number;
    expiresAt?: number;
    expiresIn?: number;
    /** Seconds this browser's clock is ahead of the server's. */
    clockSkew?: number;
  };
  sessionId?: string;
}

declare module '@telnyx/webrtc' {
  interface TelnyxRTC {
    /**
     * Log in again on the same socket with a new token: same session, calls untouched.
     * In a follower tab (`shareAcrossTabs`) the token goes to the leading tab.
     */
    updateToken(token: string): Promise<void>;
  }
}
