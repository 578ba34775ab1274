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
