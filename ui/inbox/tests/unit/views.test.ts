import { describe, expect, it } from 'vitest';
import { defaultFilters, toInboxFilters, isListView } from '../../src/lib/views';
import { money, ago, percent, slaLabel } from '../../src/lib/format';
import { actionLabel } from '../../src/lib/drafts';

describe('filters', () => {
  it('defaults to open and pending work, newest first', () => {
    const f = toInboxFilters(defaultFilters());
    expect(f.status).toEqual(['open', 'pending']);
    expect(f.priority).toEqual([]);
    expect(defaultFilters().sort).toBe('updated_desc');
  });
  it('turns picked values into the engine’s filters', () => {
    const f = toInboxFilters({ ...defaultFilters(), status: 'any', priority: 'urgent', channel: 'email', plan: 'enterprise', productArea: ' billing ' });
    expect(f).toMatchObject({ status: [], priority: ['urgent'], channel: ['email'], plan: ['enterprise'], product_area: ['billing'] });
  });
  it('knows which views are conversation lists', () => {
    expect(isListView('mine')).toBe(true);
    expect(isListView('mentions')).toBe(false);
  });
});

describe('formatting', () => {
  it('shows money from minor units', () => {
    expect(money(123450, 'EUR')).toBe('€1,234.50');
    expect(money(0, 'USD')).toBe('$0.00');
  });
  it('shows ages', () => {
    const now = new Date('2026-11-26T12:00:00Z');
    expect(ago('2026-11-26T11:59:30Z', now)).toBe('now');
    expect(ago('2026-11-26T11:15:00Z', now)).toBe('45m');
    expect(ago('2026-11-25T12:00:00Z', now)).toBe('24h');
    expect(ago('2026-11-20T12:00:00Z', now)).toBe('6d');
  });
  it('shows usage against a limit', () => {
    expect(percent(50, 200)).toBe('25%');
    expect(percent(50, null)).toBe('');
  });
});

describe('SLA filter', () => {
  const now = new Date('2026-11-15T12:00:00Z');
  it('is off by default', () => {
    expect(toInboxFilters(defaultFilters(), now).sla_due_before).toBeNull();
  });
  it('asks for breached (due before now) or due within a window', () => {
    expect(toInboxFilters({ ...defaultFilters(), sla: 'breached' }, now).sla_due_before).toBe('2026-11-15T12:00:00.000Z');
    expect(toInboxFilters({ ...defaultFilters(), sla: '60' }, now).sla_due_before).toBe('2026-11-15T13:00:00.000Z');
  });
  it('says how long is left or since when it is breached', () => {
    expect(slaLabel({ at: '2026-11-15T12:25:00Z', metric: 'first_response' }, now)).toEqual({ text: 'first reply due in 25m', breached: false });
    expect(slaLabel({ at: '2026-11-15T10:00:00Z', metric: 'resolution' }, now)).toEqual({ text: 'resolution breached 2h ago', breached: true });
  });
});

describe('draft actions', () => {
  it('says what each proposed action would do', () => {
    expect(actionLabel({ type: 'add_seats', seats: 12 })).toBe('Raise the subscription to 12 seats');
    expect(actionLabel({ type: 'open_request', kind: 'usage_increase', title: 'More API calls' } as never)).toContain('More API calls');
  });
});
