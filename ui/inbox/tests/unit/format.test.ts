import { describe, expect, it } from 'vitest';
import { fileSize, rebuiltNotice } from '../../src/lib/format';

describe('the local store rebuilt', () => {
  const info = { detail: 'database disk image is malformed', moved_to: '/data/inbox.db.bad' };
  it('says in words why, and that unsent changes were kept', () => {
    expect(rebuiltNotice({ ...info, reason: 'corrupt', kept_mutations: 3, outbox_incomplete: false })).toBe(
      'The copy of your inbox on this computer was damaged; it is being reloaded from the server. Your 3 unsent changes were kept.',
    );
    expect(rebuiltNotice({ ...info, reason: 'newer_schema', kept_mutations: 1, outbox_incomplete: false })).toContain(
      'written by a newer Portico Inbox',
    );
  });
  it('says when unsent changes could not be read', () => {
    expect(rebuiltNotice({ ...info, reason: 'corrupt', kept_mutations: 0, outbox_incomplete: true })).toContain(
      'could not be read and are lost',
    );
  });
  it('says nothing about a resync the server asked for', () => {
    expect(rebuiltNotice({ ...info, reason: 'resync', kept_mutations: 0, outbox_incomplete: false })).toBeNull();
  });
});

describe('store sizes', () => {
  it('go on to gigabytes for the local store on the upgrade screen', () => {
    expect(fileSize(1_970_000_000)).toBe('1.8 GB');
    expect(fileSize(12_400_000)).toBe('12 MB');
  });
});
