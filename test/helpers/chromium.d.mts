// Types of chromium.mjs (plain JavaScript so that bench/pictures.mjs can import it too).
import type { Browser } from "playwright-core";

export declare const CHROMIUM: string;
export declare function launchChromium(): Promise<Browser>;
