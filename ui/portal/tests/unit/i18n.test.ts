import { describe, expect, it } from 'vitest';
import { pickLocale, supported } from '../../src/lib/i18n.svelte';
import { en } from '../../src/lib/messages/en';
import { fr } from '../../src/lib/messages/fr';

describe('choosing the language', () => {
  it('takes the saved preference over the browser', () => {
    expect(pickLocale('fr', ['en-US', 'en'])).toBe('fr');
    expect(pickLocale('en', ['fr-FR'])).toBe('en');
  });
  it('falls back to the first supported browser language, then English', () => {
    expect(pickLocale(null, ['de-DE', 'fr-CA', 'en'])).toBe('fr');
    expect(pickLocale(undefined, ['de', 'es'])).toBe('en');
    expect(pickLocale('pt-BR', [])).toBe('en');
  });
  it('reads region and script subtags', () => {
    expect(supported('fr_BE')).toBe('fr');
    expect(supported('EN-gb')).toBe('en');
    expect(supported('')).toBeNull();
  });
});

describe('messages', () => {
  it('French translates every English key with the same placeholders', () => {
    const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(fr[key], key).toBeTruthy();
      expect(placeholders(fr[key]), key).toEqual(placeholders(en[key]));
    }
  });
});
