// Tests of checkpoint folders: one file, a shard index and its shards, and each way a folder can
// be broken (reported with its own code before anything is read or written).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempFolders } from "../../test/temp-folders.js";
import { CheckpointError, openCheckpoint } from "./checkpoint.js";
import { writeSafetensors } from "./safetensors.js";

const tempFolder = tempFolders("vlmc-checkpoint-");

function shard(file: string, names: string[]): void {
  writeSafetensors(
    file,
    names.map((name, i) => ({ name, dtype: "F32" as const, shape: [2], data: Float32Array.from([i, i + 0.5]) })),
  );
}

/** A folder as save_pretrained(max_shard_size=…) writes it: two shards, an index, a config. */
function sharded(weightMap?: Record<string, string>): string {
  const dir = tempFolder();
  shard(path.join(dir, "model-00001-of-00002.safetensors"), ["a.weight", "b.weight"]);
  shard(path.join(dir, "model-00002-of-00002.safetensors"), ["c.weight"]);
  const map = weightMap ?? {
    "a.weight": "model-00001-of-00002.safetensors",
    "b.weight": "model-00001-of-00002.safetensors",
    "c.weight": "model-00002-of-00002.safetensors",
  };
  fs.writeFileSync(
    path.join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: 24 }, weight_map: map }),
  );
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ model_type: "llama", hidden_size: 2 }));
  return dir;
}

function failure(target: string): string {
  try {
    openCheckpoint(target).close();
  } catch (e) {
    if (e instanceof CheckpointError) return e.code;
    throw e;
  }
  return "opened";
}

describe("openCheckpoint", () => {
  it("joins the shards of an index and reads each tensor from its shard", () => {
    const dir = sharded();
    const ckpt = openCheckpoint(dir);
    try {
      expect([...ckpt.tensors.keys()].sort()).toEqual(["a.weight", "b.weight", "c.weight"]);
      expect(path.basename(ckpt.tensors.get("c.weight")!.file)).toBe("model-00002-of-00002.safetensors");
      expect([...ckpt.readFloat32("c.weight")]).toEqual([0, 0.5]);
      expect([...ckpt.readFloat32("b.weight")]).toEqual([1, 1.5]);
      expect(ckpt.config).toEqual({ model_type: "llama", hidden_size: 2 });
    } finally {
      ckpt.close();
    }
    // The index itself names the same checkpoint.
    const byIndex = openCheckpoint(path.join(dir, "model.safetensors.index.json"));
    expect(byIndex.tensors.size).toBe(3);
    byIndex.close();
  });

  it("reads model.safetensors in a folder", () => {
    const dir = tempFolder();
    shard(path.join(dir, "model.safetensors"), ["x"]);
    const ckpt = openCheckpoint(dir);
    expect([...ckpt.tensors.keys()]).toEqual(["x"]);
    expect(ckpt.config).toBeUndefined();
    ckpt.close();
  });

  it("refuses broken folders with a code per fault", () => {
    expect(failure(tempFolder())).toBe("VLM4200");
    const legacy = tempFolder();
    fs.writeFileSync(path.join(legacy, "pytorch_model.bin"), "");
    expect(() => openCheckpoint(legacy)).toThrow(/pickled PyTorch checkpoint/);

    expect(failure(sharded({ "a.weight": "../model-00001-of-00002.safetensors" }))).toBe("VLM4202");
    expect(failure(sharded({ "a.weight": "/etc/passwd" }))).toBe("VLM4202");
    expect(failure(sharded({ "a.weight": "model-00009-of-00009.safetensors" }))).toBe("VLM4203");
    expect(failure(sharded({ "c.weight": "model-00001-of-00002.safetensors" }))).toBe("VLM4205");

    const twice = sharded();
    shard(path.join(twice, "model-00002-of-00002.safetensors"), ["c.weight", "a.weight"]);
    expect(failure(twice)).toBe("VLM4204");

    const badIndex = sharded();
    fs.writeFileSync(path.join(badIndex, "model.safetensors.index.json"), "{}");
    expect(failure(badIndex)).toBe("VLM4201");
    const badConfig = sharded();
    fs.writeFileSync(path.join(badConfig, "config.json"), "[1, 2");
    expect(failure(badConfig)).toBe("VLM4201");

    const badShard = sharded();
    fs.writeFileSync(path.join(badShard, "model-00002-of-00002.safetensors"), "not safetensors");
    expect(failure(badShard)).toBe("VLM4001");
    expect(failure(path.join(tempFolder(), "absent.safetensors"))).toBe("VLM4001");
  });
});
