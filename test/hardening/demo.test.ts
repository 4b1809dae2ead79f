/** Issue 14.12: `demo --n 1e11` exited 1 after creating an empty directory; now exit 2 before creating anything. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { longattn, tempDir } from '../support/cli.ts';
import { assertBadInput } from './support.ts';

for (const [flags, what] of [
  [['--n', '100000000000'], '--n 1e11'],
  [['--n', '1048577', '--heads', '2', '--d', '64'], 'just over 2^27 elements per tensor'],
] as const) {
  test(`demo ${what} → exit 2 naming --n, no directory created`, async (t) => {
    const dir = join(tempDir(), 'demo');
    const r = await longattn(['demo', ...flags, '--dir', dir, '--backend', 'js']);
    assertBadInput(t, r, '--n', /elements per tensor, more than the demo's 134217728/);
    t.false(existsSync(dir));
  });
}
