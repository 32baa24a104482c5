/**
 * The page: the header (navigation, session, car, connection) and the view of the current
 * route — live pit wall, sessions, one session, replay, lap comparison. Every view has a URL
 * (router.ts), so any of them can be bookmarked, shared or reloaded.
 */

import { CompareView } from "./views/compare/CompareView";
import { LiveView } from "./views/live/LiveView";
import { ReplayView } from "./views/replay/ReplayView";
import { SessionPage } from "./views/sessions/SessionPage";
import { SessionsList } from "./views/sessions/SessionsList";
import { useEffect } from "react";
import { setQueryParam, useRoute, type Route } from "./router";
import { useUi } from "./state/ui";
import { Header } from "./ui/Header";
import { NoticeBar } from "./ui/Notice";

function View({ route }: { route: Route }) {
  switch (route.view) {
    case "live":
      return <LiveView key={route.session ?? ""} session={route.session} />;
    case "sessions":
      return <SessionsList />;
    case "session":
      return <SessionPage key={route.session} sessionId={route.session} />;
    case "replay":
      return <ReplayView key={route.session} sessionId={route.session} />;
    case "compare":
      return <CompareView />;
    case "notFound":
      return (
        <main className="waiting" data-testid="not-found">
          <p>
            No page at <code>{route.path}</code> — go to the <a href="/">live pit wall</a> or the <a href="/sessions">sessions</a>.
          </p>
        </main>
      );
  }
}

/** On the pit wall the URL names the focused car (`?car=`), so a reload or a link keeps it. */
function useCarInUrl(pitWall: boolean): void {
  useEffect(() => {
    if (!pitWall) return;
    return useUi.subscribe((s, prev) => {
      if (s.selectedStream !== prev.selectedStream && s.selectedStream !== null) setQueryParam("car", s.selectedStream);
    });
  }, [pitWall]);
}

export function App() {
  const route = useRoute();
  useCarInUrl(route.view === "live" || route.view === "replay");
  return (
    <div className="app">
      <Header route={route} />
      <NoticeBar />
      <View route={route} />
    </div>
  );
}
