import test from 'ava';
import { longattn } from '../support/cli.ts';
import { commandHelp, flagsOf, readCompose, readK8s } from './support.ts';

/** Environment variables `longattn api` reads: commander's (env: …) and the ones its help names. */
async function apiEnv(): Promise<Set<string>> {
  const help = await longattn(['api', '--help']);
  return new Set([...(await commandHelp('api')).env, ...[...help.stdout.matchAll(/\b(LONGATTN_[A-Z_]+)=?/g)].map((m) => m[1]!)]);
}

test('docker-compose.yml: the api service runs `longattn api` on the redis service, publishes its port, keys from the environment', async (t) => {
  // biome-ignore lint/suspicious/noExplicitAny: parsed YAML, checked field by field below
  const { services } = readCompose() as { services: Record<string, any> };
  const { api, worker } = services;
  t.truthy(api);
  t.is(api.image, worker.image);
  t.is(api.build.dockerfile, 'infra/docker/Dockerfile');
  t.is(api.depends_on.redis.condition, 'service_healthy');
  const argv = api.command as string[];
  t.is(argv[0], 'api');
  const help = await commandHelp('api');
  for (const flag of flagsOf(argv)) t.true(help.flags.has(flag), `longattn api accepts ${flag}`);
  t.is(argv[argv.indexOf('--redis') + 1], 'redis://redis:6379');
  const port = argv[argv.indexOf('--port') + 1];
  t.deepEqual(api.ports, [`${port}:${port}`], 'the api port is published');
  const env = await apiEnv();
  for (const name of Object.keys(api.environment)) t.true(env.has(name), `${name} is read by longattn api`);
  t.regex(api.environment.LONGATTN_API_KEYS, /^\$\{LONGATTN_API_KEYS:\?/, 'keys come from the environment, never the file');
  t.true((api.healthcheck.test as string[]).join(' ').includes(`:${port}/readyz`));
});

test('k8s: the api Deployment (probes on /healthz and /readyz, keys from a Secret) and its Service', async (t) => {
  const docs = readK8s(['api.yaml', 'longattn-config.yaml']);
  const kustomization = readK8s(['kustomization.yaml'])[0]!;
  t.true((kustomization.resources as string[]).includes('api.yaml'));
  const deployment = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'longattn-api')!;
  const service = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'longattn-api')!;
  t.truthy(deployment && service);
  t.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  t.deepEqual(
    deployment.spec.template.metadata.labels['app.kubernetes.io/name'],
    deployment.spec.selector.matchLabels['app.kubernetes.io/name'],
  );
  const [container] = deployment.spec.template.spec.containers;
  t.is(container.image, 'longattn:latest');
  t.is(container.args[0], 'api');
  const help = await commandHelp('api');
  for (const flag of flagsOf(container.args)) t.true(help.flags.has(flag), `longattn api accepts ${flag}`);
  const port = Number(container.args[container.args.indexOf('--port') + 1]);
  const named = container.ports.find((p: { name: string }) => p.name === 'http');
  t.is(named.containerPort, port);
  t.is(service.spec.ports[0].targetPort, 'http');
  t.is(container.readinessProbe.httpGet.path, '/readyz');
  t.is(container.livenessProbe.httpGet.path, '/healthz');
  const env = await apiEnv();
  for (const e of container.env as {
    name: string;
    valueFrom?: { secretKeyRef?: unknown; configMapKeyRef?: { name: string; key: string } };
  }[]) {
    t.true(env.has(e.name), `${e.name} is read by longattn api`);
    if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      t.truthy(docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === ref.name)?.data[ref.key], `${ref.name}/${ref.key} exists`);
    }
  }
  const keys = container.env.find((e: { name: string }) => e.name === 'LONGATTN_API_KEYS');
  t.truthy(keys.valueFrom.secretKeyRef, 'API keys from a Secret, not a ConfigMap');
});
