/**
 * Binary DATA frames: `parse` and `serialize`, side by side (spec/protocol.md §Data frames).
 *
 * Layout, little-endian:
 *
 *     0  u8   opcode (0x01 = DATA)
 *     1  u8   flags (0)
 *     2  u16  column count C
 *     4  u32  group id
 *     8  u64  seq of the first frame
 *     16 i64  t0 [ns since epoch]
 *     24 u32  frame count N
 *     28 u32  epoch
 *     32      C column descriptors: u16 channel id, u8 dtype (1 = f4, 2 = f8), u8 0
 *             zero padding to a multiple of 8
 *             time column: N x f64, offsets from t0 [s]
 *             C columns, each N x f4|f8, zero-padded to a multiple of 8
 *
 * Every column starts on an 8-byte boundary of the message, so `parse` returns zero-copy
 * Float32Array/Float64Array views on the message's ArrayBuffer.
 */

export const OP_DATA = 0x01;
export const HEADER_SIZE = 32;
export const MAX_FRAMES = 1 << 20;
export const MAX_COLUMNS = 4096;

export type DType = "f4" | "f8";
export type Column = Float32Array | Float64Array;

const DTYPE_CODES: Readonly<Record<DType, number>> = { f4: 1, f8: 2 };
const CODE_DTYPES: Readonly<Record<number, DType>> = { 1: "f4", 2: "f8" };
const ITEMSIZE: Readonly<Record<DType, number>> = { f4: 4, f8: 8 };

/** One column of a data frame, in column-table order. */
export interface FrameColumn {
  readonly channel: number;
  readonly dtype: DType;
  readonly values: Column;
}

/** A decoded DATA frame: header fields plus columns (views into the parsed buffer). */
export interface DataFrame {
  readonly group: number;
  readonly seq: bigint;
  /** Time of the first frame [ns since epoch]. */
  readonly t0Ns: bigint;
  readonly epoch: number;
  /** Per-frame offset from t0 [s]. */
  readonly tOffsets: Float64Array;
  readonly columns: readonly FrameColumn[];
}

/** A binary frame is malformed; the message names the field and why. */
export class FrameError extends Error {
  override readonly name = "FrameError";
}

const pad8 = (n: number): number => (n + 7) & ~7;

/**
 * Decode one DATA frame; throw FrameError naming the first problem found.
 *
 * `data` must be the whole message: a view with a non-zero byteOffset is accepted, but the
 * column views then need `data.byteOffset` to be a multiple of 8.
 */
export function parse(data: ArrayBuffer | ArrayBufferView): DataFrame {
  const isView = ArrayBuffer.isView(data);
  const buffer: ArrayBufferLike = isView ? data.buffer : data;
  const base = isView ? data.byteOffset : 0;
  const length = data.byteLength;
  if (base % 8 !== 0) throw new FrameError(`frame starts at byte offset ${base}, not 8-aligned`);
  if (length < HEADER_SIZE) {
    throw new FrameError(`frame is ${length} bytes, shorter than the ${HEADER_SIZE}-byte header`);
  }
  const view = new DataView(buffer, base, length);
  const opcode = view.getUint8(0);
  if (opcode !== OP_DATA) {
    throw new FrameError(`unknown opcode 0x${opcode.toString(16).padStart(2, "0")}`);
  }
  const ncols = view.getUint16(2, true);
  const group = view.getUint32(4, true);
  const seq = view.getBigUint64(8, true);
  const t0Ns = view.getBigInt64(16, true);
  const n = view.getUint32(24, true);
  const epoch = view.getUint32(28, true);
  if (n > MAX_FRAMES) throw new FrameError(`frame count ${n} exceeds ${MAX_FRAMES}`);
  if (ncols > MAX_COLUMNS) throw new FrameError(`column count ${ncols} exceeds ${MAX_COLUMNS}`);

  let pos = HEADER_SIZE;
  const tableLen = pad8(ncols * 4);
  if (length < pos + tableLen) {
    throw new FrameError(`truncated column table: ${ncols} columns need ${pos + tableLen} bytes, frame is ${length}`);
  }
  const table: { channel: number; dtype: DType }[] = [];
  const seen = new Set<number>();
  let expected = pos + tableLen + 8 * n;
  for (let i = 0; i < ncols; i++) {
    const channel = view.getUint16(pos + 4 * i, true);
    const code = view.getUint8(pos + 4 * i + 2);
    const dtype = CODE_DTYPES[code];
    if (dtype === undefined) throw new FrameError(`channel ${channel}: unknown dtype code ${code}`);
    if (seen.has(channel)) throw new FrameError(`channel ${channel} appears twice`);
    seen.add(channel);
    table.push({ channel, dtype });
    expected += pad8(n * ITEMSIZE[dtype]);
  }
  if (length !== expected) throw new FrameError(`frame is ${length} bytes, header says ${expected}`);
  pos += tableLen;

  const tOffsets = new Float64Array(buffer, base + pos, n);
  pos += 8 * n;
  const columns: FrameColumn[] = table.map(({ channel, dtype }) => {
    const values =
      dtype === "f4" ? new Float32Array(buffer, base + pos, n) : new Float64Array(buffer, base + pos, n);
    pos += pad8(n * ITEMSIZE[dtype]);
    return { channel, dtype, values };
  });
  return { group, seq, t0Ns, epoch, tOffsets, columns };
}

/** What `serialize` encodes; `columns[i].values.length` must equal `tOffsets.length`. */
export interface FrameInput {
  readonly group: number;
  readonly seq: bigint | number;
  readonly t0Ns: bigint;
  readonly epoch?: number;
  readonly tOffsets: ArrayLike<number>;
  readonly columns: readonly { readonly channel: number; readonly dtype: DType; readonly values: ArrayLike<number> }[];
}

/** Encode one DATA frame (little-endian); the inverse of `parse`. */
export function serialize(frame: FrameInput): ArrayBuffer {
  const n = frame.tOffsets.length;
  const seq = BigInt(frame.seq);
  const epoch = frame.epoch ?? 0;
  checkUint("group", frame.group, 0xffff_ffff);
  checkUint("epoch", epoch, 0xffff_ffff);
  if (seq < 0n || seq > 0xffff_ffff_ffff_ffffn) throw new FrameError(`seq ${seq} out of u64 range`);
  if (n > MAX_FRAMES || frame.columns.length > MAX_COLUMNS) {
    throw new FrameError(`frame too large: ${n} frames x ${frame.columns.length} columns`);
  }
  const tableLen = pad8(frame.columns.length * 4);
  let total = HEADER_SIZE + tableLen + 8 * n;
  for (const col of frame.columns) {
    checkUint(`channel id ${col.channel}`, col.channel, 0xffff);
    if (col.values.length !== n) {
      throw new FrameError(`channel ${col.channel}: ${col.values.length} values for ${n} frames`);
    }
    total += pad8(n * ITEMSIZE[col.dtype]);
  }
  const buffer = new ArrayBuffer(total);
  const view = new DataView(buffer);
  view.setUint8(0, OP_DATA);
  view.setUint8(1, 0);
  view.setUint16(2, frame.columns.length, true);
  view.setUint32(4, frame.group, true);
  view.setBigUint64(8, seq, true);
  view.setBigInt64(16, frame.t0Ns, true);
  view.setUint32(24, n, true);
  view.setUint32(28, epoch, true);
  frame.columns.forEach((col, i) => {
    view.setUint16(HEADER_SIZE + 4 * i, col.channel, true);
    view.setUint8(HEADER_SIZE + 4 * i + 2, DTYPE_CODES[col.dtype]);
  });
  let pos = HEADER_SIZE + tableLen;
  for (let i = 0; i < n; i++) view.setFloat64(pos + 8 * i, frame.tOffsets[i] ?? Number.NaN, true);
  pos += 8 * n;
  for (const col of frame.columns) {
    const size = ITEMSIZE[col.dtype];
    for (let i = 0; i < n; i++) {
      const v = col.values[i] ?? Number.NaN;
      if (size === 4) view.setFloat32(pos + 4 * i, v, true);
      else view.setFloat64(pos + 8 * i, v, true);
    }
    pos += pad8(n * size);
  }
  return buffer;
}

function checkUint(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new FrameError(`${field} ${value} out of range 0..${max}`);
  }
}
