"""Presidio's Swedish personnummer recognizer over a folder, as a whole process (the benchmark's rival).

Called directly, without an NLP engine, the way the benchmark's issue asks: the recognizer's own
regular expressions and validation, nothing else. Prints {"file name": [[start, end], ...]} as JSON.
"""

from __future__ import annotations

import json
import os
import sys

from presidio_analyzer.predefined_recognizers import SePersonnummerRecognizer

ENTITY = "SE_PERSONNUMMER"


def main(folder: str) -> int:
    recognizer = SePersonnummerRecognizer()
    found: dict[str, list[list[int]]] = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
            results = recognizer.analyze(text, entities=[ENTITY], nlp_artifacts=None)
            found[os.path.relpath(path, folder)] = [[r.start, r.end] for r in results]
    json.dump(found, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
