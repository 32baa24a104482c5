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
