// Piscina worker entry: loads the TypeScript worker through tsx (no build step).
// Worker threads inherit --import=tsx when the parent has it; registering again is harmless.
import { register } from 'tsx/esm/api';

register();
const worker = await import('./tile-worker.ts');
export default worker.default;
