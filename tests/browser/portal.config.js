// The customer portal's browser tests (tests/browser/portal/*.portal.js),
// run by scripts/test.d/30-portal.sh against a real portal-core serving the
// built ui/portal. Same Chromium settings as the /chat tests
// (playwright.config.js), whose file pattern these names stay out of.
const base = require("./playwright.config.js");

module.exports = {
  ...base,
  testDir: "portal",
  testMatch: "*.portal.js",
  // English unless a test asks otherwise (the app follows the browser's language).
  use: { ...base.use, locale: "en-US" },
  outputDir: process.env.PLAYWRIGHT_OUTPUT || "test-results/portal",
};
