// The reducer service is `longattn reducer` and nothing else: its flags, defaults, environment
// (LONGATTN_REDIS, LONGATTN_BLOBS, …), logs and exit codes are the CLI command's (packages/cli).
//   node --import tsx services/reducer/src/index.ts --redis redis://host:6379 [flags of `longattn reducer`]
process.argv.splice(2, 0, 'reducer');
await import('@longattn/cli/bin'); // the bin: its prebuilt bundle when fresh, else the sources
