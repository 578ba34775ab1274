// How the UI reaches the desk: Tauri's `invoke` inside the app window, or
// the development bridge (`inbox-bridge`) over loopback HTTP in a browser.
// Both carry the same `Command`s and `DeskEvent`s, generated from Rust.
import type { Command } from './wire/Command';
import type { DeskEvent } from './wire/DeskEvent';
import type { DeskError } from './wire/DeskError';

export function inTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

/** A failed command: the desk's stable code and its words for people. */
export class CommandError extends Error {
  code: string;
  constructor(e: DeskError) {
    super(e.message);
    this.code = e.code;
  }
}

function asDeskError(e: unknown): DeskError {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) return e as DeskError;
  return { code: 'transport', message: String(e) };
}

export async function call<T>(cmd: Command): Promise<T> {
  if (inTauri()) {
    const { invoke } = await import('@tauri-apps/api/core');
    try {
      return await invoke<T>('desk', { cmd });
    } catch (e) {
      throw new CommandError(asDeskError(e));
    }
  }
  let resp: Response;
  try {
    resp = await fetch('/api/call', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(cmd),
    });
  } catch (e) {
    throw new CommandError({ code: 'transport', message: `the app core is not reachable: ${e}` });
  }
  const body = await resp.json();
  if (!resp.ok) throw new CommandError(asDeskError(body));
  return body as T;
}

/** Calls `f` with every desk event until the returned function is called. */
export function onEvent(f: (e: DeskEvent) => void): () => void {
  if (inTauri()) {
    let unlisten: (() => void) | undefined;
    let stopped = false;
    import('@tauri-apps/api/event').then(({ listen }) =>
      listen<DeskEvent>('desk', (e) => f(e.payload)).then((u) => {
        if (stopped) u();
        else unlisten = u;
      }),
    );
    return () => {
      stopped = true;
      unlisten?.();
    };
  }
  const es = new EventSource('/api/events');
  es.onmessage = (m) => f(JSON.parse(m.data) as DeskEvent);
  return () => es.close();
}

/** Tells the app shell the UI script runs (the start-up floor). */
export function markLoaded() {
  if (!inTauri()) return;
  import('@tauri-apps/api/core').then(({ invoke }) => invoke('mark_usable', { rows: 0 }).catch(() => {}));
}

let marked = false;
/** Tells the app shell, once, that the inbox is usable (rows painted). */
export function markUsable(rows: number) {
  if (marked || !inTauri()) return;
  marked = true;
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      import('@tauri-apps/api/core').then(({ invoke }) => invoke('mark_usable', { rows }).catch(() => {}));
    }),
  );
}
