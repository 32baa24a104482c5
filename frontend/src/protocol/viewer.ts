/**
 * The viewer side of protocol v1 as an object you feed and drain (sans-I/O): no socket, no
 * clock. Feed it with `receiveText` / `receiveBinary`, then drain `outgoing()` (text to send)
 * and `events()` (what the dashboard should know). One peer per connection.
 *
 * Flow: `start()` queues `hello`; on `serverInfo` it queues one `subscribe` (all streams, all
 * channels, `maxRate`); `advertise` and `subscribed` are merged into id → name tables (the
 * server may resend them with more streams); data frames become `data` events with the stream
 * and channels named.
 */

import { parse, type Column } from "./frames";
import {
  PROTOCOL_VERSION,
  assertNever,
  decodeMessage,
  encodeMessage,
  type Advertise,
  type ChannelDesc,
  type Message,
  type Status,
  type StreamDesc,
} from "./messages";

export const SUBSCRIPTION_ID = 1;

/** A stream (car) as the dashboard shows it. */
export interface StreamInfo {
  id: number;
  name: string;
  driver: string;
  car: string;
}

export interface ChannelInfo {
  id: number;
  name: string;
  unit: string;
}

export type ViewerEvent =
  | { type: "serverInfo"; server: string; session: string | null }
  | { type: "advertise"; session: string; track: string; source: string; streams: StreamInfo[]; channels: ChannelInfo[] }
  | { type: "status"; level: Status["level"]; code: string; message: string }
  | {
      type: "data";
      stream: string;
      seq: bigint;
      epoch: number;
      /** Time of the first frame [s since epoch]. */
      t0: number;
      /** Per-frame offset from t0 [s]. */
      tOffsets: Float64Array;
      /** Views into the received message's ArrayBuffer. */
      columns: Record<string, Column>;
    }
  | { type: "error"; message: string };

export interface ViewerOptions {
  name: string;
  /** Requested maximum message rate per stream [Hz]; 0 = every batch. */
  maxRate: number;
}

export class ViewerPeer {
  private readonly out: string[] = [];
  private readonly evs: ViewerEvent[] = [];
  private readonly streams = new Map<number, StreamDesc>();
  private readonly channels = new Map<number, ChannelDesc>();
  /** group id → stream id */
  private readonly groups = new Map<number, number>();
  private session = "";
  private track = "";
  private source = "";
  private subscribed = false;
  /** Binary frames dropped because their group or a channel was not (yet) known. */
  droppedFrames = 0;

  constructor(private readonly options: ViewerOptions) {}

  /** Queue the `hello` that opens the conversation. */
  start(): void {
    this.send({ op: "hello", protocol: PROTOCOL_VERSION, role: "viewer", name: this.options.name });
  }

  /** Text messages to write to the socket, oldest first; draining empties the queue. */
  outgoing(): string[] {
    return this.out.splice(0);
  }

  /** Events received since the last call, oldest first; draining empties the queue. */
  events(): ViewerEvent[] {
    return this.evs.splice(0);
  }

  receiveText(text: string): void {
    let msg: Message;
    try {
      msg = decodeMessage(text);
    } catch (err) {
      this.evs.push({ type: "error", message: (err as Error).message });
      return;
    }
    switch (msg.op) {
      case "serverInfo":
        this.evs.push({ type: "serverInfo", server: msg.server, session: msg.session ?? null });
        if (!this.subscribed) {
          this.subscribed = true;
          const maxRate = this.options.maxRate;
          this.send(maxRate > 0 ? { op: "subscribe", id: SUBSCRIPTION_ID, maxRate } : { op: "subscribe", id: SUBSCRIPTION_ID });
        }
        break;
      case "advertise":
        this.mergeAdvertise(msg);
        break;
      case "subscribed":
        for (const g of msg.groups) this.groups.set(g.group, g.stream);
        break;
      case "status":
        this.evs.push({ type: "status", level: msg.level, code: msg.code, message: msg.message });
        break;
      case "clock":
        break; // replays: the dashboard's replay view reads these (not this live viewer)
      case "hello":
      case "subscribe":
      case "unsubscribe":
      case "ack":
      case "replay":
      case "control":
        this.evs.push({ type: "error", message: `unexpected ${msg.op} message from the server` });
        break;
      default:
        assertNever(msg);
    }
  }

  receiveBinary(data: ArrayBuffer): void {
    let frame;
    try {
      frame = parse(data);
    } catch (err) {
      this.evs.push({ type: "error", message: (err as Error).message });
      return;
    }
    const streamId = this.groups.get(frame.group);
    const stream = streamId === undefined ? undefined : this.streams.get(streamId);
    if (stream === undefined) {
      this.droppedFrames++;
      return;
    }
    if (frame.tOffsets.length === 0) return;
    const columns: Record<string, Column> = {};
    for (const col of frame.columns) {
      const channel = this.channels.get(col.channel);
      if (channel !== undefined) columns[channel.name] = col.values;
    }
    this.evs.push({
      type: "data",
      stream: stream.stream,
      seq: frame.seq,
      epoch: frame.epoch,
      t0: nsToSeconds(frame.t0Ns),
      tOffsets: frame.tOffsets,
      columns,
    });
  }

  private mergeAdvertise(msg: Advertise): void {
    for (const s of msg.streams) this.streams.set(s.id, s);
    for (const c of msg.channels) this.channels.set(c.id, c);
    this.session = msg.session;
    if (msg.track !== undefined) this.track = msg.track;
    if (msg.source !== undefined) this.source = msg.source;
    this.evs.push({
      type: "advertise",
      session: this.session,
      track: this.track,
      source: this.source,
      streams: [...this.streams.values()].map((s) => ({ id: s.id, name: s.stream, driver: s.driver ?? "", car: s.car ?? "" })),
      channels: [...this.channels.values()].map((c) => ({ id: c.id, name: c.name, unit: c.unit ?? "" })),
    });
  }

  private send(msg: Message): void {
    this.out.push(encodeMessage(msg));
  }
}

/** [ns since epoch] → [s since epoch], keeping sub-microsecond digits that Number(ns) would round. */
export function nsToSeconds(ns: bigint): number {
  const whole = ns / 1_000_000_000n;
  return Number(whole) + Number(ns - whole * 1_000_000_000n) / 1e9;
}
