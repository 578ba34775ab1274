import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The same bundle runs in the Tauri window (embedded with
// `--features tauri/custom-protocol`) and behind the dev bridge.
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
  test: { include: ['tests/unit/**/*.test.ts'], environment: 'node' },
});
