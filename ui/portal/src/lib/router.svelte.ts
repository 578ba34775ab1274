// History-API routing under /portal/. portal-core answers every app path with
// index.html, so a reload or a pasted link lands on the same page.

export const BASE = '/portal';

function current(): string {
  const p = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  return p.replace(/\/+$/, '') || '/';
}

export const route = $state({ path: typeof location === 'undefined' ? '/' : current(), search: typeof location === 'undefined' ? '' : location.search });

export function navigate(path: string, replace = false) {
  const url = BASE + (path === '/' ? '/' : path);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route.path = current();
  route.search = location.search;
  window.scrollTo(0, 0);
}

export function startRouting() {
  addEventListener('popstate', () => {
    route.path = current();
    route.search = location.search;
  });
  // Same-origin links inside the app are routed without a page load.
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element).closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const href = a.getAttribute('href');
    if (!href || !href.startsWith(BASE + '/') && href !== BASE) return;
    e.preventDefault();
    navigate(href.slice(BASE.length) || '/');
  });
}

/** `/portal` + path, for `href`s. */
export function href(path: string): string {
  return BASE + path;
}

/** Matches `pattern` (e.g. `/requests/:id`) against `path`; the params or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const a = pattern.split('/');
  const b = path.split('/');
  if (a.length !== b.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i].startsWith(':')) out[a[i].slice(1)] = decodeURIComponent(b[i]);
    else if (a[i] !== b[i]) return null;
  }
  return out;
}
