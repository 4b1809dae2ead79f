import { localBackendSuite } from './local-backends.ts';

// The webgpu backend through the local engine, in a process of its own (see local-backends.ts).
localBackendSuite((backend) => backend === 'webgpu');
