/**
 * Queue engine defaults, each documented once here (BullMQ values verified here: docs/flow.md, queue
 * settings); the limits, timeouts and TTLs users see are listed in docs/limits.md ("Queue and Redis").
 */
export const QUEUE_DEFAULTS = {
  /** A worker's lock on a job; a killed worker's jobs return to the queue about this long after. */
  lockDurationMs: 5000,
  /** How often workers look for jobs whose lock expired. */
  stalledIntervalMs: 5000,
  /** Stalls (lost locks: killed workers) a job survives before it fails. Tiles are idempotent. */
  maxStalledCount: 3,
  /** Attempts per job (errors, not stalls), with exponential backoff from backoffMs. */
  attempts: 4,
  backoffMs: 500,
  /** Job data is references only: anything bigger is a bug (a tensor slipped in). */
  sizeLimitBytes: 32 << 10,
  /**
   * Default tiles: the backend's defaults scaled by this (rows, keys). Longer key blocks would
   * cut the partials' traffic (a causal job's partials weigh Sk / (2·blockK) times its output),
   * but they cost more masked work in diagonal tiles: measured here with ort, 512×4096 tiles ran
   * a causal head 1.5× slower than 256×2048. So the queue keeps the local engine's tiles, and
   * its output bits equal runLocal's by default.
   */
  blockScale: { rows: 1, keys: 1 },
  /**
   * Target kernel work per tile job: ≥ 30–50 ms on a fast CPU backend keeps queue overhead < 5%.
   * The smallest default: long documents get bigger jobs (batching.ts, defaultJobFlops).
   */
  jobFlops: 4e9,
  /**
   * Guided job sizes (batching.ts, guidedJobFlops): past the default's jobFlops, a tile job of a
   * default-batched plan may hold up to 1/guidedJobs of the work from its first q-block to the end
   * of the plan, at most maxGuidedJobFlops. Jobs are taken in plan order, so early jobs are big
   * (fewer per-job costs: ~17 ms of worker CPU and 3–5 blob requests per job on S3) and the last
   * ones the default's size (the same tail as before). With at most guidedJobs jobs in flight at
   * once, a job never holds more than an even share of what is left (guided self-scheduling).
   * Measured: docs/scaling.md, "Job size".
   */
  guidedJobs: 64,
  maxGuidedJobFlops: 16e9,
  /** Small problems still get at least this many tile jobs (when they have that many tiles), for parallelism. */
  minTileJobs: 64,
  /**
   * Long documents get jobs of up to half their longest q-block (so no q-block is split: its tile
   * job merges it and writes its rows, and neither partials nor the reducer's merges exist) while
   * that leaves at least this many tile jobs: 4–16 per worker for 64–256 workers, so the last
   * jobs' tail stays short. Measured with 64 workers: docs/scaling.md, "The control plane's ceiling".
   */
  wholeQBlockTileJobs: 1024,
  /** Jobs grow further so that one job never has more tile jobs than this (Redis: ~1.3 KB and ~0.2–2 ms to add each). */
  maxTileJobs: 16384,
  /**
   * A reduce job covers about this many tile jobs' worth of q-blocks. Tile jobs merge the split
   * q-blocks whose last partials they store, so a reduce job normally only checks its q-blocks
   * are marked: each costs the reducer and Redis ~3 ms of BullMQ work whatever it covers
   * (docs/scaling.md, "The control plane's ceiling"), so fewer are cheaper (was 4).
   */
  tileJobsPerReduce: 16,
  /** At most this many q-blocks per reduce job. */
  maxQBlocksPerReduce: 64,
  /** Worker LRU cache of input blocks. */
  cacheBytes: 512 << 20,
  /** Finished/failed root jobs (status, result) are kept this long. */
  keepFinishedSeconds: 7 * 24 * 3600,
  /** SIGTERM: in-flight tiles may finish for this long, then they are handed back to the queue. */
  graceMs: 20_000,
  /** Connecting to Redis (TCP and first PING) gives up after this: `--redis: cannot reach Redis …`, exit 2. */
  connectTimeoutMs: 3000,
  /**
   * A client's (run, status, cancel, result) and a blob store's Redis command gives up after this
   * (a server that accepts connections and never answers is an error, not a hang).
   */
  commandTimeoutMs: 10_000,
  /** A waiting `run --engine queue` rides out a Redis restart up to this long, then exits 2 naming --redis. */
  outageMs: 30_000,
  /** A job's record (and so its blobs, see sweepIntervalMs) expires this long after submission until it finishes. */
  keepUnfinishedSeconds: 7 * 24 * 3600,
  /** Reducers delete the blobs of jobs whose record is gone, failed or cancelled this often (and at start). */
  sweepIntervalMs: 10 * 60_000,
  /** A worker that cannot run a job's backend hands its tile job back for this long (another worker may take it). */
  declineDelayMs: 1000,
} as const;
