// Headless Chromium for the browser tests and bench/pictures.mjs: Debian's /usr/bin/chromium driven
// by playwright-core, which never downloads a browser. .ci/run installs the package when it is missing.

import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** @returns {Promise<import("playwright-core").Browser>} */
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-gpu",
      "--no-first-run",
    ],
  });
}
