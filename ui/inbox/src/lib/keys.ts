// Keyboard-first triage: which key does what. Pure, so it is unit-tested;
// the screens only run the action they are given.

export type Action =
  | 'next'
  | 'prev'
  | 'open'
  | 'assign_me'
  | 'snooze'
  | 'resolve'
  | 'tag'
  | 'reply'
  | 'note'
  | 'search'
  | 'palette'
  | 'escape';

export interface KeyInput {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
  /** The focused element is a text field: letters are typing, not commands. */
  typing?: boolean;
  /** The focused element is a button or link: Enter and Space press it
   * (a "Show quoted text" toggle), they do not open the selected row. */
  onControl?: boolean;
}

const PLAIN: Record<string, Action> = {
  j: 'next',
  ArrowDown: 'next',
  k: 'prev',
  ArrowUp: 'prev',
  Enter: 'open',
  a: 'assign_me',
  s: 'snooze',
  e: 'resolve',
  t: 'tag',
  r: 'reply',
  n: 'note',
  '/': 'search',
};

export function actionFor(k: KeyInput): Action | null {
  if ((k.ctrlKey || k.metaKey) && k.key.toLowerCase() === 'k') return 'palette';
  if (k.key === 'Escape') return 'escape';
  if (k.onControl && (k.key === 'Enter' || k.key === ' ')) return null;
  if (k.typing || k.ctrlKey || k.metaKey || k.altKey) return null;
  return PLAIN[k.key] ?? null;
}

/** The index after moving by `delta`, kept inside `[0, count)`. */
export function move(index: number, delta: number, count: number): number {
  if (count <= 0) return 0;
  return Math.min(count - 1, Math.max(0, index + delta));
}

/** When "snooze" wakes a conversation: tomorrow at 09:00 local time. */
export function snoozeUntil(now: Date): Date {
  const d = new Date(now);
  d.setDate(d.getDate() + 1);
  d.setHours(9, 0, 0, 0);
  return d;
}

/** The palette's entries, filtered by what was typed (every word must match). */
export interface PaletteEntry {
  id: string;
  label: string;
  hint?: string;
}

export function filterPalette(entries: PaletteEntry[], typed: string): PaletteEntry[] {
  const words = typed.toLowerCase().split(/\s+/).filter(Boolean);
  return entries.filter((e) => {
    const label = e.label.toLowerCase();
    return words.every((w) => label.includes(w));
  });
}

/** Tags typed as "billing, vip urgent" → ["billing", "vip", "urgent"]. */
export function parseTags(typed: string): string[] {
  const tags = typed
    .split(/[\s,]+/)
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  return [...new Set(tags)];
}
