import { describe, expect, it } from 'vitest';
import { arrive, shown, withdraw } from '../../src/lib/arriving';
import type { Message } from '../../src/lib/wire/Message';

const msg = (id: string, body = 'hi'): Message =>
  ({ id, conversation_id: 'c1', account_id: 'a1', kind: 'customer', author_id: 'u1', author_name: 'Ada', body, mentions: [], email: null, delivery: null, version: 0, created_at: '2026-11-26T00:00:00Z', updated_at: '2026-11-26T00:00:00Z' }) as Message;

describe('arriving chat messages', () => {
  it('lists a message once, even when it is announced again (a resend)', () => {
    const list = arrive(arrive([], msg('m1')), msg('m1'));
    expect(list.map((m) => m.id)).toEqual(['m1']);
  });
  it('takes back a withdrawn message and leaves the others', () => {
    const list = withdraw(arrive(arrive([], msg('m1')), msg('m2')), 'm1');
    expect(list.map((m) => m.id)).toEqual(['m2']);
  });
  it('shows the stored messages, then the arriving ones not stored yet, marked', () => {
    const view = shown([msg('m0'), msg('m1')], [msg('m1'), msg('m2')]);
    expect(view.map((m) => [m.id, m.arriving])).toEqual([['m0', false], ['m1', false], ['m2', true]]);
  });
});
