// The worker service is `longattn worker` and nothing else: its flags, defaults, environment
// (LONGATTN_REDIS, LONGATTN_BLOBS, …), logs and exit codes are the CLI command's (packages/cli).
//   node --import tsx services/worker/src/index.ts --redis redis://host:6379 [flags of `longattn worker`]
process.argv.splice(2, 0, 'worker');
await import('@longattn/cli/bin'); // the bin: its prebuilt bundle when fresh, else the sources
