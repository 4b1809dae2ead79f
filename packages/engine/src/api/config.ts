/** HTTP API defaults, each documented once (docs/limits.md). */
export const API_DEFAULTS = {
  /** Largest upload (all parts of one POST /v1/jobs together); 413 past it. */
  uploadCapBytes: 4 * 2 ** 30,
  /** How often an SSE stream reads the job's state and its reduced q-blocks. */
  eventPollMs: 200,
  /** Page size of GET /v1/jobs when none is asked for, and the most it allows. */
  pageSize: 20,
  maxPageSize: 100,
  /** Api records of jobs are kept as long as the queue keeps finished jobs. */
  keepSeconds: 7 * 24 * 3600,
  /** At most this many recent jobs are read to count jobs by state for /metrics. */
  metricsJobs: 1000,
} as const;
