import { nonfiniteSuite } from './nonfinite-suite.ts';

// Every backend but webgpu, which runs in its own process: test/conformance/webgpu.test.ts.
nonfiniteSuite((backend) => backend !== 'webgpu');
