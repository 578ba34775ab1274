// The one way the portal talks to portal-core: same-origin fetch with the
// session cookie, the CSRF header on every unsafe method, and errors in the
// API's `{"error": {code, message, field}}` shape turned into `ApiError`.

/** A refused or failed call: HTTP status, the API's stable code and its words. */
export class ApiError extends Error {
  status: number;
  code: string;
  field?: string;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const CSRF_COOKIE = 'portico_csrf';

/** The double-submit token login set in a readable cookie (absent before sign-in). */
export function csrfToken(cookies: string = typeof document === 'undefined' ? '' : document.cookie): string | null {
  for (const pair of cookies.split(';')) {
    const [k, ...v] = pair.trim().split('=');
    if (k === CSRF_COOKIE) return decodeURIComponent(v.join('='));
  }
  return null;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Called when any request answers 401: the session ended (signed out elsewhere, expired). */
let onUnauthenticated: (() => void) | null = null;
export function whenSignedOut(f: () => void) {
  onUnauthenticated = f;
}

export interface CallOptions {
  method?: string;
  /** JSON-encoded unless it is already a Blob/ArrayBuffer (raw uploads). */
  body?: unknown;
  contentType?: string;
  /** Extra request headers (a secret that must stay out of the URL). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export async function api<T>(path: string, opts: CallOptions = {}): Promise<T> {
  try {
    return await call<T>(path, opts);
  } catch (e) {
    // A session whose readable CSRF cookie is gone or stale (signed in
    // before it existed, cleared by the browser): the server checks the
    // header against both the cookie and the session, so ask it for the
    // session's token, put the cookie back, and retry once.
    if (e instanceof ApiError && e.code === 'csrf_failed' && typeof document !== 'undefined') {
      const info = await call<{ csrf_token?: string }>('/v1/auth/session', {});
      if (info.csrf_token && info.csrf_token !== csrfToken()) {
        document.cookie = `${CSRF_COOKIE}=${encodeURIComponent(info.csrf_token)}; Path=/; SameSite=Lax${location.protocol === 'https:' ? '; Secure' : ''}`;
        return call<T>(path, opts);
      }
    }
    throw e;
  }
}

async function call<T>(path: string, opts: CallOptions): Promise<T> {
  const method = (opts.method ?? (opts.body === undefined ? 'GET' : 'POST')).toUpperCase();
  const headers: Record<string, string> = { ...opts.headers, accept: 'application/json' };
  let body: BodyInit | undefined;
  if (opts.body instanceof Blob || opts.body instanceof ArrayBuffer) {
    body = opts.body as BodyInit;
    headers['content-type'] = opts.contentType ?? 'application/octet-stream';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  if (UNSAFE.has(method)) {
    const token = csrfToken();
    if (token) headers['x-csrf-token'] = token;
  }
  let resp: Response;
  try {
    resp = await fetch(path, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const err = (data as { error?: { code: string; message: string; field?: string } } | null)?.error;
    if (resp.status === 401 && path !== '/v1/auth/login') onUnauthenticated?.();
    throw new ApiError(resp.status, err?.code ?? 'http_' + resp.status, err?.message ?? resp.statusText, err?.field);
  }
  return data as T;
}

/** A list page as every list endpoint answers it. */
export interface Page<T> {
  items: T[];
  next_cursor?: string;
}
