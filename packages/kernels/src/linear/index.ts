import { getBackend } from '../registry.ts';
import { jsLinear, type Linear } from './linear.ts';
import { ortLinear } from './ort-linear.ts';

export { jsLinear, type Linear } from './linear.ts';

/**
 * The projection GEMM for a layer (docs/math.md, "Layers"): `ort` when onnxruntime loads here
 * (MLAS, the fast CPU path), else `js`. `name` forces one; an unknown name is `js`'s caller's bug.
 */
export async function createLinear(name?: 'ort' | 'js'): Promise<Linear> {
  if (name === 'js') return jsLinear;
  if (name === 'ort') return ortLinear();
  return (await getBackend('ort').probe()) === null ? ortLinear() : jsLinear;
}
