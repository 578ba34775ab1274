import { describe, expect, it } from 'vitest';
import { visibleWindow, needsMore, scrollToShow } from '../../src/lib/virtual';

describe('virtualized list', () => {
  it('renders only the rows in view plus a margin, at any list size', () => {
    const w = visibleWindow(58 * 50_000, 580, 58, 100_000, 8);
    expect(w.start).toBe(50_000 - 8);
    expect(w.end).toBe(50_000 + 11 + 8);
    expect(w.end - w.start).toBeLessThan(40);
    expect(w.offset).toBe(w.start * 58);
    expect(w.total).toBe(100_000 * 58);
  });
  it('clamps at both ends', () => {
    expect(visibleWindow(-100, 580, 58, 5)).toMatchObject({ start: 0, end: 5 });
    expect(visibleWindow(0, 580, 58, 0)).toMatchObject({ start: 0, end: 0, total: 0 });
  });
  it('asks for the next page near the end only when there is one', () => {
    const w = visibleWindow(58 * 150, 580, 58, 200);
    expect(needsMore(w, 200, true)).toBe(true);
    expect(needsMore(w, 200, false)).toBe(false);
    expect(needsMore(visibleWindow(0, 580, 58, 200), 200, true)).toBe(false);
  });
  it('scrolls just enough to show the selected row', () => {
    expect(scrollToShow(5, 0, 580, 58)).toBeNull();
    expect(scrollToShow(10, 0, 580, 58)).toBe(11 * 58 - 580);
    expect(scrollToShow(2, 580, 580, 58)).toBe(116);
  });
});
