// A cold run of onnxruntime's fused MultiHeadAttention, as a user would script it in plain
// JavaScript (no tsx, no longattn code): load the [H, S, D] float32 .npy inputs, lay them out as
// MHA wants ([1, S, H·D]), run the model once, save the output, exit. The bench times the whole
// process. Usage: node ort-mha-cold.mjs '{"ort": URL, "model": path, "q": .., "k": .., "v": .., "out": .., "threads": n}'
import { readFileSync, writeFileSync } from 'node:fs';

const o = JSON.parse(process.argv[2]);
const ort = await import(o.ort);

/** A little-endian float32 C-order .npy: its shape and data (copied, so it is aligned). */
function readNpy(path) {
  const bytes = readFileSync(path);
  const headerLen = bytes[6] === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = bytes[6] === 1 ? 10 : 12;
  const header = bytes.toString('latin1', start, start + headerLen);
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) throw new Error(`${path}: expected float32 C order`);
  const shape = header
    .match(/'shape': \(([^)]*)\)/)[1]
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  const body = bytes.subarray(start + headerLen);
  return { shape, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)) };
}

/** [H, S, D] → [1, S, H·D]. */
function toMha({ shape, data }) {
  const [H, S, D] = shape.slice(-3);
  const out = new Float32Array(H * S * D);
  for (let h = 0; h < H; h++) for (let s = 0; s < S; s++) out.set(data.subarray((h * S + s) * D, (h * S + s + 1) * D), (s * H + h) * D);
  return new ort.Tensor('float32', out, [1, S, H * D]);
}

const session = await ort.InferenceSession.create(readFileSync(o.model), {
  graphOptimizationLevel: 'all',
  intraOpNumThreads: o.threads,
  interOpNumThreads: 1,
  logSeverityLevel: 3,
});
const feeds = { query: toMha(readNpy(o.q)), key: toMha(readNpy(o.k)), value: toMha(readNpy(o.v)) };
const t0 = performance.now();
const { out } = await session.run(feeds);
const ms = performance.now() - t0;
const header = `${`{'descr': '<f4', 'fortran_order': False, 'shape': (${out.dims.join(', ')}), }`.padEnd(117, ' ')}\n`;
writeFileSync(
  o.out,
  Buffer.concat([
    Buffer.from('\x93NUMPY\x01\x00', 'latin1'),
    Buffer.from([header.length & 255, header.length >> 8]),
    Buffer.from(header, 'latin1'),
    Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength),
  ]),
);
console.log(JSON.stringify({ ms: [ms] }));
process.exit(0);
