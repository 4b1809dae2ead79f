import { conformanceSuite } from './backends-suite.ts';
import { nonfiniteSuite } from './nonfinite-suite.ts';

// The webgpu backend's conformance and non-finite suites, in a process of their own: Dawn's EGL
// finds no adapter in a process where the gl addon (gpujs headlessgl) already holds a context.
conformanceSuite((backend) => backend === 'webgpu');
nonfiniteSuite((backend) => backend === 'webgpu');
