import test from 'ava';
import { deviceKind, getBackend, isSoftwareRenderer, onSoftware, selectBackend } from '@longattn/kernels';

// Renderer and adapter strings as GL (GL_RENDERER through ANGLE) and Dawn (adapter info) print them.
const SOFTWARE = [
  'Mesa/X.org llvmpipe (LLVM 15.0.6, 256 bits) OpenGL 4.5 core',
  'llvmpipe-llvm-15-0-6-256-bits- (OpenGL version 4.5 (Core Profile) Mesa 22.3.6)',
  'llvmpipe (LLVM 15.0.6, 256 bits) (mesa, lavapipe)',
  'SwiftShader Device (Subzero) (google, swiftshader)',
  'Google SwiftShader',
  'softpipe',
  'Software Rasterizer',
  'Microsoft Basic Render Driver',
];
const HARDWARE = [
  'NVIDIA H200/PCIe/SSE2 OpenGL 4.6.0 NVIDIA 550.54.15',
  'NVIDIA H200 (nvidia, hopper, NVIDIA: 550.54.15)',
  'AMD Radeon RX 7900 XTX (radeonsi, navi31, LLVM 15.0.6, DRM 3.54)',
  'Mesa Intel(R) UHD Graphics 620 (KBL GT2)',
];

test('renderer strings: software rasterisers are software, GPUs are hardware', (t) => {
  for (const r of SOFTWARE) t.true(isSoftwareRenderer(r), r);
  for (const r of HARDWARE) t.false(isSoftwareRenderer(r), r);
  t.is(deviceKind(SOFTWARE[0]!), 'software');
  t.is(deviceKind(HARDWARE[0]!), 'hardware');
});

test('onSoftware: an accelerated backend on a software renderer or the CPU; CPU backends never', (t) => {
  const gpujs = getBackend('gpujs');
  const webgpu = getBackend('webgpu');
  t.true(onSoftware({ backend: gpujs, device: 'Mesa llvmpipe (GL, software)' }));
  t.true(onSoftware({ backend: gpujs, device: 'cpu (gpu.js webasm)' }));
  t.true(onSoftware({ backend: webgpu, device: 'llvmpipe-llvm-15-0-6-256-bits- (WebGPU opengl, software)' }));
  t.false(onSoftware({ backend: gpujs, device: 'NVIDIA H200 (GL)' }));
  t.false(onSoftware({ backend: webgpu, device: 'NVIDIA H200 (WebGPU vulkan)' }));
  t.false(onSoftware({ backend: getBackend('js'), device: 'cpu (portable JS)' }));
});

test('webgpu here: the adapter Dawn reaches through EGL is llvmpipe, reported as software and never offered as hardware', async (t) => {
  const webgpu = getBackend('webgpu');
  t.is(await webgpu.probe({ mode: 'opengl' }), null, 'Dawn GL on Mesa answers (the conformance suite runs it)');
  t.regex(await webgpu.describe!({ mode: 'opengl' }), /llvmpipe.*\(WebGPU opengl, software\)$/);
  t.is(await webgpu.probeHardware!(), null, 'auto never takes a software adapter (here: no GPU device node at all)');
});

test('auto asks compute shaders (webgpu) before fragment shaders (gpujs), and here takes neither', async (t) => {
  const chosen = await selectBackend('auto');
  t.deepEqual(chosen.skipped.slice(0, 2), ['webgpu: no GPU hardware', 'gpujs: no GPU hardware']);
  t.false(chosen.backend.accelerated === true, `auto chose ${chosen.name} on ${chosen.device}`);
});
