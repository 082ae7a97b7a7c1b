import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Relative asset URLs: the node serves dist/ at `/` (stateweave serve --static demo-app/dist).
// Two pages: the demo (on the SDK) and the same notes through the stock Hocuspocus provider.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    manifest: true, // read by scripts/bundle-size.mjs
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL('index.html', import.meta.url)),
        hocuspocus: fileURLToPath(new URL('hocuspocus.html', import.meta.url)),
      },
    },
  },
  server: { port: 5173 },
});
