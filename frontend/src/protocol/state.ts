/**
 * Binary STATE frames: what a replay viewer is sent each tick (spec/protocol.md §Replay and
 * delayed-live). The reference is `src/pitwire/protocol/state.py`; this decoder applies the
 * same rules and raises FrameError on the same conditions.
 *
 * Layout, little-endian:
 *
 *     0  u8   opcode (0x02 = STATE)
 *     1  u8   flags: bit 0 = keyframe (every group, every column, nothing relative)
 *     2  u16  entry count E
 *     4  u32  epoch
 *     8  i64  t [ns since epoch]: the replay clock's instant this state is for
 *     16      E entries, each:
 *               varint  group id (as in `subscribed`)
 *               ceil(C/4) bytes: a 2-bit code per column (column j in bits 2*(j%4) of byte j/4)
 *               then, in column order, for code 1 a zigzag varint, for code 2 an f64
 *
 * Column codes: 0 unchanged, 1 steps (value = steps x resolution; a delta added to the
 * previous steps when the column's previous value was also steps, else the steps themselves),
 * 2 exact value (f64), 3 no value (NaN). Varints are unsigned LEB128, at most 10 bytes.
 *
 * Steps are exact integers: they stay in a Float64Array while they fit 2^53 (every frame a
 * conforming server sends) and fall back to BigInt arithmetic beyond it, as Python's ints do.
 * After a FrameError the decoder's state is undefined until the next keyframe.
 */

import { FrameError } from "./frames";

export { FrameError } from "./frames";

export const OP_STATE = 0x02;
export const FLAG_KEYFRAME = 0x01;
export const HEADER_SIZE = 16;

const UNCHANGED = 0;
const STEPS = 1;
const EXACT = 2;
const NONE = 3;
const MAX_VARINT_BYTES = 10;
/** Below this a varint is read as a number: 7 bytes hold 49 bits. */
const FAST_VARINT_BYTES = 7;
const TWO_53 = 2 ** 53;
const TWO_53N = 1n << 53n;
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

/** Resolutions of a group's columns [unit per step]; null (or 0) = exact, always code 2. */
export type Resolutions = readonly (number | null)[];

/** Header fields of a STATE frame. */
export interface StateHeader {
  readonly keyframe: boolean;
  readonly entries: number;
  readonly epoch: number;
  /** The clock instant this state is for [ns since epoch]. */
  readonly tNs: bigint;
}

/** A STATE frame applied to a decoder. */
export interface StateFrame {
  readonly epoch: number;
  readonly tNs: bigint;
  readonly keyframe: boolean;
  /**
   * Every column's value after this frame (NaN = no value), for the groups this frame
   * touched. Copies, owned by the caller: safe to keep or to transfer to another thread.
   */
  readonly groups: Map<number, Float64Array>;
}

interface GroupState {
  /** Resolution per column; 0 = exact. */
  readonly res: Float64Array;
  /** Current value per column; NaN = no value. */
  readonly values: Float64Array;
  /** Current steps per column, meaningful where `hasSteps` is 1; exact below 2^53. */
  readonly steps: Float64Array;
  readonly hasSteps: Uint8Array;
  /** Exact steps of the columns whose steps passed 2^53 (never, from a conforming server). */
  readonly bigSteps: Map<number, bigint>;
  readonly codeBytes: number;
}

function bytesOf(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

function readHeader(bytes: Uint8Array): StateHeader {
  if (bytes.length < HEADER_SIZE) {
    throw new FrameError(`STATE frame is ${bytes.length} bytes, shorter than its ${HEADER_SIZE}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const op = view.getUint8(0);
  if (op !== OP_STATE) throw new FrameError(`unknown opcode 0x${op.toString(16).padStart(2, "0")}`);
  return {
    keyframe: (view.getUint8(1) & FLAG_KEYFRAME) !== 0,
    entries: view.getUint16(2, true),
    epoch: view.getUint32(4, true),
    tNs: view.getBigInt64(8, true),
  };
}

/** Header fields of a STATE frame, without applying it; throws FrameError. */
export function stateHeader(data: ArrayBuffer | ArrayBufferView): StateHeader {
  return readHeader(bytesOf(data));
}

/**
 * A viewer's view of a replay: applies STATE frames in order and keeps each group's current
 * values, dropping frames of an epoch older than one already seen.
 */
export class StateDecoder {
  private epochSeen = 0;
  private readonly groups = new Map<number, GroupState>();
  // The frame being applied and the read position in it.
  private bytes: Uint8Array = EMPTY;
  private view: DataView = EMPTY_VIEW;
  private pos = 0;

  /** groups: group id -> the resolution of each of its columns (null = exact). */
  constructor(groups: ReadonlyMap<number, Resolutions> | Readonly<Record<number, Resolutions>> = new Map()) {
    const entries = groups instanceof Map ? groups.entries() : Object.entries(groups);
    for (const [gid, res] of entries) this.addGroup(Number(gid), res as Resolutions);
  }

  /** The newest epoch applied (0 before the first frame). */
  get epoch(): number {
    return this.epochSeen;
  }

  /** A stream joined the replay (a new `subscribed` group): its columns start with no value. */
  addGroup(gid: number, resolutions: Resolutions): void {
    const n = resolutions.length;
    this.groups.set(gid, {
      res: Float64Array.from(resolutions, (r) => r || 0),
      values: new Float64Array(n).fill(Number.NaN),
      steps: new Float64Array(n),
      hasSteps: new Uint8Array(n),
      bigSteps: new Map(),
      codeBytes: (n + 3) >> 2,
    });
  }

  /**
   * The live current values of a group (NaN = no value), or undefined for an unknown group.
   * Updated in place by `apply`: read it, do not keep or transfer it.
   */
  values(gid: number): Float64Array | undefined {
    return this.groups.get(gid)?.values;
  }

  /**
   * Apply one STATE frame; null when it belongs to an older epoch than one already seen (a
   * seek made it stale). Throws FrameError on a malformed frame or on a delta of an epoch
   * whose keyframe never came.
   */
  apply(data: ArrayBuffer | ArrayBufferView): StateFrame | null {
    const bytes = bytesOf(data);
    const { keyframe, entries, epoch, tNs } = readHeader(bytes);
    if (epoch < this.epochSeen) return null;
    if (epoch > this.epochSeen && !keyframe) throw new FrameError(`delta of epoch ${epoch} before its keyframe`);
    this.epochSeen = epoch;
    if (keyframe) {
      for (const g of this.groups.values()) {
        g.values.fill(Number.NaN);
        g.hasSteps.fill(0);
        g.bigSteps.clear();
      }
    }
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = HEADER_SIZE;
    const touched = new Map<number, Float64Array>();
    try {
      for (let e = 0; e < entries; e++) {
        const id = this.varint();
        const g = typeof id === "number" ? this.groups.get(id) : undefined;
        if (g === undefined) throw new FrameError(`STATE entry for unknown group ${id}`);
        const gid = id as number;
        const codesAt = this.pos;
        if (codesAt + g.codeBytes > bytes.length) throw new FrameError("truncated STATE entry");
        this.pos += g.codeBytes;
        const n = g.values.length;
        for (let j = 0; j < n; j++) {
          const code = ((bytes[codesAt + (j >> 2)] as number) >> (2 * (j & 3))) & 3;
          if (code === UNCHANGED) continue;
          if (code === STEPS) this.readSteps(g, gid, j);
          else if (code === EXACT) {
            if (this.pos + 8 > bytes.length) throw new FrameError("truncated STATE value");
            g.values[j] = this.view.getFloat64(this.pos, true);
            this.pos += 8;
            g.hasSteps[j] = 0;
          } else if (code === NONE) {
            g.values[j] = Number.NaN;
            g.hasSteps[j] = 0;
          }
        }
        touched.set(gid, g.values.slice());
      }
      if (this.pos !== bytes.length) {
        throw new FrameError(`STATE frame has ${bytes.length - this.pos} bytes after its last entry`);
      }
    } finally {
      this.bytes = EMPTY; // do not hold on to the caller's buffer
      this.view = EMPTY_VIEW;
    }
    return { epoch, tNs, keyframe, groups: touched };
  }

  /** Read column j's zigzag varint and apply it as steps (absolute, or a delta on steps). */
  private readSteps(g: GroupState, gid: number, j: number): void {
    const z = this.varint();
    const r = g.res[j] as number;
    if (r === 0) throw new FrameError(`group ${gid} column ${j} has no resolution`);
    const had = g.hasSteps[j] === 1;
    const big = had ? g.bigSteps.get(j) : undefined;
    if (typeof z === "number" && big === undefined) {
      const d = z % 2 === 1 ? -(z + 1) / 2 : z / 2; // z < 2^53, so d is exact
      const s = had ? (g.steps[j] as number) + d : d;
      if (Math.abs(s) < TWO_53) {
        // both addends exact integers and the sum below 2^53: exact
        g.steps[j] = s;
        g.hasSteps[j] = 1;
        g.values[j] = s * r;
        return;
      }
    }
    const zb = BigInt(z);
    const db = (zb >> 1n) ^ -(zb & 1n);
    const sb = had ? (big ?? BigInt(g.steps[j] as number)) + db : db;
    const s = Number(sb); // rounds to nearest, as Python's float(int)
    if (sb > TWO_53N || sb < -TWO_53N) g.bigSteps.set(j, sb);
    else g.bigSteps.delete(j);
    g.steps[j] = s;
    g.hasSteps[j] = 1;
    g.values[j] = s * r;
  }

  /** One unsigned LEB128 varint at `pos`, exactly: a number below 2^53, else a bigint. */
  private varint(): number | bigint {
    const bytes = this.bytes;
    const start = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = bytes[start + i];
      if (b === undefined) throw new FrameError("truncated STATE frame");
      if (i < FAST_VARINT_BYTES) result += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) {
        this.pos = start + i + 1;
        return i < FAST_VARINT_BYTES ? result : slowVarint(bytes, start, i + 1);
      }
    }
    throw new FrameError(`varint longer than ${MAX_VARINT_BYTES} bytes`);
  }
}

/** A varint of 8-10 bytes (up to 70 bits), exactly; a number when below 2^53. */
function slowVarint(bytes: Uint8Array, start: number, length: number): number | bigint {
  let result = 0n;
  for (let i = length - 1; i >= 0; i--) result = (result << 7n) | BigInt((bytes[start + i] as number) & 0x7f);
  return result < TWO_53N ? Number(result) : result;
}
