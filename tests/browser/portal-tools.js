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

/** A change over the API with a context's session, as the app makes it (CSRF header). */
async function post(context, url, data) {
  const { cookies } = await context.storageState();
  const csrf = cookies.find((c) => c.name === "portico_csrf");
  const r = await context.request.post(url, { data, headers: csrf ? { "x-csrf-token": decodeURIComponent(csrf.value) } : {} });
  if (!r.ok()) throw new Error(`${url}: ${r.status()} ${await r.text()}`);
  return r.json();
}

/** The invitation link in the mail delivered to `address` (scripts/portal-run's mail sink). */
async function invitationLink(address) {
  const dir = process.env.PORTICO_MAIL_DIR;
  for (let i = 0; i < 600; i++) {
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d+\.eml$/.test(f)) : []) {
      const raw = fs.readFileSync(path.join(dir, f), "utf8");
      if (!raw.startsWith(`Delivered-To: ${address}\r\n`)) continue;
      const link = raw.replace(/=\r?\n/g, "").replace(/=3D/g, "=").match(/(\S+\/portal\/invite#token=[A-Za-z0-9_-]+)/);
      if (link) return link[1];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no invitation mail reached ${address}`);
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
  // A request thread: the customer's request and the support team's reply.
  const request = await post(context, "/v1/requests", {
    kind: "support",
    title: "CSV export of invoices shows amounts in USD",
    body: "Our account is billed in EUR, but the invoice export lists every amount in USD.\n\nSteps: Invoices → Export CSV. Expected EUR, as on the PDF.",
    priority: "normal",
  });
  const agent = await signedIn(browser, "admin@portico.test");
  await post(agent.context, `/v1/requests/${request.id}/comments`, {
    body: "Thanks for the report. The export used the plan's list currency instead of your account's; a fix ships this week, and we will send you a corrected export today.",
  });
  await visit(`/portal/requests/${request.id}`, "request", () => page.getByTestId("request").waitFor());
  await page.goto("/portal/");
  await page.getByTestId("dashboard").waitFor();
  await page.getByRole("button", { name: "Chat with us" }).click();
  await page.getByText("Connected").waitFor();
  await shoot(page, "chat");

  // The invitation link's page, opened from the mail that was delivered.
  await post(context, `/v1/accounts/${(await (await context.request.get("/v1/me")).json()).account.id}/users`, {
    email: "new.colleague@acme.test",
    name: "Noor Colleague",
    role: "customer_member",
  });
  const invited = await browser.newContext({ baseURL: BASE, locale: "en-US", viewport: { width: 1280, height: 800 } });
  const invite = await invited.newPage();
  await invite.goto(await invitationLink("new.colleague@acme.test"));
  await invite.getByLabel("Choose a password").waitFor();
  await shoot(invite, "invitation");

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
