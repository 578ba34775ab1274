// Signing in to the portal and the dashboard it opens on.
const { test, expect, ADMIN, MEMBER, signInWithForm, signIn, expectAccessible } = require("./fixtures");

test("a customer admin signs in with the form and sees their account's dashboard", async ({ page }) => {
  await signInWithForm(page, ADMIN);
  await expect(page.getByTestId("who")).toContainText("Acme Corp");
  const dashboard = page.getByTestId("dashboard");
  await expect(dashboard).toBeVisible();
  // Acme is on Team with 10 seats, 8 of them held (seed.rs).
  await expect(page.getByTestId("plan-name")).toHaveText("Team");
  await expect(page.getByTestId("seats")).toContainText(/of \d+ seats used/);
  await expect(dashboard.getByRole("heading", { name: "Usage this period" })).toBeVisible();
  // API calls at 92 % of the limit: shown with its percentage and a chart.
  await expect(dashboard.getByText(/API calls: .* \(92 %\)/)).toBeVisible();
  await expect(dashboard.getByRole("meter", { name: "API calls" })).toBeVisible();
  // A 30-day daily chart per meter, with its numbers available as a table.
  await expect(dashboard.getByRole("img", { name: "API calls, daily use over the last 30 days" })).toBeVisible();
  await expect(dashboard.getByRole("heading", { name: "Getting started" })).toBeVisible();
  await expect(dashboard.getByText(/\d+ of \d+ steps done/)).toBeVisible();
  // Administrators see what they pay each period.
  await expect(page.getByTestId("billing")).toContainText("Each period:");
  await expectAccessible(page, "the dashboard");

  // Signing out ends the session: the API no longer answers for this browser.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Portico" })).toBeVisible();
  const me = await page.evaluate(async () => (await fetch("/v1/me")).status);
  expect(me).toBe(401);
  await expectAccessible(page, "the sign-in page");
});

test("a wrong password is refused with a message, and nothing is signed in", async ({ page }) => {
  await page.goto("/portal/");
  await page.getByLabel("Email").fill(MEMBER);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("wrong email or password");
  await expect(page.getByRole("navigation", { name: "Main" })).toHaveCount(0);
});

test("the portal page is served under a strict Content-Security-Policy with long-cached hashed assets", async ({ page }) => {
  const assets = [];
  page.on("response", (r) => {
    if (r.url().includes("/portal/assets/")) assets.push(r);
  });
  const resp = await page.goto("/portal/");
  const csp = resp.headers()["content-security-policy"];
  expect(csp, "the page has a CSP").toContain("script-src 'self'");
  expect(csp).toContain("style-src 'self'");
  expect(csp).not.toContain("unsafe-inline");
  expect(resp.headers()["cache-control"]).toBe("no-cache");
  await expect(page.getByRole("heading", { name: "Sign in to Portico" })).toBeVisible();
  expect(assets.length, "the script and the stylesheet").toBeGreaterThanOrEqual(2);
  for (const a of assets) expect(a.headers()["cache-control"]).toContain("immutable");
  // Nothing outside the build's assets folder is served.
  for (const path of ["/portal/assets/..%2f..%2fCargo.toml", "/portal/assets/.env", "/portal/assets/x.exe"]) {
    expect((await page.request.get(path)).status(), path).toBe(404);
  }
});

test("an app route survives a reload, and an unknown one says not found", async ({ page }) => {
  await signIn(page, ADMIN, "/portal/requests");
  await expect(page.getByRole("heading", { name: "Requests", level: 1 })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("heading", { name: "Requests", level: 1 })).toBeVisible();
  await page.goto("/portal/no/such/page");
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});

test("changes need the session's CSRF token: a call without it is refused, and the app recovers a lost cookie", async ({ page }) => {
  await signIn(page, ADMIN, "/portal/requests/new");
  const cookies = await page.context().cookies();
  test.skip(!cookies.some((c) => c.name === "portico_csrf"), "the CSRF check has not landed in portal-core");
  // Without the header, the session cookie alone cannot change anything.
  const bare = await page.evaluate(async () => {
    const r = await fetch("/v1/requests", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: "support", title: "no token" }) });
    return { status: r.status, body: await r.json() };
  });
  expect(bare.status).toBe(403);
  expect(bare.body.error.code).toBe("csrf_failed");
  // The readable cookie is lost: the app asks the server for the token and the change goes through.
  await page.context().clearCookies({ name: "portico_csrf" });
  const title = `After losing the CSRF cookie ${Date.now()}`;
  await page.getByLabel("Support").check();
  await page.getByLabel("Product area").selectOption("api");
  await page.getByLabel("Title").fill(title);
  await page.getByRole("button", { name: "Send request" }).click();
  await expect(page.getByTestId("request").getByRole("heading", { level: 1 })).toHaveText(title);
});
