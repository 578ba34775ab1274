// How the email parts of a message are shown: delivery of an agent's reply,
// the compact From/To line, attachment sizes, held senders. Pure, so it is
// unit-tested; the components only lay these out.
import type { Delivery } from './wire/Delivery';
import type { MessageEmail } from './wire/MessageEmail';
import type { HeldContact } from './wire/HeldContact';

/** What an agent reads on their email reply. `alarm` marks a reply that did
 * not reach the customer (shown in red, and named in the conversation's
 * header, so a bounce is noticed). */
export interface DeliveryView {
  state: 'sending' | 'retrying' | 'sent' | 'failed' | 'bounced';
  label: string;
  /** The receiving server's words, when it refused or returned the mail. */
  detail: string | null;
  /** Attempts, and when the next one is. */
  attempts: string | null;
  alarm: boolean;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "in 4m", "in 2h", "now" for a time ahead of `now`. */
export function inTime(iso: string, now: Date): string {
  const s = Math.round((new Date(iso).getTime() - now.getTime()) / 1000);
  if (s <= 30) return 'now';
  const m = Math.max(1, Math.round(s / 60));
  if (m < 60) return `in ${m}m`;
  const h = Math.round(m / 60);
  return h < 48 ? `in ${h}h` : `in ${Math.round(h / 24)}d`;
}

export function deliveryView(d: Delivery, now: Date): DeliveryView {
  const to = d.to.join(', ');
  const tries = d.attempts > 0 ? plural(d.attempts, 'attempt') : null;
  switch (d.status) {
    case 'queued':
      if (d.attempts === 0 || !d.error) {
        return { state: 'sending', label: `Sending to ${to}`, detail: null, attempts: null, alarm: false };
      }
      return {
        state: 'retrying',
        label: `Not sent yet to ${to}: will retry`,
        detail: d.error,
        attempts: d.next_attempt_at ? `${tries}; next try ${inTime(d.next_attempt_at, now)}` : tries,
        alarm: false,
      };
    case 'sent':
      return { state: 'sent', label: `Sent to ${to}`, detail: null, attempts: null, alarm: false };
    case 'failed':
      return {
        state: 'failed',
        label: `Not delivered to ${to}: sending failed`,
        detail: d.error,
        attempts: tries ? `gave up after ${tries}` : null,
        alarm: true,
      };
    case 'bounced':
      return {
        state: 'bounced',
        label: `Bounced: ${to} did not receive it`,
        detail: d.error,
        attempts: tries ? `sent on ${d.attempts === 1 ? 'the first attempt' : `attempt ${d.attempts}`}, then returned by the recipient's server` : null,
        alarm: true,
      };
  }
}

/** "sam@x.example → support@y.test, cc ann@x.example". */
export function addressLine(e: MessageEmail): string {
  const cc = e.cc.length ? `, cc ${e.cc.join(', ')}` : '';
  return `${e.from} → ${e.to.join(', ')}${cc}`;
}

/** The mail's subject when it says more than the conversation's own
 * ("Re: " and "Fwd: " prefixes aside), else null: no repeated noise. */
export function distinctSubject(mail: string, conversation: string): string | null {
  const bare = (s: string) => s.replace(/^(\s*(re|fwd?|aw|wg|sv)\s*:\s*)+/i, '').trim().toLowerCase();
  return bare(mail) === bare(conversation) || !mail.trim() ? null : mail;
}


/** The held senders still waiting for a link, in the server's order
 * (latest mail first). Linked senders leave the list: their mail goes to
 * the account on its own. */
export function waitingSenders(all: HeldContact[]): HeldContact[] {
  return all.filter((c) => c.linked_account_id === null);
}
