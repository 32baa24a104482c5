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

  test("an op inherited from Object.prototype is not mistaken for a known op", () => {
    expect(() => decodeMessage('{"op":"toString"}')).toThrow(/unknown op/);
  });
});
