// The inbox's views and the filters a person can set. What each view
// contains is decided by the engine (crates/inbox); this only names them.
import type { View } from './wire/View';
import type { Sort } from './wire/Sort';
import type { InboxFilters } from './wire/InboxFilters';
import type { ConversationStatus } from './wire/ConversationStatus';

export type ViewId = View | 'mentions' | 'alerts';

export const VIEWS: { id: ViewId; label: string }[] = [
  { id: 'mine', label: 'Mine' },
  { id: 'unassigned', label: 'Unassigned' },
  { id: 'my_teams', label: 'My team' },
  { id: 'all', label: 'All' },
  { id: 'mentions', label: 'Mentions' },
  { id: 'alerts', label: 'Key-account alerts' },
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
  sort: Sort;
}

export function defaultFilters(): FilterState {
  return { status: 'active', priority: '', channel: '', plan: '', productArea: '', sort: 'updated_desc' };
}

/** The engine's filter record for what the person picked. */
export function toInboxFilters(f: FilterState): InboxFilters {
  const choice = STATUS_CHOICES.find((c) => c.id === f.status) ?? STATUS_CHOICES[0];
  return {
    status: choice.statuses,
    priority: f.priority ? [f.priority as InboxFilters['priority'][number]] : [],
    channel: f.channel ? [f.channel as InboxFilters['channel'][number]] : [],
    plan: f.plan ? [f.plan] : [],
    product_area: f.productArea.trim() ? [f.productArea.trim()] : [],
    assignee: [],
    team: [],
  };
}

export function isListView(v: ViewId): v is View {
  return v === 'mine' || v === 'unassigned' || v === 'my_teams' || v === 'all';
}
