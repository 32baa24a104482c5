/**
 * The viewer side of protocol v1 as an object you feed and drain (sans-I/O): no socket, no
 * clock. Feed it with `receiveText` / `receiveBinary`, then drain `outgoing()` (text to send)
 * and `events()` (what the dashboard should know). One peer per connection.
 *
 * Flow: `start()` queues `hello`; on `serverInfo` it queues one `subscribe` (all streams, all
 * channels, `maxRate`); `advertise` and `subscribed` are merged into id → name tables (the
 * server may resend them with more streams); data frames become `data` events with the stream
 * and channels named.
 *
 * Replay mode (`options.replay`): after the first `advertise` it queues one `replay` (the
 * wanted channels by id, the start position, speed and paused flag) instead of `subscribe`;
 * `subscribed` groups get a STATE decoder entry each; STATE frames become `tick` events (each
 * touched car's values, named), `clock` messages become `clock` events, and frames of an
 * epoch older than the newest clock's are dropped and counted in `staleFrames`. `control()`
 * queues a replay control.
 */

import { parse, type Column } from "./frames";
import { OP_STATE, StateDecoder, type Resolutions } from "./state";
import {
  PROTOCOL_VERSION,
  assertNever,
  decodeMessage,
  encodeMessage,
  type Advertise,
  type ChannelDesc,
  type Clock,
  type Control,
  type Message,
  type Status,
  type StreamDesc,
} from "./messages";

export const SUBSCRIPTION_ID = 1;
export const REPLAY_ID = 1;

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
  | { type: "clock"; clock: Clock }
  | {
      type: "tick";
      epoch: number;
      keyframe: boolean;
      /** The clock instant [ns since epoch]. */
      tNs: bigint;
      /** Every car the frame touched: its channel names and current values (NaN = none). */
      cars: { stream: string; names: string[]; values: Float64Array }[];
    }
  | { type: "error"; message: string };

export interface ReplayOptions {
  /** Channel names to replay; those the session lacks are left out (none known = all). */
  channels: readonly string[] | null;
  /** STATE frames per second, 1-60. */
  fps: number;
  speed: number;
  /** Start [ns since epoch]; null = the session's first frame. */
  t: number | null;
  paused: boolean;
  /** Delayed-live delay [s]; null = a replay. */
  delay: number | null;
}

export interface ViewerOptions {
  name: string;
  /** Requested maximum message rate per stream [Hz]; 0 = every batch. */
  maxRate: number;
  /** Open a replay instead of subscribing to the live session. */
  replay?: ReplayOptions;
}

/** A replay control as the dashboard gives it (stream by name). */
export type ControlRequest = Omit<Control, "op" | "id" | "stream"> & { stream?: string | null };

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
  private readonly decoder = new StateDecoder();
  /** Replay: group id → its stream name and channel names. */
  private readonly stateGroups = new Map<number, { stream: string; names: string[] }>();
  /** The newest clock's epoch: STATE frames of older epochs are stale. */
  private clockEpoch = 0;
  /** Binary frames dropped because their group or a channel was not (yet) known. */
  droppedFrames = 0;
  /** Replay STATE frames dropped because a newer epoch's clock had arrived. */
  staleFrames = 0;

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
        if (!this.subscribed && this.options.replay === undefined) {
          this.subscribed = true;
          const maxRate = this.options.maxRate;
          this.send(maxRate > 0 ? { op: "subscribe", id: SUBSCRIPTION_ID, maxRate } : { op: "subscribe", id: SUBSCRIPTION_ID });
        }
        break;
      case "advertise":
        this.mergeAdvertise(msg);
        if (!this.subscribed && this.options.replay !== undefined) {
          this.subscribed = true;
          this.sendReplay(this.options.replay);
        }
        break;
      case "subscribed":
        for (const g of msg.groups) {
          this.groups.set(g.group, g.stream);
          if (this.options.replay !== undefined) this.addStateGroup(g.group, g.stream, g.channels);
        }
        break;
      case "status":
        this.evs.push({ type: "status", level: msg.level, code: msg.code, message: msg.message });
        break;
      case "clock":
        if (this.options.replay === undefined) {
          this.evs.push({ type: "error", message: "unexpected clock message: no replay was asked for" });
          break;
        }
        this.clockEpoch = Math.max(this.clockEpoch, msg.epoch);
        this.evs.push({ type: "clock", clock: msg });
        break;
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
    if (this.options.replay !== undefined && data.byteLength > 0 && new Uint8Array(data, 0, 1)[0] === OP_STATE) {
      this.receiveState(data);
      return;
    }
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

  /** Queue a replay control; ignored (with an error event) outside replay mode. */
  control(request: ControlRequest): void {
    if (this.options.replay === undefined) {
      this.evs.push({ type: "error", message: "replay control without a replay" });
      return;
    }
    const { stream, ...rest } = request;
    const msg: Control = { op: "control", id: REPLAY_ID, ...rest };
    if (stream !== undefined && stream !== null) {
      const desc = [...this.streams.values()].find((s) => s.stream === stream);
      if (desc === undefined) {
        this.evs.push({ type: "error", message: `no car ${stream} in this session` });
        return;
      }
      msg.stream = desc.id;
    }
    this.send(msg);
  }

  private sendReplay(r: ReplayOptions): void {
    const msg: Message = { op: "replay", id: REPLAY_ID, fps: r.fps, speed: r.speed, paused: r.paused };
    if (r.t !== null) msg.t = r.t;
    if (r.delay !== null) msg.delay = r.delay;
    if (r.channels !== null) {
      const wanted = new Set(r.channels);
      const ids = [...this.channels.values()].filter((c) => wanted.has(c.name)).map((c) => c.id);
      if (ids.length > 0) msg.channels = ids.sort((a, b) => a - b);
    }
    this.send(msg);
  }

  private addStateGroup(gid: number, streamId: number, channelIds: readonly number[]): void {
    const stream = this.streams.get(streamId)?.stream ?? `stream ${streamId}`;
    const names = channelIds.map((c) => this.channels.get(c)?.name ?? `channel ${c}`);
    const res: Resolutions = channelIds.map((c) => this.channels.get(c)?.resolution ?? null);
    this.stateGroups.set(gid, { stream, names });
    this.decoder.addGroup(gid, res);
  }

  private receiveState(data: ArrayBuffer): void {
    let frame;
    try {
      frame = this.decoder.apply(data);
    } catch (err) {
      this.evs.push({ type: "error", message: (err as Error).message });
      return;
    }
    if (frame === null || frame.epoch < this.clockEpoch) {
      this.staleFrames++;
      return;
    }
    const cars: { stream: string; names: string[]; values: Float64Array }[] = [];
    for (const [gid, values] of frame.groups) {
      const g = this.stateGroups.get(gid);
      if (g !== undefined) cars.push({ stream: g.stream, names: g.names, values });
    }
    this.evs.push({ type: "tick", epoch: frame.epoch, keyframe: frame.keyframe, tNs: frame.tNs, cars });
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
