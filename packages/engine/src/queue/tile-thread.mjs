// Piscina worker entry: loads the TypeScript kernel thread through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
const thread = await import('./tile-thread.ts');
export default thread.default;
