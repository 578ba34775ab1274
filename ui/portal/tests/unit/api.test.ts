import { describe, expect, it } from 'vitest';
import { csrfToken } from '../../src/lib/api';
import { match } from '../../src/lib/router.svelte';
import { isLinkRefusal, tokenFromFragment } from '../../src/lib/invitation';

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

describe('invitation links', () => {
  it('reads the token from the fragment only', () => {
    expect(tokenFromFragment('#token=abc_DEF-123')).toBe('abc_DEF-123');
    expect(tokenFromFragment('token=abc')).toBe('abc');
    expect(tokenFromFragment('#other=1&token=xyz')).toBe('xyz');
    expect(tokenFromFragment('')).toBeNull();
    expect(tokenFromFragment('#token=')).toBeNull();
  });
  it('knows the server codes of a link that no longer works', () => {
    expect(isLinkRefusal('invitation_used')).toBe(true);
    expect(isLinkRefusal('invitation_expired')).toBe(true);
    expect(isLinkRefusal('validation_failed')).toBe(false);
  });
});
