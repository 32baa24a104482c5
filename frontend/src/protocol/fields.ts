/**
 * Typed field readers for JSON control messages: each returns the field's value or throws
 * ProtocolError naming the path and what was expected. Absent optional fields are `undefined`.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A control message is malformed (bad JSON, unknown op, missing field, wrong type). */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

type Check<T> = (value: Json, path: string) => T;

function fail(path: string, expected: string, value: Json): never {
  const got = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
  throw new ProtocolError(`${path}: expected ${expected}, got ${got}`);
}

export const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export const int: Check<number> = (v, path) =>
  typeof v === "number" && Number.isInteger(v) ? v : fail(path, "an integer", v);

export const num: Check<number> = (v, path) =>
  typeof v === "number" && Number.isFinite(v) ? v : fail(path, "a number", v);

export const str: Check<string> = (v, path) => (typeof v === "string" ? v : fail(path, "a string", v));

export function oneOf<T extends string>(...allowed: T[]): Check<T> {
  return (v, path) =>
    typeof v === "string" && (allowed as string[]).includes(v)
      ? (v as T)
      : fail(path, allowed.map((a) => JSON.stringify(a)).join(" | "), v);
}

export function listOf<T>(item: Check<T>): Check<T[]> {
  return (v, path) => (Array.isArray(v) ? v.map((x, i) => item(x, `${path}[${i}]`)) : fail(path, "an array", v));
}

export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, path) => (v === null ? null : check(v, path));
}

export function object<T>(read: (obj: JsonObject, path: string) => T): Check<T> {
  return (v, path) => (isObject(v) ? read(v, path) : fail(path, "an object", v));
}

/** A required field. */
export function req<T>(obj: JsonObject, key: string, check: Check<T>, path = ""): T {
  const value = obj[key];
  if (value === undefined) throw new ProtocolError(`${path}${key}: missing required field`);
  return check(value, `${path}${key}`);
}

/** An optional field: `undefined` when absent. */
export function opt<T>(obj: JsonObject, key: string, check: Check<T>, path = ""): T | undefined {
  const value = obj[key];
  return value === undefined ? undefined : check(value, `${path}${key}`);
}

/** Drop keys whose value is `undefined`, so encoding omits absent optional fields. */
export function compact<T extends object>(obj: T): T {
  for (const key of Object.keys(obj) as (keyof T)[]) {
    if (obj[key] === undefined) delete obj[key];
  }
  return obj;
}
