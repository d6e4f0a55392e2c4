"""The shipped Swedish person-name model: loaded from package data once per process, on first use.

spaCy takes about a second to import and the model a little more to load, so neither happens at
import time: only the first message with care context pays (rules/person_names.py decides that with
a word list before calling here). Trained by train/ner/train_ner.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from gateway.errors import UserError

MODEL_DIR = Path(__file__).resolve().parent / "data" / "ner_sv"
LABEL = "PERSON"
# Only this much of one segment goes through the model, to bound the time one message can take
# (measured: about 0.5 s for 50,000 characters on one core, 2 ms for a short message). Names further
# into a long attachment are not looked for; identity numbers and register names still are, in full.
MAX_CHARS = 50_000

_lock = threading.Lock()
# The gateway scans in a thread pool; spaCy does not promise that one pipeline may run in several
# threads at once, and a call takes milliseconds, so calls take turns.
_run_lock = threading.Lock()
_nlp: Any = None
loads = 0  # how many times the model was loaded in this process: once, or never


def load() -> Any:
    """The spaCy pipeline, loaded on the first call; later calls return the same object."""
    global _nlp, loads
    if _nlp is not None:
        return _nlp
    with _lock:
        if _nlp is None:
            if not (MODEL_DIR / "meta.json").is_file():
                raise UserError(
                    f"the Swedish name model is missing ({MODEL_DIR}): reinstall brukarvakt, "
                    "or set policy.person_name: off"
                )
            import spacy

            _nlp = spacy.load(MODEL_DIR)
            loads += 1
    return _nlp


def person_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of person names in `text` (within its first MAX_CHARS characters)."""
    if not text.strip():
        return []
    nlp = load()
    with _run_lock:
        doc = nlp(text[:MAX_CHARS])
    return [(e.start_char, e.end_char) for e in doc.ents if e.label_ == LABEL]
