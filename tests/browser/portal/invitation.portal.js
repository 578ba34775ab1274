// Accepting an invitation from the link in the mail that was actually
// delivered: scripts/portal-run gives portal-core a real SMTP server
// (tests/browser/mail-sink.py) that keeps each mail as a file in
// PORTICO_MAIL_DIR. The test never makes a token itself.
const fs = require("node:fs");
const path = require("node:path");
const { test, expect, ADMIN, signIn, expectAccessible } = require("./fixtures");

const MAIL_DIR = process.env.PORTICO_MAIL_DIR;
const GOOD_PASSWORD = "correct horse battery staple";

/** The raw mails delivered to `address`, oldest first. */
function delivered(address) {
  if (!MAIL_DIR || !fs.existsSync(MAIL_DIR)) return [];
  return fs
    .readdirSync(MAIL_DIR)
    .filter((f) => /^\d+\.eml$/.test(f))
    .sort()
    .map((f) => fs.readFileSync(path.join(MAIL_DIR, f), "utf8"))
    .filter((raw) => raw.toLowerCase().startsWith(`delivered-to: ${address.toLowerCase()}\r\n`));
}

/** A mail's text with quoted-printable soft breaks and `=3D` undone. */
function plain(raw) {
  return raw.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
}

/** Records every URL and Referer the page's browser context requests. */
function recordRequests(context) {
  const seen = [];
  context.on("request", (r) => seen.push({ url: r.url(), referer: r.headers()["referer"] ?? "", headers: r.headers() }));
  return seen;
}

test.describe.configure({ mode: "serial" });

test("an invited person opens the link from the delivered mail, chooses a password and lands on the dashboard with their role", async ({ page, browser }) => {
  test.skip(!MAIL_DIR, "scripts/portal-run starts the mail sink (PORTICO_MAIL_DIR)");
  const email = `invitee.${Date.now()}@acme.test`;

  // The account admin invites a member through the Seats & users page.
  await signIn(page, ADMIN, "/portal/account/users");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Name").fill("Ivy Invitee");
  await page.getByLabel("Role", { exact: true }).selectOption("customer_member");
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByText(`Invitation sent to ${email}.`)).toBeVisible();

  // The outbox hands it to the SMTP server; the link comes from that mail.
  await expect
    .poll(() => delivered(email).length, { message: "the invitation mail reaches the SMTP server", timeout: 60_000 })
    .toBe(1);
  const mail = plain(delivered(email)[0]);
  expect(mail, "the mail says who invited them to which account").toMatch(/^Subject: Ada Acme invited you to Acme Corp on Portico/m);
  const link = mail.match(/(\S+\/portal\/invite#token=[A-Za-z0-9_-]+)/)?.[1];
  expect(link, "the mail carries the invitation link").toBeTruthy();
  expect(link.startsWith(`${process.env.PORTICO_BASE}/portal/invite#token=`), `the link points at this portal: ${link}`).toBeTruthy();
  const token = link.split("#token=")[1];

  // The invitee's own browser, signed out.
  const context = await browser.newContext({ baseURL: process.env.PORTICO_BASE, locale: "en-US" });
  const requests = recordRequests(context);
  const invitee = await context.newPage();
  const errors = [];
  invitee.on("pageerror", (e) => errors.push(e.message));
  invitee.on("console", (m) => {
    if (/Content.Security.Policy|Refused to (load|execute|apply)/i.test(m.text())) errors.push(m.text());
  });
  await invitee.goto(link);
  await expect(invitee.getByRole("heading", { name: "Join Acme Corp on Portico" })).toBeVisible();
  await expect(invitee.getByTestId("invited-to")).toContainText("Ada Acme invited you to join Acme Corp");
  await expect(invitee.getByLabel("Email")).toHaveValue(email);
  await expect(invitee.getByText("At least 10 characters")).toBeVisible();
  await expect(invitee, "the token leaves the address bar once read").toHaveURL(/\/portal\/invite$/);
  await expectAccessible(invitee, "the invitation page");

  // Too short: the server's rule, in its words, on the field.
  const password = invitee.getByLabel("Choose a password");
  await password.fill("short");
  await invitee.getByRole("button", { name: "Accept and sign in" }).click();
  await expect(invitee.getByRole("alert")).toContainText("choose at least 10 characters");
  await expect(password).toHaveAttribute("aria-invalid", "true");
  await expect(password).toBeFocused();
  await expectAccessible(invitee, "the invitation page with a refused password");

  // A good password signs them in on the dashboard, as a member.
  await password.fill(GOOD_PASSWORD);
  await invitee.getByRole("button", { name: "Accept and sign in" }).click();
  await expect(invitee.getByRole("navigation", { name: "Main" })).toBeVisible();
  await expect(invitee).toHaveURL(/\/portal\/$/);
  await expect(invitee.getByTestId("dashboard")).toBeVisible();
  await expect(invitee.getByTestId("who")).toContainText("Acme Corp");
  await expect(invitee.getByTestId("who")).toContainText("Ivy Invitee (Member)");
  await expect(invitee.getByRole("link", { name: "Seats & users" }), "a member has no account administration").toHaveCount(0);
  const me = await invitee.evaluate(async () => (await fetch("/v1/me")).json());
  expect(me.user.email).toBe(email);
  expect(me.user.role).toBe("customer_member");
  expect(me.user.status).toBe("active");

  // The token went only in the lookup's header and the accept's body.
  const calls = requests.filter((r) => new URL(r.url).pathname.startsWith("/v1/"));
  expect(calls.some((r) => r.url.endsWith("/v1/auth/invitation") && r.headers["x-invitation-token"] === token), "the lookup sends the token in its header").toBeTruthy();
  expect(calls.some((r) => r.url.endsWith("/v1/auth/invitations/accept")), "the page accepted through the API").toBeTruthy();
  for (const r of requests) {
    expect(r.url, "no request URL carries the token").not.toContain(token);
    expect(r.referer, "no Referer carries the token").not.toContain(token);
  }
  expect(errors, "no CSP violation or script error on the invitee's pages").toEqual([]);

  // The same link again, in a fresh browser: already used.
  const again = await browser.newContext({ baseURL: process.env.PORTICO_BASE, locale: "en-US" });
  const reuse = await again.newPage();
  await reuse.goto(link);
  await expect(reuse.getByRole("heading", { name: "This invitation was already used" })).toBeVisible();
  await expect(reuse.getByTestId("invitation-refused")).toContainText("Sign in with your email and password");
  await expect(reuse.getByLabel("Choose a password"), "no form for a used link").toHaveCount(0);
  await expectAccessible(reuse, "the invitation page for a used link");
  await reuse.getByRole("link", { name: "Go to the sign-in page" }).click();
  await expect(reuse.getByRole("heading", { name: "Sign in to Portico" })).toBeVisible();
  await again.close();

  // And with the password they chose, they can sign in.
  const later = await browser.newContext({ baseURL: process.env.PORTICO_BASE });
  const signedIn = await later.request.post("/v1/auth/login", { data: { email, password: GOOD_PASSWORD } });
  expect(signedIn.status(), "the chosen password signs them in").toBe(200);
  await later.close();
  await context.close();
});

test("a made-up token says the link is not valid, and a link without one too", async ({ page }) => {
  const requests = recordRequests(page.context());
  const garbage = "not-a-real-token-0123456789";
  await page.goto(`/portal/invite#token=${garbage}`);
  await expect(page.getByRole("heading", { name: "This invitation link is not valid" })).toBeVisible();
  await expect(page.getByTestId("invitation-refused")).toContainText("Open the whole link from the invitation mail");
  await expect(page.getByLabel("Choose a password")).toHaveCount(0);
  await expectAccessible(page, "the invitation page for an unknown link");
  expect(requests.some((r) => r.url.endsWith("/v1/auth/invitation")), "the page asked the server").toBeTruthy();
  for (const r of requests) expect(r.url, "no request URL carries the token").not.toContain(garbage);

  await page.goto("/portal/invite");
  await expect(page.getByRole("heading", { name: "This invitation link is not valid" })).toBeVisible();
});

test("an admin resends an invitation from the people list; a second click within a minute says when to try again", async ({ page }) => {
  test.skip(!MAIL_DIR, "scripts/portal-run starts the mail sink (PORTICO_MAIL_DIR)");
  const email = `resend.${Date.now()}@acme.test`;
  await signIn(page, ADMIN, "/portal/account/users");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Name").fill("Rae Resend");
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByText(`Invitation sent to ${email}.`)).toBeVisible();
  const row = page.getByRole("row").filter({ hasText: email });
  const resend = row.getByRole("button", { name: "Resend invitation Rae Resend" });
  await expect(resend, "an invited person's row offers a resend").toBeVisible();
  await expectAccessible(page, "the people list with an invited person");

  // Right after the invitation, the server holds a resend back and says for how long.
  await resend.click();
  await expect(page.getByRole("alert")).toContainText(/try again in \d+ seconds/);
  await expect
    .poll(() => delivered(email).length, { message: "the first invitation is delivered", timeout: 60_000 })
    .toBe(1);
  // Someone who joined has nothing to resend.
  await expect(page.getByRole("row").filter({ hasText: ADMIN }).getByRole("button", { name: /Resend invitation/ })).toHaveCount(0);
});
