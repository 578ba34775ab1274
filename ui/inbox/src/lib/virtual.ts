// A virtualized list: only the rows in view (plus a margin) are rendered,
// so scrolling stays smooth whatever the number of loaded rows.

export interface Window {
  start: number;
  end: number;
  /** Space above the first rendered row. */
  offset: number;
  /** Height of the whole list. */
  total: number;
}

export function visibleWindow(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  count: number,
  overscan = 8,
): Window {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const shown = Math.ceil(viewport / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, first + shown + overscan);
  return { start, end, offset: start * rowHeight, total: count * rowHeight };
}

/** Whether to fetch the next page: the window reaches near the loaded end. */
export function needsMore(w: Window, loaded: number, hasMore: boolean, margin = 50): boolean {
  return hasMore && w.end + margin >= loaded;
}

/** The scrollTop that brings row `index` into view, or null if it is. */
export function scrollToShow(
  index: number,
  scrollTop: number,
  viewport: number,
  rowHeight: number,
): number | null {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + viewport) return top + rowHeight - viewport;
  return null;
}
