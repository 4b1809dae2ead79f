import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { QUEUE_DEFAULTS } from '@longattn/engine/queue';
import { commandHelp, flagsOf, readCompose, readK8s, readText, ROOT } from './support.ts';

/** `key value` lines of a redis.conf, comments dropped. */
function redisConf(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.split(/\s+/)[0]!, l.slice(l.split(/\s+/)[0]!.length).trim()]),
  );
}

test('infra/redis/redis.conf: never evicts, appends to an AOF, keeps data in /data', (t) => {
  const conf = redisConf(readText('infra/redis/redis.conf'));
  t.is(conf.get('maxmemory-policy'), 'noeviction');
  t.is(conf.get('appendonly'), 'yes');
  t.is(conf.get('dir'), '/data');
  t.is(conf.get('port'), '6379');
});

test('Dockerfile: Node 20, the pinned pnpm with a frozen lockfile, entrypoint = the longattn bin', (t) => {
  const docker = readText('infra/docker/Dockerfile');
  t.regex(docker, /^FROM node:20(\b|-)/m);
  t.regex(docker, /^RUN npx pnpm@12\.4\.2 install --frozen-lockfile$/m);
  t.is(JSON.parse(readText('package.json')).packageManager, 'pnpm@12.4.2');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(docker);
  t.truthy(entry);
  const argv = JSON.parse(entry![1]!) as string[];
  t.is(argv[0], 'node');
  t.true(argv[1]!.startsWith('/app/'), 'the bin inside the image (WORKDIR /app, COPY . .)');
  t.true(existsSync(join(ROOT, argv[1]!.slice('/app/'.length))), `${argv[1]} exists in the repository`);
  t.regex(docker, /^WORKDIR \/app$/m);
  t.regex(docker, /^COPY \. \.$/m);
  t.true(existsSync(join(ROOT, 'pnpm-lock.yaml')));
});

test('Dockerfile: the install builds the CLI bundle the entrypoint starts from, never a copy from the host', (t) => {
  const docker = readText('infra/docker/Dockerfile');
  t.notRegex(docker, /--ignore-scripts|--prod\b/, 'prepare scripts run, with esbuild installed');
  t.regex(JSON.parse(readText('packages/cli/package.json')).scripts.prepare, /scripts\/build-bundle\.mjs/);
  const ignored = readText('infra/docker/Dockerfile.dockerignore').split('\n');
  t.true(ignored.includes('packages/cli/dist'), 'a host bundle (built from other sources) stays out of the image');
});

test('docker-compose.yml: redis with the repo’s redis.conf, scalable workers, reducer, one-shot submit; commands the CLI accepts', async (t) => {
  // biome-ignore lint/suspicious/noExplicitAny: parsed YAML, checked field by field below
  const compose = readCompose() as { services: Record<string, any>; volumes?: Record<string, unknown> };
  const { redis, worker, reducer, submit } = compose.services;
  t.truthy(redis && worker && reducer && submit);

  // Redis runs the checked-in redis.conf, with a volume for the AOF.
  const confMount = (redis.volumes as string[]).find((v) => v.startsWith('./infra/redis/redis.conf:'));
  t.truthy(confMount, 'infra/redis/redis.conf is mounted');
  t.is(redis.command[1], confMount!.split(':')[1], 'and redis-server is started with it');
  t.true(
    (redis.volumes as string[]).some((v) => v.endsWith(':/data')),
    'AOF dir on a volume',
  );

  // One image, built from infra/docker/Dockerfile at the repo root.
  for (const s of [worker, reducer, submit]) {
    t.is(s.build.context, '.');
    t.is(s.build.dockerfile, 'infra/docker/Dockerfile');
    t.is(s.image, worker.image);
    t.is(s.depends_on.redis.condition, 'service_healthy');
  }
  // --scale worker=N: no fixed name, no host ports.
  t.is(worker.container_name, undefined);
  t.is(worker.ports, undefined);
  t.is(submit.restart, 'no');

  // Every command is a real subcommand, every flag one it accepts, the URL the redis service's.
  for (const [name, s] of Object.entries({ worker, reducer, submit })) {
    const argv = s.command as string[];
    const help = await commandHelp(argv[0]!);
    for (const flag of flagsOf(argv)) t.true(help.flags.has(flag), `${name}: longattn ${argv[0]} accepts ${flag}`);
    t.is(argv[argv.indexOf('--redis') + 1], 'redis://redis:6379', `${name} talks to the redis service`);
    // AWS_* are the S3 blob store's settings (read by the SDK and parseS3Location; test/deploy/s3.test.ts).
    for (const env of Object.keys(s.environment ?? {}).filter((e) => !e.startsWith('AWS_'))) {
      t.true(help.env.has(env), `${name}: ${env} is read by longattn ${argv[0]}`);
    }
  }
  t.deepEqual(submit.command.slice(0, 3), ['demo', '--engine', 'queue']);
  t.true(
    Number.parseInt(worker.stop_grace_period, 10) > QUEUE_DEFAULTS.graceMs / 1000,
    'Docker waits longer than the worker’s grace period',
  );
});

test('k8s: Redis StatefulSet + Service + ConfigMap, worker and reducer Deployments that agree with the CLI', async (t) => {
  const docs = readK8s(['longattn-config.yaml', 'redis-config.yaml', 'redis.yaml', 'worker.yaml', 'reducer.yaml', 'worker-scaler.yaml']);
  const kustomization = readK8s(['kustomization.yaml'])[0]!;
  for (const file of kustomization.resources as string[]) t.true(existsSync(join(ROOT, 'infra/k8s', file)), `${file} exists`);
  const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);

  // Redis: the ConfigMap carries exactly infra/redis/redis.conf, mounted where redis-server reads it.
  const redisConfig = find('ConfigMap', 'redis-config');
  t.is(redisConfig?.data['redis.conf'], readText('infra/redis/redis.conf'));
  const sts = find('StatefulSet', 'redis')!;
  const container = sts.spec.template.spec.containers[0];
  const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config');
  t.is(container.command[1], `${mount.mountPath}/redis.conf`);
  t.is(sts.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'config').configMap.name, 'redis-config');
  t.truthy(
    container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/data'),
    'AOF on the persistent volume',
  );
  const service = find('Service', 'redis')!;
  t.is(service.spec.ports[0].port, 6379);
  t.deepEqual(service.spec.selector, sts.spec.selector.matchLabels);

  // Settings: the Redis URL points at that Service.
  const config = find('ConfigMap', 'longattn')!;
  t.is(config.data.LONGATTN_REDIS, `redis://${service.metadata.name}:${service.spec.ports[0].port}`);

  for (const name of ['longattn-worker', 'longattn-reducer']) {
    const deployment = find('Deployment', name)!;
    t.truthy(deployment, name);
    const pod = deployment.spec.template.spec;
    t.true(pod.terminationGracePeriodSeconds > QUEUE_DEFAULTS.graceMs / 1000, `${name}: k8s waits longer than the grace period`);
    for (const c of pod.containers) {
      const help = await commandHelp(c.args[0]);
      for (const flag of flagsOf(c.args)) t.true(help.flags.has(flag), `${name}: accepts ${flag}`);
      const env = [
        ...(c.env ?? []).map((e: { name: string }) => e.name),
        ...(c.envFrom ?? []).flatMap((e: { configMapRef: { name: string } }) =>
          Object.keys(find('ConfigMap', e.configMapRef.name)?.data ?? {}),
        ),
      ];
      t.true(env.includes('LONGATTN_REDIS'), `${name}: gets the Redis URL`);
      for (const e of env) t.true(help.env.has(e), `${name}: ${e} is read by longattn ${c.args[0]}`);
      for (const ref of (c.env ?? [])
        .map((e: { valueFrom?: { configMapKeyRef?: { name: string; key: string } } }) => e.valueFrom?.configMapKeyRef)
        .filter(Boolean)) {
        t.truthy(find('ConfigMap', ref.name)?.data[ref.key], `${name}: ${ref.name}/${ref.key} exists`);
      }
      t.is(c.image, 'longattn:latest');
    }
  }
});
