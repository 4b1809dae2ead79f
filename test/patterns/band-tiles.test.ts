import test from 'ava';
import { BAND_SUB_ROWS, plan, validateSpec, type PatternOptions, type TilePartial } from '@longattn/attention';
import { arraySource, computeQBlock } from '@longattn/engine';
import { ortBackend, type BandJob, type TileKernel } from '@longattn/kernels';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness, visible, type BruteSpec } from '../support/reference64.ts';

/**
 * Band tiles (docs/math.md, "Band tiles"): where the planner makes them, ort's band call against
 * float64 from the definition, and ort's band path against the same tiles run as their parts.
 * (Exactness and 1-vs-2-thread bits of whole runs on every backend: patterns.test.ts' band cases.)
 */

interface Case {
  name: string;
  H: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  window: [number, number];
  pattern: PatternOptions;
  blocks: { blockQ: number; blockK: number };
  /** Q-blocks (per head) that must be band tiles, and that must not. */
  bands: number[];
  notBands: number[];
}

const CASES: Case[] = [
  {
    name: 'window (20,13) + globals 0,1,2,300',
    H: 2,
    Sq: 700,
    Sk: 721,
    D: 5,
    causal: false,
    window: [20, 13],
    pattern: { global: [0, 1, 2, 300] },
    blocks: { blockQ: 128, blockK: 512 },
    // q-block 0: its band touches the global keys 0–2; 2: global row 300; 5: 60 rows (not a multiple of 64)
    bands: [1, 3, 4],
    notBands: [0, 2, 5],
  },
  {
    name: 'causal + window (37,0) + sinks 3, Sq < Sk',
    H: 1,
    Sq: 530,
    Sk: 555,
    D: 6,
    causal: true,
    window: [37, 0],
    pattern: { sinks: 3 },
    blocks: { blockQ: 64, blockK: 200 },
    bands: [1, 2, 7],
    notBands: [8], // 18 rows
  },
  {
    name: 'window (29,3) alone, n not a multiple of the block',
    H: 1,
    Sq: 600,
    Sk: 611,
    D: 7,
    causal: false,
    window: [29, 3],
    pattern: {},
    blocks: { blockQ: 128, blockK: 256 },
    bands: [1, 2, 3],
    notBands: [4], // 88 rows
  },
];

const specOf = (c: Case) =>
  validateSpec(
    { q: [c.H, c.Sq, c.D], k: [1, c.Sk, c.D], v: [1, c.Sk, c.D] },
    { causal: c.causal, window: { left: c.window[0], right: c.window[1] }, pattern: c.pattern },
  );

const bruteOf = (c: Case): BruteSpec => ({
  layout: 'bhsd',
  B: 1,
  H: c.H,
  Hk: 1,
  Sq: c.Sq,
  Sk: c.Sk,
  D: c.D,
  causal: c.causal,
  window: c.window,
  ...(c.pattern.global ? { global: c.pattern.global } : {}),
  ...(c.pattern.sinks !== undefined ? { sinks: c.pattern.sinks } : {}),
});

for (const c of CASES) {
  test(`planner: ${c.name} — band tiles exactly where the rows are a band; each row sees its shared keys and window, nothing else`, (t) => {
    const p = plan(specOf(c), c.blocks);
    const brute = bruteOf(c);
    for (const block of p.blocks()) {
      const band = block.tiles.find((tile) => tile.band);
      const qb = block.qBlock;
      if (c.bands.includes(qb)) t.truthy(band, `q-block ${qb} of head ${block.h} is a band`);
      if (c.notBands.includes(qb)) t.falsy(band, `q-block ${qb} is not a band`);
      if (!band) continue;
      t.is(block.tiles.length, 1, 'a band tile is its q-block’s only tile');
      t.is(band.rows % BAND_SUB_ROWS, 0);
      t.is(band.band!.sub, BAND_SUB_ROWS);
      t.is(
        band.band!.parts.reduce((n, part) => n + part.flops, 0),
        band.flops,
        'the parts hold the same visible pairs',
      );
      // Row i sees exactly the shared keys and keys pos(i) − left … pos(i) + right: the band kernels' positional mask.
      const { shared, left, right } = band.band!;
      for (let r = 0; r < band.rows; r++) {
        const i = band.qStart + r;
        const pos = i + c.Sk - c.Sq;
        for (let j = 0; j < c.Sk; j++) {
          let inShared = false;
          for (let x = 0; x < shared.length; x += 2) inShared ||= j >= shared[x]! && j < shared[x + 1]!;
          const want = inShared || (j >= pos - left && j <= pos + right);
          if (visible(brute, i, j, block.h) !== want) t.fail(`row ${i}, key ${j}: the band says ${want}`);
        }
      }
    }
  });
}

test('planner: a stride keeps band tiles for its window part; a window wider than MAX_BAND_WIDTH or keepBlock get none', (t) => {
  const strided = validateSpec(
    { q: [1, 1024, 4], k: [1, 1024, 4], v: [1, 1024, 4] },
    { causal: true, window: { left: 127, right: 0 }, pattern: { stride: 128 } },
  );
  const tiles = [...plan(strided, { blockQ: 1024, blockK: 2048 }).blocks()].flatMap((b) => b.tiles);
  t.true(
    tiles.some((tile) => tile.band && tile.rowSpan),
    'window bands inside the long q-block',
  );
  const wide = validateSpec({ q: [1, 4096, 4], k: [1, 4096, 4], v: [1, 4096, 4] }, { causal: true, window: { left: 1024, right: 0 } });
  t.false(
    [...plan(wide, { blockQ: 256, blockK: 2048 }).blocks()].some((b) => b.tiles.some((tile) => tile.band)),
    'width 1025',
  );
  const narrow = validateSpec({ q: [1, 4096, 4], k: [1, 4096, 4], v: [1, 4096, 4] }, { causal: true, window: { left: 1023, right: 0 } });
  t.true(
    [...plan(narrow, { blockQ: 256, blockK: 2048 }).blocks()].some((b) => b.tiles.some((tile) => tile.band)),
    'width 1024',
  );
  t.false(
    [...plan(narrow, { blockQ: 256, blockK: 2048, keepBlock: () => true }).blocks()].some((b) => b.tiles.some((tile) => tile.band)),
    'keepBlock',
  );
});

/** Float64 band from the definition: row x of sub-block b sees columns [0, shared) and [shared + x, shared + x + width). */
function bandReference(job: BandJob, f32: boolean): { out: Float64Array; lse: Float64Array } {
  const { B, r, keys, shared, width, D, scale } = job;
  const round = f32 ? Math.fround : (x: number) => x;
  const out = new Float64Array(B * r * D);
  const lse = new Float64Array(B * r);
  for (let b = 0; b < B; b++) {
    for (let x = 0; x < r; x++) {
      const row = b * r + x;
      const cols = [...Array.from({ length: shared }, (_, c) => c), ...Array.from({ length: width }, (_, c) => shared + x + c)];
      const s = cols.map((c) => {
        let dot = 0;
        for (let d = 0; d < D; d++) dot = round(dot + round(job.q[row * D + d]! * job.k[(b * keys + c) * D + d]!));
        return round(dot * scale);
      });
      const m = Math.max(...s);
      const p = s.map((v) => round(Math.exp(v - m)));
      const l = p.reduce((a, v) => round(a + v), 0);
      lse[row] = m + Math.log(l);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let n = 0; n < cols.length; n++) acc = round(acc + round(p[n]! * job.v[(b * keys + cols[n]!) * D + d]!));
        out[row * D + d] = round(acc / l);
      }
    }
  }
  return { out, lse };
}

test('ort band call: odd sub-blocks (B 3, r 5, 2 shared keys, width 7, D 9) within the exactness bound of float64; bandLse gives band’s lse bits', async (t) => {
  const kernel = await ortBackend.create({ threads: 1 });
  try {
    const B = 3;
    const r = 5;
    const shared = 2;
    const width = 7;
    const D = 9;
    const keys = shared + r - 1 + width;
    const job: BandJob = {
      B,
      r,
      keys,
      shared,
      width,
      D,
      scale: 0.37,
      q: randomTensor(B * r * D, 1, 2),
      k: randomTensor(B * keys * D, 2, 2),
      v: randomTensor(B * keys * D, 3),
    };
    const ref = bandReference(job, false);
    const naive = bandReference(job, true);
    let naiveErr = 0;
    for (let n = 0; n < ref.out.length; n++) naiveErr = Math.max(naiveErr, Math.abs(naive.out[n]! - ref.out[n]!));
    const part = (await kernel.band!(job)) as TilePartial;
    t.truthy(part);
    t.is(part.o.length, B * r * D);
    const got = exactness({ out: part.o, lse: part.lse }, { ref, bound: 2 * naiveErr + 1e-5 });
    t.true(got.exact, `err ${got.err} (bound ${2 * naiveErr + 1e-5}), lse err ${got.lseErr}`);
    const lse = (await kernel.bandLse!(job))!;
    t.true(
      Buffer.from(lse.buffer, lse.byteOffset, lse.byteLength).equals(
        Buffer.from(part.lse.buffer, part.lse.byteOffset, part.lse.byteLength),
      ),
    );
    // Non-finite inputs (--allow-nonfinite, finite not promised): the tile runs as its parts.
    job.v[0] = Number.NaN;
    t.is(await kernel.band!(job), null);
    t.truthy(await kernel.band!({ ...job, finite: true }));
  } finally {
    await kernel.dispose?.();
  }
});

test('ort band call on finite inputs (MultiHeadAttention, docs/math.md "Sole tiles"): exact vs float64; o bits the same with oOnly; lse = bandLse’s bits', async (t) => {
  const kernel = await ortBackend.create({ threads: 1 });
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  try {
    for (const [B, r, shared, width, D] of [
      [3, 5, 2, 7, 9],
      [1, 1, 0, 1, 1],
      [2, 64, 16, 513, 64],
    ] as const) {
      const keys = shared + r - 1 + width;
      const job: BandJob = {
        B,
        r,
        keys,
        shared,
        width,
        D,
        scale: 0.41,
        q: randomTensor(B * r * D, width, 2),
        k: randomTensor(B * keys * D, width + 1, 2),
        v: randomTensor(B * keys * D, width + 2),
        finite: true,
      };
      const ref = bandReference(job, false);
      const naive = bandReference(job, true);
      let naiveErr = 0;
      for (let n = 0; n < ref.out.length; n++) naiveErr = Math.max(naiveErr, Math.abs(naive.out[n]! - ref.out[n]!));
      const both = (await kernel.band!(job))!;
      const oOnly = (await kernel.band!({ ...job, oOnly: true }))!;
      const name = `B ${B}, r ${r}, shared ${shared}, width ${width}, D ${D}`;
      t.true(bits(oOnly.o).equals(bits(both.o)), `${name}: o bits with and without lse`);
      const lse = (await kernel.bandLse!(job))!;
      t.true(bits(both.lse).equals(bits(lse)), `${name}: lse = bandLse`);
      const got = exactness({ out: both.o, lse: both.lse }, { ref, bound: 2 * naiveErr + 1e-5 });
      t.true(got.exact, `${name}: err ${got.err} (bound ${2 * naiveErr + 1e-5}), lse err ${got.lseErr}`);
    }
  } finally {
    await kernel.dispose?.();
  }
});

for (const c of CASES) {
  // Serial: a thread computes one tile at a time (band-block.ts' gather buffers are per thread, as computeTiles').
  test.serial(
    `engine: ${c.name} — ort's band path and the same tiles as parts both exact vs float64, the band path taken, lse-only bits = run's`,
    async (t) => {
      const spec = specOf(c);
      const q = randomTensor(c.H * c.Sq * c.D, 21);
      const k = randomTensor(c.Sk * c.D, 22);
      const v = randomTensor(c.Sk * c.D, 23);
      const want = bruteWithBound(bruteOf(c), q, k, v);
      const source = arraySource(spec, q, k, v);
      const p = plan(spec, c.blocks);
      const ort = await ortBackend.create({ threads: 1 });
      let calls = 0;
      let lseCalls = 0;
      const counted: TileKernel = Object.assign(Object.create(ort), {
        band: async (job: BandJob) => {
          calls++;
          return ort.band!(job);
        },
        bandLse: async (job: Omit<BandJob, 'v'>) => {
          lseCalls++;
          return ort.bandLse!(job);
        },
      });
      const parts: TileKernel = Object.assign(Object.create(ort), { band: undefined, bandLse: undefined });
      try {
        for (const kernel of [counted, parts]) {
          const out = new Float32Array(c.H * c.Sq * c.D);
          const lse = new Float32Array(c.H * c.Sq);
          let lseBits = true;
          for (const block of p.blocks()) {
            const got = await computeQBlock(kernel, spec, block, source);
            const at = block.h * c.Sq + block.qStart;
            out.set(got.o, at * c.D);
            lse.set(got.lse, at);
            // The V-free pass (inspect's first, kernel.bandLse) gives run's LSE bits (docs/contracts.md).
            const lseOnly = await computeQBlock(kernel, spec, block, source, undefined, undefined, 'lse');
            lseBits &&= Buffer.from(lseOnly.lse.buffer, lseOnly.lse.byteOffset, lseOnly.lse.byteLength).equals(
              Buffer.from(got.lse.buffer, got.lse.byteOffset, got.lse.byteLength),
            );
          }
          t.true(lseBits, 'lse-only q-blocks: the same lse bits');
          const e = exactness({ out, lse }, want);
          t.true(e.exact, `${kernel === parts ? 'parts' : 'band'}: err ${e.err} (bound ${want.bound}), lse err ${e.lseErr}`);
        }
        const bandTiles = [...p.blocks()].filter((block) => block.tiles.some((tile) => tile.band)).length;
        t.true(bandTiles >= c.H * c.bands.length);
        t.is(calls, bandTiles, 'one band call per band tile');
        t.is(lseCalls, bandTiles, 'one bandLse call per band tile');
      } finally {
        await ort.dispose?.();
      }
    },
  );
}

test.serial(
  'engine, --allow-nonfinite: a NaN value in a band declines ort’s band call; the rows that see its key get NaN in its column, the others stay exact',
  async (t) => {
    const c = CASES[2]!; // window (29,3) alone
    const spec = { ...specOf(c), allowNonfinite: true };
    const q = randomTensor(c.Sq * c.D, 31);
    const k = randomTensor(c.Sk * c.D, 32);
    const v = randomTensor(c.Sk * c.D, 33);
    const j = 300; // inside q-block 2's band (rows 256–383 see keys 238–397)
    const col = 3;
    const want = bruteWithBound(bruteOf(c), q, k, v); // before the NaN: the rows that do not see key j keep these
    v[j * c.D + col] = Number.NaN;
    const ort = await ortBackend.create({ threads: 1 });
    let declined = 0;
    const counted: TileKernel = Object.assign(Object.create(ort), {
      band: async (job: BandJob) => {
        const part = await ort.band!(job);
        if (part === null) declined++;
        return part;
      },
    });
    try {
      const p = plan(spec, c.blocks);
      const source = arraySource(spec, q, k, v);
      for (const block of p.blocks()) {
        const got = await computeQBlock(counted, spec, block, source);
        for (let r = 0; r < block.rows; r++) {
          const i = block.qStart + r;
          const sees = visible(bruteOf(c), i, j);
          for (let d = 0; d < c.D; d++) {
            const x = got.o[r * c.D + d]!;
            if (sees && d === col) {
              if (!Number.isNaN(x)) t.fail(`row ${i}, column ${d}: want NaN, got ${x}`);
            } else if (!(Math.abs(x - want.ref.out[i * c.D + d]!) <= want.bound))
              t.fail(`row ${i}, column ${d}: ${x} vs ${want.ref.out[i * c.D + d]}`);
          }
        }
      }
      t.is(declined, 1, 'q-block 2’s band call declined (its V holds the NaN), the others ran');
    } finally {
      await ort.dispose?.();
    }
  },
);
