import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const backend = "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    // Served by the Python server at "/"; git-ignored, shipped in the wheel as a hatch artifact.
    outDir: "../src/pitwire/web/dist",
    emptyOutDir: true,
    target: "es2022",
  },
  worker: { format: "es" },
  server: {
    proxy: {
      "/api": { target: backend },
      "/ws": { target: backend, ws: true },
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
