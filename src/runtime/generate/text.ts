// The text side of a package: its tokenizer (tokenizer.json, run by @huggingface/tokenizers) and
// its chat template (rendered by @huggingface/jinja), found where Hugging Face checkpoints keep
// them: chat_template.jinja (transformers 5), chat_template.json (processors of transformers 4)
// or the `chat_template` field of tokenizer_config.json.

import * as fs from "node:fs";
import * as path from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { diagnostic, DiagnosticError } from "../../diagnostics/diagnostic.js";
import { readPackageJson, TOKENIZER_FILE } from "./package-folder.js";

export interface PackageText {
  readonly tokenizer: Tokenizer;
  /** The chat template's source, when the checkpoint has one (BLIP-2 has none: prompts go in raw). */
  readonly chatTemplate: string | undefined;
  /** Special token strings the templates refer to (`bos_token`, `eos_token`…). */
  readonly specialTokens: Readonly<Record<string, string>>;
}

/** Loads the tokenizer and the chat template of a package folder. */
export function loadPackageText(dir: string): PackageText {
  const file = path.join(dir, TOKENIZER_FILE);
  const config = readPackageJson(dir, "tokenizer_config.json") ?? {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(file, "utf8")), config);
  } catch (e) {
    throw new DiagnosticError(
      diagnostic("VLM5003", `cannot load ${file}: ${e instanceof Error ? e.message : String(e)}`, undefined, {
        hint: "copy tokenizer.json from the checkpoint folder again; it must be the file the tokenizers library writes",
      }),
    );
  }
  const specialTokens: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
    const value = config[key];
    const content = typeof value === "object" && value !== null ? (value as { content?: unknown }).content : value;
    if (typeof content === "string") specialTokens[key] = content;
  }
  return { tokenizer, chatTemplate: findChatTemplate(dir, config), specialTokens };
}

function findChatTemplate(dir: string, tokenizerConfig: Record<string, unknown>): string | undefined {
  const jinja = path.join(dir, "chat_template.jinja");
  if (fs.existsSync(jinja)) return fs.readFileSync(jinja, "utf8");
  const fromJson = readPackageJson(dir, "chat_template.json")?.["chat_template"];
  return templateSource(fromJson) ?? templateSource(tokenizerConfig["chat_template"]);
}

/** A template is a string, or a list of named templates of which "default" is the one to use. */
function templateSource(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) return undefined;
  const named = value as { name?: unknown; template?: unknown }[];
  const chosen = named.find((t) => t.name === "default") ?? named[0];
  return typeof chosen?.template === "string" ? chosen.template : undefined;
}

/** One user turn holding `images` images then the text, as Hugging Face's processors build it. */
export function renderChat(text: PackageText, prompt: string, images: number): string {
  if (text.chatTemplate === undefined) return prompt;
  const content = [...Array.from({ length: images }, () => ({ type: "image" })), { type: "text", text: prompt }];
  try {
    return new Template(text.chatTemplate).render({
      messages: [{ role: "user", content }],
      add_generation_prompt: true,
      ...text.specialTokens,
    });
  } catch (e) {
    throw new DiagnosticError(
      diagnostic(
        "VLM5004",
        `the package's chat template failed: ${e instanceof Error ? e.message : String(e)}`,
        undefined,
        {
          hint: "pass --raw and write the prompt in the model's format yourself",
        },
      ),
    );
  }
}

/**
 * Decodes a growing list of ids into text pieces for streaming: a piece is released only once it
 * no longer ends in a partial UTF-8 sequence (U+FFFD) that the next token may complete.
 */
export class TextStream {
  private readonly ids: number[] = [];
  private emitted = "";

  constructor(private readonly tokenizer: Tokenizer) {}

  /** Adds a token; returns the new text it completes ("" while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids, { skip_special_tokens: true });
    if (text.endsWith("\uFFFD") || !text.startsWith(this.emitted)) return "";
    const piece = text.slice(this.emitted.length);
    this.emitted = text;
    return piece;
  }

  /** Everything decoded so far, partial characters included. */
  text(): string {
    return this.tokenizer.decode(this.ids, { skip_special_tokens: true });
  }
}
