import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { chromium } from 'playwright-core';
import { LongattnClient } from '@longattn/client';
import { oddInputs } from '../queue/support.ts';
import { tempDir } from '../support/cli.ts';
import { KEYS, ODD_OPTIONS, startCluster } from './support.ts';

/** Debian's chromium (scripts/setup-system.sh installs it): missing means a broken setup, so the test fails. */
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

test('dashboard in headless Chromium: sign in, see the job, watch its q-block grid fill from SSE until done; an inspect job’s patterns', async (t) => {
  t.true(existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/setup-system.sh`);
  const cluster = await startCluster({ workerArgs: ['--throttle-ms', '150'] });
  const inputs = oddInputs();
  const shots = tempDir('longattn-dashboard-');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  try {
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const { id } = await client.submit(
      { q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy'), v: join(inputs.dir, 'v.npy') },
      ODD_OPTIONS,
    );
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(cluster.api.url);
    await page.fill('#key', 'wrong-key-000000');
    await page.click('#sign-in button');
    await page.waitForSelector('#sign-in-error:text("unknown API key")');
    await page.fill('#key', KEYS.acme);
    await page.click('#sign-in button');
    await page.waitForSelector(`#job-rows tr[data-id="${id}"]`);
    await page.waitForSelector('#job:not([hidden])');
    t.is(await page.textContent('#job-id'), id);
    const cells = await page.locator('#grid .cell').count();
    t.is(cells, (await client.get(id)).qBlocks!, 'one cell per q-block');
    const tops = await page.locator('#grid .cell').evaluateAll((all) => new Set(all.map((c) => c.getBoundingClientRect().top)).size);
    t.is(tops, 4, 'one row per head (H = 4, B = 1)');

    // Watch the grid: some cells written while others wait, then all written.
    let partial = false;
    for (let i = 0; i < 1200; i++) {
      const done = await page.locator('#grid .cell.done').count();
      if (done > 0 && done < cells) partial = true;
      if ((await page.textContent('#job-state')) === 'done') break;
      await page.waitForTimeout(50);
    }
    t.is(await page.textContent('#job-state'), 'done');
    t.is(await page.locator('#grid .cell.done').count(), cells, 'every cell done');
    t.true(partial, 'the grid filled in steps (SSE), not all at once');
    t.regex((await page.textContent('dd[data-name="tiles"]')) ?? '', /^(\d+) \/ \1$/);
    t.is(await page.textContent('dd[data-name="mask"]'), 'causal', 'the job’s mask as submitted');
    await page.waitForSelector(`#job-rows tr[data-id="${id}"] td.state.done`);
    const shot = join(shots, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.true(statSync(shot).size > 1000);
    t.log(`screenshot: ${shot}`);
    t.true(await page.locator('#inspect').isHidden(), 'no inspect view for an attention job');

    // An inspect job: once done, its view shows the per-head table, the map and one received curve per head.
    const inspect = await client.submitInspect(
      { q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy') },
      { causal: true, backend: 'js', received: true, map: true, mapSize: 32 },
    );
    t.is((await client.wait(inspect.id)).state, 'done');
    await page.click(`#job-rows tr[data-id="${inspect.id}"]`, { timeout: 10_000 });
    await page.waitForSelector('#inspect:not([hidden])');
    t.is(await page.locator('#inspect-heads tbody tr').count(), 4, 'one table row per head');
    const report = await client.inspectReport(inspect.id);
    const first = await page.locator('#inspect-heads tbody tr').first().locator('td').allTextContents();
    t.deepEqual(first.slice(0, 4), ['0', '0', String(report.heads[0]!.rows), report.heads[0]!.entropy!.toFixed(3)]);
    await page.waitForFunction("document.getElementById('inspect-map').naturalWidth > 0"); // the PNG decoded
    t.is(await page.locator('#inspect-received polyline').count(), 4, 'one received curve per head');
    const inspectShot = join(shots, 'inspect.png');
    await page.locator('#inspect').screenshot({ path: inspectShot });
    t.true(statSync(inspectShot).size > 5000);
    t.log(`inspect view: ${inspectShot}`);
    t.deepEqual(errors, []);
  } finally {
    await browser.close();
    await cluster.close();
    inputs.cleanup();
  }
});
