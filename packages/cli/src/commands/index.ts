import type { Command } from 'commander';
import { register as bench } from './bench.ts';
import { register as demo } from './demo.ts';
import { register as run } from './run.ts';

/** Every subcommand; each file registers one. */
export const commands: ((program: Command) => void)[] = [run, demo, bench];
