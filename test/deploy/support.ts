/** Reading the deploy files and asking the real CLI what it accepts. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { longattn, ROOT } from '../support/cli.ts';

export { ROOT };

export function readText(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

/** docker-compose.yml with its `<<: *anchor` merges applied. */
export function readCompose(): Record<string, unknown> {
  return parse(readText('docker-compose.yml'), { merge: true }) as Record<string, unknown>;
}

/** Every YAML document of every manifest under infra/k8s. */
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, checked field by field by the tests
type Manifest = Record<string, any>;

export function readK8s(files: string[]): Manifest[] {
  return files.flatMap((f) => parseAllDocuments(readText(join('infra/k8s', f))).map((d) => d.toJS() as Manifest)).filter(Boolean);
}

export interface CommandHelp {
  /** Long flags it accepts, e.g. --redis. */
  flags: Set<string>;
  /** Environment variables it reads (commander's "(env: NAME)"). */
  env: Set<string>;
}

const helps = new Map<string, Promise<CommandHelp>>();

/** `longattn NAME --help`, parsed; rejects when NAME is not a subcommand. */
export function commandHelp(name: string): Promise<CommandHelp> {
  let help = helps.get(name);
  if (!help) {
    help = longattn([name, '--help']).then((r) => {
      if (r.code !== 0 || !r.stdout.startsWith(`Usage: longattn ${name}`))
        throw new Error(`longattn ${name} is not a subcommand: ${r.stderr || r.stdout}`);
      return {
        flags: new Set([...r.stdout.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!)),
        env: new Set([...r.stdout.matchAll(/env:\s+([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!)),
      };
    });
    helps.set(name, help);
  }
  return help;
}

/** Flags in an argv (`--redis`, `--scale`…), without their values. */
export function flagsOf(argv: readonly string[]): string[] {
  return argv.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!);
}
