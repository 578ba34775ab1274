// The main pages, each checked with axe-core (and, through the fixture,
// for CSP violations): help and AI answers, community, onboarding,
// requests with an attachment and votes, languages.
const { test, expect, ADMIN, MEMBER, signIn, pageFetch, expectAccessible, hasEndpoint } = require("./fixtures");

test("help: a typo still finds the article, an AI answer cites it, and one click hands off to a person", async ({ page }) => {
  await signIn(page, MEMBER, "/portal/help");
  await expectAccessible(page, "the help page");
  await page.getByRole("searchbox").fill("invioces");
  await page.getByRole("button", { name: "Search" }).click();
  const results = page.getByRole("main").getByRole("listitem");
  await expect(results.first()).toBeVisible();
  await expect(page.getByRole("main")).toContainText(/invoice/i);

  // Open the first article.
  await results.first().getByRole("link").click();
  await expect(page.getByRole("article").getByRole("heading", { level: 1 })).toBeVisible();
  await expectAccessible(page, "an article page");

  await page.goto("/portal/help");
  await page.getByLabel("Your question").fill("How do I add a seat?");
  await page.getByRole("button", { name: "Get an answer" }).click();
  const answer = page.getByTestId("answer");
  await expect(answer).toBeVisible();
  const source = answer.getByRole("listitem").getByRole("link").first();
  await expect(source).toHaveAttribute("href", /\/portal\/help\/articles\//);
  await expectAccessible(page, "the help page with an answer");
  test.skip(!(await hasEndpoint(page, "POST", "/v1/answers/handoff")), "the AI hand-off has not landed in portal-core");
  await answer.getByRole("button", { name: "Talk to a person" }).click();
  await expect(answer.getByRole("status")).toContainText("A person has your question");
  // The hand-off opened the chat with the question in it.
  await expect(page.getByTestId("chat-log")).toContainText("How do I add a seat?");
});

test("community: a customer asks, answers, and sees the staff-verified answer first", async ({ page }) => {
  await signIn(page, ADMIN, "/portal/help/community");
  test.skip(!(await hasEndpoint(page, "GET", "/v1/community/questions")), "community Q&A has not landed in portal-core");
  await expectAccessible(page, "the community page");
  const title = `How do we export reports weekly? ${Date.now()}`;
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Details").fill("<b>Every Monday</b> if possible.");
  await page.getByRole("button", { name: "Post question" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(title);
  await expect(page.getByRole("main")).toContainText("<b>Every Monday</b> if possible.");
  await page.getByRole("textbox", { name: "Your answer" }).fill("We use a scheduled workflow for this.");
  await page.getByRole("button", { name: "Post answer" }).click();
  await expect(page.getByRole("main")).toContainText("We use a scheduled workflow for this.");
  await expectAccessible(page, "a community question");

  // A seeded question whose answer staff verified shows it first, marked.
  const questions = (await pageFetch(page, "/v1/community/questions?limit=50")).body.items;
  let verified = null;
  for (const q of questions) {
    const thread = (await pageFetch(page, `/v1/community/questions/${q.id}`)).body;
    const a = thread.answers.find((a) => a.verified);
    if (a) verified = { q, a };
  }
  expect(verified, "the demo data has a staff-verified answer").toBeTruthy();
  await page.goto("/portal/help/community");
  await page.getByRole("link", { name: verified.q.title }).click();
  const first = page.locator("article.answer").first();
  await expect(first).toContainText("Verified by our team");
  await expect(first).toContainText(verified.a.body.slice(0, 40));
});

test("onboarding: steps show their state and a manual step can be ticked and unticked", async ({ page }) => {
  const me = await signIn(page, ADMIN, "/portal/onboarding");
  test.skip(!(await hasEndpoint(page, "GET", `/v1/accounts/${me.account.id}/onboarding`)), "onboarding has not landed in portal-core");
  const progress = page.getByTestId("onboarding-progress");
  await expect(progress).toContainText(/\d+ of \d+ steps done/);
  await expectAccessible(page, "the onboarding page");
  const before = (await progress.textContent()).match(/(\d+) of/)[1];
  const step = page.getByRole("button", { name: /Mark as done/ }).first();
  const name = (await step.textContent()).replace("Mark as done", "").replace(/^\s*:\s*/, "").trim();
  await step.click();
  await expect(progress).toContainText(`${Number(before) + 1} of`);
  await page.getByRole("button", { name: new RegExp(`^Mark as not done\\W+${name}$`) }).click();
  await expect(progress).toContainText(`${before} of`);
});

test("requests: a feature request with an attachment, voted for, shows in the list", async ({ page }) => {
  await signIn(page, MEMBER, "/portal/requests");
  await expectAccessible(page, "the requests list");
  await page.getByRole("link", { name: "New request" }).first().click();
  await expectAccessible(page, "the new request form");
  const title = `Dark mode for reports ${Date.now()}`;
  await page.getByLabel("Feature request").check();
  await page.getByLabel("Product area").selectOption("reporting");
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Description").fill("Our team works late.");
  const probe = (await pageFetch(page, "/v1/requests?limit=1")).body.items[0]?.id ?? "00000000-0000-7000-8000-000000000000";
  test.skip(!(await hasEndpoint(page, "GET", `/v1/requests/${probe}/attachments/00000000-0000-7000-8000-000000000000`)), "attachments have not landed in portal-core");
  await page.getByLabel("Attachments").setInputFiles({ name: "mockup.png", mimeType: "image/png", buffer: Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cf000000030101009a5cc0a70000000049454e44ae426082", "hex") });
  await page.getByRole("button", { name: "Send request" }).click();
  const request = page.getByTestId("request");
  await expect(request.getByRole("heading", { level: 1 })).toHaveText(title);
  await expect(request.getByRole("link", { name: "mockup.png" })).toBeVisible();
  await expect(request.getByTestId("votes")).toHaveText("0 votes");
  await request.getByRole("button", { name: "Vote for this" }).click();
  await expect(request.getByTestId("votes")).toHaveText("1 votes");
  await expect(request.getByRole("button", { name: "Remove my vote" })).toHaveAttribute("aria-pressed", "true");
  await expectAccessible(page, "a request's page");
  // The attachment downloads as it was uploaded.
  const href = await request.getByRole("link", { name: "mockup.png" }).getAttribute("href");
  const file = await page.context().request.get(href);
  expect(file.status()).toBe(200);
  expect((await file.body()).subarray(0, 4).toString("hex")).toBe("89504e47");
  await page.getByRole("link", { name: "← Requests" }).click();
  await expect(page.getByTestId("requests").getByRole("row").filter({ hasText: title })).toContainText("New");
});

test("account pages and the dashboard pass axe-core, and French is chosen, saved and kept", async ({ page }) => {
  await signIn(page, ADMIN, "/portal/account/usage");
  await expect(page.getByRole("heading", { name: "Usage history" })).toBeVisible();
  await expect(page.getByRole("meter", { name: "API calls" })).toBeVisible();
  await expectAccessible(page, "the usage page");
  await page.goto("/portal/help/releases");
  await expect(page.getByRole("heading", { name: "Release notes" })).toBeVisible();
  await expectAccessible(page, "the release notes page");

  await page.goto("/portal/");
  test.skip(!(await hasEndpoint(page, "PATCH", "/v1/me")), "saving the language (PATCH /v1/me) has not landed in portal-core");
  try {
    await page.getByRole("combobox", { name: "Language" }).selectOption("fr");
    await expect(page.getByRole("link", { name: "Tableau de bord" })).toBeVisible();
    await expect(page.locator("html")).toHaveAttribute("lang", "fr");
    await expectAccessible(page, "the dashboard in French");
    // Saved on the user: a reload (an English browser) stays in French.
    await page.reload();
    await expect(page.getByRole("link", { name: "Factures" })).toBeVisible();
  } finally {
    await pageFetch(page, "/v1/me", { method: "PATCH", body: JSON.stringify({ locale: "en" }) });
  }
});

test("with no saved preference, a French browser gets the French portal", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: process.env.PORTICO_BASE, locale: "fr-FR" });
  const page = await context.newPage();
  await page.goto("/portal/");
  await expect(page.getByRole("heading", { name: "Connexion à Portico" })).toBeVisible();
  await expectAccessible(page, "the French sign-in page");
  await context.close();
});
