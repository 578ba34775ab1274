// Screen tests in a real browser (Debian's Chromium through playwright-core)
// against the desk's command surface served by the dev bridge, with a real
// portal-core behind it. They also write the screenshots in docs/screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { Portal, startBridge, signInLikeABrowser, eventually, ROOT, AGENT, CUSTOMER, SUPPORT } from './harness.mjs';

const SHOTS = join(ROOT, 'docs/screenshots');
let portal, bridge, browser, page;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  portal = await Portal.start({ mail: true });
  bridge = await startBridge(portal);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
});

after(async () => {
  await browser?.close();
  await bridge?.stop();
  await portal?.close();
});

const rows = () => page.locator('[data-testid=conversation-row]');

test('signs in through the browser and shows the inbox', async () => {
  await page.goto(bridge.url);
  await page.getByRole('button', { name: 'Sign in with your browser' }).click();
  const link = page.locator('#authorize-link');
  await link.waitFor();
  await page.screenshot({ path: join(SHOTS, 'sign-in.png') });
  const text = await signInLikeABrowser(await link.getAttribute('href'));
  assert.match(text, /You are signed in to Portico Inbox/);
  await page.getByTestId('me').waitFor();
  assert.ok((await page.getByTestId('me').textContent()).length > 0);
  await page.getByTestId('view-all').click();
  await eventually('rows', async () => (await rows().count()) > 5);
  await assert.doesNotReject(page.getByTestId('connectivity').filter({ hasText: 'Online' }).waitFor());
  await page.screenshot({ path: join(SHOTS, 'inbox.png') });
});

test('keyboard triage: j/k move, enter opens, e resolves at once and the server hears', async () => {
  const staff = await portal.as(AGENT);
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('j');
  await page.keyboard.press('k');
  await page.keyboard.press('j');
  const second = rows().nth(1);
  assert.equal(await second.getAttribute('aria-selected'), 'true');
  const id = await second.getAttribute('data-id');
  await page.keyboard.press('Enter');
  await page.getByTestId('conversation').waitFor();
  await page.getByTestId('account-panel').getByTestId('seats').waitFor();
  await page.screenshot({ path: join(SHOTS, 'conversation.png') });
  await page.keyboard.press('e');
  await eventually('the row leaves the open list', async () => (await page.locator(`[data-testid=conversation-row][data-id="${id}"]`).count()) === 0);
  await eventually('the server resolved it', async () => (await staff.get(`/v1/conversations/${id}`)).status === 'resolved');
});

test('offline: a resolve is queued, shown, and reaches the server when it is back', async () => {
  const staff = await portal.as(AGENT);
  await portal.down();
  await page.getByTestId('connectivity').filter({ hasText: 'Offline' }).waitFor({ timeout: 30_000 });
  const id = await rows().first().getAttribute('data-id');
  await page.getByTestId('view-all').click();
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Enter');
  await page.getByTestId('conversation').waitFor();
  await page.keyboard.press('e');
  await page.getByTestId('pending').filter({ hasText: '1 change waiting to send' }).waitFor();
  await eventually('the row leaves the open list offline', async () => (await page.locator(`[data-testid=conversation-row][data-id="${id}"]`).count()) === 0);
  await page.screenshot({ path: join(SHOTS, 'offline.png') });
  await portal.up();
  await page.getByTestId('pending').filter({ hasText: 'All changes sent' }).waitFor({ timeout: 30_000 });
  await page.getByTestId('connectivity').filter({ hasText: 'Online' }).waitFor();
  assert.equal((await staff.get(`/v1/conversations/${id}`)).status, 'resolved');
});

test('a reply reaches the customer; an internal note does not', async () => {
  const customer = await portal.as(CUSTOMER);
  const created = await customer.post('/v1/conversations', { subject: 'Screen test: export fails', body: 'The CSV export stops at 10%.' });
  await page.getByTestId('view-all').click();
  const row = page.locator(`[data-testid=conversation-row][data-id="${created.id}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.dblclick();
  await page.getByTestId('subject').filter({ hasText: 'Screen test: export fails' }).waitFor();
  await page.keyboard.press('r');
  await page.getByTestId('composer').fill('Thanks, a fix is on its way.');
  await page.keyboard.press('Control+Enter');
  await page.keyboard.press('Escape');
  await page.keyboard.press('n');
  await page.getByTestId('composer').fill('Internal: check the export worker.');
  await page.keyboard.press('Control+Enter');
  await eventually('both messages show', async () => (await page.getByTestId('message').count()) >= 3);
  const msgs = async () => (await customer.get(`/v1/conversations/${created.id}/messages`)).items.map((m) => m.body);
  await eventually('the customer receives the reply', async () => (await msgs()).includes('Thanks, a fix is on its way.'));
  assert.ok(!(await msgs()).some((b) => b.startsWith('Internal:')), 'customers never see internal notes');
});

test('drafts to review: citations open, an edited approval reaches the customer, a rejection needs a reason', async () => {
  const customer = await portal.as(CUSTOMER);
  const staff = await portal.as(AGENT);
  const asked = [
    await customer.post('/v1/conversations', { subject: 'Invoice copy', body: 'Where can I download my invoice?' }),
    await customer.post('/v1/conversations', { subject: 'Single sign-on setup', body: 'How do I set up SSO with Okta for our team?' }),
  ];
  await page.keyboard.press('Escape');
  await page.getByTestId('view-drafts').click();
  const rowOf = (c) => page.locator('[data-testid=draft-row]').filter({ hasText: c.subject });
  await eventually('both drafts reach the list', async () => {
    await page.getByTestId('view-drafts').click();
    return (await rowOf(asked[0]).count()) === 1 && (await rowOf(asked[1]).count()) === 1;
  }, 30_000);
  // Approve the one citing a help-centre article (mirrored, so it opens
  // here); reject the other.
  const draft = page.getByTestId('draft');
  let approve = null;
  for (const c of asked) {
    await rowOf(c).click();
    await page.getByTestId('subject').filter({ hasText: c.subject }).waitFor();
    await draft.waitFor();
    assert.ok((await draft.getByTestId('citation').count()) > 0, `the draft for “${c.subject}” shows what it cites`);
    if (!approve && (await draft.locator('button[data-testid=citation]').count()) > 0) approve = c;
  }
  assert.ok(approve, 'one of the drafts cites a help-centre article');
  const reject = asked.find((c) => c !== approve);
  await rowOf(approve).click();
  await page.getByTestId('subject').filter({ hasText: approve.subject }).waitFor();
  await eventually('the cited article opens from the local store', async () => {
    await draft.locator('button[data-testid=citation]').first().click({ timeout: 2000 });
    return (await page.getByTestId('article').textContent()).length > 20;
  });
  await page.screenshot({ path: join(SHOTS, 'drafts.png') });
  // Proposed actions are never pre-picked.
  for (const box of await draft.getByTestId('draft-action').all()) assert.equal(await box.isChecked(), false);
  await draft.getByTestId('draft-edit').click();
  const original = await draft.getByTestId('draft-body-edit').inputValue();
  await draft.getByTestId('draft-body-edit').fill(`${original}\n\nScreen test: checklist attached.`);
  await draft.getByTestId('draft-approve').click();
  const msgs = async (id) => (await customer.get(`/v1/conversations/${id}/messages`)).items;
  await eventually('the customer receives the edited reply', async () => (await msgs(approve.id)).some((m) => m.kind === 'agent' && m.body.endsWith('Screen test: checklist attached.')));
  await eventually('the approved draft left the list', async () => {
    await page.getByTestId('view-drafts').click();
    return (await rowOf(approve).count()) === 0;
  });

  await rowOf(reject).click();
  await page.getByTestId('subject').filter({ hasText: reject.subject }).waitFor();
  await page.getByTestId('draft-reject').click();
  assert.equal(await page.getByTestId('draft-reject-confirm').isDisabled(), true, 'a rejection needs a reason');
  await page.getByTestId('draft-reason').fill('Points to the wrong page');
  await page.getByTestId('draft-reject-confirm').click();
  await eventually('the server has it rejected', async () => {
    const drafts = (await staff.get('/v1/drafts?state=rejected')).items;
    return drafts.some((d) => d.conversation_id === reject.id);
  });
  assert.ok(!(await msgs(reject.id)).some((m) => m.kind === 'agent'), 'a rejected draft is never sent');
});

test('saved replies: Ctrl+Shift+M, filter as you type, placeholders filled', async () => {
  await page.getByTestId('view-all').click();
  await page.getByTestId('filter-status').selectOption('active');
  await rows().first().dblclick();
  await page.getByTestId('conversation').waitFor();
  await page.keyboard.press('r');
  await page.keyboard.press('Control+Shift+M');
  await page.getByTestId('reply-picker').waitFor();
  assert.ok((await page.getByTestId('reply-option').count()) >= 4, 'the team replies synced from the server');
  await page.keyboard.type('fixed conf');
  await eventually('the picker narrows as you type', async () => (await page.getByTestId('reply-option').count()) === 1);
  await page.screenshot({ path: join(SHOTS, 'saved-replies.png') });
  await page.keyboard.press('Enter');
  await eventually('the filled reply is in the composer', async () => (await page.getByTestId('composer').inputValue()).startsWith('Hi '));
  const text = await page.getByTestId('composer').inputValue();
  assert.ok(!text.includes('{{'), `every placeholder filled: ${text}`);
  assert.match(text, /This should be fixed now for .+\./);
  await page.getByTestId('composer').fill('');
  await page.keyboard.press('Escape');
});

test('SLA filter: breached or due soon, soonest first', async () => {
  await page.getByTestId('view-all').click();
  await page.getByTestId('filter-status').selectOption('active');
  await page.getByTestId('filter-sla').selectOption('1440');
  await eventually('conversations with a running SLA clock', async () => (await rows().count()) > 0);
  const badges = await page.getByTestId('sla').allTextContents();
  assert.equal(badges.length, await rows().count(), 'every row says when its SLA falls due');
  assert.ok(badges.every((b) => /due in|breached/.test(b)), badges.join(', '));
  await page.screenshot({ path: join(SHOTS, 'sla.png') });
  await page.getByTestId('filter-sla').selectOption('');
});

test('command palette, search and filters', async () => {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+k');
  await page.getByTestId('palette').waitFor();
  await page.keyboard.type('go to unass');
  await page.screenshot({ path: join(SHOTS, 'palette.png') });
  await page.keyboard.press('Enter');
  await eventually('the unassigned view', async () => (await page.getByTestId('view-unassigned').getAttribute('class')).includes('active'));
  await page.getByTestId('view-all').click();
  await page.getByTestId('filter-status').selectOption('resolved');
  await eventually('resolved rows only', async () => {
    const statuses = await rows().evaluateAll((els) => els.map((e) => e.dataset.status));
    return statuses.length > 0 && statuses.every((s) => s === 'resolved');
  });
  await page.keyboard.press('/');
  await page.keyboard.type('export');
  await page.getByTestId('search-results').getByText('Screen test: export fails').waitFor();
});

/** Back to the full list of open conversations, whatever an earlier test left. */
async function allOpen() {
  await page.keyboard.press('Escape');
  await page.getByTestId('search').fill('');
  await page.getByTestId('view-all').click();
  await page.getByTestId('filter-status').selectOption('active');
  await page.getByTestId('filter-sla').selectOption('');
}

test('email: quoted history folds, attachments are listed, the sent reply bounces and the desk shows why', async () => {
  const stamp = Date.now();
  const customerMessageId = `screen-invoice-${stamp}@acme.test`;
  const subject = `Screen test: invoice total is wrong ${stamp}`;
  const raw = [
    'From: Acme Admin <admin@acme.test>',
    `To: ${SUPPORT}`,
    `Subject: ${subject}`,
    `Message-ID: <${customerMessageId}>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="part"',
    '',
    '--part',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The total on invoice 1042 counts 12 seats; we have 10.',
    '',
    'On Mon, 23 Nov 2026 at 09:12, Support <support@portico.test> wrote:',
    '> Thanks for writing in.',
    '> Your invoice is attached.',
    '--part',
    'Content-Type: text/csv; name="seats.csv"',
    'Content-Disposition: attachment; filename="seats.csv"',
    '',
    'user,seat',
    'ann,1',
    '--part',
    'Content-Type: application/octet-stream; name="invoice-viewer.exe"',
    'Content-Disposition: attachment; filename="invoice-viewer.exe"',
    'Content-Transfer-Encoding: base64',
    '',
    'TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==',
    '--part--',
    '',
  ].join('\r\n');
  const placed = await portal.receiveMail(raw);
  assert.equal(placed.disposition, 'conversation', JSON.stringify(placed));

  await allOpen();
  const row = page.locator(`[data-testid=conversation-row][data-id="${placed.conversation_id}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.dblclick();
  await page.getByTestId('subject').filter({ hasText: subject }).waitFor();
  const mail = page.locator('[data-testid=message][data-kind=customer]').filter({ has: page.getByTestId('quoted-toggle') });
  await mail.waitFor();
  assert.equal((await mail.getByTestId('message-body').textContent()).trim(), 'The total on invoice 1042 counts 12 seats; we have 10.', 'the body shows without the quoted history');
  assert.match(await mail.getByTestId('mail-head').textContent(), /admin@acme\.test → support@portico\.test/);
  const quoted = mail.getByTestId('quoted');
  const toggle = mail.getByTestId('quoted-toggle');
  assert.equal(await quoted.isVisible(), false, 'quoted history starts folded');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  // From the keyboard: the toggle takes focus and Enter unfolds it (it does not open the selected row).
  await toggle.focus();
  await page.keyboard.press('Enter');
  await quoted.waitFor({ state: 'visible' });
  assert.match(await quoted.textContent(), /Your invoice is attached\./);
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await page.keyboard.press('Enter');
  await quoted.waitFor({ state: 'hidden' });
  await page.keyboard.press('Enter');
  await quoted.waitFor({ state: 'visible' });
  // Attachments: name and size; the executable was refused, with the reason.
  const files = mail.getByTestId('attachment');
  assert.equal(await files.count(), 2);
  assert.match(await files.filter({ hasText: 'seats.csv' }).textContent(), /\d+ B/);
  const refused = files.filter({ hasText: 'invoice-viewer.exe' }).getByTestId('attachment-refused');
  assert.ok((await refused.textContent()).length > 'not kept: '.length, 'the refusal says why');
  assert.equal(await files.filter({ hasText: 'invoice-viewer.exe' }).getByTestId('attachment-save').count(), 0, 'a refused file cannot be saved');
  // Saving the kept file writes the customer's bytes into the downloads folder.
  await files.filter({ hasText: 'seats.csv' }).getByRole('button', { name: 'Save seats.csv' }).click();
  const savedTo = (await mail.getByTestId('attachment-saved').textContent()).replace(/^saved to /, '');
  assert.match(savedTo, /downloads\/seats\.csv$/);
  assert.match(readFileSync(savedTo, 'utf8'), /^user,seat/m, 'the attachment as the customer sent it');

  // The agent replies; the outbox sends it to the real SMTP server, threaded.
  await page.keyboard.press('r');
  await page.getByTestId('composer').fill('Sorry about that: a corrected invoice is on its way.');
  await page.keyboard.press('Control+Enter');
  const reply = page.locator('[data-testid=message][data-kind=agent]').filter({ hasText: 'a corrected invoice is on its way' });
  await reply.getByTestId('delivery').and(page.locator('[data-state=sent]')).waitFor({ timeout: 40_000 });
  assert.match(await reply.getByTestId('delivery').textContent(), /Sent to admin@acme\.test/);
  const sent = await eventually('the reply reached the SMTP server', async () =>
    portal.mail.delivered().find((m) => m.includes('a corrected invoice is on its way')),
  );
  assert.match(sent, new RegExp(`^In-Reply-To: <${customerMessageId.replace(/[.]/g, '\\.')}>`, 'mi'), 'threaded under the customer mail');
  const replyMessageId = sent.match(/^Message-ID:\s*<([^>]+)>/im)[1];

  // The customer's server returns it: a delivery status notification to the hook.
  const dsn = [
    'From: MAILER-DAEMON@mx.acme.test',
    `To: ${SUPPORT}`,
    'Subject: Undelivered Mail Returned to Sender',
    `Message-ID: <dsn-${stamp}@mx.acme.test>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
    '',
    '--r',
    'Content-Type: text/plain',
    '',
    'Your message could not be delivered.',
    '--r',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.acme.test',
    '',
    'Final-Recipient: rfc822; admin@acme.test',
    'Action: failed',
    'Status: 5.1.1',
    'Diagnostic-Code: smtp; 550 5.1.1 <admin@acme.test>: mailbox unavailable',
    '--r',
    'Content-Type: text/rfc822-headers',
    '',
    `Message-ID: <${replyMessageId}>`,
    `Subject: Re: ${subject}`,
    '--r--',
    '',
  ].join('\r\n');
  // The author is told at once, whatever they are looking at (a notice for 8 s).
  const told = page.getByTestId('notice').filter({ hasText: 'Your reply to admin@acme.test bounced' }).waitFor({ timeout: 30_000 });
  assert.equal((await portal.receiveMail(dsn)).disposition, 'bounce');
  await told;
  const bounced = reply.getByTestId('delivery').and(page.locator('[data-state=bounced]'));
  await bounced.waitFor({ timeout: 30_000 });
  assert.match(await bounced.textContent(), /Bounced: admin@acme\.test did not receive it/);
  assert.match(await reply.getByTestId('delivery-detail').textContent(), /5\.1\.1.*mailbox unavailable/);
  assert.match(await reply.getByTestId('delivery-attempts').textContent(), /sent on the first attempt, then returned/);
  await page.getByTestId('undelivered').filter({ hasText: 'a reply was not delivered' }).waitFor();
  await bounced.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, 'email.png') });
});

test('held senders: an unknown sender waits, is linked to an account, and the mail reaches the inbox', async () => {
  const stamp = Date.now();
  const sender = `sam.${stamp}@stranger.example`;
  const subject = `Screen test: pricing for 40 seats ${stamp}`;
  const held = await portal.receiveMail(
    [
      `From: Sam Stranger <${sender}>`,
      `To: ${SUPPORT}`,
      `Subject: ${subject}`,
      `Message-ID: <pricing-${stamp}@stranger.example>`,
      `Date: ${new Date().toUTCString()}`,
      '',
      'What would 40 seats of Team cost per year?',
      '',
    ].join('\r\n'),
  );
  assert.equal(held.disposition, 'held', JSON.stringify(held));

  await page.keyboard.press('Escape');
  await page.getByTestId('view-held').click();
  const row = page.locator(`[data-testid=held-sender][data-email="${sender}"]`);
  await row.waitFor({ timeout: 20_000 });
  assert.match(await row.textContent(), /Sam Stranger/);
  assert.equal((await row.getByTestId('held-count').textContent()).trim(), '1 mail waiting');
  assert.match(await row.textContent(), new RegExp(subject));
  assert.ok((await row.getByTestId('held-reason').textContent()).length > 'Held: '.length, 'says why it was held');

  await row.getByTestId('link-sender').click();
  await page.getByTestId('account-search').fill('acme');
  const acme = page.getByTestId('account-option').filter({ hasText: 'acme.test' });
  await acme.waitFor();
  assert.equal(await page.getByTestId('link-confirm').isDisabled(), true, 'nothing is linked before an account is picked');
  await acme.click();
  await page.screenshot({ path: join(SHOTS, 'held-senders.png') });
  await page.getByTestId('link-confirm').click();
  await page.getByTestId('held-linked').filter({ hasText: `${sender} is linked to` }).waitFor();
  await eventually('the sender leaves the held list', async () => (await row.count()) === 0);

  // The held mail is a conversation on Acme now and arrives with sync.
  await allOpen();
  const conv = rows().filter({ hasText: subject });
  await conv.waitFor({ timeout: 30_000 });
  await conv.dblclick();
  await page.getByTestId('subject').filter({ hasText: subject }).waitFor();
  await page.getByTestId('message-body').filter({ hasText: 'What would 40 seats of Team cost per year?' }).waitFor();
  await page.getByTestId('account-panel').filter({ hasText: 'Acme' }).waitFor();
});
