// The official Node `telnyx` SDK (pinned 7.24.0), unmodified, against voxgate.
// Usage: TELNYX_BASE_URL=http://127.0.0.1:PORT/v2 TELNYX_API_KEY=KEY node rest-flow.mjs
import Telnyx from 'telnyx';

const client = new Telnyx({ apiKey: process.env.TELNYX_API_KEY, baseURL: process.env.TELNYX_BASE_URL, maxRetries: 0 });
const out = {};
const tag = 'node' + Date.now();

const conn = await client.credentialConnections.create({ connection_name: 'node-flow', user_name: 'node' + Date.now().toString().slice(-8), password: 'password123' });
out.connectionId = conn.data.id;
const created = [];
for (let i = 0; i < 5; i++) {
  created.push((await client.telephonyCredentials.create({ connection_id: conn.data.id, name: `n${i}`, tag })).data);
}
out.sipUsernames = created.map((c) => c.sip_username);
out.hasPassword = created.every((c) => typeof c.sip_password === 'string' && c.sip_password.length >= 16);

let page = await client.telephonyCredentials.list({ filter: { tag }, 'page[size]': 2 });
let pages = 1;
while (page.hasNextPage()) {
  page = await page.getNextPage();
  pages += 1;
}
const seen = [];
for await (const c of client.telephonyCredentials.list({ filter: { tag }, 'page[size]': 2 })) seen.push(c.id);
out.pages = pages;
out.listedAll = created.every((c) => seen.includes(c.id)) && seen.length === created.length;

const token = await client.telephonyCredentials.createToken(created[0].id);
out.tokenType = typeof token;
out.tokenParts = token.split('.').length;
out.tokenSub = JSON.parse(Buffer.from(token.split('.')[1], 'base64').toString()).sub;
out.credentialId = created[0].id;

// voxgate's registration fields, set with the SDK's own update calls and read back
const policy = await client.telephonyCredentials.update(created[0].id, { registration_policy: 'ring_all', max_registrations: 3 });
const again = await client.telephonyCredentials.retrieve(created[0].id);
const connUpdated = await client.credentialConnections.update(conn.data.id, { on_token_reuse: 'revoke_token' });
out.policy = [policy.data.registration_policy, again.data.registration_policy, again.data.max_registrations];
out.onTokenReuse = (await client.credentialConnections.retrieve(conn.data.id)).data.on_token_reuse;
out.connPolicy = connUpdated.data.registration_policy;

async function errorOf(fn) {
  try { await fn(); return null; } catch (e) { return { name: e.constructor.name, status: e.status, code: e.error?.errors?.[0]?.code }; }
}
out.notFound = await errorOf(() => client.telephonyCredentials.retrieve('00000000-0000-4000-8000-000000000000'));
out.unprocessable = await errorOf(() => client.telephonyCredentials.create({ connection_id: '1' }));
out.unauthenticated = await errorOf(() => new Telnyx({ apiKey: 'wrong', baseURL: process.env.TELNYX_BASE_URL, maxRetries: 0 }).telephonyCredentials.list());
out.registration = (await client.credentialConnections.actions.checkRegistrationStatus(conn.data.id)).data.status;
console.log(JSON.stringify(out));
