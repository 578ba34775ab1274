// Who is signed in: the user, their account and role. Pages read it; only
// sign-in, sign-out and the language switcher change it. The server decides
// every permission; the role here only chooses which pages exist.
import { api, ApiError, whenSignedOut } from './api';
import { i18n, pickLocale, setLocale, supported, type Locale } from './i18n.svelte';
import type { Role } from '$wire/Role';

export interface MeUser {
  id: string;
  account_id: string | null;
  email: string;
  name: string;
  role: Role;
  locale?: string | null;
}
export interface MeAccount {
  id: string;
  name: string;
  domain?: string;
  language?: string;
  lifecycle_stage?: string;
}
export interface Me {
  user: MeUser;
  account?: MeAccount;
}

export const session = $state({
  me: null as Me | null,
  /** True until the first `GET /v1/me` answered. */
  loading: true,
});

export function isAdmin(): boolean {
  return session.me?.user.role === 'customer_admin';
}

export function accountId(): string {
  const id = session.me?.account?.id ?? session.me?.user.account_id;
  if (!id) throw new Error('signed in without an account');
  return id;
}

function adopt(me: Me | null) {
  session.me = me;
  setLocale(pickLocale(me?.user.locale, typeof navigator === 'undefined' ? [] : navigator.languages ?? [navigator.language]));
}

export async function loadSession() {
  try {
    adopt(await api<Me>('/v1/me'));
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    adopt(null);
  } finally {
    session.loading = false;
  }
}

whenSignedOut(() => {
  if (session.me) adopt(null);
});

export async function signIn(email: string, password: string) {
  adopt(await api<Me>('/v1/auth/login', { body: { email, password } }));
}

/**
 * Accepts an invitation with the password the person chose. The server
 * answers as a sign-in does (session and CSRF cookies, the same body), so
 * the session is taken up the same way.
 */
export async function acceptInvitation(token: string, password: string) {
  adopt(await api<Me>('/v1/auth/invitations/accept', { body: { token, password } }));
}

export async function signOut() {
  try {
    await api('/v1/auth/logout', { method: 'POST' });
  } finally {
    adopt(null);
  }
}

/** Switches the language now and saves it as the user's preference. */
export async function chooseLocale(l: Locale) {
  setLocale(l);
  if (!session.me) return;
  const saved = await api<{ user?: MeUser } & Partial<MeUser>>('/v1/me', { method: 'PATCH', body: { locale: l } });
  const locale = supported(saved?.user?.locale ?? saved?.locale) ?? l;
  session.me.user.locale = locale;
  if (i18n.locale !== locale) setLocale(locale);
}
