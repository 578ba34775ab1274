// Benchmark: input-to-paint latency of triage actions in the real UI.
//
//   node ui/inbox/tests/bench-triage.mjs [RUNS]   (after scripts/build-desktop)
//
// Chromium (headless) runs the UI against the dev bridge and a seeded
// portal-core (2,000 conversations). Each run presses a triage key on the
// selected conversation of "All / Open & pending" and measures, in the page,
// from the keydown event to the next animation frame after the list changed
// (the row left the list: a resolve, or its assignee changed: assign to
// me). The floor, measured in the same run, is one `state` command round
// trip plus a frame: what any action costs through this transport before
// the engine does anything.
import { chromium } from 'playwright-core';
import { Portal, startBridge, signInLikeABrowser } from './harness.mjs';

const runs = Number(process.argv[2] ?? 50);
const portal = await Portal.start({ conversations: 2000, messages: 10000 });
const bridge = await startBridge(portal);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
try {
  await page.goto(bridge.url);
  await page.getByRole('button', { name: 'Sign in with your browser' }).click();
  await signInLikeABrowser(await page.locator('#authorize-link').getAttribute('href'));
  await page.getByTestId('view-all').click();
  await page.locator('[data-testid=conversation-row]').nth(20).waitFor();
  await page.locator('body').click({ position: { x: 5, y: 5 } });

  const measure = (key) =>
    page.evaluate(
      (key) =>
        new Promise((done) => {
          const list = document.querySelector('[data-testid=conversation-list]');
          const first = () => document.querySelector('[data-testid=conversation-row][aria-selected=true]')?.getAttribute('data-id');
          const before = first();
          let t0 = 0;
          const obs = new MutationObserver(() => {
            if (first() !== before) {
              obs.disconnect();
              requestAnimationFrame(() => done(performance.now() - t0));
            }
          });
          obs.observe(list, { subtree: true, childList: true, attributes: true });
          window.addEventListener('keydown', () => (t0 = performance.now()), { once: true, capture: true });
          window.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
        }),
      key,
    );
  const floor = () =>
    page.evaluate(async () => {
      const t0 = performance.now();
      await fetch('/api/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"cmd":"state"}' });
      await new Promise((r) => requestAnimationFrame(r));
      return performance.now() - t0;
    });
  const stats = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(1);
    return `p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${s[s.length - 1].toFixed(1)} ms (n=${s.length})`;
  };
  const resolve = [], floors = [];
  for (let i = 0; i < runs; i++) {
    resolve.push(await measure('e'));
    floors.push(await floor());
  }
  console.log(`resolve (e), key to painted list: ${stats(resolve)}`);
  console.log(`floor (one command round trip + frame): ${stats(floors)}`);
} finally {
  await browser.close();
  bridge.stop();
  await portal.down();
}
