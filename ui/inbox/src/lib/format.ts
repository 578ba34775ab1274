// How values are shown.
import type { RebuildInfo } from './wire/RebuildInfo';
import type { RebuildReason } from './wire/RebuildReason';

export function ago(iso: string, now: Date): string {
  const s = Math.round((now.getTime() - new Date(iso).getTime()) / 1000);
  if (s < 60) return 'now';
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Minor units and an ISO currency → "€1,234.50". */
export function money(minor: number | bigint, currency: string): string {
  const n = Number(minor) / 100;
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).format(n);
  } catch {
    return `${n.toFixed(2)} ${currency}`;
  }
}

export function percent(used: number, limit: number | null | undefined): string {
  if (!limit) return '';
  return `${Math.round((used / limit) * 100)}%`;
}

export function count(n: number | bigint): string {
  return new Intl.NumberFormat('en').format(Number(n));
}

/** A file or store size for people, in binary units as file managers
 * on Linux show them: "512 B", "13 KB", "3.4 MB", "1.8 GB". */
export function fileSize(bytes: number): string {
  const units = ['KB', 'MB', 'GB', 'TB'];
  if (bytes < 1024) return `${bytes} B`;
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} KB` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

const METRIC: Record<string, string> = { first_response: 'first reply', next_response: 'next reply', resolution: 'resolution' };

/** "first reply due in 25m" or "resolution breached 2h ago". */
export function slaLabel(due: { at: string; metric: string }, now: Date): { text: string; breached: boolean } {
  const what = METRIC[due.metric] ?? due.metric;
  const breached = new Date(due.at).getTime() <= now.getTime();
  if (breached) return { text: `${what} breached ${ago(due.at, now)} ago`.replace('now ago', 'just now'), breached };
  const s = Math.round((new Date(due.at).getTime() - now.getTime()) / 1000);
  const m = Math.max(1, Math.floor(s / 60));
  const span = m < 60 ? `${m}m` : m < 48 * 60 ? `${Math.floor(m / 60)}h` : `${Math.floor(m / 1440)}d`;
  return { text: `${what} due in ${span}`, breached };
}

const REBUILT_BECAUSE: Record<RebuildReason, string | null> = {
  corrupt: 'was damaged',
  half_migrated: 'was left half-upgraded',
  newer_schema: 'was written by a newer Portico Inbox',
  resync: null, // the server asked for it: routine, nothing to tell
};

/** What the status bar says after the local store was rebuilt, or null when there is nothing to tell. */
export function rebuiltNotice(r: RebuildInfo): string | null {
  const why = REBUILT_BECAUSE[r.reason];
  if (!why) return null;
  const n = Number(r.kept_mutations);
  const kept = n === 0 ? '' : ` Your ${n} unsent change${n === 1 ? ' was' : 's were'} kept.`;
  const lost = r.outbox_incomplete ? ' Some unsent changes could not be read and are lost.' : '';
  return `The copy of your inbox on this computer ${why}; it is being reloaded from the server.${kept}${lost}`;
}
