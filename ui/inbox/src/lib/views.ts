// The inbox's views and the filters a person can set. What each view
// contains is decided by the engine (crates/inbox); this only names them.
import type { View } from './wire/View';
import type { Sort } from './wire/Sort';
import type { InboxFilters } from './wire/InboxFilters';
import type { ConversationStatus } from './wire/ConversationStatus';

export type ViewId = View | 'mentions' | 'drafts' | 'alerts' | 'held';

export const VIEWS: { id: ViewId; label: string }[] = [
  { id: 'mine', label: 'Mine' },
  { id: 'unassigned', label: 'Unassigned' },
  { id: 'my_teams', label: 'My team' },
  { id: 'all', label: 'All' },
  { id: 'mentions', label: 'Mentions' },
  { id: 'drafts', label: 'Drafts to review' },
  { id: 'alerts', label: 'Key-account alerts' },
  { id: 'held', label: 'Held senders' },
];

export const STATUS_CHOICES: { id: string; label: string; statuses: ConversationStatus[] }[] = [
  { id: 'active', label: 'Open & pending', statuses: ['open', 'pending'] },
  { id: 'open', label: 'Open', statuses: ['open'] },
  { id: 'pending', label: 'Pending', statuses: ['pending'] },
  { id: 'snoozed', label: 'Snoozed', statuses: ['snoozed'] },
  { id: 'resolved', label: 'Resolved', statuses: ['resolved'] },
  { id: 'any', label: 'Any status', statuses: [] },
];

export const SORTS: { id: Sort; label: string }[] = [
  { id: 'updated_desc', label: 'Newest' },
  { id: 'updated_asc', label: 'Oldest waiting' },
  { id: 'priority_desc', label: 'Priority' },
];

export interface FilterState {
  status: string;
  priority: string;
  channel: string;
  plan: string;
  productArea: string;
  /** '' any, 'breached', or a window in minutes ('60', '240', '1440'). */
  sla: string;
  sort: Sort;
}

export const SLA_CHOICES: { id: string; label: string }[] = [
  { id: '', label: 'Any SLA' },
  { id: 'breached', label: 'SLA breached' },
  { id: '60', label: 'SLA due within 1 h' },
  { id: '240', label: 'SLA due within 4 h' },
  { id: '1440', label: 'SLA due within 24 h' },
];

export function defaultFilters(): FilterState {
  return { status: 'active', priority: '', channel: '', plan: '', productArea: '', sla: '', sort: 'updated_desc' };
}

/** The instant an SLA choice means at `now`: due before it (breached
 * conversations are due before now). Lists with it are in due order. */
export function slaDueBefore(choice: string, now: Date): string | null {
  if (!choice) return null;
  const mins = choice === 'breached' ? 0 : Number(choice);
  return new Date(now.getTime() + mins * 60_000).toISOString();
}

/** The engine's filter record for what the person picked. */
export function toInboxFilters(f: FilterState, now: Date = new Date()): InboxFilters {
  const choice = STATUS_CHOICES.find((c) => c.id === f.status) ?? STATUS_CHOICES[0];
  return {
    status: choice.statuses,
    priority: f.priority ? [f.priority as InboxFilters['priority'][number]] : [],
    channel: f.channel ? [f.channel as InboxFilters['channel'][number]] : [],
    plan: f.plan ? [f.plan] : [],
    product_area: f.productArea.trim() ? [f.productArea.trim()] : [],
    assignee: [],
    team: [],
    sla_due_before: slaDueBefore(f.sla, now),
  };
}

export function isListView(v: ViewId): v is View {
  return v === 'mine' || v === 'unassigned' || v === 'my_teams' || v === 'all';
}
