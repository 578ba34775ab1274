// A customer of account A cannot reach account B by editing URLs or ids,
// and what people type is shown as text, never run.
const { test, expect, ADMIN, signIn, staff, pageFetch, hasEndpoint, csrf } = require("./fixtures");

/** Another account's ids, found with staff credentials. */
async function otherAccount(playwright, own) {
  const s = await staff(playwright);
  const accounts = (await (await s.get("/v1/accounts?limit=50")).json()).items;
  const b = accounts.find((a) => a.id !== own);
  const invoice = (await (await s.get(`/v1/accounts/${b.id}/invoices`)).json()).items[0];
  const users = (await (await s.get(`/v1/accounts/${b.id}/users`)).json()).items;
  const created = await s.post("/v1/requests", { data: { account_id: b.id, kind: "bug", title: "B's private bug report", body: "Only B may read this" }, headers: await csrf(s) });
  expect(created.status(), "staff opens a request for account B").toBe(201);
  const request = await created.json();
  await s.dispose();
  return { account: b, invoice, user: users[0], request };
}

test("account A's admin cannot reach account B's pages or records by editing URLs or ids", async ({ page, playwright }) => {
  const me = await signIn(page, ADMIN);
  const b = await otherAccount(playwright, me.account.id);

  // Through the app: B's request id in the URL shows nothing of B.
  await page.goto(`/portal/requests/${b.request.id}`);
  await expect(page.getByRole("alert")).toBeVisible();
  await expect(page.getByText("B's private bug report")).toHaveCount(0);
  await expect(page.getByText("Only B may read this")).toHaveCount(0);
  // Nor does it appear in A's list.
  await page.goto("/portal/requests");
  await expect(page.getByTestId("requests")).toBeVisible();
  await expect(page.getByText("B's private bug report")).toHaveCount(0);

  // Through the API from A's signed-in page: B's records do not exist for A.
  const reads = [
    `/v1/accounts/${b.account.id}`,
    `/v1/accounts/${b.account.id}/dashboard`,
    `/v1/accounts/${b.account.id}/subscription`,
    `/v1/accounts/${b.account.id}/seats`,
    `/v1/accounts/${b.account.id}/users`,
    `/v1/accounts/${b.account.id}/invoices`,
    `/v1/accounts/${b.account.id}/invoices/${b.invoice.id}`,
    `/v1/accounts/${b.account.id}/invoices/${b.invoice.id}/document`,
    // B's invoice under A's own account id.
    `/v1/accounts/${me.account.id}/invoices/${b.invoice.id}`,
    `/v1/accounts/${me.account.id}/invoices/${b.invoice.id}/document`,
    `/v1/accounts/${b.account.id}/usage`,
    `/v1/accounts/${b.account.id}/onboarding`,
    `/v1/requests/${b.request.id}`,
    `/v1/requests/${b.request.id}/comments`,
  ];
  for (const path of reads) {
    const r = await pageFetch(page, path);
    expect([403, 404], `${path} is refused for account A`).toContain(r.status);
    expect(JSON.stringify(r.body ?? {})).not.toContain(b.account.name);
  }
  // And writes are refused too, storing nothing.
  const writes = [
    [`/v1/accounts/${b.account.id}/subscription/preview`, { seats: 40 }],
    [`/v1/accounts/${b.account.id}/subscription/change`, { seats: 40 }],
    [`/v1/accounts/${b.account.id}/users`, { email: "spy@acme.test", name: "Spy", role: "customer_admin" }],
    [`/v1/requests/${b.request.id}/comments`, { body: "Reading your requests!" }],
    [`/v1/requests`, { account_id: b.account.id, kind: "support", title: "Filed for B" }],
  ];
  for (const [path, body] of writes) {
    const r = await pageFetch(page, path, { method: "POST", body: JSON.stringify(body) });
    expect([403, 404], `POST ${path} is refused for account A`).toContain(r.status);
  }
  const del = await pageFetch(page, `/v1/accounts/${b.account.id}/users/${b.user.id}`, { method: "DELETE" });
  expect([403, 404]).toContain(del.status);

  const s = await staff(playwright);
  const after = await (await s.get(`/v1/accounts/${b.account.id}/subscription`)).json();
  expect(after.seats, "B's seats are unchanged").toBe((await (await s.get(`/v1/accounts/${b.account.id}/seats`)).json()).seats);
  const users = (await (await s.get(`/v1/accounts/${b.account.id}/users?limit=200`)).json()).items;
  expect(users.map((u) => u.email)).not.toContain("spy@acme.test");
  await s.dispose();
});

test("markup typed into a request is shown as text and never runs", async ({ page }) => {
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
  await signIn(page, ADMIN, "/portal/requests/new");
  const title = `<img src=x onerror="window.__pwned='title';alert(1)"> Export broken ${Date.now()}`;
  const body = `<script>window.__pwned = "body"</script>\n\n<b>bold?</b> <a href="javascript:alert(2)">click</a>`;
  await page.getByLabel("Bug").check();
  await page.getByLabel("Product area").selectOption("reporting");
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Description").fill(body);
  await page.getByRole("button", { name: "Send request" }).click();

  const request = page.getByTestId("request");
  await expect(request.getByRole("heading", { level: 1 })).toHaveText(title);
  await expect(request).toContainText('<script>window.__pwned = "body"</script>');
  await expect(request).toContainText('<a href="javascript:alert(2)">click</a>');
  await expect(page.locator("main img, main script, main b, main a[href^='javascript']")).toHaveCount(0);

  // The list shows the title as text.
  await page.goto("/portal/requests");
  await expect(page.getByTestId("requests").getByRole("link", { name: title })).toBeVisible();
  await expect(page.locator("main img")).toHaveCount(0);
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);

  // A reply with markup is text too.
  const id = (await pageFetch(page, "/v1/requests?limit=5")).body.items.find((r) => r.title === title).id;
  test.skip(!(await hasEndpoint(page, "GET", `/v1/requests/${id}/comments`)), "request comments have not landed in portal-core");
  await page.goto(`/portal/requests/${id}`);
  await page.getByLabel("Your reply").fill(`<svg onload="window.__pwned='reply'"></svg>still text`);
  await page.getByRole("button", { name: "Send reply" }).click();
  await expect(page.getByTestId("comments")).toContainText(`<svg onload="window.__pwned='reply'"></svg>still text`);
  await expect(page.locator("main svg[onload]")).toHaveCount(0);
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);
});
