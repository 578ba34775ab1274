// Playwright drives the system Chromium (Debian's `chromium` package):
// browsers cannot be downloaded on the machines these tests run on.
// `scripts/test.d/20-browser.sh` starts a real portal-core and passes its
// address in PORTICO_BASE.
const { defineConfig } = require("@playwright/test");

if (!process.env.PORTICO_BASE) {
  throw new Error("set PORTICO_BASE to a running portal-core (scripts/test.d/20-browser.sh does)");
}

module.exports = defineConfig({
  testDir: ".",
  testMatch: "*.spec.js",
  // One at a time: the machines have two cores and the tests share a server.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    baseURL: process.env.PORTICO_BASE,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  outputDir: process.env.PLAYWRIGHT_OUTPUT || "test-results",
});
