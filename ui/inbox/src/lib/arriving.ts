// Chat messages that came over the live socket as they arrived, before their
// record synced (the live `message` frame, docs/live.md): shown as arriving
// until the record is here, and taken back if the server withdraws them.
import type { Message } from './wire/Message';

/** Arriving messages by conversation id. */
export type Arriving = Record<string, Message[]>;

/** Adds a message as it arrives; one already listed (a resend) is ignored. */
export function arrive(all: Arriving, m: Message): Arriving {
  const now = all[m.conversation_id] ?? [];
  if (now.some((x) => x.id === m.id)) return all;
  return { ...all, [m.conversation_id]: [...now, m] };
}

/** Takes back a message the server withdrew (it will not be stored). */
export function withdraw(all: Arriving, conversationId: string, messageId: string): Arriving {
  const now = all[conversationId] ?? [];
  if (!now.some((x) => x.id === messageId)) return all;
  return { ...all, [conversationId]: now.filter((x) => x.id !== messageId) };
}

/** Forgets the arriving messages whose record is stored now. */
export function settle(all: Arriving, conversationId: string, stored: Set<string>): Arriving {
  const now = all[conversationId] ?? [];
  if (!now.some((x) => stored.has(x.id))) return all;
  return { ...all, [conversationId]: now.filter((x) => !stored.has(x.id)) };
}

/** The stored messages, then those still arriving, each marked. */
export function shown<T extends { id: string }>(stored: T[], arriving: T[]): (T & { arriving: boolean })[] {
  const ids = new Set(stored.map((m) => m.id));
  return [
    ...stored.map((m) => ({ ...m, arriving: false })),
    ...arriving.filter((m) => !ids.has(m.id)).map((m) => ({ ...m, arriving: true })),
  ];
}
