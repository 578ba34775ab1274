import { describe, expect, it } from 'vitest';
import { actionFor, move, snoozeUntil, filterPalette, parseTags } from '../../src/lib/keys';

describe('keyboard triage', () => {
  it('maps the triage keys', () => {
    const keys: Record<string, string> = { j: 'next', k: 'prev', Enter: 'open', a: 'assign_me', s: 'snooze', e: 'resolve', t: 'tag', r: 'reply', n: 'note', '/': 'search' };
    for (const [key, action] of Object.entries(keys)) expect(actionFor({ key })).toBe(action);
  });
  it('ignores letters while typing, but Escape and the palette still work', () => {
    expect(actionFor({ key: 'e', typing: true })).toBeNull();
    expect(actionFor({ key: 'Escape', typing: true })).toBe('escape');
    expect(actionFor({ key: 'k', ctrlKey: true, typing: true })).toBe('palette');
    expect(actionFor({ key: 'K', metaKey: true })).toBe('palette');
  });
  it('leaves Enter and Space to a focused button (the quoted-text toggle), other keys still act', () => {
    expect(actionFor({ key: 'Enter', onControl: true })).toBeNull();
    expect(actionFor({ key: ' ', onControl: true })).toBeNull();
    expect(actionFor({ key: 'j', onControl: true })).toBe('next');
    expect(actionFor({ key: 'Escape', onControl: true })).toBe('escape');
  });
  it('ignores modified letters (browser shortcuts stay the browser’s)', () => {
    expect(actionFor({ key: 'r', ctrlKey: true })).toBeNull();
    expect(actionFor({ key: 'a', altKey: true })).toBeNull();
  });
  it('moves within the list', () => {
    expect(move(0, -1, 10)).toBe(0);
    expect(move(9, 1, 10)).toBe(9);
    expect(move(3, 1, 10)).toBe(4);
    expect(move(5, 0, 0)).toBe(0);
    expect(move(12, 0, 4)).toBe(3);
  });
  it('snoozes until 9:00 tomorrow', () => {
    const d = snoozeUntil(new Date(2026, 10, 26, 23, 30));
    expect([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes()]).toEqual([2026, 10, 27, 9, 0]);
    const endOfMonth = snoozeUntil(new Date(2026, 10, 30, 8, 0));
    expect([endOfMonth.getMonth(), endOfMonth.getDate()]).toEqual([11, 1]);
  });
  it('filters the palette by every typed word', () => {
    const entries = [
      { id: '1', label: 'Assign to me' },
      { id: '2', label: 'Assign to Ana Lopez' },
      { id: '3', label: 'Resolve' },
    ];
    expect(filterPalette(entries, 'assign ana').map((e) => e.id)).toEqual(['2']);
    expect(filterPalette(entries, '').length).toBe(3);
    expect(filterPalette(entries, 'zzz')).toEqual([]);
  });
  it('parses typed tags', () => {
    expect(parseTags(' Billing, vip  urgent,billing ')).toEqual(['billing', 'vip', 'urgent']);
    expect(parseTags(' , ')).toEqual([]);
  });
});
