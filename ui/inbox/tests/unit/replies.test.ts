import { describe, expect, it } from 'vitest';
import { filterReplies, opensPicker } from '../../src/lib/replies';
import type { SavedReply } from '../../src/lib/wire/SavedReply';

const reply = (title: string, body: string): SavedReply => ({ id: title, title, body, owner_id: null, version: 1, created_at: '', updated_at: '' });
const all = [reply('Looking into it', 'Thanks for reaching out'), reply('Closing', 'I will close this'), reply('Refund issued', 'Your refund is on its way')];

describe('saved reply picker', () => {
  it('shows everything before anything is typed', () => {
    expect(filterReplies(all, '  ')).toHaveLength(3);
  });
  it('filters as you type, every word in the title or text, accents and case ignored', () => {
    expect(filterReplies(all, 'clos').map((r) => r.title)).toEqual(['Closing']);
    expect(filterReplies(all, 'RÉFUND way').map((r) => r.title)).toEqual(['Refund issued']);
    expect(filterReplies(all, 'refund nothing')).toEqual([]);
  });
  it('ranks title matches first', () => {
    const r = filterReplies([reply('A', 'close the loop'), reply('Close', 'bye')], 'close');
    expect(r.map((x) => x.title)).toEqual(['Close', 'A']);
  });
  it('opens on Ctrl/Cmd+Shift+M only', () => {
    expect(opensPicker({ key: 'M', ctrlKey: true, metaKey: false, shiftKey: true })).toBe(true);
    expect(opensPicker({ key: 'm', ctrlKey: false, metaKey: true, shiftKey: true })).toBe(true);
    expect(opensPicker({ key: 'm', ctrlKey: true, metaKey: false, shiftKey: false })).toBe(false);
  });
});
