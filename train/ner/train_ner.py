"""Train the small Swedish person-name pipeline shipped in gateway/data/ner_sv from the shared NER corpora.

Usage (from the repository root):

    python3 train/ner/train_ner.py [--data ../shared/data/ner] [--out train/ner/build]
                                   [--ship gateway/data/ner_sv] [--limit N]

The corpora are split once with a fixed seed, per source, into train (80 %), dev (10 %, used by spaCy
only to pick the best checkpoint) and test (10 %, held out: used for nothing but the figures printed at
the end). Only persons are learned: PER in klintan and in SUC becomes PERSON, every other tag is
outside. SUC's few mixed tags (LOCPRS, ORGPRS, LOCORG: a name that is a place or a person depending on
reading) would teach the model a wrong answer either way, so their sentences are left out.

News text names the same well-known people again and again, and a model trained on it alone learns
those names rather than what a name looks like: it missed most invented names of care recipients. So
every training sentence with a person gets one copy with its names swapped for others: given names
drawn uniformly from Statistics Sweden's list (rare ones as likely as common ones), surnames from the
1,000 most common or built from the parts Swedish surnames are made of. Dev and test stay untouched.
Besides the held-out figures the script prints how many invented names in care sentences it finds.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SEED = 20261126
LABEL = "PERSON"
PERSON_TAGS = frozenset({"PER"})
MIXED_TAGS = frozenset({"LOCPRS", "ORGPRS", "LOCORG"})
SPLIT = (0.8, 0.1, 0.1)
NO_SPACE_BEFORE = frozenset(",.;:!?)]}%»”'")
NO_SPACE_AFTER = frozenset("([{«“")

# Parts of Swedish surnames (Lind+ström, Berg+lund): compounds of these make names no corpus has.
SURNAME_HEADS = (
    "Al",
    "Alm",
    "Ask",
    "Berg",
    "Björk",
    "Blom",
    "Dahl",
    "Ek",
    "Fager",
    "Fors",
    "Gran",
    "Hag",
    "Hed",
    "Holm",
    "Kvarn",
    "Lind",
    "Ljung",
    "Lund",
    "Mo",
    "Nord",
    "Sand",
    "Sjö",
    "Sten",
    "Ström",
    "Sund",
    "Tall",
    "Vall",
    "Väst",
    "Åker",
    "Öst",
)
SURNAME_TAILS = (
    "berg",
    "blad",
    "bom",
    "dahl",
    "fjäll",
    "gren",
    "hed",
    "holm",
    "kvist",
    "lind",
    "lund",
    "mark",
    "mo",
    "qvist",
    "rud",
    "sjö",
    "sten",
    "strand",
    "ström",
    "sund",
    "vall",
    "vik",
)
MIN_BEARERS = 20  # given names borne by fewer are often spelling variants or not Swedish-written
AUGMENT_SHARE = 1.0  # copies with swapped names, per training sentence that has a person
# Invented names (no corpus has them) in sentences as care staff write them: a recall probe.
PROBE_NAMES = (
    "Ingvor Kallesund",
    "Sigbritt Almqvare",
    "Tyra Hellsmo",
    "Edvin Lindqvarn",
    "Åsa Öhrnvik",
    "Gunvald Tröskmo",
    "Elvira Bäckfjäll",
    "Holger Sjövind",
    "Majvor Ekstrand",
    "Tage Rimfors",
)
PROBE_SENTENCES = (
    "Brukaren {} fick sin medicin kl 8 .",
    "{} vill ha besöket på eftermiddagen i stället .",
    "Vi har pratat med {} om insatsen .",
    "Hej ! {} har fått en ny diagnos .",
    "Dosetten hos {} var tom i morse .",
    "Kan någon ringa {} efter lunch ?",
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@dataclass(frozen=True)
class Sentence:
    source: str
    words: tuple[str, ...]
    tags: tuple[str, ...]


def read_klintan(path: Path) -> list[Sentence]:
    """One token and its IO tag a line (split on the last whitespace), a blank line between sentences."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            if words:
                sentences.append(Sentence("klintan", tuple(words), tuple(tags)))
                words, tags = [], []
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            continue
        word, tag = parts
        # klintan writes outside as the digit 0, and a few tokens carry a soft hyphen in front.
        words.append(word.replace("\u00ad", "") or word)
        tags.append("O" if tag == "0" else tag)
    if words:
        sentences.append(Sentence("klintan", tuple(words), tuple(tags)))
    return sentences


def read_suc(path: Path) -> list[Sentence]:
    sentences: list[Sentence] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        sentences.append(Sentence("suc3", tuple(record["tokens"]), tuple(record["ner_tags"])))
    return sentences


def person_spans(tags: tuple[str, ...]) -> list[tuple[int, int]]:
    """Token spans of persons; IO tags, so a run of PER tokens is one name."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, tag in enumerate((*tags, "O")):
        inside = tag.removeprefix("B-").removeprefix("I-") in PERSON_TAGS
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            spans.append((start, i))
            start = None
    return spans


def spaces_for(words: tuple[str, ...]) -> list[bool]:
    """Guess the spaces of running text, so the training docs look like what the tokenizer makes."""
    spaces = []
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        glued = (following[:1] in NO_SPACE_BEFORE and len(following) == 1) or word in NO_SPACE_AFTER
        spaces.append(bool(following) and not glued)
    return spaces


def read_names(names_dir: Path) -> tuple[list[str], list[str]]:
    given: list[str] = []
    for file in ("tilltalsnamn-kvinnor.csv", "tilltalsnamn-man.csv"):
        with (names_dir / file).open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if int(row["persons"]) >= MIN_BEARERS and row["name"].isalpha():
                    given.append(row["name"])
    with (names_dir / "efternamn_old_small.csv").open(encoding="utf-8") as f:
        surnames = [row["lastname"] for row in csv.DictReader(f) if row["lastname"].isalpha()]
    return sorted(set(given)), surnames


def augment(train_set: list[Sentence], given: list[str], surnames: list[str]) -> list[Sentence]:
    """Copies of the sentences with persons, every name swapped for a drawn one of the same length."""
    rng = random.Random(SEED + 1)

    def surname() -> str:
        if rng.random() < 0.5:
            return rng.choice(surnames)
        return rng.choice(SURNAME_HEADS) + rng.choice(SURNAME_TAILS)

    copies: list[Sentence] = []
    for sentence in train_set:
        spans = person_spans(sentence.tags)
        if not spans or rng.random() >= AUGMENT_SHARE:
            continue
        words = list(sentence.words)
        tags = list(sentence.tags)
        for a, b in reversed(spans):
            if b - a == 1:
                name = [rng.choice(given) if rng.random() < 0.5 else surname()]
            else:
                name = [rng.choice(given) for _ in range(b - a - 1)] + [surname()]
            genitive = sentence.words[b - 1].endswith("s") and rng.random() < 0.3
            if genitive and not name[-1].endswith(("s", "x", "z")):
                name[-1] += "s"
            words[a:b] = name
            tags[a:b] = ["PER"] * len(name)
        copies.append(Sentence(sentence.source + "+names", tuple(words), tuple(tags)))
    return copies


def probe_sentences() -> list[Sentence]:
    out = []
    for template in PROBE_SENTENCES:
        for name in PROBE_NAMES:
            before, after = (part.split() for part in template.split("{}"))
            words = (*before, *name.split(), *after)
            tags = ("O",) * len(before) + ("PER",) * len(name.split()) + ("O",) * len(after)
            out.append(Sentence("invented", words, tags))
    return out


def split(sentences: list[Sentence]) -> tuple[list[Sentence], list[Sentence], list[Sentence]]:
    """Per source, so both kinds of text are in every part in proportion."""
    rng = random.Random(SEED)
    train: list[Sentence] = []
    dev: list[Sentence] = []
    test: list[Sentence] = []
    for source in sorted({s.source for s in sentences}):
        part = [s for s in sentences if s.source == source]
        rng.shuffle(part)
        n_train = int(len(part) * SPLIT[0])
        n_dev = int(len(part) * SPLIT[1])
        train += part[:n_train]
        dev += part[n_train : n_train + n_dev]
        test += part[n_train + n_dev :]
    rng.shuffle(train)
    return train, dev, test


def to_docbin(nlp, sentences: list[Sentence], path: Path) -> None:  # type: ignore[no-untyped-def]
    from spacy.tokens import Doc, DocBin, Span

    docbin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    for sentence in sentences:
        doc = Doc(nlp.vocab, words=list(sentence.words), spaces=spaces_for(sentence.words))
        doc.ents = [Span(doc, a, b, label=LABEL) for a, b in person_spans(sentence.tags)]
        docbin.add(doc)
    docbin.to_disk(path)


def score(nlp, sentences: list[Sentence]) -> dict[str, tuple[float, float, float, int]]:  # type: ignore[no-untyped-def]
    """Exact-span precision, recall and F1 on persons, running the model on the pre-tokenised words."""
    from spacy.tokens import Doc

    counts: dict[str, list[int]] = {}
    for sentence in sentences:
        doc = Doc(nlp.vocab, words=list(sentence.words), spaces=spaces_for(sentence.words))
        for _name, proc in nlp.pipeline:
            doc = proc(doc)
        gold = set(person_spans(sentence.tags))
        predicted = {(e.start, e.end) for e in doc.ents if e.label_ == LABEL}
        for key in (sentence.source, "all"):
            tp_fp_fn = counts.setdefault(key, [0, 0, 0])
            tp_fp_fn[0] += len(gold & predicted)
            tp_fp_fn[1] += len(predicted - gold)
            tp_fp_fn[2] += len(gold - predicted)
    result = {}
    for key, (tp, fp, fn) in counts.items():
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        result[key] = (p, r, f, tp + fn)
    return result


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ner")
    parser.add_argument("--names", type=Path, default=REPO.parent / "shared" / "data" / "names")
    parser.add_argument("--no-augment", action="store_true", help="train on the corpora as they are")
    parser.add_argument("--out", type=Path, default=HERE / "build")
    parser.add_argument("--ship", type=Path, default=None, help="copy the best model here (the package data)")
    parser.add_argument("--limit", type=int, default=0, help="train on at most N sentences (quick trials)")
    parser.add_argument("--evaluate-only", action="store_true", help="score --out/model-best, do not train")
    args = parser.parse_args(argv)
    # The corpora are not part of the repository (tests/data holds only a cut of klintan and no SUC tags).
    needed = [args.data / "klintan_train.txt", args.data / "suc3_dev.jsonl"]
    needed += [
        args.names / f
        for f in ("tilltalsnamn-kvinnor.csv", "tilltalsnamn-man.csv", "efternamn_old_small.csv")
    ]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        print(
            f"train_ner: training data missing: {', '.join(missing)} (give the folders with --data and --names; "
            "the sources are listed in tests/data/README.md)",
            file=sys.stderr,
        )
        return 2

    import spacy
    from spacy.cli.train import train

    sentences = read_klintan(args.data / "klintan_train.txt") + read_suc(args.data / "suc3_dev.jsonl")
    mixed = [s for s in sentences if MIXED_TAGS & set(s.tags)]
    sentences = [s for s in sentences if not MIXED_TAGS & set(s.tags)]
    train_set, dev_set, test_set = split(sentences)
    if args.limit:
        train_set = train_set[: args.limit]
    copies = [] if args.no_augment else augment(train_set, *read_names(args.names))
    train_set = train_set + copies
    random.Random(SEED + 2).shuffle(train_set)
    print(
        f"sentences: train {len(train_set)} ({len(copies)} of them copies with swapped names), "
        f"dev {len(dev_set)}, held-out test {len(test_set)}; left out for mixed tags: {len(mixed)}; seed {SEED}",
        flush=True,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    model_best = args.out / "model-best"
    if not args.evaluate_only:
        blank = spacy.blank("sv")
        to_docbin(blank, train_set, args.out / "train.spacy")
        to_docbin(blank, dev_set, args.out / "dev.spacy")
        started = time.monotonic()
        train(
            HERE / "config.cfg",
            args.out,
            overrides={
                "paths.train": str(args.out / "train.spacy"),
                "paths.dev": str(args.out / "dev.spacy"),
            },
        )
        print(f"training took {time.monotonic() - started:.0f} s", flush=True)

    nlp = spacy.load(model_best)
    scores = score(nlp, test_set)
    for key, (p, r, f, gold) in sorted(scores.items()):
        print(f"held-out PERSON {key:8} P {p:.3f}  R {r:.3f}  F1 {f:.3f}  (gold names {gold})")
    probe = score(nlp, probe_sentences())["invented"]
    print(f"invented names in care sentences: found {probe[1]:.3f} of {probe[3]} (P {probe[0]:.3f})")
    print(f"model size {size_of(model_best) / 1e6:.1f} MB ({model_best})")

    if args.ship:
        if args.ship.exists():
            shutil.rmtree(args.ship)
        shutil.copytree(model_best, args.ship)
        write_meta(args.ship / "meta.json", scores, len(train_set))
        print(f"shipped to {args.ship} ({size_of(args.ship) / 1e6:.1f} MB)")
    return 0


def write_meta(path: Path, scores: dict[str, tuple[float, float, float, int]], n_train: int) -> None:
    """Say in the shipped model what it is, what it was trained on and how well it did."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    p, r, f, gold = scores["all"]
    meta.update(
        name="brukarvakt_ner_sv",
        version="1.0.0",
        # Built with 3.8.x; any 3.8 release reads it (pyproject pins spacy>=3.8,<3.9).
        spacy_version=">=3.8.0,<3.9.0",
        description=f"Swedish person names (PERSON) for brukarvakt; trained on {n_train} sentences by "
        f"train/ner/train_ner.py (seed {SEED}); held-out P {p:.3f} R {r:.3f} F1 {f:.3f} on {gold} names",
        license="CC BY 4.0 (training data)",
        sources=[
            {
                "name": "klintan/swedish-ner-corpus",
                "url": "https://github.com/klintan/swedish-ner-corpus",
                "license": "CC BY 4.0",
            },
            {
                "name": "SUC 3.0 (scrambled), via kb-labb/sucx3_ner",
                "url": "https://huggingface.co/datasets/KBLab/sucx3_ner",
                "license": "CC BY 4.0",
            },
            {
                "name": "Statistics Sweden name lists via peterdalle/svensktext (names swapped into copies)",
                "url": "https://github.com/peterdalle/svensktext",
            },
        ],
    )
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
