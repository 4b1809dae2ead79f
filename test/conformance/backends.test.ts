import { conformanceSuite } from './backends-suite.ts';

// Every backend but webgpu, which runs in its own process: test/conformance/webgpu.test.ts.
conformanceSuite((backend) => backend !== 'webgpu');
