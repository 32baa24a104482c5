import { describe, expect, test } from "vitest";
import { fromHex, readVectors } from "../testing/vectors";
import { FrameError } from "./frames";
import { HEADER_SIZE, StateDecoder, stateHeader, type Resolutions } from "./state";

type Cell = number | "inf" | "-inf" | null;

interface StateVectors {
  groups: Record<string, (number | null)[]>;
  frames: {
    name: string;
    hex: string;
    keyframe: boolean;
    epoch: number;
    t_ns: string;
    state: Record<string, Cell[]>;
  }[];
}

const vectors = readVectors<StateVectors>("state_frames.json");
const groups = new Map(Object.entries(vectors.groups).map(([g, r]) => [Number(g), r]));

const expected = (row: Cell[]): number[] =>
  row.map((x) => (x === null ? Number.NaN : x === "inf" ? Infinity : x === "-inf" ? -Infinity : x));

/** A STATE frame built by hand: header, then the given entry bytes. */
function frame(opts: { keyframe: boolean; epoch: number; tNs?: bigint; entries: number; body: number[] }): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + opts.body.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, 0x02);
  view.setUint8(1, opts.keyframe ? 1 : 0);
  view.setUint16(2, opts.entries, true);
  view.setUint32(4, opts.epoch, true);
  view.setBigInt64(8, opts.tNs ?? 0n, true);
  out.set(opts.body, HEADER_SIZE);
  return out;
}

/** Unsigned LEB128 of a non-negative bigint. */
function varint(u: bigint): number[] {
  const out: number[] = [];
  while (u >= 0x80n) {
    out.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  out.push(Number(u));
  return out;
}

const zigzag = (d: bigint): bigint => (d >= 0n ? d << 1n : ((-d) << 1n) - 1n);

const same = (got: ArrayLike<number>, want: number[]): void => {
  expect(Array.from(got).map((x) => (Number.isNaN(x) ? "NaN" : x))).toEqual(want.map((x) => (Number.isNaN(x) ? "NaN" : x)));
};

describe("golden vectors", () => {
  test("applying the frames in order gives each listed header and state", () => {
    const dec = new StateDecoder(groups);
    for (const v of vectors.frames) {
      const f = dec.apply(fromHex(v.hex));
      expect(f, v.name).not.toBeNull();
      expect([f!.keyframe, f!.epoch, f!.tNs], v.name).toEqual([v.keyframe, v.epoch, BigInt(v.t_ns)]);
      for (const [g, row] of Object.entries(v.state)) {
        const want = expected(row);
        const got = dec.values(Number(g))!;
        want.forEach((x, j) => expect(Object.is(got[j], x), `${v.name} group ${g} column ${j}`).toBe(true));
      }
    }
  });

  test("a frame returns copies of exactly the groups it touched", () => {
    const dec = new StateDecoder(groups);
    const [key, delta, nothing] = vectors.frames;
    const first = dec.apply(fromHex(key!.hex))!;
    expect([...first.groups.keys()].sort()).toEqual([7, 9]);
    const kept = first.groups.get(7)!;
    same(kept, expected(key!.state["7"]!));
    dec.apply(fromHex(delta!.hex));
    same(kept, expected(key!.state["7"]!)); // not changed by the next frame
    expect(dec.apply(fromHex(nothing!.hex))!.groups.size).toBe(0);
  });

  test("the decoder accepts a Uint8Array view into a larger buffer", () => {
    const src = new Uint8Array(fromHex(vectors.frames[0]!.hex));
    const big = new Uint8Array(src.length + 5);
    big.set(src, 3);
    const f = new StateDecoder(groups).apply(big.subarray(3, 3 + src.length));
    same(f!.groups.get(7)!, expected(vectors.frames[0]!.state["7"]!));
  });

  test("the decoder also takes resolutions as a plain object, and groups added later", () => {
    const dec = new StateDecoder({ 7: vectors.groups["7"]! });
    dec.addGroup(9, vectors.groups["9"]!);
    expect(dec.apply(fromHex(vectors.frames[0]!.hex))?.groups.size).toBe(2);
  });

  test("stateHeader reads the header fields", () => {
    const v = vectors.frames[1]!;
    expect(stateHeader(fromHex(v.hex))).toEqual({ keyframe: false, entries: 2, epoch: 1, tNs: BigInt(v.t_ns) });
  });
});

describe("epochs", () => {
  const res = new Map<number, Resolutions>([[1, [1.0]]]);
  const key = (epoch: number, steps: bigint) =>
    frame({ keyframe: true, epoch, entries: 1, body: [1, 0b01, ...varint(zigzag(steps))] });

  test("after a newer epoch's keyframe a frame of an older epoch is dropped (null)", () => {
    const dec = new StateDecoder(res);
    expect(dec.apply(key(2, 7n))?.epoch).toBe(2);
    expect(dec.apply(key(1, 5n))).toBeNull();
    expect(dec.apply(frame({ keyframe: false, epoch: 1, entries: 0, body: [] }))).toBeNull();
    expect(dec.values(1)?.[0]).toBe(7);
    expect(dec.epoch).toBe(2);
  });

  test("a delta of a newer epoch before its keyframe is an error", () => {
    const dec = new StateDecoder(res);
    dec.apply(key(2, 7n));
    expect(() => dec.apply(frame({ keyframe: false, epoch: 3, entries: 1, body: [1, 0b01, 2] }))).toThrow(
      /delta of epoch 3 before its keyframe/,
    );
  });

  test("a keyframe starts every column afresh: steps are absolute and untouched groups lose their values", () => {
    const dec = new StateDecoder(new Map<number, Resolutions>([[1, [1.0]], [2, [1.0]]]));
    dec.apply(frame({ keyframe: true, epoch: 1, entries: 2, body: [1, 0b01, 20, 2, 0b01, 40] })); // 10, 20
    dec.apply(frame({ keyframe: true, epoch: 2, entries: 1, body: [1, 0b01, 6] })); // absolute 3
    expect(dec.values(1)?.[0]).toBe(3);
    expect(dec.values(2)?.[0]).toBeNaN();
  });
});

describe("steps", () => {
  test("steps are a delta only when the column's previous value was also steps", () => {
    const dec = new StateDecoder(new Map<number, Resolutions>([[1, [0.5]]]));
    dec.apply(frame({ keyframe: true, epoch: 1, entries: 1, body: [1, 0b01, 20] })); // 10 steps
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b01, 3] })); // -2: 8 steps
    expect(dec.values(1)?.[0]).toBe(4);
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b11] })); // no value
    expect(dec.values(1)?.[0]).toBeNaN();
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b01, 6] })); // absolute 3
    expect(dec.values(1)?.[0]).toBe(1.5);
    const exact = [...new Uint8Array(new Float64Array([9.25]).buffer)];
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b10, ...exact] }));
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b01, 6] })); // absolute again
    expect(dec.values(1)?.[0]).toBe(1.5);
  });

  test("steps up to ±2^53 and deltas across the whole range are exact", () => {
    const dec = new StateDecoder(new Map<number, Resolutions>([[1, [1.0]]]));
    const top = 1n << 53n;
    dec.apply(frame({ keyframe: true, epoch: 1, entries: 1, body: [1, 0b01, ...varint(zigzag(-top))] }));
    expect(dec.values(1)?.[0]).toBe(-(2 ** 53));
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b01, ...varint(zigzag(2n * top - 1n))] }));
    expect(dec.values(1)?.[0]).toBe(2 ** 53 - 1);
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b01, ...varint(zigzag(-(2n ** 53n) + 2n))] }));
    expect(dec.values(1)?.[0]).toBe(1);
  });

  test("steps beyond 2^53 are kept exactly, as Python's ints are", () => {
    const dec = new StateDecoder(new Map<number, Resolutions>([[1, [1.0]]]));
    const big = (1n << 60n) + 1n;
    dec.apply(frame({ keyframe: true, epoch: 1, entries: 1, body: [1, 0b01, ...varint(zigzag(big))] }));
    expect(dec.values(1)?.[0]).toBe(Number(big));
    dec.apply(frame({ keyframe: false, epoch: 1, entries: 1, body: [1, 0b01, ...varint(zigzag(-(1n << 60n)))] }));
    expect(dec.values(1)?.[0]).toBe(1);
  });

  test("a non-minimal varint (padded to 10 bytes) is read by its value", () => {
    const dec = new StateDecoder(new Map<number, Resolutions>([[7, [1.0]]]));
    const padded = [0x87, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]; // group 7
    expect(dec.apply(frame({ keyframe: true, epoch: 1, entries: 1, body: [...padded, 0b01, 4] }))?.groups.get(7)?.[0]).toBe(2);
  });

  test("a 20-car keyframe with stepped and exact columns decodes to every car's values", () => {
    const cars = 20;
    const cols = 10;
    const res = new Map<number, Resolutions>();
    for (let g = 0; g < cars; g++) res.set(g, Array.from({ length: cols }, (_, j) => (j === cols - 1 ? null : 0.01)));
    const body: number[] = [];
    for (let g = 0; g < cars; g++) {
      body.push(g, 0b01010101, 0b01010101, 0b1001);
      for (let j = 0; j < cols - 1; j++) body.push(...varint(zigzag(BigInt(1000 * g + j * 123457))));
      body.push(...new Uint8Array(new Float64Array([g + 0.5]).buffer));
    }
    const dec = new StateDecoder(res);
    dec.apply(frame({ keyframe: true, epoch: 1, entries: cars, body }));
    expect(dec.values(19)?.[9]).toBe(19.5);
    expect(dec.values(3)?.[2]).toBe((3000 + 2 * 123457) * 0.01);
  });
});

describe("malformed frames", () => {
  const res = new Map<number, Resolutions>([[1, [0.01, null]]]);
  const exact2 = [...new Uint8Array(new Float64Array([2.0]).buffer)];
  // group 1: column 0 steps 100 (1.0), column 1 exact 2.0
  const good = frame({ keyframe: true, epoch: 1, entries: 1, body: [1, 0b1001, ...varint(200n), ...exact2] });
  const decode = (data: Uint8Array) => () => new StateDecoder(res).apply(data);

  test("the well-formed frame used below decodes", () => {
    same(decode(good)()!.groups.get(1)!, [1, 2]);
  });

  test.each([
    ["a frame shorter than its header", good.slice(0, 10), /shorter than its 16-byte header/],
    ["a wrong opcode", Uint8Array.of(0x07, ...good.slice(1)), /unknown opcode 0x07/],
    ["an unknown group", Uint8Array.of(...good.slice(0, 16), 5, ...good.slice(17)), /unknown group 5/],
    ["a truncated value", good.slice(0, -1), /truncated STATE value/],
    ["bytes after the last entry", Uint8Array.of(...good, 0), /1 bytes after its last entry/],
    ["an entry cut before its codes", frame({ keyframe: true, epoch: 1, entries: 1, body: [1] }), /truncated STATE entry/],
    ["an entry count beyond the entries", frame({ keyframe: true, epoch: 1, entries: 2, body: [1, 0b1111] }), /truncated STATE frame/],
    ["a truncated varint", frame({ keyframe: true, epoch: 1, entries: 1, body: [1, 0b01, 0x80] }), /truncated STATE frame/],
    ["a varint longer than 10 bytes", frame({ keyframe: true, epoch: 1, entries: 1, body: [1, 0b01, ...Array<number>(10).fill(0x80), 1] }), /varint longer than 10 bytes/],
    ["steps for a column without a resolution", frame({ keyframe: true, epoch: 1, entries: 1, body: [1, 0b0100, 2] }), /group 1 column 1 has no resolution/],
  ])("%s is rejected with a FrameError", (_name, data, message) => {
    expect(decode(data)).toThrow(FrameError);
    expect(decode(data)).toThrow(message);
  });

  test("every truncation of a valid vector frame is rejected", () => {
    for (const v of vectors.frames.filter((f) => f.keyframe)) {
      const bytes = new Uint8Array(fromHex(v.hex));
      for (let len = 0; len < bytes.length; len++) {
        expect(() => new StateDecoder(groups).apply(bytes.slice(0, len)), `${v.name}[:${len}]`).toThrow(FrameError);
      }
    }
  });

  test("stateHeader rejects a short frame and a wrong opcode", () => {
    expect(() => stateHeader(good.slice(0, 15))).toThrow(FrameError);
    expect(() => stateHeader(Uint8Array.of(0x01, ...good.slice(1)))).toThrow(/unknown opcode 0x01/);
  });
});
