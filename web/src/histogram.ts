// Percentiles in bounded memory, as proto's Histogram (proto/src/histogram.rs): whole µs,
// exact below 32, then 32 linear steps per power of two, so a percentile is within about 3 %
// of the truth whatever the run's length. The page keeps several for hours of play; arrays of
// every value would grow without bound.

const STEPS = 32;
/** Enough powers of two for any value a double holds exactly (2^53 µs is 285 years). */
const BUCKETS = STEPS + 48 * STEPS;

function bucketOf(us: number): number {
  if (us < STEPS) return us;
  const e = Math.floor(Math.log2(us));
  const sub = Math.min(STEPS - 1, Math.floor(us / 2 ** (e - 5)) - STEPS);
  return Math.min(BUCKETS - 1, STEPS + (e - 5) * STEPS + sub);
}

/** A bucket's middle value. */
function valueOf(bucket: number): number {
  if (bucket < STEPS) return bucket;
  const e = 5 + Math.floor((bucket - STEPS) / STEPS);
  const step = 2 ** (e - 5);
  return (STEPS + ((bucket - STEPS) % STEPS)) * step + step / 2;
}

export class Histogram {
  #counts = new Uint32Array(BUCKETS);
  count = 0;
  max: number | null = null;

  /** A value in µs; below 0 counts as 0. */
  record(us: number) {
    const v = Math.max(0, Math.round(us));
    this.#counts[bucketOf(v)]++;
    this.count++;
    this.max = this.max === null ? v : Math.max(this.max, v);
  }

  clear() {
    this.#counts.fill(0);
    this.count = 0;
    this.max = null;
  }

  /** The q-quantile in µs, or null when nothing was recorded. */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.min(this.count - 1, Math.floor(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.#counts[b];
      if (seen > rank) return Math.min(valueOf(b), this.max ?? Infinity);
    }
    return this.max;
  }
}
