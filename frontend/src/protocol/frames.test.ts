import { describe, expect, test } from "vitest";
import { fromHex, readVectors, toHex } from "../testing/vectors";
import { FrameError, parse, serialize, type DType } from "./frames";

interface FrameVector {
  name: string;
  description: string;
  hex: string;
  group: number;
  seq: number;
  t0_ns: string;
  epoch: number;
  t_offsets: number[];
  columns: { channel: number; dtype: DType; values: number[] }[];
}

const vectors = readVectors<FrameVector[]>("data_frames.json");

function resized(buffer: ArrayBuffer, length: number): ArrayBuffer {
  const out = new Uint8Array(length);
  out.set(new Uint8Array(buffer, 0, Math.min(length, buffer.byteLength)));
  return out.buffer;
}

describe.each(vectors)("golden vector $name", (v) => {
  test("parse decodes the header fields listed in the vector", () => {
    const frame = parse(fromHex(v.hex));
    expect(frame.group).toBe(v.group);
    expect(frame.seq).toBe(BigInt(v.seq));
    expect(frame.t0Ns).toBe(BigInt(v.t0_ns));
    expect(frame.epoch).toBe(v.epoch);
  });

  test("parse decodes the time offsets and column values (f4 compared after Math.fround)", () => {
    const frame = parse(fromHex(v.hex));
    expect(Array.from(frame.tOffsets)).toEqual(v.t_offsets);
    expect(frame.columns.map((c) => [c.channel, c.dtype])).toEqual(v.columns.map((c) => [c.channel, c.dtype]));
    frame.columns.forEach((col, i) => {
      const want = v.columns[i]!;
      const expected = want.dtype === "f4" ? want.values.map(Math.fround) : want.values;
      expect(col.values).toBeInstanceOf(want.dtype === "f4" ? Float32Array : Float64Array);
      Array.from(col.values).forEach((x, j) => expect(Object.is(x, expected[j])).toBe(true));
    });
  });

  test("parse returns zero-copy views on the message buffer at 8-aligned offsets", () => {
    const buffer = fromHex(v.hex);
    const frame = parse(buffer);
    for (const arr of [frame.tOffsets, ...frame.columns.map((c) => c.values)]) {
      expect(arr.buffer).toBe(buffer);
      expect(arr.byteOffset % 8).toBe(0);
    }
  });

  test("serialize of the listed fields reproduces the golden bytes exactly", () => {
    const bytes = serialize({
      group: v.group,
      seq: BigInt(v.seq),
      t0Ns: BigInt(v.t0_ns),
      epoch: v.epoch,
      tOffsets: v.t_offsets,
      columns: v.columns,
    });
    expect(toHex(bytes)).toBe(v.hex);
  });

  test("serialize of the parsed frame reproduces the golden bytes (round trip)", () => {
    expect(toHex(serialize(parse(fromHex(v.hex))))).toBe(v.hex);
  });

  test("a frame one byte short is rejected with an error naming the length", () => {
    const buffer = fromHex(v.hex);
    expect(() => parse(resized(buffer, buffer.byteLength - 1))).toThrow(FrameError);
    expect(() => parse(resized(buffer, buffer.byteLength - 1))).toThrow(/bytes/);
  });

  test("a frame with extra bytes (1 or 8) is rejected with an error naming the length", () => {
    const buffer = fromHex(v.hex);
    for (const extra of [1, 8]) {
      expect(() => parse(resized(buffer, buffer.byteLength + extra))).toThrow(/header says/);
    }
  });
});

describe("malformed frames", () => {
  const oneFrame = vectors.find((v) => v.name === "one_frame")!;

  test("every truncation of a valid frame is rejected", () => {
    const buffer = fromHex(oneFrame.hex);
    for (let len = 0; len < buffer.byteLength; len++) {
      expect(() => parse(resized(buffer, len))).toThrow(FrameError);
    }
  });

  test("an unknown opcode is rejected by name", () => {
    const bytes = new Uint8Array(fromHex(oneFrame.hex));
    bytes[0] = 0x02;
    expect(() => parse(bytes.buffer)).toThrow(/unknown opcode 0x02/);
  });

  test("an unknown dtype code is rejected naming the channel", () => {
    const bytes = new Uint8Array(fromHex(oneFrame.hex));
    bytes[32 + 2] = 3; // first column's dtype
    expect(() => parse(bytes.buffer)).toThrow(/channel 0: unknown dtype code 3/);
  });

  test("a channel that appears twice in the column table is rejected", () => {
    const bytes = new Uint8Array(fromHex(oneFrame.hex));
    bytes[36] = 0; // second column's channel id 1 -> 0
    expect(() => parse(bytes.buffer)).toThrow(/appears twice/);
  });

  test("a view that does not start on an 8-byte boundary is rejected", () => {
    const buffer = resized(fromHex(oneFrame.hex), 4 + fromHex(oneFrame.hex).byteLength);
    expect(() => parse(new Uint8Array(buffer, 4))).toThrow(/not 8-aligned/);
  });

  test("parse accepts an 8-aligned view into a larger buffer", () => {
    const src = new Uint8Array(fromHex(oneFrame.hex));
    const big = new Uint8Array(8 + src.length);
    big.set(src, 8);
    expect(parse(big.subarray(8)).columns[1]?.values[0]).toBe(8000);
  });
});

describe("serialize validation", () => {
  test("a column whose length differs from the time column is refused", () => {
    expect(() =>
      serialize({ group: 1, seq: 0n, t0Ns: 0n, tOffsets: [0, 1], columns: [{ channel: 0, dtype: "f4", values: [1] }] }),
    ).toThrow(/channel 0: 1 values for 2 frames/);
  });

  test("group and channel ids outside their integer widths are refused", () => {
    expect(() => serialize({ group: 2 ** 32, seq: 0n, t0Ns: 0n, tOffsets: [], columns: [] })).toThrow(/group/);
    expect(() =>
      serialize({ group: 0, seq: 0n, t0Ns: 0n, tOffsets: [], columns: [{ channel: 65536, dtype: "f8", values: [] }] }),
    ).toThrow(/channel id/);
  });

  test("a u64 seq above 2^53 survives a round trip exactly", () => {
    const seq = 2n ** 64n - 1n;
    expect(parse(serialize({ group: 0, seq, t0Ns: -1n, tOffsets: [], columns: [] })).seq).toBe(seq);
  });
});
