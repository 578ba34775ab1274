// UI text in English and French. The language is the user's saved
// preference, else the browser's (navigator.languages, which follows
// Accept-Language), else English. Messages are plain strings with `{name}`
// placeholders; values are inserted as text, never as markup.
import { en } from './messages/en';
import { fr } from './messages/fr';

export type MessageKey = keyof typeof en;
export type Locale = 'en' | 'fr';
export const LOCALES: { code: Locale; name: string }[] = [
  { code: 'en', name: 'English' },
  { code: 'fr', name: 'Français' },
];

const dictionaries: Record<Locale, Record<MessageKey, string>> = { en, fr };

export const i18n = $state({ locale: 'en' as Locale });

/** The supported locale closest to a BCP 47 tag (`fr-CA` → `fr`), or null. */
export function supported(tag: string | null | undefined): Locale | null {
  if (!tag) return null;
  const base = tag.toLowerCase().split(/[-_]/)[0];
  return LOCALES.some((l) => l.code === base) ? (base as Locale) : null;
}

/** Saved preference first, then each browser language in order, then English. */
export function pickLocale(saved: string | null | undefined, browser: readonly string[]): Locale {
  return supported(saved) ?? browser.map(supported).find((l) => l !== null) ?? 'en';
}

export function setLocale(l: Locale) {
  i18n.locale = l;
  if (typeof document !== 'undefined') document.documentElement.lang = l;
}

export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = dictionaries[i18n.locale][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in params ? String(params[k]) : `{${k}}`));
}

/** A product area's name in the UI language, or the area as the server named it. */
export function areaName(area: string): string {
  const key = `area.${area}` as MessageKey;
  return key in en ? t(key) : area;
}

export function fmtNumber(n: number): string {
  return new Intl.NumberFormat(i18n.locale).format(n);
}

/** Minor units and an ISO currency → "€1,234.50" / "1 234,50 €". */
export function fmtMoney(minor: number, currency: string): string {
  const n = minor / 100;
  try {
    return new Intl.NumberFormat(i18n.locale, { style: 'currency', currency }).format(n);
  } catch {
    return `${n.toFixed(2)} ${currency}`;
  }
}

/** A date or an instant as a date; a bare `YYYY-MM-DD` is a UTC day, shown as that day everywhere. */
export function fmtDate(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const day = /^\d{4}-\d{2}-\d{2}$/.test(iso);
  return new Intl.DateTimeFormat(i18n.locale, { dateStyle: 'medium', ...(day ? { timeZone: 'UTC' } : {}) }).format(d);
}

export function fmtDateTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(i18n.locale, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}
