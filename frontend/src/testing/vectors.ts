/** Test helper: the golden vectors in spec/vectors/, read from disk (node only). */

import { readFileSync } from "node:fs";

export function readVectors<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../../spec/vectors/${name}`, import.meta.url), "utf8")) as T;
}

export function fromHex(hex: string): ArrayBuffer {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes.buffer;
}

export function toHex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}
