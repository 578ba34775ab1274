// How values are shown.

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
