import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';

// Served by portal-core under /portal/ (crates/portal/src/web.rs). Styles go
// to a CSS file and scripts to hashed modules: the server's Content-Security-
// Policy allows neither inline scripts nor inline styles.
export default defineConfig({
  base: '/portal/',
  plugins: [svelte()],
  clearScreen: false,
  resolve: {
    alias: {
      // Wire types generated from the Rust model (shared with the desktop UI).
      $wire: fileURLToPath(new URL('../inbox/src/lib/wire', import.meta.url)),
    },
  },
  server: {
    host: '127.0.0.1',
    port: 5174,
    strictPort: true,
    proxy: { '/v1': { target: 'http://127.0.0.1:8080', ws: true } },
  },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0 },
  test: { include: ['tests/unit/**/*.test.ts'], environment: 'node' },
});
