import { describe, expect, test } from "vitest";
import { serialize } from "./frames";
import { decodeMessage } from "./messages";
import { SUBSCRIPTION_ID, ViewerPeer, nsToSeconds, type ViewerEvent } from "./viewer";

const SERVER_INFO = '{"op":"serverInfo","protocol":1,"server":"pitwire/0.1.0","capabilities":["subscribe"],"session":"demo"}';
const ADVERTISE =
  '{"op":"advertise","session":"demo","streams":[{"id":1,"stream":"car-1","driver":"A. Driver","car":"GT3","channels":[0,1]}],' +
  '"channels":[{"id":0,"name":"speed","unit":"km/h","dtype":"f4"},{"id":1,"name":"rpm","unit":"1/min","dtype":"f4"}],"track":"sim-ring","source":"sim"}';
const SUBSCRIBED = '{"op":"subscribed","id":1,"groups":[{"group":5,"stream":1,"channels":[0,1]}]}';

function frame(group: number, t0Ns = 1_763_000_000_500_000_000n): ArrayBuffer {
  return serialize({
    group,
    seq: 7n,
    t0Ns,
    tOffsets: [0, 0.01],
    columns: [
      { channel: 0, dtype: "f4", values: [120, 121] },
      { channel: 1, dtype: "f4", values: [8000, 8100] },
    ],
  });
}

function connected(): ViewerPeer {
  const peer = new ViewerPeer({ name: "dashboard", maxRate: 30 });
  peer.start();
  for (const text of [SERVER_INFO, ADVERTISE, SUBSCRIBED]) peer.receiveText(text);
  peer.outgoing();
  peer.events();
  return peer;
}

const ofType = <T extends ViewerEvent["type"]>(evs: ViewerEvent[], type: T) =>
  evs.filter((e): e is Extract<ViewerEvent, { type: T }> => e.type === type);

describe("ViewerPeer", () => {
  test("start queues a viewer hello with protocol 1 and the dashboard's name", () => {
    const peer = new ViewerPeer({ name: "dashboard", maxRate: 30 });
    peer.start();
    expect(peer.outgoing().map(decodeMessage)).toEqual([{ op: "hello", protocol: 1, role: "viewer", name: "dashboard" }]);
    expect(peer.outgoing()).toEqual([]); // drained
  });

  test("serverInfo triggers exactly one subscribe to all streams and channels with maxRate", () => {
    const peer = new ViewerPeer({ name: "dashboard", maxRate: 30 });
    peer.receiveText(SERVER_INFO);
    peer.receiveText(SERVER_INFO);
    expect(peer.outgoing().map(decodeMessage)).toEqual([{ op: "subscribe", id: SUBSCRIPTION_ID, maxRate: 30 }]);
  });

  test("advertise becomes an event with streams named and drivers listed", () => {
    const peer = new ViewerPeer({ name: "d", maxRate: 0 });
    peer.receiveText(ADVERTISE);
    const [adv] = ofType(peer.events(), "advertise");
    expect(adv).toMatchObject({ session: "demo", track: "sim-ring", source: "sim" });
    expect(adv?.streams).toEqual([{ id: 1, name: "car-1", driver: "A. Driver", car: "GT3" }]);
    expect(adv?.channels.map((c) => c.name)).toEqual(["speed", "rpm"]);
  });

  test("a second advertise adds streams to those already known", () => {
    const peer = connected();
    peer.receiveText('{"op":"advertise","session":"demo","streams":[{"id":2,"stream":"car-2"}],"channels":[]}');
    const [adv] = ofType(peer.events(), "advertise");
    expect(adv?.streams.map((s) => s.name)).toEqual(["car-1", "car-2"]);
    expect(adv?.track).toBe("sim-ring");
  });

  test("a data frame of a subscribed group becomes a data event with stream and channel names", () => {
    const peer = connected();
    const buffer = frame(5);
    peer.receiveBinary(buffer);
    const [data] = ofType(peer.events(), "data");
    expect(data?.stream).toBe("car-1");
    expect(data?.seq).toBe(7n);
    expect(data?.t0).toBeCloseTo(1_763_000_000.5, 6);
    expect(Array.from(data?.tOffsets ?? [])).toEqual([0, 0.01]);
    expect(Array.from(data?.columns.speed ?? [])).toEqual([120, 121]);
    expect(Array.from(data?.columns.rpm ?? [])).toEqual([8000, 8100]);
    expect(data?.columns.speed?.buffer).toBe(buffer); // still zero-copy
  });

  test("a frame of an unknown group is dropped and counted", () => {
    const peer = connected();
    peer.receiveBinary(frame(99));
    expect(peer.events()).toEqual([]);
    expect(peer.droppedFrames).toBe(1);
  });

  test("a malformed frame or message becomes an error event, not an exception", () => {
    const peer = connected();
    peer.receiveBinary(new ArrayBuffer(5));
    peer.receiveText('{"op":"launch"}');
    const errors = ofType(peer.events(), "error");
    expect(errors).toHaveLength(2);
    expect(errors[0]?.message).toMatch(/shorter than the 32-byte header/);
  });

  test("lagging and recovered status messages are passed on", () => {
    const peer = connected();
    peer.receiveText('{"op":"status","level":"warning","code":"lagging","message":"behind","subscription":1}');
    peer.receiveText('{"op":"status","level":"info","code":"recovered","message":"ok"}');
    expect(ofType(peer.events(), "status").map((s) => s.code)).toEqual(["lagging", "recovered"]);
  });

  test("messages only a server may receive are reported as unexpected", () => {
    const peer = connected();
    peer.receiveText('{"op":"ack","stream":1,"seq":2}');
    expect(ofType(peer.events(), "error")[0]?.message).toMatch(/unexpected ack/);
  });
});

describe("nsToSeconds", () => {
  test("keeps nanosecond digits below 2^53 ns precision as well as a double allows", () => {
    expect(nsToSeconds(1_763_000_000_123_456_789n)).toBeCloseTo(1_763_000_000.123456789, 6);
    expect(nsToSeconds(-1_500_000_000n)).toBe(-1.5);
    expect(nsToSeconds(0n)).toBe(0);
  });
});

// --- replay mode ----------------------------------------------------------------------------

const REPLAY_ADVERTISE =
  '{"op":"advertise","session":"race","streams":[{"id":1,"stream":"car-1","channels":[0,1,2]},{"id":2,"stream":"car-2","channels":[0,1,2]}],' +
  '"channels":[{"id":0,"name":"speed","unit":"km/h","resolution":0.01},{"id":1,"name":"rpm","resolution":1},{"id":2,"name":"fuel","resolution":null}]}';
const REPLAY_SUBSCRIBED = '{"op":"subscribed","id":1,"groups":[{"group":3,"stream":1,"channels":[0,2]},{"group":4,"stream":2,"channels":[0,2]}]}';

function leb128(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A STATE frame: group 3's speed as steps (code 1) and fuel exact (code 2). */
function stateFrame(epoch: number, keyframe: boolean, tNs: bigint, speedSteps: number, fuel: number): ArrayBuffer {
  const zigzag = speedSteps >= 0 ? 2 * speedSteps : -2 * speedSteps - 1;
  const f64 = new Uint8Array(new Float64Array([fuel]).buffer);
  const entry = [...leb128(3), 0b1001, ...leb128(zigzag), ...f64];
  const buf = new ArrayBuffer(16 + entry.length);
  const view = new DataView(buf);
  view.setUint8(0, 0x02);
  view.setUint8(1, keyframe ? 1 : 0);
  view.setUint16(2, 1, true);
  view.setUint32(4, epoch, true);
  view.setBigInt64(8, tNs, true);
  new Uint8Array(buf, 16).set(entry);
  return buf;
}

function replaying(): ViewerPeer {
  const peer = new ViewerPeer({
    name: "dashboard",
    maxRate: 30,
    replay: { channels: ["speed", "fuel", "steer"], fps: 30, speed: 2, t: 1.5e18, paused: false, delay: null },
  });
  peer.start();
  for (const text of [SERVER_INFO, REPLAY_ADVERTISE]) peer.receiveText(text);
  return peer;
}

describe("ViewerPeer in replay mode", () => {
  test("after the first advertise it asks for a replay of the wanted channels the session has, by id", () => {
    const peer = replaying();
    const sent = peer.outgoing().map(decodeMessage);
    expect(sent.map((m) => m.op)).toEqual(["hello", "replay"]); // no subscribe
    expect(sent[1]).toEqual({ op: "replay", id: 1, fps: 30, speed: 2, paused: false, t: 1.5e18, channels: [0, 2] });
    peer.receiveText(REPLAY_ADVERTISE);
    expect(peer.outgoing()).toEqual([]); // once
  });

  test("STATE frames become ticks with each car's channels named, steps scaled by the resolution", () => {
    const peer = replaying();
    peer.receiveText(REPLAY_SUBSCRIBED);
    peer.receiveText('{"op":"clock","id":1,"epoch":1,"t":1.5e18,"playing":true,"speed":2,"start":1e18,"end":2e18,"fps":30}');
    peer.receiveBinary(stateFrame(1, true, 1_500_000_000_000_000_000n, 12345, 41.5));
    peer.receiveBinary(stateFrame(1, false, 1_500_000_000_033_333_333n, -5, 41.25));
    const evs = peer.events();
    expect(ofType(evs, "clock")[0]?.clock).toMatchObject({ epoch: 1, playing: true, speed: 2 });
    const [key, delta] = ofType(evs, "tick");
    expect(key?.keyframe).toBe(true);
    expect(key?.cars.map((c) => [c.stream, c.names, Array.from(c.values)])).toEqual([["car-1", ["speed", "fuel"], [123.45, 41.5]]]);
    expect(delta?.tNs).toBe(1_500_000_000_033_333_333n);
    expect(Array.from(delta?.cars[0]?.values ?? [])[0]).toBeCloseTo(123.4, 9);
  });

  test("after a seek's clock, frames of the older epoch are dropped and counted, never shown", () => {
    const peer = replaying();
    peer.receiveText(REPLAY_SUBSCRIBED);
    peer.receiveBinary(stateFrame(1, true, 1_500_000_000_000_000_000n, 100, 1));
    peer.receiveText('{"op":"clock","id":1,"epoch":2,"t":1.6e18,"playing":true,"speed":1,"start":1e18,"end":2e18,"fps":30}');
    peer.receiveBinary(stateFrame(1, false, 1_500_000_000_033_333_333n, 1, 1)); // in flight before the seek
    peer.receiveBinary(stateFrame(2, true, 1_600_000_000_000_000_000n, 200, 1));
    const ticks = ofType(peer.events(), "tick");
    expect(ticks.map((t) => t.epoch)).toEqual([1, 2]);
    expect(peer.staleFrames).toBe(1);
  });

  test("controls carry the replay id and the car's stream id; an unknown car is an error", () => {
    const peer = replaying();
    peer.outgoing();
    peer.control({ action: "seek", lap: 3, stream: "car-2" });
    peer.control({ action: "speed", speed: 4 });
    expect(peer.outgoing().map(decodeMessage)).toEqual([
      { op: "control", id: 1, action: "seek", lap: 3, stream: 2 },
      { op: "control", id: 1, action: "speed", speed: 4 },
    ]);
    peer.control({ action: "seek", lap: 1, stream: "car-9" });
    expect(ofType(peer.events(), "error")[0]?.message).toMatch(/no car car-9/);
  });

  test("a live viewer reports clock messages and controls as errors", () => {
    const peer = connected();
    peer.receiveText('{"op":"clock","id":1,"epoch":1,"t":1,"playing":true,"speed":1,"start":0,"end":2,"fps":25}');
    peer.control({ action: "play" });
    expect(ofType(peer.events(), "error").map((e) => e.message)).toEqual([
      "unexpected clock message: no replay was asked for",
      "replay control without a replay",
    ]);
  });
});
