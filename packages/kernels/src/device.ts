/**
 * One place that decides whether a renderer or adapter string names a real GPU. Software
 * rasterisers (Mesa llvmpipe/softpipe/swrast, lavapipe, SwiftShader, Microsoft's WARP) run on the
 * CPU: they are correctness paths, never what `auto` or a GPU worker may call a GPU (docs/limits.md).
 */
const SOFTWARE = /llvmpipe|softpipe|swrast|lavapipe|software rasterizer|swiftshader|microsoft basic render|\bwarp\b/i;

/** True when `renderer` (GL_RENDERER, a WebGPU adapter's description/device) is a CPU rasteriser. */
export function isSoftwareRenderer(renderer: string): boolean {
  return SOFTWARE.test(renderer);
}

/** `hardware` or `software`, as printed in device names and logs. */
export function deviceKind(renderer: string): 'hardware' | 'software' {
  return isSoftwareRenderer(renderer) ? 'software' : 'hardware';
}
