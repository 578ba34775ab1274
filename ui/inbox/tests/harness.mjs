// Real parts for the screen and end-to-end tests: a portal-core process on
// a free loopback port with seeded demo data (stoppable and restartable on
// the same port and database, to go offline and back), HTTP helpers that act
// as a customer or staff member, and the desk's dev bridge.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const TARGET = process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/portico/target');
export const BIN = (name) => join(TARGET, 'debug', name);
export const PASSWORD = 'portico-demo';
export const AGENT = 'agent@portico.test';
export const CUSTOMER = 'admin@acme.test';

export function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Runs a program and resolves when it printed `ready` (a regex) on stdout. */
export function start(cmd, args, env, ready, label) {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => fail(new Error(`${label} did not start in 60 s:\n${out}`)), 60_000);
    const onData = (d) => {
      out += d;
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        ok({ child, match: m });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => {
      if (process.env.PORTICO_TEST_LOGS) process.stderr.write(`[${label}] ${d}`);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${label} exited with ${code}:\n${out}`));
    });
  });
}

function run(cmd, args, env) {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err}`))));
  });
}

/** The bearer secret of the inbound mail hook of a `Portal` with mail on. */
export const HOOK_SECRET = 'screen-test-hook-secret';
export const SUPPORT = 'support@portico.test';

/** A real SMTP server (aiosmtpd, tests/browser/mail-sink.py) keeping each
 * mail portal-core sends as a file, for the email channel's outbox. */
async function startMailSink() {
  const dir = mkdtempSync(join(tmpdir(), 'portico-mail-'));
  // Debian's python, where python3-aiosmtpd installs.
  const python = process.env.PORTICO_PYTHON ?? '/usr/bin/python3';
  const { child, match } = await start(python, [join(ROOT, 'tests/browser/mail-sink.py'), dir], {}, /port (\d+)/, 'mail-sink');
  return {
    dir,
    port: Number(match[1]),
    stop: async () => {
      await stopped(child);
      rmSync(dir, { recursive: true, force: true });
    },
    /** Every delivered mail, oldest first, as text. */
    delivered: () =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.eml') && !f.startsWith('.'))
        .sort()
        .map((f) => readFileSync(join(dir, f), 'utf8')),
  };
}

/** A seeded portal-core that can go away and come back on the same port.
 * With `mail`, the email channel is on: the inbound hook takes mail with
 * `HOOK_SECRET`, and replies go out to a real SMTP server (`portal.mail`). */
export class Portal {
  static async start({ conversations = 60, messages = 300, mail = false } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'portico-portal-'));
    const db = join(dir, 'portal.db');
    await run(BIN('portal-core'), ['seed', '--conversations', String(conversations), '--messages', String(messages)], { PORTICO_DB: db });
    const p = new Portal(db, await freePort());
    p.dir = dir;
    if (mail) {
      p.mail = await startMailSink();
      p.serveArgs = ['--mail-address', SUPPORT, '--mail-hook-secret', HOOK_SECRET, '--smtp-host', '127.0.0.1', '--smtp-port', String(p.mail.port), '--smtp-security', 'none'];
    }
    await p.up();
    return p;
  }
  constructor(db, port) {
    this.db = db;
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.mail = null;
    this.serveArgs = [];
  }
  async up() {
    const { child } = await start(BIN('portal-core'), ['serve', '--listen', `127.0.0.1:${this.port}`, ...this.serveArgs], { PORTICO_DB: this.db, RUST_LOG: 'warn' }, /listening on/, 'portal-core');
    this.child = child;
  }
  /** Stops the server and the mail sink for good, and removes their files. */
  async close() {
    await this.down();
    await this.mail?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
  /** Posts a raw RFC 822 mail to the inbound hook, as a mail provider does. */
  async receiveMail(raw) {
    const r = await fetch(`${this.base}/v1/mail/inbound`, {
      method: 'POST',
      headers: { authorization: `Bearer ${HOOK_SECRET}`, 'content-type': 'message/rfc822' },
      body: raw,
    });
    if (r.status !== 202) throw new Error(`the mail hook answered ${r.status}: ${await r.text()}`);
    return r.json();
  }
  async down() {
    if (!this.child) return;
    const exited = new Promise((ok) => this.child.once('exit', ok));
    this.child.kill('SIGKILL');
    await exited;
    this.child = null;
  }
  /** A signed-in HTTP session (cookie) for `email`. */
  async as(email) {
    const r = await fetch(`${this.base}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    if (r.status !== 200) throw new Error(`sign-in of ${email} failed: ${r.status} ${await r.text()}`);
    const cookie = r.headers.get('set-cookie').split(';')[0];
    // Changes on the session cookie repeat its CSRF token (web security).
    const { csrf_token: csrf } = await r.json();
    const base = this.base;
    return {
      async get(path) {
        const resp = await fetch(base + path, { headers: { cookie } });
        if (!resp.ok) throw new Error(`GET ${path}: ${resp.status} ${await resp.text()}`);
        return resp.json();
      },
      async post(path, body) {
        const resp = await fetch(base + path, { method: 'POST', headers: { cookie: `${cookie}; portico_csrf=${csrf}`, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        if (!resp.ok) throw new Error(`POST ${path}: ${resp.status} ${await resp.text()}`);
        return resp.json();
      },
    };
  }
}

/** Signs in on portal-core's authorize page like a person in the browser
 * (the app opened it), and follows the redirect to the app's loopback port. */
export async function signInLikeABrowser(authorizeUrl, email = AGENT, password = PASSWORD) {
  const url = new URL(authorizeUrl);
  const form = new URLSearchParams(url.searchParams);
  form.set('email', email);
  form.set('password', password);
  const r = await fetch(`${url.origin}/oauth/authorize`, { method: 'POST', body: form, redirect: 'manual' });
  if (r.status !== 303 && r.status !== 302 && r.status !== 307) throw new Error(`sign-in page answered ${r.status}: ${await r.text()}`);
  const back = await fetch(r.headers.get('location'));
  return back.text();
}

/** The desk's dev bridge against `portal`, with its own local store. */
export async function startBridge(portal) {
  const data = mkdtempSync(join(tmpdir(), 'portico-desk-'));
  const { child, match } = await start(
    BIN('inbox-bridge'),
    ['--ui', join(ROOT, 'ui/inbox/dist')],
    { PORTICO_SERVER: portal.base, PORTICO_INBOX_DATA: data, PORTICO_NO_BROWSER: '1', PORTICO_KEYCHAIN: 'memory', PORTICO_NO_NOTIFICATIONS: '1' },
    /listening on (http:\/\/\S+)/,
    'inbox-bridge',
  );
  return {
    url: match[1],
    /** Stops the bridge and removes its local store. */
    stop: async () => {
      await stopped(child);
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** Asks a child process to stop and waits until it has exited. */
async function stopped(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  await exited;
}

export async function eventually(what, f, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}
