import { Command, CommanderError } from 'commander';
import { InputError } from '@longattn/tensor';
import { commands } from './commands/index.ts';

/** Exit codes (docs/contracts.md): 0 done; 2 bad input or usage, one line naming the argument; 1 anything else. */
function fail(code: 1 | 2, message: string): never {
  process.stderr.write(`longattn: ${message.split('\n')[0]}\n`);
  if (code === 1 && process.env.LONGATTN_DEBUG) process.stderr.write(`${new Error().stack}\n`);
  process.exit(code);
}

const program = new Command('longattn')
  .description('exact attention for very long documents, block by block')
  .showHelpAfterError(false)
  .exitOverride()
  .configureOutput({ writeErr: () => {} });
for (const register of commands) register(program);
for (const cmd of program.commands) cmd.exitOverride().configureOutput({ writeErr: () => {} });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') process.exit(0);
    fail(2, error.message.replace(/^error: /, ''));
  }
  if (error instanceof InputError) fail(2, error.message);
  if (process.env.LONGATTN_DEBUG) console.error(error);
  fail(1, error instanceof Error ? error.message : String(error));
}
