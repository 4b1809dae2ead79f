import type { Command } from 'commander';
import { register as api } from './api.ts';
import { register as bench } from './bench.ts';
import { register as cancel } from './cancel.ts';
import { register as demo } from './demo.ts';
import { register as inspect } from './inspect.ts';
import { register as layer } from './layer.ts';
import { register as mask } from './mask.ts';
import { register as reducer } from './reducer.ts';
import { register as result } from './result.ts';
import { register as run } from './run.ts';
import { register as status } from './status.ts';
import { register as worker } from './worker.ts';

/** Every subcommand; each file registers one. */
export const commands: ((program: Command) => void)[] = [
  run,
  layer,
  demo,
  inspect,
  mask,
  bench,
  worker,
  reducer,
  status,
  cancel,
  result,
  api,
];
