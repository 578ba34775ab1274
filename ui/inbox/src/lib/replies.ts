// The saved-reply picker's filter: every typed word must appear in the
// title or the text (case and accents ignored); title matches first.
import type { SavedReply } from './wire/SavedReply';

function fold(s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

export function filterReplies(replies: SavedReply[], query: string): SavedReply[] {
  const words = fold(query).split(/\s+/).filter(Boolean);
  if (words.length === 0) return replies;
  const scored: { r: SavedReply; score: number }[] = [];
  for (const r of replies) {
    const title = fold(r.title);
    const body = fold(r.body);
    if (!words.every((w) => title.includes(w) || body.includes(w))) continue;
    scored.push({ r, score: words.filter((w) => title.includes(w)).length });
  }
  return scored.sort((a, b) => b.score - a.score).map((s) => s.r);
}

/** Ctrl/Cmd + Shift + M opens the picker from the composer (a "macro"). */
export function opensPicker(e: { key: string; ctrlKey: boolean; metaKey: boolean; shiftKey: boolean }): boolean {
  return (e.ctrlKey || e.metaKey) && e.shiftKey && e.key.toLowerCase() === 'm';
}
