import test from 'ava';
import { exactnessBound, maxAbsDiff, naiveFloat32Attention, referenceAttention, validateSpec } from '@longattn/attention';
import { encodeModel, float, OrtGraph } from '@longattn/kernels';
import { varint } from '../src/onnx/wire.ts';

test("varints: protobuf wire vectors, negatives as 10-byte two's complement", (t) => {
  t.deepEqual([...varint(0)], [0]);
  t.deepEqual([...varint(1)], [1]);
  t.deepEqual([...varint(300)], [0xac, 0x02]);
  t.deepEqual([...varint(2 ** 35)], [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  t.deepEqual([...varint(-1)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
});

test('an encoded model with int and float attributes, a symbolic dim and a negative int64 initializer runs', async (t) => {
  // y = ReduceSum(Gemm(a, b; transB, alpha = 0.5), axes = [-1]) over a [2,3] and b [2,3]
  const model = encodeModel({
    opsets: { '': 18 },
    graph: {
      name: 'g',
      nodes: [
        { op: 'Gemm', inputs: ['a', 'b'], outputs: ['s'], attrs: { transB: 1, alpha: float(0.5) } },
        { op: 'ReduceSum', inputs: ['s', 'axes'], outputs: ['y'], attrs: { keepdims: 0 } },
      ],
      inputs: [
        { name: 'a', type: 'float', dims: [2, 3] },
        { name: 'b', type: 'float', dims: ['n', 3] },
      ],
      outputs: [{ name: 'y', type: 'float', dims: [2] }],
      initializers: [{ name: 'axes', dims: [1], data: BigInt64Array.of(-1n) }],
    },
  });
  const g = await OrtGraph.open(model);
  const a = Float32Array.of(1, 2, 3, 4, 5, 6);
  const b = Float32Array.of(1, 0, 0, 0, 1, 0);
  const { y } = await g.run({ a: { data: a, dims: [2, 3] }, b: { data: b, dims: [2, 3] } });
  t.deepEqual([...y!], [1.5, 4.5]); // rows (1+2)/2 and (4+5)/2
  await g.dispose();
});

test('com.microsoft MultiHeadAttention built by the encoder matches the reference', async (t) => {
  const [S, H, D] = [37, 2, 16];
  const spec = validateSpec({ q: [S, H, D], k: [S, H, D], v: [S, H, D] }, { layout: 'bshd' });
  const data = (seed: number): Float32Array => Float32Array.from({ length: S * H * D }, (_, i) => Math.sin(i * 0.37 + seed));
  const [q, k, v] = [data(1), data(2), data(3)];
  const model = encodeModel({
    opsets: { '': 18, 'com.microsoft': 1 },
    graph: {
      name: 'mha',
      nodes: [{ op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: ['q', 'k', 'v'], outputs: ['o'], attrs: { num_heads: H } }],
      inputs: ['q', 'k', 'v'].map((name) => ({ name, type: 'float' as const, dims: [1, S, H * D] })),
      outputs: [{ name: 'o', type: 'float', dims: [1, S, H * D] }],
    },
  });
  const g = await OrtGraph.open(model, 2);
  const dims = [1, S, H * D];
  const { o } = await g.run({ q: { data: q, dims }, k: { data: k, dims }, v: { data: v, dims } });
  const ref = referenceAttention(spec, q, k, v);
  const naive = naiveFloat32Attention(spec, q, k, v);
  // Same exactness rule as the kernels (2× the naive float32 error + 1e-5).
  t.true(maxAbsDiff(o!, ref.out) <= exactnessBound(naive.out, ref.out), `diff ${maxAbsDiff(o!, ref.out)}`);
  await g.dispose();
});
