// The `longattn` bin, imported by the services (services/*/src/index.ts) to run a command: no exports.
export {};
