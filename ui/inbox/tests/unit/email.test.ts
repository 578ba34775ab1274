import { describe, expect, it } from 'vitest';
import { addressLine, deliveryView, distinctSubject, inTime, waitingSenders } from '../../src/lib/email';
import { fileSize } from '../../src/lib/format';
import type { Delivery } from '../../src/lib/wire/Delivery';
import type { HeldContact } from '../../src/lib/wire/HeldContact';

const now = new Date('2026-11-26T12:00:00Z');
const base: Delivery = { status: 'queued', to: ['admin@acme.test'], attempts: 0, error: null, next_attempt_at: null, updated_at: now.toISOString() };

describe('delivery of an email reply', () => {
  it('is sending until the first attempt', () => {
    const v = deliveryView(base, now);
    expect(v).toMatchObject({ state: 'sending', label: 'Sending to admin@acme.test', alarm: false, detail: null });
  });
  it('says a temporary failure will be retried, with the attempts and the next try', () => {
    const v = deliveryView({ ...base, attempts: 2, error: '451 4.3.0 try later', next_attempt_at: '2026-11-26T12:04:00Z' }, now);
    expect(v.state).toBe('retrying');
    expect(v.detail).toBe('451 4.3.0 try later');
    expect(v.attempts).toBe('2 attempts; next try in 4m');
    expect(v.alarm).toBe(false);
  });
  it('is quiet once sent', () => {
    expect(deliveryView({ ...base, status: 'sent', attempts: 1 }, now)).toMatchObject({ state: 'sent', label: 'Sent to admin@acme.test', alarm: false });
  });
  it('raises the alarm on a failure, with the server words and the attempts', () => {
    const v = deliveryView({ ...base, status: 'failed', attempts: 8, error: '550 5.7.1 relay denied' }, now);
    expect(v).toMatchObject({ state: 'failed', detail: '550 5.7.1 relay denied', attempts: 'gave up after 8 attempts', alarm: true });
    expect(v.label).toContain('Not delivered to admin@acme.test');
  });
  it('raises the alarm on a bounce, with the diagnostic', () => {
    const v = deliveryView({ ...base, status: 'bounced', attempts: 1, error: '5.1.1 smtp; 550 5.1.1 mailbox unavailable' }, now);
    expect(v).toMatchObject({ state: 'bounced', alarm: true, detail: '5.1.1 smtp; 550 5.1.1 mailbox unavailable' });
    expect(v.label).toBe('Bounced: admin@acme.test did not receive it');
    expect(v.attempts).toBe("sent on the first attempt, then returned by the recipient's server");
  });
});

describe('mail details', () => {
  it('writes From → To with Cc compactly', () => {
    expect(addressLine({ from: 'sam@x.example', to: ['support@p.test'], cc: [], subject: '', message_id: '', html: null, quoted: null, attachments: [], notes: [] })).toBe('sam@x.example → support@p.test');
    expect(addressLine({ from: 'a@x', to: ['b@y', 'c@y'], cc: ['d@x'], subject: '', message_id: '', html: null, quoted: null, attachments: [], notes: [] })).toBe('a@x → b@y, c@y, cc d@x');
  });
  it('shows a subject only when it differs from the conversation’s', () => {
    expect(distinctSubject('Re: RE: Export fails', 'Export fails')).toBeNull();
    expect(distinctSubject('Fwd: export fails', 'Export fails')).toBeNull();
    expect(distinctSubject('Also: invoices', 'Export fails')).toBe('Also: invoices');
    expect(distinctSubject('', 'Export fails')).toBeNull();
  });
  it('sizes files for people', () => {
    expect(fileSize(512)).toBe('512 B');
    expect(fileSize(12_800)).toBe('13 KB');
    expect(fileSize(3_565_158)).toBe('3.4 MB');
    expect(fileSize(52_428_800)).toBe('50 MB');
  });
  it('says when a time is ahead', () => {
    expect(inTime('2026-11-26T12:00:10Z', now)).toBe('now');
    expect(inTime('2026-11-26T13:00:00Z', now)).toBe('in 1h');
    expect(inTime('2026-11-29T12:00:00Z', now)).toBe('in 3d');
  });
});

describe('held senders', () => {
  const c = (email: string, linked: string | null): HeldContact => ({ id: email, email, name: '', reason: 'unknown', held: 1, latest_subject: null, linked_account_id: linked });
  it('lists only senders still waiting, in the server order', () => {
    expect(waitingSenders([c('a@x', null), c('b@x', 'acct'), c('c@x', null)]).map((h) => h.email)).toEqual(['a@x', 'c@x']);
  });
});
