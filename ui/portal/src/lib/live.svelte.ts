// The live hub (/v1/live) for the chat panel: one socket, reconnect with
// jittered backoff, resume from the last seq, and messages kept until
// acknowledged and resent with the same id (the server stores one). The
// same protocol as the /chat page (docs/live.md).
import { uuidv7 } from './uuid';

export interface ChatMessage {
  id: string;
  conversation_id: string;
  author_id?: string;
  author_name?: string;
  kind: string;
  body: string;
  created_at?: string;
  pending?: boolean;
}

type Frame = Record<string, any>;

export const chat = $state({
  connected: false,
  conversationId: null as string | null,
  messages: [] as ChatMessage[],
  /** Name of the person typing on the other side, or null. */
  typing: null as string | null,
  /** The newest of our messages the other side has read. */
  readUpTo: null as string | null,
  error: null as string | null,
});

let socket: WebSocket | null = null;
let cursor = 0;
let retry = 0;
let stopped = true;
let myId = '';
let reload: (() => void) | null = null;
const pending = new Map<string, Frame>();

function send(frame: Frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function upsert(m: ChatMessage) {
  const i = chat.messages.findIndex((x) => x.id === m.id);
  if (i >= 0) chat.messages[i] = m;
  else chat.messages.push(m);
  chat.messages.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function fromOtherSide(m: ChatMessage): boolean {
  return m.author_id !== myId;
}

function onFrame(frame: Frame) {
  switch (frame.type) {
    case 'hello':
      if (cursor) send({ type: 'resume', after_seq: cursor });
      else cursor = frame.seq;
      if (chat.conversationId) send({ type: 'subscribe', conversation_id: chat.conversationId });
      for (const f of pending.values()) send(f);
      break;
    case 'ack':
      pending.delete(frame.message_id);
      break;
    case 'change': {
      cursor = Math.max(cursor, frame.change.seq);
      const row = frame.change.row;
      if (frame.change.kind === 'message' && row && row.conversation_id === chat.conversationId) {
        upsert({ ...row, pending: false });
        if (row.author_id !== myId) {
          chat.typing = null;
          markRead();
        }
      }
      break;
    }
    case 'message': {
      // A message as it arrives, before it is stored: shown as sending
      // until its change comes, or taken back if it is withdrawn.
      const m = frame.message;
      if (m.conversation_id === chat.conversationId && !chat.messages.some((x) => x.id === m.id)) {
        upsert({ ...m, pending: true });
        if (m.author_id !== myId) chat.typing = null;
      }
      break;
    }
    case 'withdrawn': {
      const i = chat.messages.findIndex((x) => x.id === frame.message_id && x.pending && x.author_id !== myId);
      if (i >= 0) chat.messages.splice(i, 1);
      break;
    }
    case 'typing':
      if (frame.conversation_id === chat.conversationId && frame.user_id !== myId) chat.typing = frame.typing ? frame.name : null;
      break;
    case 'read':
      if (frame.conversation_id === chat.conversationId && frame.user_id !== myId) chat.readUpTo = frame.message_id;
      break;
    case 'error':
      if (frame.message_id) pending.delete(frame.message_id);
      chat.error = frame.message;
      break;
    case 'lagged':
      reload?.();
      break;
    case 'resumed':
      if (!frame.complete) reload?.();
      break;
  }
}

function connect() {
  if (stopped) return;
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${proto}://${location.host}/v1/live`);
  socket = ws;
  ws.onopen = () => {
    retry = 0;
    chat.connected = true;
  };
  ws.onmessage = (e) => onFrame(JSON.parse(e.data));
  ws.onclose = () => {
    chat.connected = false;
    if (stopped || socket !== ws) return;
    const delay = Math.min(30000, 500 * 2 ** retry++) * (0.5 + Math.random());
    setTimeout(connect, delay);
  };
}

/** Opens the socket for `userId`; `reloadHistory` pulls messages over HTTP after a gap. */
export function startLive(userId: string, reloadHistory: () => void) {
  myId = userId;
  reload = reloadHistory;
  if (!stopped) return;
  stopped = false;
  connect();
}

export function stopLive() {
  stopped = true;
  socket?.close(1000);
  socket = null;
  chat.connected = false;
  chat.conversationId = null;
  chat.messages = [];
  pending.clear();
}

export function follow(conversationId: string, history: ChatMessage[]) {
  if (chat.conversationId && chat.conversationId !== conversationId) send({ type: 'unsubscribe', conversation_id: chat.conversationId });
  chat.conversationId = conversationId;
  chat.messages = [];
  for (const m of history) upsert(m);
  send({ type: 'subscribe', conversation_id: conversationId });
  markRead();
}

let typingSent = false;
export function setTyping(typing: boolean) {
  if (!chat.conversationId || typing === typingSent) return;
  send({ type: 'typing', conversation_id: chat.conversationId, typing });
  typingSent = typing;
}

let readSent = '';
/** Tells the other side we have read their newest message. */
export function markRead() {
  const last = [...chat.messages].reverse().find((m) => m.author_id !== myId && !m.pending);
  if (!last || last.id === readSent || !chat.conversationId) return;
  if (typeof document !== 'undefined' && document.hidden) return;
  readSent = last.id;
  send({ type: 'read', conversation_id: chat.conversationId, message_id: last.id });
}

export function sendMessage(body: string, myName: string) {
  if (!chat.conversationId) return;
  const id = uuidv7();
  upsert({ id, conversation_id: chat.conversationId, author_id: myId, author_name: myName, kind: 'customer', body, pending: true });
  const frame = { type: 'send', conversation_id: chat.conversationId, message_id: id, body };
  // Kept until acknowledged and resent on reconnect with the same id.
  pending.set(id, frame);
  send(frame);
  if (typingSent) setTyping(false);
  typingSent = false;
}
