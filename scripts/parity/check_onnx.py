#!/usr/bin/env python3
"""Runs onnx.checker.check_model(path, full_check=True) (the onnx package) on each ONNX file
named on the command line, or listed one per line in a file given as @LIST. Models are passed by
path, never as loaded protos, so external data and models over 2 GB are checked as stored.

Prints one JSON object {path: "ok" | error message} and exits 0 when every model passed, 1 otherwise.
"""

import json
import sys

import onnx


def paths(argv):
    for arg in argv:
        if arg.startswith("@"):
            with open(arg[1:]) as f:
                yield from (line.strip() for line in f if line.strip())
        else:
            yield arg


def main(argv):
    results = {}
    for path in paths(argv):
        try:
            onnx.checker.check_model(path, full_check=True)
            results[path] = "ok"
        except Exception as e:  # ValidationError, InferenceError, protobuf/IO errors alike
            results[path] = f"{type(e).__name__}: {e}"
    print(json.dumps(results, indent=1))
    return 0 if all(v == "ok" for v in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
