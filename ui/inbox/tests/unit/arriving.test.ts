import { describe, expect, it } from 'vitest';
import { arrive, settle, shown, withdraw } from '../../src/lib/arriving';
import type { Message } from '../../src/lib/wire/Message';

const msg = (id: string, body = 'hi'): Message =>
  ({ id, conversation_id: 'c1', account_id: 'a1', kind: 'customer', author_id: 'u1', author_name: 'Ada', body, mentions: [], email: null, delivery: null, version: 0, created_at: '2026-11-26T00:00:00Z', updated_at: '2026-11-26T00:00:00Z' }) as Message;

describe('arriving chat messages', () => {
  it('lists a message once, even when it is announced again (a resend)', () => {
    let all = arrive({}, msg('m1'));
    all = arrive(all, msg('m1'));
    expect(all.c1.map((m) => m.id)).toEqual(['m1']);
  });
  it('takes back a withdrawn message and leaves the others', () => {
    let all = arrive(arrive({}, msg('m1')), msg('m2'));
    all = withdraw(all, 'c1', 'm1');
    expect(all.c1.map((m) => m.id)).toEqual(['m2']);
  });
  it('forgets a message once its record is stored', () => {
    const all = settle(arrive({}, msg('m1')), 'c1', new Set(['m1']));
    expect(all.c1).toEqual([]);
  });
  it('shows the stored messages, then the arriving ones not stored yet, marked', () => {
    const view = shown([msg('m0'), msg('m1')], [msg('m1'), msg('m2')]);
    expect(view.map((m) => [m.id, m.arriving])).toEqual([['m0', false], ['m1', false], ['m2', true]]);
  });
});
