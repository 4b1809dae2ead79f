import test from 'ava';
import { parseS3Location } from '@longattn/engine/queue';
import { readCompose, readK8s, readText } from './support.ts';

/** The AWS settings the S3 blob store reads (packages/engine/src/blobs/s3-location.ts, plus the SDK's credentials). */
const AWS_SETTINGS = ['AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];

test('docker-compose.yml: MinIO is the blob store: a bucket made before any job, every longattn container pointed at it', (t) => {
  // biome-ignore lint/suspicious/noExplicitAny: parsed YAML, checked field by field below
  const { services, volumes } = readCompose() as { services: Record<string, any>; volumes: Record<string, unknown> };
  const { minio, 'minio-init': init, worker, reducer, submit } = services;
  t.regex(minio.image, /^minio\/minio:RELEASE\./, 'a pinned MinIO release');
  t.true((minio.volumes as string[]).some((v) => v.endsWith(':/data') && `${v.split(':')[0]}` in volumes));
  t.truthy(minio.healthcheck);
  t.is(init.depends_on.minio.condition, 'service_healthy');
  t.is(init.restart, 'no');
  const submitted = submit.command as string[];
  const blobs = submitted[submitted.indexOf('--blobs') + 1]!;
  const where = parseS3Location(blobs, '--blobs', submit.environment);
  t.regex(
    init.command.join(' '),
    new RegExp(`mc mb --ignore-existing local/${where.bucket}( |$)`),
    'minio-init makes the bucket submit uses',
  );
  for (const [name, s] of Object.entries({ worker, reducer, submit })) {
    t.deepEqual(Object.keys(s.environment).sort(), [...AWS_SETTINGS].sort(), `${name}: the AWS settings`);
    t.is(s.environment.AWS_ENDPOINT_URL, `http://minio:${minio.ports[0].split(':')[1]}`, `${name}: the minio service`);
    t.is(s.environment.AWS_ACCESS_KEY_ID, minio.environment.MINIO_ROOT_USER);
    t.is(s.environment.AWS_SECRET_ACCESS_KEY, minio.environment.MINIO_ROOT_PASSWORD);
    t.is(s.depends_on['minio-init'].condition, 'service_completed_successfully', `${name}: starts once the bucket exists`);
  }
  t.deepEqual(parseS3Location('s3://longattn/jobs', '--blobs', worker.environment), {
    bucket: 'longattn',
    prefix: 'jobs/',
    region: 'us-east-1',
    endpoint: 'http://minio:9000',
    unsignedPayload: false, // plain http to another host: PUT bodies stay hashed (s3-location.ts)
  });
});

test('infra/k8s/s3-secret.example.yaml: a Secret of the AWS settings, documented, kept out of the applied resources', (t) => {
  const [secret] = readK8s(['s3-secret.example.yaml']);
  t.is(secret!.kind, 'Secret');
  t.deepEqual(Object.keys(secret!.stringData).sort(), [...AWS_SETTINGS].sort());
  t.notThrows(() => parseS3Location('s3://bucket/prefix', '--blobs', secret!.stringData), 'settings the store accepts');
  const text = readText('infra/k8s/s3-secret.example.yaml');
  t.regex(text, new RegExp(`secretRef: \\{ name: ${secret!.metadata.name} \\}`), 'says how the Deployments take it');
  t.false((readK8s(['kustomization.yaml'])[0]!.resources as string[]).includes('s3-secret.example.yaml'), 'placeholders are never applied');
});
