/**
 * JSON control messages (spec/protocol.md §Control messages): a discriminated union on `op`.
 *
 * `decodeMessage` validates the shape and throws ProtocolError naming the problem; unknown
 * fields are ignored (dropped), absent optional fields stay absent. `encodeMessage` is its
 * inverse. Dispatch with a `switch (msg.op)` that ends in `assertNever(msg)`.
 */

import type { DType } from "./frames";
import {
  ProtocolError,
  compact,
  int,
  isObject,
  listOf,
  nullable,
  num,
  object,
  oneOf,
  opt,
  req,
  str,
  type Json,
  type JsonObject,
} from "./fields";

export { ProtocolError } from "./fields";

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = "pitwire.v1";

export type Role = "viewer" | "agent";
export type Level = "info" | "warning" | "error";
/** What a `control` message asks of the replay (spec/protocol.md §Replay and delayed-live). */
export type ReplayAction = "play" | "pause" | "seek" | "speed" | "step" | "live";

/** A channel as advertised; `id` is its index in the session's channel table. */
export interface ChannelDesc {
  id: number;
  name: string;
  unit?: string;
  dtype?: DType;
  /** Sensor step [unit]; null = exact. */
  resolution?: number | null;
  /** Valid range [unit]; null = unbounded. */
  lo?: number | null;
  hi?: number | null;
}

/** A stream (car) as advertised; `channels` lists the channel ids it carries. */
export interface StreamDesc {
  id: number;
  stream: string;
  driver?: string;
  car?: string;
  channels?: number[];
}

/** Binary frames with this `group` id carry `channels` (in column order) of `stream`. */
export interface GroupDesc {
  group: number;
  stream: number;
  channels: number[];
}

export interface Hello {
  op: "hello";
  protocol: number;
  role: Role;
  name?: string;
}
export interface ServerInfo {
  op: "serverInfo";
  protocol: number;
  server: string;
  capabilities: string[];
  session?: string | null;
}
export interface Advertise {
  op: "advertise";
  session: string;
  streams: StreamDesc[];
  channels: ChannelDesc[];
  track?: string;
  source?: string;
}
export interface Subscribe {
  op: "subscribe";
  id: number;
  /** Stream ids; absent/null = all streams, present and future. */
  streams?: number[] | null;
  /** Channel ids; absent/null = all channels. */
  channels?: number[] | null;
  /** At most this many messages per second per stream [Hz]; 0/absent = every batch. */
  maxRate?: number;
}
export interface Subscribed {
  op: "subscribed";
  id: number;
  groups: GroupDesc[];
}
export interface Unsubscribe {
  op: "unsubscribe";
  id: number;
}
export interface Status {
  op: "status";
  level: Level;
  code: string;
  message: string;
  subscription?: number | null;
}
export interface Ack {
  op: "ack";
  stream: number;
  seq: number;
}

/**
 * Viewer opens a replay of the session (one per connection; a new one replaces it), or a
 * delayed-live view when `delay` is set. Timestamps [ns since epoch] exceed 2^53 and are
 * rounded to the nearest double by JSON.parse.
 */
export interface Replay {
  op: "replay";
  id: number;
  /** Stream ids; absent/null = all (for delayed-live also future ones). */
  streams?: number[] | null;
  /** Channel ids; absent/null = all. */
  channels?: number[] | null;
  /** STATE frames per second [Hz], 1-60; absent = 25. */
  fps?: number;
  /** Replay speed, 0.1-64; absent = 1. */
  speed?: number;
  /** Where to start [ns since epoch]; absent/null = the session's first frame. */
  t?: number | null;
  /** Open paused; absent = false. */
  paused?: boolean;
  /** Delayed-live: follow the live session this far behind [s]; absent/null = a replay. */
  delay?: number | null;
}
/**
 * Viewer controls its replay. `seek` takes `t` [ns since epoch], or `lap` and optionally
 * `stream` (absent = the first stream to start that lap); `speed` takes `speed`; `step`
 * pauses and moves by `by` [s] (absent = one tick, 1/fps); `live` returns to the set delay.
 */
export interface Control {
  op: "control";
  /** The replay's id. */
  id: number;
  action: ReplayAction;
  t?: number | null;
  lap?: number | null;
  stream?: number | null;
  speed?: number | null;
  by?: number | null;
}
/**
 * Server → viewer: the replay clock, sent when the replay opens, after every control, every
 * second while playing (between two, the clock runs at `speed`) and when it stops at its end.
 */
export interface Clock {
  op: "clock";
  id: number;
  /** Frames of an older epoch than the newest clock's are stale and dropped. */
  epoch: number;
  /** The clock's instant when sent [ns since epoch]. */
  t: number;
  playing: boolean;
  speed: number;
  /** What can be played [ns since epoch]; for delayed-live `end` is now − delay and moves. */
  start: number;
  end: number;
  /** STATE frames per second [Hz]. */
  fps: number;
  /** Delayed-live delay [s]; absent/null for a replay. */
  delay?: number | null;
  /** True when the replay stopped at its end; absent = false. */
  ended?: boolean;
}

export type Message =
  | Hello
  | ServerInfo
  | Advertise
  | Subscribe
  | Subscribed
  | Unsubscribe
  | Status
  | Ack
  | Replay
  | Control
  | Clock;
export type Op = Message["op"];

/** Compile-time exhaustiveness check for `switch (msg.op)`; throws if reached at runtime. */
export function assertNever(value: never): never {
  throw new ProtocolError(`unhandled message: ${JSON.stringify(value)}`);
}

const bool = (v: Json, path: string): boolean => {
  if (typeof v === "boolean") return v;
  const got = v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  throw new ProtocolError(`${path}: expected a boolean, got ${got}`);
};

const channelDesc = object<ChannelDesc>((o, p) =>
  compact({
    id: req(o, "id", int, `${p}.`),
    name: req(o, "name", str, `${p}.`),
    unit: opt(o, "unit", str, `${p}.`),
    dtype: opt(o, "dtype", oneOf<DType>("f4", "f8"), `${p}.`),
    resolution: opt(o, "resolution", nullable(num), `${p}.`),
    lo: opt(o, "lo", nullable(num), `${p}.`),
    hi: opt(o, "hi", nullable(num), `${p}.`),
  }),
);

const streamDesc = object<StreamDesc>((o, p) =>
  compact({
    id: req(o, "id", int, `${p}.`),
    stream: req(o, "stream", str, `${p}.`),
    driver: opt(o, "driver", str, `${p}.`),
    car: opt(o, "car", str, `${p}.`),
    channels: opt(o, "channels", listOf(int), `${p}.`),
  }),
);

const groupDesc = object<GroupDesc>((o, p) => ({
  group: req(o, "group", int, `${p}.`),
  stream: req(o, "stream", int, `${p}.`),
  channels: req(o, "channels", listOf(int), `${p}.`),
}));

const readers: { [K in Op]: (o: JsonObject) => Extract<Message, { op: K }> } = {
  hello: (o) =>
    compact({ op: "hello", protocol: req(o, "protocol", int), role: req(o, "role", oneOf<Role>("viewer", "agent")), name: opt(o, "name", str) }),
  serverInfo: (o) =>
    compact({
      op: "serverInfo",
      protocol: req(o, "protocol", int),
      server: req(o, "server", str),
      capabilities: req(o, "capabilities", listOf(str)),
      session: opt(o, "session", nullable(str)),
    }),
  advertise: (o) =>
    compact({
      op: "advertise",
      session: req(o, "session", str),
      streams: req(o, "streams", listOf(streamDesc)),
      channels: req(o, "channels", listOf(channelDesc)),
      track: opt(o, "track", str),
      source: opt(o, "source", str),
    }),
  subscribe: (o) =>
    compact({
      op: "subscribe",
      id: req(o, "id", int),
      streams: opt(o, "streams", nullable(listOf(int))),
      channels: opt(o, "channels", nullable(listOf(int))),
      maxRate: opt(o, "maxRate", num),
    }),
  subscribed: (o) => ({ op: "subscribed", id: req(o, "id", int), groups: req(o, "groups", listOf(groupDesc)) }),
  unsubscribe: (o) => ({ op: "unsubscribe", id: req(o, "id", int) }),
  status: (o) =>
    compact({
      op: "status",
      level: req(o, "level", oneOf<Level>("info", "warning", "error")),
      code: req(o, "code", str),
      message: req(o, "message", str),
      subscription: opt(o, "subscription", nullable(int)),
    }),
  ack: (o) => ({ op: "ack", stream: req(o, "stream", int), seq: req(o, "seq", int) }),
  replay: (o) =>
    compact({
      op: "replay",
      id: req(o, "id", int),
      streams: opt(o, "streams", nullable(listOf(int))),
      channels: opt(o, "channels", nullable(listOf(int))),
      fps: opt(o, "fps", num),
      speed: opt(o, "speed", num),
      t: opt(o, "t", nullable(int)),
      paused: opt(o, "paused", bool),
      delay: opt(o, "delay", nullable(num)),
    }),
  control: (o) =>
    compact({
      op: "control",
      id: req(o, "id", int),
      action: req(o, "action", oneOf<ReplayAction>("play", "pause", "seek", "speed", "step", "live")),
      t: opt(o, "t", nullable(int)),
      lap: opt(o, "lap", nullable(int)),
      stream: opt(o, "stream", nullable(int)),
      speed: opt(o, "speed", nullable(num)),
      by: opt(o, "by", nullable(num)),
    }),
  clock: (o) =>
    compact({
      op: "clock",
      id: req(o, "id", int),
      epoch: req(o, "epoch", int),
      t: req(o, "t", int),
      playing: req(o, "playing", bool),
      speed: req(o, "speed", num),
      start: req(o, "start", int),
      end: req(o, "end", int),
      fps: req(o, "fps", num),
      delay: opt(o, "delay", nullable(num)),
      ended: opt(o, "ended", bool),
    }),
};

const isOp = (op: string): op is Op => Object.hasOwn(readers, op);

/** Parse and validate one control message; throw ProtocolError naming the problem. */
export function decodeMessage(text: string): Message {
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch (err) {
    throw new ProtocolError(`bad control message: not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw new ProtocolError("bad control message: not a JSON object");
  const op = value.op;
  if (typeof op !== "string") throw new ProtocolError("bad control message: op must be a string");
  if (!isOp(op)) throw new ProtocolError(`bad control message: unknown op ${JSON.stringify(op)}`);
  try {
    return readers[op](value);
  } catch (err) {
    if (err instanceof ProtocolError) throw new ProtocolError(`bad ${op} message: ${err.message}`);
    throw err;
  }
}

/** Encode one control message as JSON text (absent optional fields are omitted). */
export function encodeMessage(msg: Message): string {
  return JSON.stringify(msg);
}
