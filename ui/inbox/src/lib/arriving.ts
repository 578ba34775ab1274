// Chat messages of the open conversation that came over the live socket as
// they arrived, before their record synced (the live `message` frame,
// docs/live.md): shown as arriving until the record is here, and taken back
// if the server withdraws them. Only the open conversation's are kept (an
// agent who sees every conversation is offered every message).
import type { Message } from './wire/Message';

/** Adds a message as it arrives; one already listed (a resend) is ignored. */
export function arrive(list: Message[], m: Message): Message[] {
  return list.some((x) => x.id === m.id) ? list : [...list, m];
}

/** Takes back a message the server withdrew (it will not be stored). */
export function withdraw(list: Message[], messageId: string): Message[] {
  return list.filter((x) => x.id !== messageId);
}

/** The stored messages, then those still arriving (not stored yet), each marked. */
export function shown<T extends { id: string }>(stored: T[], arriving: T[]): (T & { arriving: boolean })[] {
  const ids = new Set(stored.map((m) => m.id));
  return [
    ...stored.map((m) => ({ ...m, arriving: false })),
    ...arriving.filter((m) => !ids.has(m.id)).map((m) => ({ ...m, arriving: true })),
  ];
}
