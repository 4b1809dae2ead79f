import { bytesField, floatField, intField, message, packedInts, stringField, type Field } from './wire.ts';

/**
 * A minimal ONNX model encoder (onnx.proto field numbers), enough to write small graphs in code:
 * ModelProto, GraphProto, NodeProto (with a domain, e.g. `com.microsoft`), AttributeProto,
 * TensorProto initializers (raw data) and ValueInfoProto (fixed or symbolic dims).
 */

/** An attribute: an integer is INT, `float(x)` is FLOAT, an array is INTS, a string is STRING. */
export type Attr = number | { float: number } | readonly number[] | string;

export const float = (x: number): { float: number } => ({ float: x });

export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  /** Operator domain; '' (default) is the ONNX standard set. */
  domain?: string;
  attrs?: Record<string, Attr>;
}

export type ElemType = 'float' | 'int64' | 'bool';
const ELEM: Record<ElemType, number> = { float: 1, int64: 7, bool: 9 };

/** A graph input or output; a string dim is symbolic (dynamic). */
export interface OnnxValue {
  name: string;
  type: ElemType;
  dims: readonly (number | string)[];
}

export interface OnnxTensor {
  name: string;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxValue[];
  outputs: readonly OnnxValue[];
  initializers?: readonly OnnxTensor[];
}

export interface OnnxModel {
  graph: OnnxGraph;
  /** Opset version per domain, e.g. `{ '': 18, 'com.microsoft': 1 }`. */
  opsets: Record<string, number>;
  /** Default 8 (ONNX 1.13, opset ≤ 18). */
  irVersion?: number;
}

function attribute(name: string, value: Attr): Uint8Array {
  if (typeof value === 'number') return message(stringField(1, name), intField(3, value), intField(20, 2));
  if (typeof value === 'string') return message(stringField(1, name), stringField(4, value), intField(20, 3));
  if ('float' in value) return message(stringField(1, name), floatField(2, value.float), intField(20, 1));
  return message(stringField(1, name), packedInts(8, value), intField(20, 7));
}

function node(n: OnnxNode, index: number): Uint8Array {
  return message(
    ...n.inputs.map((s) => stringField(1, s)),
    ...n.outputs.map((s) => stringField(2, s)),
    stringField(3, `${n.op}_${index}`),
    stringField(4, n.op),
    ...Object.entries(n.attrs ?? {}).map(([k, v]) => bytesField(5, attribute(k, v))),
    n.domain ? stringField(7, n.domain) : undefined,
  );
}

function tensor(t: OnnxTensor): Uint8Array {
  const type = t.data instanceof Float32Array ? ELEM.float : ELEM.int64;
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength); // little-endian hosts only
  return message(packedInts(1, t.dims), intField(2, type), stringField(8, t.name), bytesField(9, raw));
}

function valueInfo(v: OnnxValue): Uint8Array {
  const dims = v.dims.map((d) => bytesField(1, typeof d === 'number' ? intField(1, d) : stringField(2, d)));
  const tensorType = message(intField(1, ELEM[v.type]), bytesField(2, message(...dims)));
  return message(stringField(1, v.name), bytesField(2, bytesField(1, tensorType)));
}

function graph(g: OnnxGraph): Uint8Array {
  const fields: Field[] = [
    ...g.nodes.map((n, i) => bytesField(1, node(n, i))),
    stringField(2, g.name),
    ...(g.initializers ?? []).map((t) => bytesField(5, tensor(t))),
    ...g.inputs.map((v) => bytesField(11, valueInfo(v))),
    ...g.outputs.map((v) => bytesField(12, valueInfo(v))),
  ];
  return message(...fields);
}

/** The serialized ModelProto, ready for `InferenceSession.create(bytes)`. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const opsets = Object.entries(model.opsets).map(([domain, version]) =>
    bytesField(8, message(domain ? stringField(1, domain) : undefined, intField(2, version))),
  );
  return message(intField(1, model.irVersion ?? 8), stringField(2, 'longattn'), bytesField(7, graph(model.graph)), ...opsets);
}
