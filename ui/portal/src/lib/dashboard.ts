// The dashboard's data: `GET /v1/accounts/{id}/dashboard` (one call,
// already shaped for the viewer by the server's policy; `billing` only for
// administrators).
import { api, ApiError, type Page } from './api';

export interface DayUse {
  date: string;
  quantity: number;
}
export interface UsageSeries {
  meter: string;
  name: string;
  unit: string;
  used: number;
  limit: number | null;
  percent?: number | null;
  over_limit?: boolean;
  /** One entry per UTC day, oldest first, ending today. */
  daily: DayUse[];
}
export interface Feature {
  feature: string;
  label: string;
  /** The onboarding step that sets it up. */
  step: string;
}
export interface OnboardingSummary {
  path_id: string;
  name: string;
  done: number;
  total: number;
  next_step?: { key: string; title: string };
}
export interface OnboardingStep {
  key: string;
  title: string;
  description?: string;
  feature?: string;
  /** The event that completes it by itself, if any. */
  completes_on?: string;
  done: boolean;
  /** `event` or `manual`, when done. */
  how?: string;
  at?: string;
}
export interface Onboarding {
  path_id?: string;
  name: string;
  plan?: string;
  done: number;
  total: number;
  steps: OnboardingStep[];
}
export interface RequestRow {
  id: string;
  kind: string;
  title: string;
  status: string;
  product_area?: string;
  updated_at?: string;
  created_at?: string;
  votes?: number;
}
export interface ReleaseNote {
  id: string;
  title: string;
  body?: string;
  version_tag?: string;
  product_area?: string;
  created_at?: string;
}
export interface Billing {
  period_amount: number;
  currency: string;
  tax_rate_bps: number;
  credit_balance: number;
  latest_invoice?: { id: string; number: string; total: number; currency: string; status: string; due_at: string } | null;
}
export interface Dashboard {
  account: { id: string; name: string };
  lifecycle_stage?: string | null;
  plan: { id?: string; code: string; name: string; features?: string[] };
  renewal: { date: string | null; status?: string; pending_change?: unknown };
  seats: { seats: number; assigned: number; available?: number; min_seats?: number; max_seats?: number };
  usage: UsageSeries[];
  onboarding?: OnboardingSummary | null;
  requests: { open: number; latest: RequestRow[] };
  release_notes: ReleaseNote[];
  unused_features: Feature[];
  billing?: Billing | null;
}

export async function loadDashboard(accountId: string): Promise<Dashboard> {
  try {
    return await api<Dashboard>(`/v1/accounts/${accountId}/dashboard`);
  } catch (e) {
    // A server without the dashboard endpoint: the same page from the
    // account endpoints it has (no daily history, onboarding or notes).
    if (e instanceof ApiError && e.status === 404 && e.message.includes('route')) return composeDashboard(accountId);
    throw e;
  }
}

interface Sub { plan_id: string; seats: number; status: string; current_period_end: string; pending_change: unknown }
interface PlanRow { id: string; code: string; name: string; features: string[] }
type Line = Omit<UsageSeries, 'daily'>;

async function composeDashboard(accountId: string): Promise<Dashboard> {
  const base = `/v1/accounts/${accountId}`;
  const [account, sub, plans, seats, usage, requests] = await Promise.all([
    api<{ id: string; name: string }>(base),
    api<Sub>(`${base}/subscription`),
    api<Page<PlanRow>>('/v1/plans'),
    api<Dashboard['seats']>(`${base}/seats`),
    api<Line[]>(`${base}/usage`),
    api<Page<RequestRow>>('/v1/requests?limit=50'),
  ]);
  const open = requests.items.filter((r) => !['resolved', 'closed'].includes(r.status));
  return {
    account,
    plan: plans.items.find((p) => p.id === sub.plan_id) ?? { code: '', name: '', features: [] },
    renewal: { date: sub.current_period_end, status: sub.status, pending_change: sub.pending_change },
    seats,
    usage: usage.map((l) => ({ ...l, daily: [] })),
    requests: { open: open.length, latest: open.slice(0, 5) },
    release_notes: [],
    unused_features: [],
  };
}
