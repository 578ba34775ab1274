// End-to-end smoke tests of the real Tauri binary (UI embedded) under Xvfb,
// through tauri-driver + WebKitWebDriver, against a real portal-core. Run by
// scripts/test.d/40-desktop.sh inside a D-Bus session with an unlocked
// gnome-keyring (Secret Service) and dunst (notifications).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Portal, signInLikeABrowser, eventually, freePort, BIN, ROOT, AGENT, CUSTOMER } from './harness.mjs';

const APP = process.env.PORTICO_INBOX_APP ?? BIN('portico-inbox');
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
let portal, driver, base, session;

async function wd(method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value)}`);
  return json.value;
}
const s = (path) => `/session/${session}${path}`;
async function find(css) {
  return (await wd('POST', s('/element'), { using: 'css selector', value: css }))[ELEMENT];
}
async function findAll(css) {
  return (await wd('POST', s('/elements'), { using: 'css selector', value: css })).map((e) => e[ELEMENT]);
}
async function waitFor(css, ms = 30_000) {
  try {
    return await eventually(css, async () => (await findAll(css))[0], ms);
  } catch (e) {
    const source = await wd('GET', s('/source')).catch(() => '(no source)');
    throw new Error(`${e.message}\n--- page:\n${String(source).slice(0, 3000)}`);
  }
}
const text = async (el) => wd('GET', s(`/element/${el}/text`));
const attr = async (el, name) => wd('GET', s(`/element/${el}/attribute/${name}`));
const click = async (el) => wd('POST', s(`/element/${el}/click`), {});
async function keys(...values) {
  const actions = values.flatMap((v) => [{ type: 'keyDown', value: v }, { type: 'keyUp', value: v }]);
  await wd('POST', s('/actions'), { actions: [{ type: 'key', id: 'kb', actions }] });
}
async function typeInto(el, value) {
  await wd('POST', s(`/element/${el}/value`), { text: value });
}
async function shot(name) {
  const png = await wd('GET', s('/screenshot'));
  writeFileSync(join(ROOT, 'docs/screenshots', name), Buffer.from(png, 'base64'));
}
function keychainLookup(server) {
  try {
    return execFileSync('secret-tool', ['lookup', 'service', 'portico-inbox', 'username', server]).toString();
  } catch {
    return '';
  }
}

before(async () => {
  portal = await Portal.start();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const data = mkdtempSync(join(tmpdir(), 'portico-app-'));
  driver = spawn('tauri-driver', ['--port', String(port)], {
    env: { ...process.env, PORTICO_SERVER: portal.base, PORTICO_INBOX_DATA: data, BROWSER: 'true', WEBKIT_DISABLE_COMPOSITING_MODE: '1', WEBKIT_DISABLE_DMABUF_RENDERER: '1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await eventually('tauri-driver', async () => (await fetch(`${base}/status`)).ok, 30_000);
  const created = await wd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: APP } } } });
  session = created.sessionId;
});

after(async () => {
  if (session) await wd('DELETE', s('')).catch(() => {});
  driver?.kill('SIGTERM');
  await portal?.close();
});

test('the real app: sign in, inbox, offline resolve, reply to a customer, sign out', async () => {
  // Sign in through the browser flow (the test plays the browser).
  await click(await waitFor('#sign-in'));
  const link = await waitFor('#authorize-link');
  assert.match(await signInLikeABrowser(await attr(link, 'href')), /You are signed in/);
  await waitFor('[data-testid=me]');
  assert.ok(keychainLookup(portal.base).length > 20, 'the refresh token is in the OS keychain');
  assert.equal((await findAll('[data-testid=keychain-warning]')).length, 0);

  // The inbox is there.
  await click(await find('[data-testid=view-all]'));
  await eventually('rows', async () => (await findAll('[data-testid=conversation-row]')).length > 3);
  await shot('app-inbox.png');

  // Offline: resolve one; it leaves the open list at once and waits.
  const staff = await portal.as(AGENT);
  await portal.down();
  await eventually('offline shown', async () => (await text(await find('[data-testid=connectivity]'))).includes('Offline'), 30_000);
  const first = (await findAll('[data-testid=conversation-row]'))[0];
  const id = await attr(first, 'data-id');
  await click(first);
  await keys('\uE007'); // Enter
  await waitFor('[data-testid=conversation]');
  await keys('e');
  await eventually('queued', async () => (await text(await find('[data-testid=pending]'))).includes('1 change waiting'));
  // The list reloads on the engine's change event (debounced), which may land just after the pending count.
  await eventually('resolved row leaves the open list', async () => (await findAll(`[data-testid=conversation-row][data-id="${id}"]`)).length === 0);

  // Back online: the server has it resolved.
  await portal.up();
  await eventually('sent', async () => (await text(await find('[data-testid=pending]'))).includes('All changes sent'), 40_000);
  assert.equal((await staff.get(`/v1/conversations/${id}`)).status, 'resolved');

  // A reply reaches the customer.
  const customer = await portal.as(CUSTOMER);
  const conv = await customer.post('/v1/conversations', { subject: 'E2E: cannot add a seat', body: 'The button is greyed out.' });
  const row = await waitFor(`[data-testid=conversation-row][data-id="${conv.id}"]`, 40_000);
  await click(row);
  await keys('\uE007');
  await waitFor('[data-testid=composer]');
  await keys('r');
  await typeInto(await find('[data-testid=composer]'), 'You can add seats from Billing now.');
  await click(await find('[data-testid=send]'));
  await eventually('the customer receives the reply', async () =>
    (await customer.get(`/v1/conversations/${conv.id}/messages`)).items.some((m) => m.body === 'You can add seats from Billing now.'), 30_000);
  await shot('app-conversation.png');

  // Sign out: back to the sign-in screen, the keychain entry is gone.
  await click(await find('[data-testid=sign-out]'));
  await waitFor('#sign-in');
  assert.equal(keychainLookup(portal.base), '', 'sign-out clears the keychain');
});
