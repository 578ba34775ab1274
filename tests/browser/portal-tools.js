// Tools for the customer portal outside the test suite, run by
// scripts/portal-screenshots and scripts/bench-portal through
// scripts/portal-run (which sets PORTICO_BASE to a freshly seeded server).
//
//   node portal-tools.js screenshots DIR   main pages → DIR/portal-*.png
//   node portal-tools.js bench RUNS        JS size and dashboard-ready times
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const { chromium } = require("playwright-core");
const { launchOptions } = require("./playwright.config.js").use;

const BASE = process.env.PORTICO_BASE;
const PASSWORD = "portico-demo";

async function signedIn(browser, email, options = {}) {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US", viewport: { width: 1280, height: 800 }, ...options });
  const r = await context.request.post("/v1/auth/login", { data: { email, password: PASSWORD } });
  if (!r.ok()) throw new Error(`${email} could not sign in: ${r.status()}`);
  return { context, me: await r.json() };
}

async function screenshots(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const browser = await chromium.launch(launchOptions);
  const shoot = async (page, name) => {
    await page.waitForLoadState("networkidle");
    await page.screenshot({ path: path.join(dir, `portal-${name}.png`) });
    console.log(`portal-${name}.png`);
  };
  const anon = await browser.newContext({ baseURL: BASE, locale: "en-US", viewport: { width: 1280, height: 800 } });
  const signin = await anon.newPage();
  await signin.goto("/portal/");
  await signin.getByRole("heading", { name: "Sign in to Portico" }).waitFor();
  await shoot(signin, "sign-in");

  const { context } = await signedIn(browser, "admin@acme.test");
  const page = await context.newPage();
  const visit = async (url, name, ready) => {
    await page.goto(url);
    await ready();
    await shoot(page, name);
  };
  await visit("/portal/", "dashboard", () => page.getByTestId("dashboard").waitFor());
  await visit("/portal/account/users", "users", () => page.getByTestId("seat-summary").waitFor());
  await visit("/portal/account/plan", "plan", () => page.getByTestId("current-plan").waitFor());
  const seats = Number((await page.getByLabel("Seats", { exact: true }).inputValue()) || 10);
  await page.getByLabel("Seats", { exact: true }).fill(String(seats + 1));
  await page.getByRole("button", { name: "Preview the change" }).click();
  await page.getByTestId("quote").waitFor();
  await shoot(page, "plan-preview");
  await visit("/portal/account/invoices", "invoices", () => page.getByTestId("invoices").waitFor());
  await visit("/portal/account/usage", "usage", () => page.getByRole("meter").first().waitFor());
  await visit("/portal/onboarding", "onboarding", () => page.locator("main h1").waitFor());
  await visit("/portal/help", "help", () => page.getByLabel("Your question").waitFor());
  await page.getByLabel("Your question").fill("Why am I near my usage limit?");
  await page.getByRole("button", { name: "Get an answer" }).click();
  await page.getByTestId("answer").waitFor();
  await shoot(page, "help-answer");
  await visit("/portal/help/community", "community", () => page.locator("main h1").waitFor());
  await visit("/portal/requests", "requests", () => page.getByTestId("requests").waitFor());
  await visit("/portal/requests/new", "request-new", () => page.getByLabel("Title").waitFor());
  const first = page.getByTestId("requests");
  await page.goto("/portal/requests");
  await first.waitFor();
  const link = first.getByRole("link").first();
  if (await link.count()) {
    await link.click();
    await page.getByTestId("request").waitFor();
    await shoot(page, "request");
  }
  await page.goto("/portal/");
  await page.getByTestId("dashboard").waitFor();
  await page.getByRole("button", { name: "Chat with us" }).click();
  await page.getByText("Connected").waitFor();
  await shoot(page, "chat");

  const member = await signedIn(browser, "member@acme.test", { locale: "fr-FR" });
  const mp = await member.context.newPage();
  await mp.goto("/portal/");
  await mp.getByTestId("dashboard").waitFor();
  await shoot(mp, "member-dashboard-fr");
  await browser.close();
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
function summary(name, xs) {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x) => x.toFixed(1);
  console.log(`${name.padEnd(44)} n=${s.length}  p50 ${f(quantile(s, 0.5))} ms  p99 ${f(quantile(s, 0.99))} ms  min ${f(s[0])}  max ${f(s[s.length - 1])}`);
}

async function bench(runs) {
  const dist = path.join(__dirname, "../../ui/portal/dist/assets");
  let raw = 0;
  let gz = 0;
  for (const f of fs.readdirSync(dist).filter((f) => f.endsWith(".js"))) {
    const b = fs.readFileSync(path.join(dist, f));
    raw += b.length;
    gz += zlib.gzipSync(b, { level: 9 }).length;
  }
  console.log(`JavaScript shipped: ${(raw / 1024).toFixed(1)} KiB raw, ${(gz / 1024).toFixed(1)} KiB gzipped (budget 200 KB)`);

  const browser = await chromium.launch(launchOptions);
  const { context, me } = await signedIn(browser, "admin@acme.test");
  const dashboardUrl = `/v1/accounts/${me.account.id}/dashboard`;
  const ready = async (page) => {
    await page.goto("/portal/");
    await page.getByTestId("dashboard").waitFor();
    return page.evaluate(() => performance.getEntriesByName("portal:dashboard-ready")[0].startTime);
  };
  // Warm-up: the server's first search index build, the browser's caches.
  const warm = await context.newPage();
  await ready(warm);

  const cold = [];
  const cached = [];
  const floorNav = [];
  const floorApi = [];
  for (let i = 0; i < runs; i++) {
    // Cold: a fresh browser context (empty HTTP cache), signed in.
    const fresh = await signedIn(browser, "admin@acme.test");
    const p = await fresh.context.newPage();
    cold.push(await ready(p));
    await fresh.context.close();
    // Cached assets (hashed, immutable): a returning customer.
    const q = await context.newPage();
    cached.push(await ready(q));
    // Floor: the same browser fetching a tiny document (navigation to the
    // health check) and the dashboard's data alone, over the same loopback.
    await q.goto("/v1/health");
    floorNav.push(await q.evaluate(() => performance.getEntriesByType("navigation")[0].responseEnd));
    floorApi.push(
      await q.evaluate(async (u) => {
        const t = performance.now();
        await (await fetch(u)).json();
        return performance.now() - t;
      }, dashboardUrl),
    );
    await q.close();
  }
  summary("dashboard ready, empty cache", cold);
  summary("dashboard ready, cached assets", cached);
  summary("floor: navigate to a tiny document", floorNav);
  summary("floor: dashboard data fetch alone", floorApi);
  await browser.close();
}

const [mode, arg] = process.argv.slice(2);
(mode === "screenshots" ? screenshots(arg) : mode === "bench" ? bench(Number(arg || 50)) : Promise.reject(new Error("usage: portal-tools.js screenshots DIR | bench RUNS"))).catch((e) => {
  console.error(e);
  process.exit(1);
});
