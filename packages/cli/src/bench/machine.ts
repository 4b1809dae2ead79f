import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem, type } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ortModuleUrl } from '@longattn/kernels';
import { numpyEnv } from './peers/numpy-peer.ts';

/** The machine and software a bench run measured, for BENCHMARKS.md's header. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  /** The CPU flags that decide which kernels run (SIMD widths, FMA, VNNI, AMX), in /proc/cpuinfo's order. */
  flags: string[];
  memoryGiB: number;
  os: string;
  node: string;
  onnxruntime: string;
  /** `numpy X, Python Y`, or why the numpy peer could not run. */
  numpy: string;
  /** The checkout's commit (`+ local changes` when the tree differs from it), or 'unknown'. */
  commit: string;
}

const FLAGS = /^(sse4_2|avx|avx2|fma|f16c|avx512\w*|avx_vnni|amx\w*)$/;
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): string | undefined {
  try {
    return execFileSync(command, args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      ...(env ? { env } : {}),
    }).trim();
  } catch {
    return undefined;
  }
}

/** The version in the package.json nearest above a resolved module file. */
function packageVersion(moduleUrl: string): string {
  for (let dir = dirname(fileURLToPath(moduleUrl)); dir !== dirname(dir); dir = dirname(dir)) {
    const json = read(join(dir, 'package.json'));
    if (json) return (JSON.parse(json) as { version?: string }).version ?? 'unknown';
  }
  return 'unknown';
}

export function machineInfo(threads: number): MachineInfo {
  const cpuinfo = read('/proc/cpuinfo');
  const field = (name: string) => new RegExp(`^${name}\\s*:(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const flagLine = field('flags') ?? '';
  const family = field('cpu family');
  const osName = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(read('/etc/os-release'))?.[1];
  const commit = run('git', ['rev-parse', '--short=12', 'HEAD']);
  const dirty = commit && run('git', ['status', '--porcelain', '--untracked-files=no']);
  const numpy = run(
    'python3',
    ['-c', 'import numpy, platform; print(f"numpy {numpy.__version__}, Python {platform.python_version()}")'],
    numpyEnv(threads),
  );
  return {
    cpu: `${cpus()[0]?.model.trim() ?? 'unknown'}${family ? ` (family ${family}, model ${field('model')})` : ''}`,
    cores: availableParallelism(),
    flags: flagLine
      .trim()
      .split(/\s+/)
      .filter((f) => FLAGS.test(f)),
    memoryGiB: totalmem() / 2 ** 30,
    os: `${osName ?? type()}, kernel ${release()}`,
    node: process.version,
    onnxruntime: packageVersion(ortModuleUrl()),
    numpy: numpy ?? 'not available (python3 or numpy missing)',
    commit: commit ? `${commit}${dirty ? ' + local changes' : ''}` : 'unknown',
  };
}
