import { defineConfig } from "vite";

// Relative asset paths: the page is served from wherever the host serves it.
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
});
