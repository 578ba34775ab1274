// Chat with a person from any portal page, over the live hub: typing, read
// state, replies live, and markup shown as text.
const { test, expect, ADMIN, PASSWORD, signIn, expectAccessible, csrf } = require("./fixtures");

/** An agent in their own browser context with a live socket recording frames. */
async function openAgent(browser) {
  const context = await browser.newContext({ baseURL: process.env.PORTICO_BASE });
  const login = await context.request.post("/v1/auth/login", { data: { email: "agent@portico.test", password: PASSWORD } });
  expect(login.ok(), "the demo agent signs in").toBeTruthy();
  const page = await context.newPage();
  await page.goto("/v1/health");
  await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/v1/live`);
        window.live = { ws, frames: [] };
        ws.onmessage = (e) => window.live.frames.push(JSON.parse(e.data));
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("no socket"));
      }),
  );
  const send = (f) => page.evaluate((f) => window.live.ws.send(JSON.stringify(f)), f);
  const frames = () => page.evaluate(() => window.live.frames);
  return { context, request: context.request, send, frames, name: (await login.json()).user.name };
}

test("a customer chats with an agent from the dashboard: typing, read state, live reply, markup as text", async ({ page, browser }) => {
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
  const agent = await openAgent(browser);
  await signIn(page, ADMIN, "/portal/help");
  await page.getByRole("button", { name: "Chat with us" }).click();
  const panel = page.getByRole("region", { name: "Chat with a person" });
  await expect(panel.getByText("Connected")).toBeVisible();
  // Any open chat from earlier tests is resumed; start a new one if there is none.
  const subject = `Help with exports ${Date.now()}`;
  if (await panel.getByLabel("What do you need help with?").isVisible()) {
    await panel.getByLabel("What do you need help with?").fill(subject);
    await panel.getByRole("button", { name: "Start chat" }).click();
  }
  const log = panel.getByTestId("chat-log");
  await expect(log).toBeVisible();
  await expectAccessible(page, "a page with the chat panel open");

  const hostile = `<script>window.__pwned='chat'</script><img src=x onerror="alert('chat')"> the export is stuck`;
  await panel.getByLabel("Message", { exact: true }).fill(hostile);
  await panel.getByRole("button", { name: "Send" }).click();
  await expect(log.locator("li").filter({ hasText: "the export is stuck" }).last()).toContainText(hostile);

  // The agent sees it arrive live and finds the conversation.
  await expect
    .poll(async () => (await agent.frames()).some((f) => f.type === "change" && f.change.kind === "message" && f.change.row?.body === hostile))
    .toBe(true);
  const message = (await agent.frames()).find((f) => f.type === "change" && f.change.row?.body === hostile).change.row;
  const conversation = message.conversation_id;
  await agent.send({ type: "subscribe", conversation_id: conversation });

  // Typing from the agent shows in the panel (retried: the panel's own
  // subscription may still be on its way).
  await expect(async () => {
    await agent.send({ type: "typing", conversation_id: conversation, typing: true });
    await expect(panel.getByTestId("chat-typing")).toHaveText(`${agent.name} is typing…`, { timeout: 1_000 });
  }).toPass();

  // The agent reads the message: the panel says "Seen".
  await agent.send({ type: "typing", conversation_id: conversation, typing: false });
  await agent.send({ type: "read", conversation_id: conversation, message_id: message.id });
  await expect(panel.getByTestId("chat-typing")).toHaveText("Seen");

  // The agent replies with markup of their own: shown live, as text.
  const reply = `<img src=x onerror="window.__pwned='agent'">We restarted it`;
  const posted = await agent.request.post(`/v1/conversations/${conversation}/messages`, { data: { body: reply }, headers: await csrf(agent.request) });
  expect(posted.status()).toBe(201);
  await expect(log).toContainText(reply);
  await expect(log.locator("li").filter({ hasText: "We restarted it" })).toContainText(agent.name);
  // The customer's panel marks the reply read for the agent.
  await expect
    .poll(async () => (await agent.frames()).some((f) => f.type === "read" && f.conversation_id === conversation))
    .toBe(true);

  // Moving to another page keeps the chat.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Requests" }).click();
  await expect(log).toContainText("We restarted it");
  await expect(page.locator("#chat-panel img, #chat-panel script")).toHaveCount(0);
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);
  await agent.context.close();
});
