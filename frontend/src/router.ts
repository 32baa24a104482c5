/**
 * Deep-linkable routes on the History API (no router library): every view has a URL that can
 * be bookmarked, shared or reloaded, and the server answers each with the dashboard.
 *
 *   /                              live pit wall, session chosen automatically
 *   /live/{session}[?car=]         live pit wall of one session
 *   /sessions                      stored sessions
 *   /sessions/{session}            one session: cars and laps
 *   /sessions/{session}/replay[?t=&speed=&car=]   replay (t: seconds from the session start)
 *   /compare?laps=S~car~lap,...    lap comparison (session, stream and lap number per lap)
 */

import { useSyncExternalStore } from "react";

export type Route =
  | { view: "live"; session: string | null }
  | { view: "sessions" }
  | { view: "session"; session: string }
  | { view: "replay"; session: string }
  | { view: "compare" }
  | { view: "notFound"; path: string };

const NAVIGATE = "pitwire:navigate";

/** The route of a URL path (already percent-decoded segments are decoded once more here). */
export function parseRoute(pathname: string): Route {
  const parts = pathname.split("/").filter((p) => p !== "");
  let segs: string[];
  try {
    segs = parts.map((p) => decodeURIComponent(p));
  } catch {
    return { view: "notFound", path: pathname };
  }
  const [a, b, c, ...rest] = segs;
  if (a === undefined) return { view: "live", session: null };
  if (a === "live" && c === undefined) return { view: "live", session: b ?? null };
  if (a === "sessions" && rest.length === 0) {
    if (b === undefined) return { view: "sessions" };
    if (c === undefined) return { view: "session", session: b };
    if (c === "replay") return { view: "replay", session: b };
  }
  if (a === "compare" && b === undefined) return { view: "compare" };
  return { view: "notFound", path: pathname };
}

/** The path of a route (without query). */
export function routePath(route: Route): string {
  const enc = encodeURIComponent;
  switch (route.view) {
    case "live":
      return route.session === null ? "/" : `/live/${enc(route.session)}`;
    case "sessions":
      return "/sessions";
    case "session":
      return `/sessions/${enc(route.session)}`;
    case "replay":
      return `/sessions/${enc(route.session)}/replay`;
    case "compare":
      return "/compare";
    case "notFound":
      return route.path;
  }
}

/** Go to `href` (a path with optional query) without reloading; `replace` keeps history short. */
export function navigate(href: string, { replace = false }: { replace?: boolean } = {}): void {
  if (href === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  window.dispatchEvent(new Event(NAVIGATE));
}

/** Change one query parameter of the current URL in place (null removes it); no re-render. */
export function setQueryParam(name: string, value: string | null): void {
  const url = new URL(location.href);
  if (value === null) url.searchParams.delete(name);
  else url.searchParams.set(name, value);
  const href = url.pathname + url.search;
  if (href !== location.pathname + location.search) history.replaceState(null, "", href);
}

export function queryParam(name: string): string | null {
  return new URLSearchParams(location.search).get(name);
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  window.addEventListener(NAVIGATE, onChange);
  return () => {
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(NAVIGATE, onChange);
  };
}

/** The current path + query; components re-render when it changes by navigation. */
export function useLocation(): string {
  return useSyncExternalStore(subscribe, () => location.pathname + location.search);
}

export function useRoute(): Route {
  const href = useLocation();
  return parseRoute(href.split("?")[0] ?? "/");
}

/** onClick for <a href>: navigate in-app on a plain left click, let the browser do the rest. */
export function linkClick(ev: { button: number; metaKey: boolean; ctrlKey: boolean; shiftKey: boolean; altKey: boolean; preventDefault(): void; currentTarget: { getAttribute(n: string): string | null } }): void {
  if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const href = ev.currentTarget.getAttribute("href");
  if (href === null || !href.startsWith("/")) return;
  ev.preventDefault();
  navigate(href);
}
