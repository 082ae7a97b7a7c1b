import { defineConfig } from 'vite';

// Relative asset URLs: the node serves dist/ at `/` (stateweave serve --static demo-app/dist).
export default defineConfig({
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
  server: { port: 5173 },
});
