// The dashboard's data: `GET /v1/accounts/{id}/dashboard` (one call,
// already shaped for the viewer by the server's policy).
import { api, ApiError, type Page } from './api';

export interface DayUse {
  date: string;
  used: number;
}
export interface UsageSeries {
  meter: string;
  name: string;
  unit: string;
  used: number;
  limit: number | null;
  percent?: number | null;
  history: DayUse[];
}
export interface Feature {
  key: string;
  name: string;
  /** Where to set it up (an article), when known. */
  article_id?: string | null;
}
export interface OnboardingStep {
  key: string;
  title: string;
  description?: string;
  done: boolean;
  done_at?: string | null;
  /** `event` (completes itself) or `manual`. */
  completes_by?: string;
  article_id?: string | null;
}
export interface Onboarding {
  path?: string;
  title?: string;
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
  published_at?: string | null;
  created_at?: string;
}
export interface Dashboard {
  account: { id: string; name: string; lifecycle_stage?: string };
  /** Present when the server shows it to this viewer. */
  lifecycle_stage?: string | null;
  plan: { id?: string; code: string; name: string; features?: string[] };
  renewal: { at: string | null; status?: string; pending_change?: unknown };
  seats: { seats: number; assigned: number; available?: number; min_seats?: number; max_seats?: number };
  usage: UsageSeries[];
  onboarding: Onboarding | null;
  open_requests: RequestRow[];
  release_notes: ReleaseNote[];
  unused_features: Feature[];
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
interface Line { meter: string; name: string; unit: string; used: number; limit: number | null; percent?: number }

async function composeDashboard(accountId: string): Promise<Dashboard> {
  const base = `/v1/accounts/${accountId}`;
  const [account, sub, plans, seats, usage, requests] = await Promise.all([
    api<{ id: string; name: string; lifecycle_stage?: string }>(base),
    api<Sub>(`${base}/subscription`),
    api<Page<PlanRow>>('/v1/plans'),
    api<Dashboard['seats']>(`${base}/seats`),
    api<Line[]>(`${base}/usage`),
    api<Page<RequestRow>>('/v1/requests?limit=50'),
  ]);
  const plan = plans.items.find((p) => p.id === sub.plan_id) ?? { code: '', name: '', features: [] };
  return {
    account,
    lifecycle_stage: account.lifecycle_stage ?? null,
    plan,
    renewal: { at: sub.current_period_end, status: sub.status, pending_change: sub.pending_change },
    seats,
    usage: usage.map((l) => ({ ...l, history: [] })),
    onboarding: null,
    open_requests: requests.items.filter((r) => !['resolved', 'closed'].includes(r.status)).slice(0, 5),
    release_notes: [],
    unused_features: [],
  };
}
