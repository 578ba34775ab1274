// The customer chat page (`/chat`) in a real browser against a real
// portal-core: a customer starts a chat, an agent (signed in in another
// browser context, talking over the live socket) sees it, types and replies,
// and the page shows it live; hostile message bodies stay text; a customer's
// crafted frames cannot reach another account's conversation.
const { test, expect } = require("@playwright/test");

const PASSWORD = "portico-demo";
const CUSTOMER = "admin@acme.test";
const AGENT = "agent@portico.test";

/** Signs in through the chat page's own form and waits for its socket. */
async function signIn(page, email) {
  await page.goto("/chat");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator("#chat")).toBeVisible();
  await expect(page.getByRole("status")).toHaveText("Connected.");
}

/** Runs in the page: opens a live socket of its own, recording every frame. */
function openLiveSocket() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/v1/live`);
    window.live = { ws, frames: [], closed: null };
    ws.onmessage = (event) => window.live.frames.push(JSON.parse(event.data));
    ws.onclose = (event) => { window.live.closed = { code: event.code, reason: event.reason }; };
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the live socket did not open"));
  });
}

/**
 * A live socket opened from `page` (with whoever's session cookie the page
 * holds), with helpers to send frames and look at what arrived.
 */
async function liveSocket(page) {
  await page.evaluate(openLiveSocket);
  const socket = {
    send: (frame) => page.evaluate((f) => window.live.ws.send(JSON.stringify(f)), frame),
    frames: () => page.evaluate(() => window.live.frames),
    /** A UUIDv7 minted by the chat page's own function. */
    newId: () => page.evaluate(() => uuidv7()),
    /** Waits until everything the server sent before a `pong` has arrived. */
    async roundTrip() {
      const pongs = async () => (await socket.frames()).filter((f) => f.type === "pong").length;
      const before = await pongs();
      await socket.send({ type: "ping" });
      await expect.poll(pongs).toBeGreaterThan(before);
    },
  };
  await expect.poll(async () => (await socket.frames()).some((f) => f.type === "hello")).toBe(true);
  return socket;
}

/** A staff member in their own browser context, signed in over the API. */
async function openAgent(browser) {
  const context = await browser.newContext({ baseURL: process.env.PORTICO_BASE });
  const login = await context.request.post("/v1/auth/login", { data: { email: AGENT, password: PASSWORD } });
  expect(login.ok(), "the demo agent signs in").toBeTruthy();
  // Changes on the session cookie repeat its CSRF token.
  const { csrf_token: csrf } = await login.json();
  const me = await (await context.request.get("/v1/me")).json();
  const page = await context.newPage();
  // Any page of the portal's origin: the socket carries its session cookie.
  await page.goto("/chat");
  const socket = await liveSocket(page);
  return { context, page, request: context.request, socket, name: me.user.name, csrf };
}

/** The newest change of `kind` whose row passes `match`, or null. */
async function changeOf(socket, kind, match) {
  const frames = await socket.frames();
  const hits = frames.filter((f) => f.type === "change" && f.change.kind === kind && f.change.row && match(f.change.row));
  return hits.length ? hits[hits.length - 1].change.row : null;
}

/** Starts a chat from the page and returns the new conversation as the agent sees it live. */
async function startChat(page, agent, subject) {
  await page.getByLabel("What do you need help with?").fill(subject);
  await page.getByRole("button", { name: "Start chat" }).click();
  await expect(page.locator("#compose")).toBeVisible();
  await expect
    .poll(() => agent.page.evaluate((s) => window.live.frames.some((f) => f.type === "change" && f.change.kind === "conversation" && f.change.row && f.change.row.subject === s), subject))
    .toBe(true);
  return changeOf(agent.socket, "conversation", (row) => row.subject === subject);
}

test("a customer's chat reaches an agent, whose typing and reply appear live", async ({ page, browser }) => {
  const agent = await openAgent(browser);
  await signIn(page, CUSTOMER);
  const subject = `Export stuck since Monday (${Date.now()})`;
  const conversation = await startChat(page, agent, subject);
  expect(conversation.channel).toBe("chat");
  await expect(page.locator("#log")).toContainText(subject);

  // It is in the agent's inbox over the API too, routed like any new conversation.
  const inbox = await (await agent.request.get("/v1/conversations?limit=50")).json();
  expect(inbox.items.map((c) => c.id)).toContain(conversation.id);

  // The agent opens it: the customer's typing reaches the agent live.
  await agent.socket.send({ type: "subscribe", conversation_id: conversation.id });
  await agent.socket.roundTrip();
  const typingFrom = async (typing) =>
    (await agent.socket.frames()).some((f) => f.type === "typing" && f.conversation_id === conversation.id && f.typing === typing);
  await page.getByPlaceholder("Write a message").fill("The export");
  await expect.poll(() => typingFrom(true)).toBe(true);

  // The customer sends: the agent gets the message, and the typing stops.
  await page.getByPlaceholder("Write a message").fill("The export has been stuck at 40% since Monday.");
  await page.getByRole("button", { name: "Send" }).click();
  const sent = page.locator("#log .msg", { hasText: "stuck at 40%" });
  await expect(sent).toBeVisible();
  await expect(sent).not.toHaveClass(/pending/);
  await expect
    .poll(async () => (await changeOf(agent.socket, "message", (m) => m.body.includes("stuck at 40%")))?.kind)
    .toBe("customer");
  await expect.poll(() => typingFrom(false)).toBe(true);

  // The agent types: the page shows it. Retried because the page's own
  // subscription may still be on its way when the agent first types.
  await expect(async () => {
    await agent.socket.send({ type: "typing", conversation_id: conversation.id, typing: true });
    await expect(page.locator("#typing")).toHaveText(`${agent.name} is typing…`, { timeout: 1_000 });
  }).toPass();

  // The agent replies over the socket: acknowledged, shown live as the agent's.
  const replyId = await agent.socket.newId();
  await agent.socket.send({
    type: "send",
    conversation_id: conversation.id,
    message_id: replyId,
    body: "Sorry about that! I have restarted the export; it should finish within the hour.",
  });
  await expect
    .poll(async () => (await agent.socket.frames()).some((f) => f.type === "ack" && f.message_id === replyId))
    .toBe(true);
  const reply = page.locator("#log .msg.agent", { hasText: "restarted the export" });
  await expect(reply).toBeVisible();
  await expect(reply.locator(".who")).toHaveText(agent.name);
  // A reply ends the "is typing" line, as chat widgets do.
  await expect(page.locator("#typing")).toBeEmpty();
  await agent.context.close();
});

test("markup in messages is shown as text and never runs", async ({ page, browser }) => {
  const dialogs = [];
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  const agent = await openAgent(browser);
  await signIn(page, CUSTOMER);
  const inSubject = `<img src=x onerror="window.__pwned='subject'">Help (${Date.now()})`;
  const conversation = await startChat(page, agent, inSubject);

  const fromCustomer = `<script>window.__pwned = "customer"</script><b>bold?</b>`;
  await page.getByPlaceholder("Write a message").fill(fromCustomer);
  await page.getByRole("button", { name: "Send" }).click();

  const fromAgent = `<img src=x onerror="alert('agent');window.__pwned='agent'"><script>window.__pwned='agent script'</script>`;
  await agent.socket.send({ type: "subscribe", conversation_id: conversation.id });
  await agent.socket.send({
    type: "send",
    conversation_id: conversation.id,
    message_id: await agent.socket.newId(),
    body: fromAgent,
  });

  const log = page.locator("#log");
  await expect(log).toContainText(inSubject);
  await expect(log).toContainText(fromCustomer);
  await expect(log.locator(".msg.agent")).toContainText(fromAgent);
  await expect(log.locator("img, script, b")).toHaveCount(0);
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);

  // The history path renders the same way: a fresh page loading the messages.
  const again = await page.context().newPage();
  again.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  await again.goto("/chat");
  // The page's own history loader, pointed at this conversation.
  await again.evaluate((id) => { conversation = id; return loadHistory(); }, conversation.id);
  await expect(again.locator("#log")).toContainText(fromAgent);
  await expect(again.locator("#log img, #log script, #log b")).toHaveCount(0);
  expect(await again.evaluate(() => window.__pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);
  await agent.context.close();
});

test("a customer's crafted frames cannot read or post into another account's conversation", async ({ page, browser }) => {
  const agent = await openAgent(browser);
  await signIn(page, CUSTOMER);
  const me = await page.evaluate(async () => (await fetch("/v1/me")).json());
  const inbox = await (await agent.request.get("/v1/conversations?limit=200")).json();
  const theirs = inbox.items.find((c) => c.account_id && c.account_id !== me.account.id);
  expect(theirs, "the demo data has other accounts' conversations").toBeTruthy();

  // From the customer's page: a socket of its own sending hand-made frames.
  const crafted = await liveSocket(page);
  await crafted.send({ type: "subscribe", conversation_id: theirs.id });
  const postId = await crafted.newId();
  await crafted.send({ type: "send", conversation_id: theirs.id, message_id: postId, body: "Reading your chat!" });
  await crafted.send({ type: "typing", conversation_id: theirs.id, typing: true });
  await crafted.send({ type: "read", conversation_id: theirs.id, message_id: postId });
  await crafted.roundTrip();
  const errors = (await crafted.frames()).filter((f) => f.type === "error");
  expect(errors.map((e) => e.code)).toEqual(["not_found", "not_found", "forbidden", "forbidden"]);
  expect(errors[1].message_id).toBe(postId);
  // Refusals keep the socket open: the page's chat goes on.
  expect(await page.evaluate(() => window.live.closed)).toBeNull();

  // Over HTTP from the same page: their messages do not exist for this customer.
  const status = await page.evaluate(async (id) => (await fetch(`/v1/conversations/${id}/messages`)).status, theirs.id);
  expect(status).toBe(404);

  // Nothing was stored, and what staff write there never reaches this customer.
  const messages = await (await agent.request.get(`/v1/conversations/${theirs.id}/messages?limit=200`)).json();
  expect(messages.items.map((m) => m.id)).not.toContain(postId);
  const staffPost = await agent.request.post(`/v1/conversations/${theirs.id}/messages`, {
    data: { body: "A reply for the other company only" },
    headers: { "x-csrf-token": agent.csrf },
  });
  expect(staffPost.status()).toBe(201);
  await crafted.roundTrip();
  const leaked = (await crafted.frames()).filter(
    (f) => f.type === "change" && f.change.row && (f.change.row.account_id === theirs.account_id || f.change.id === theirs.id || f.change.row.conversation_id === theirs.id),
  );
  expect(leaked).toEqual([]);
  await expect(page.locator("#log")).not.toContainText("other company only");
  await agent.context.close();
});
