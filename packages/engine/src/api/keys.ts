import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InputError } from '@longattn/tensor';
import { isTenant } from './names.ts';

/** A key's SHA-256: every comparison is between two 32-byte digests, whatever the key's length. */
const digest = (key: string) => createHash('sha256').update(key).digest();

/**
 * Bearer API keys: `tenant=key,…` (LONGATTN_API_KEYS, or a file of such entries, one per line or
 * comma-separated, `#` comments). Lookup compares digests with timingSafeEqual against every
 * key, so the time taken does not tell which key (or how much of one) matched.
 */
export class ApiKeys {
  private constructor(private readonly entries: readonly { tenant: string; digest: Buffer }[]) {}

  static parse(text: string, argument: string): ApiKeys {
    const entries: { tenant: string; digest: Buffer }[] = [];
    const raws = text.split(/[,\n]/);
    for (const [n, raw] of raws.entries()) {
      const entry = raw.replace(/#.*/, '').trim();
      if (!entry) continue;
      const at = entry.indexOf('=');
      const tenant = at < 0 ? '' : entry.slice(0, at).trim();
      const key = at < 0 ? '' : entry.slice(at + 1).trim();
      if (!isTenant(tenant) || key.length < 8) {
        // The entry itself is never printed: it may hold a key.
        throw new InputError(argument, `entry ${n + 1}: expected tenant=key (tenant of [A-Za-z0-9_-], key of ≥ 8 characters)`);
      }
      const d = digest(key);
      if (entries.some((e) => e.digest.equals(d))) throw new InputError(argument, `entry ${n + 1}: the same key is given twice`);
      entries.push({ tenant, digest: d });
    }
    return new ApiKeys(entries);
  }

  static fromFile(path: string): ApiKeys {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new InputError('--keys-file', `cannot read ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    return ApiKeys.parse(text, '--keys-file');
  }

  get size(): number {
    return this.entries.length;
  }

  /** The tenant of a key, or undefined. Constant time per entry. */
  tenantOf(key: string): string | undefined {
    const d = digest(key);
    let found: string | undefined;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest)) found ??= e.tenant;
    return found;
  }
}

/** The key of an `Authorization: Bearer KEY` header (or Basic with the key as password, for browsers), else undefined. */
export function bearerKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1) || undefined;
}

/** Constant-time equality of a presented key and the admin key (digests, so lengths never leak). */
export function sameKey(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}
