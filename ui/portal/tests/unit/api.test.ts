import { describe, expect, it } from 'vitest';
import { csrfToken } from '../../src/lib/api';
import { match } from '../../src/lib/router.svelte';

describe('csrfToken', () => {
  it('reads the portico_csrf cookie among others', () => {
    expect(csrfToken('a=1; portico_csrf=abc%2Dd; b=2')).toBe('abc-d');
    expect(csrfToken('portico_csrfx=no; x=portico_csrf')).toBeNull();
    expect(csrfToken('')).toBeNull();
  });
});

describe('route matching', () => {
  it('matches whole segments and decodes parameters', () => {
    expect(match('/requests/:id', '/requests/abc%20d')).toEqual({ id: 'abc d' });
    expect(match('/requests/new', '/requests/new')).toEqual({});
    expect(match('/requests/:id', '/requests')).toBeNull();
    expect(match('/account/plan', '/account/plan/extra')).toBeNull();
  });
});
