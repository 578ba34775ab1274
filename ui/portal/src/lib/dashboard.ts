// The dashboard's data: `GET /v1/accounts/{id}/dashboard` (one call,
// already shaped for the viewer by the server's policy; `billing` only for
// administrators).
import { api } from './api';

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

export function loadDashboard(accountId: string): Promise<Dashboard> {
  return api<Dashboard>(`/v1/accounts/${accountId}/dashboard`);
}
