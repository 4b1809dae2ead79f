import test from 'ava';
import { validateSpec } from '@longattn/attention';
import { BadManifestError, decodeManifest, encodeManifest, type JobManifest } from '@longattn/engine/queue';

/** The manifest schema's `inspect` part (manifest-schema.ts, inspect-manifest.ts): sizes a worker allocates from must match the spec. */

const spec = validateSpec({ q: [2, 2100, 8], k: [1, 900, 8], v: [1, 900, 8] }, { causal: true });
const manifest: JobManifest = {
  version: 1,
  id: 'la-a-1',
  spec,
  qShape: [2, 2100, 8],
  blockQ: 64,
  blockK: 128,
  backend: 'js',
  blobs: 'redis',
  tileCount: 9,
  skippedTiles: 0,
  qBlockCount: 66,
  flops: 1,
  tileJobs: 1,
  reduceJobs: 1,
  inspect: {
    settings: { sinks: 4, local: 128, rowsFrom: 10, rowsTo: 20, topK: 8, weights: true, received: true, mapRows: 64, mapCols: 64 },
    lseFrom: 'pass',
    chunks: 6, // 2 heads × ⌈2100 / 1024⌉
    chunkJobs: 2,
    chunksPerJob: 0,
    flops: 1e6,
  },
};

test('an inspect manifest round-trips', (t) => {
  t.deepEqual(decodeManifest(encodeManifest(manifest), 'la-a-1').inspect, manifest.inspect);
});

test('a planted inspect manifest is refused, naming the field', (t) => {
  const planted: [Record<string, unknown>, string][] = [
    [{ chunks: 7 }, 'inspect.chunks'],
    [{ chunkJobs: 0 }, 'inspect.chunkJobs'],
    [{ chunkJobs: 7 }, 'inspect.chunkJobs'],
    [{ lseFrom: 'guess' }, 'inspect.lseFrom'],
    [{ flops: -1 }, 'inspect.flops'],
    [{ settings: { ...manifest.inspect!.settings, mapRows: 5000, mapCols: 5000 } }, 'inspect.settings.map'],
    [{ settings: { ...manifest.inspect!.settings, mapRows: 64, mapCols: 901 } }, 'inspect.settings.map'],
    [{ settings: { ...manifest.inspect!.settings, rowsFrom: 0, rowsTo: 2101 } }, 'inspect.settings.rows'],
    [{ settings: { ...manifest.inspect!.settings, rowsFrom: 0, rowsTo: 0 } }, 'inspect.settings.rows'], // weights without rows
    [{ settings: { ...manifest.inspect!.settings, topK: 1e9 } }, 'inspect.settings'],
    [{ settings: 'x' }, 'inspect.settings'],
  ];
  for (const [change, field] of planted) {
    const text = encodeManifest({ ...manifest, inspect: { ...manifest.inspect!, ...change } as JobManifest['inspect'] });
    const error = t.throws(() => decodeManifest(text, 'la-a-1'), { instanceOf: BadManifestError });
    t.regex(error.message, new RegExp(`\\(field ${field.replaceAll('.', '\\.')}\\)$`), JSON.stringify(change));
  }
});
