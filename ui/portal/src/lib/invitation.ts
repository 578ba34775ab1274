// Invitation links: `/portal/invite#token=…` from the invitation mail. The
// token lives in the fragment, which browsers never send to servers or in
// `Referer`; this page keeps it out of every URL it requests (the lookup
// sends it in a header, accepting in the JSON body) and out of the address
// bar once read, and never logs it.
import { api } from './api';

/** What a still-valid link invites to, as `GET /v1/auth/invitation` tells it. */
export interface PendingInvitation {
  account_name: string;
  email: string;
  name: string;
  invited_by?: string;
  expires_at: string;
  password_min_chars: number;
}

/** The server's stable codes for a link that no longer works. */
export const LINK_REFUSALS = ['invitation_unknown', 'invitation_used', 'invitation_expired', 'invitation_withdrawn'] as const;
export type LinkRefusal = (typeof LINK_REFUSALS)[number];

export function isLinkRefusal(code: string): code is LinkRefusal {
  return (LINK_REFUSALS as readonly string[]).includes(code);
}

/** The token in a link's fragment (`#token=…`), or null. */
export function tokenFromFragment(hash: string): string | null {
  const token = new URLSearchParams(hash.replace(/^#/, '')).get('token');
  return token ? token.trim() : null;
}

/**
 * Where the token waits between reading it and accepting: this tab only, so
 * a reload of the page still works after the fragment left the address bar.
 */
const KEPT = 'portico.invitation';

/** Reads the token from the address bar's fragment (then removes it there), else the one kept in this tab. */
export function takeToken(): string | null {
  const fromLink = tokenFromFragment(location.hash);
  if (fromLink) {
    sessionStorage.setItem(KEPT, fromLink);
    history.replaceState(history.state, '', location.pathname + location.search);
    return fromLink;
  }
  return sessionStorage.getItem(KEPT);
}

export function forgetToken() {
  sessionStorage.removeItem(KEPT);
}

export function lookUp(token: string): Promise<PendingInvitation> {
  return api<PendingInvitation>('/v1/auth/invitation', { headers: { 'x-invitation-token': token } });
}
