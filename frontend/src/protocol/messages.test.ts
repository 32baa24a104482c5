import { describe, expect, test } from "vitest";
import { readVectors } from "../testing/vectors";
import { ProtocolError, assertNever, decodeMessage, encodeMessage, type Message } from "./messages";

interface ControlVectors {
  valid: { name: string; text: string }[];
  invalid: { name: string; text: string }[];
}

const vectors = readVectors<ControlVectors>("control.json");

/** Exercise the exhaustive switch the way callers dispatch messages. */
function describeOp(msg: Message): string {
  switch (msg.op) {
    case "hello":
      return `hello from ${msg.role}`;
    case "serverInfo":
      return `server ${msg.server}`;
    case "advertise":
      return `${msg.streams.length} streams`;
    case "subscribe":
      return `subscribe ${msg.id}`;
    case "subscribed":
      return `${msg.groups.length} groups`;
    case "unsubscribe":
      return `unsubscribe ${msg.id}`;
    case "status":
      return `${msg.level} ${msg.code}`;
    case "ack":
      return `ack ${msg.stream}:${msg.seq}`;
    case "replay":
      return msg.delay != null ? `delayed-live ${msg.id} ${msg.delay} s` : `replay ${msg.id}`;
    case "control":
      return `control ${msg.id} ${msg.action}`;
    case "clock":
      return `clock ${msg.id} epoch ${msg.epoch} ${msg.playing ? "playing" : "paused"}`;
    default:
      return assertNever(msg);
  }
}

describe.each(vectors.valid)("valid control message $name", ({ text }) => {
  test("decodes to a message whose op matches the JSON", () => {
    const msg = decodeMessage(text);
    expect(msg.op).toBe((JSON.parse(text) as { op: string }).op);
    expect(describeOp(msg)).toBeTypeOf("string");
  });

  test("encodes back to the same JSON value", () => {
    expect(JSON.parse(encodeMessage(decodeMessage(text)))).toEqual(JSON.parse(text));
  });
});

describe.each(vectors.invalid)("invalid control message $name", ({ text }) => {
  test("is rejected with a ProtocolError", () => {
    expect(() => decodeMessage(text)).toThrow(ProtocolError);
  });
});

describe("decoding details", () => {
  test("unknown fields are ignored and dropped", () => {
    expect(decodeMessage('{"op":"unsubscribe","id":3,"future":true}')).toEqual({ op: "unsubscribe", id: 3 });
  });

  test("errors name the offending field path", () => {
    expect(() => decodeMessage('{"op":"ack","stream":"one","seq":1}')).toThrow(/stream: expected an integer/);
    expect(() =>
      decodeMessage('{"op":"subscribed","id":1,"groups":[{"group":1,"stream":2,"channels":["x"]}]}'),
    ).toThrow(/groups\[0\]\.channels\[0\]/);
  });

  test("null is accepted where the spec allows it (resolution, lo/hi, streams, subscription)", () => {
    const adv = decodeMessage(
      '{"op":"advertise","session":"s","streams":[],"channels":[{"id":0,"name":"x","resolution":null,"lo":null,"hi":null}]}',
    );
    expect(adv).toMatchObject({ channels: [{ resolution: null, lo: null, hi: null }] });
    expect(decodeMessage('{"op":"subscribe","id":1,"streams":null}')).toEqual({ op: "subscribe", id: 1, streams: null });
    expect(decodeMessage('{"op":"status","level":"info","code":"recovered","message":"","subscription":null}')).toMatchObject({ subscription: null });
  });

  test("a JSON value that is not an object, or has no string op, is rejected", () => {
    for (const text of ["[]", "3", "null", '{"op":1}', "{}"]) expect(() => decodeMessage(text)).toThrow(ProtocolError);
  });

  test("replay ops keep absent optional fields absent and drop unknown ones", () => {
    expect(decodeMessage('{"op":"replay","id":4,"delay":45.0,"future":1}')).toEqual({ op: "replay", id: 4, delay: 45 });
    expect(decodeMessage('{"op":"control","id":3,"action":"pause"}')).toEqual({ op: "control", id: 3, action: "pause" });
  });

  test("control accepts exactly the six actions", () => {
    for (const action of ["play", "pause", "seek", "speed", "step", "live"]) {
      expect(decodeMessage(`{"op":"control","id":1,"action":"${action}"}`)).toMatchObject({ action });
    }
    expect(() => decodeMessage('{"op":"control","id":1,"action":"rewind"}')).toThrow(/bad control message: action: expected/);
  });

  test("replay, control and clock errors name the offending field", () => {
    expect(() => decodeMessage('{"op":"replay","id":1,"paused":"yes"}')).toThrow(/paused: expected a boolean, got string/);
    expect(() => decodeMessage('{"op":"replay","id":1,"streams":[1,"2"]}')).toThrow(/streams\[1\]: expected an integer/);
    expect(() => decodeMessage('{"op":"control","id":1,"action":"seek","lap":1.5}')).toThrow(/lap: expected an integer/);
    expect(() => decodeMessage('{"op":"clock","id":1,"epoch":1,"t":0,"playing":true,"speed":1,"start":0,"fps":25}')).toThrow(
      /end: missing required field/,
    );
  });

  test("a ns timestamp beyond 2^53 decodes to the nearest double", () => {
    const msg = decodeMessage('{"op":"replay","id":3,"t":1763000000123456789}');
    expect(msg).toMatchObject({ t: 1763000000123456789 });
  });

  test("an op inherited from Object.prototype is not mistaken for a known op", () => {
    expect(() => decodeMessage('{"op":"toString"}')).toThrow(/unknown op/);
  });
});
