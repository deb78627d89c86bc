"""The ``quickstart`` dataset: product reviews (negative, neutral, positive), generated offline.

A seeded generator writes short customer reviews the way people write them:
an opener, comments on two or three aspects of the product, often a concession
("the battery is great, but ..."), negations ("not worth it", "not bad at all")
and a closing verdict. The label is the review's overall verdict, and a small
share of labels is flipped, as annotators disagree. It needs no download, so
the quickstart study runs anywhere.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from autoft import Dataset, LoadContext, RawDataset, Split, hookimpl, option

LABELS = ("negative", "neutral", "positive")

PRODUCTS = {
    "pair of headphones": [
        "sound",
        "battery life",
        "noise cancelling",
        "ear cushions",
        "bluetooth connection",
        "microphone",
    ],
    "coffee maker": ["coffee", "brewing speed", "carafe", "water tank", "timer", "cleaning"],
    "pair of running shoes": ["fit", "cushioning", "grip", "sizing", "laces", "breathability"],
    "backpack": ["zippers", "straps", "laptop sleeve", "stitching", "pockets", "fabric"],
    "blender": ["motor", "jar", "blades", "noise level", "lid", "smoothie texture"],
    "desk lamp": ["brightness", "colour temperature", "arm", "base", "touch controls", "cable"],
    "air fryer": ["basket", "cooking time", "temperature control", "display", "nonstick coating", "size"],
    "e-reader": ["screen", "battery", "page turns", "backlight", "storage", "case"],
    "yoga mat": ["grip", "thickness", "smell", "surface", "carry strap", "durability"],
    "electric toothbrush": ["battery", "brush heads", "timer", "charging stand", "vibration", "travel case"],
    "kettle": ["boil time", "handle", "lid", "spout", "auto shut-off", "limescale filter"],
    "webcam": ["picture quality", "autofocus", "microphone", "clip", "low-light performance", "software"],
    "vacuum cleaner": ["suction", "battery", "dust bin", "filter", "attachments", "noise level"],
    "phone case": ["fit", "buttons", "drop protection", "grip", "camera cutout", "finish"],
}

OPENERS = [
    "Bought this {product} for my {person}.",
    "Ordered the {product} a month ago.",
    "This is my second {product} from this brand.",
    "Got the {product} on sale last week.",
    "Been using this {product} every day for {weeks} weeks now.",
    "Replaced my old {product} with this one.",
    "Picked up this {product} after reading a lot of reviews.",
    "Received the {product} as a gift.",
    "",
    "",
    "",
]
PEOPLE = ["wife", "husband", "son", "daughter", "mum", "dad", "office", "flat", "partner", "sister"]

POSITIVE = [
    "the {aspect} {be} excellent",
    "the {aspect} exceeded my expectations",
    "really impressed with the {aspect}",
    "the {aspect} {be} spot on",
    "love the {aspect}",
    "the {aspect} work{s} perfectly",
    "the {aspect} {be} much better than on my old one",
    "the {aspect} {be} solid",
    "no complaints about the {aspect}",
    "the {aspect} {be} great",
    "the {aspect} {has} held up really well",
    "the {aspect} {be} surprisingly good",
    "the {aspect} {be} not bad at all",
]
NEGATIVE = [
    "the {aspect} {be} terrible",
    "the {aspect} stopped working after {weeks} weeks",
    "very disappointed with the {aspect}",
    "the {aspect} feel{s} cheap",
    "the {aspect} broke on day one",
    "the {aspect} {be} a joke",
    "the {aspect} {be} far worse than advertised",
    "had nothing but trouble with the {aspect}",
    "the {aspect} {be} flimsy",
    "the {aspect} {be} not good enough",
    "the {aspect} gave up within a month",
    "the {aspect} {be} useless",
    "the {aspect} {be} a real letdown",
]
NEUTRAL = [
    "the {aspect} {be} okay",
    "the {aspect} {be} about what you'd expect for the price",
    "nothing special about the {aspect}",
    "the {aspect} {be} fine",
    "the {aspect} {be} average",
    "the {aspect} {does} the job",
    "the {aspect} {be} neither good nor bad",
    "the {aspect} {be} acceptable",
]
CLOSERS = {
    "positive": [
        "Would definitely buy again.",
        "Highly recommend!",
        "Five stars from me.",
        "Worth every penny.",
        "Very happy with it.",
        "Great value.",
        "Couldn't be happier.",
        "Recommended to all my friends.",
    ],
    "negative": [
        "Returning it.",
        "Save your money.",
        "Would not recommend.",
        "Not worth the money.",
        "Asked for a refund.",
        "Avoid.",
        "Really regret this purchase.",
        "One star is generous.",
    ],
    "neutral": [
        "It does the job.",
        "Might keep it, might not.",
        "Fine for the price.",
        "It's alright, I suppose.",
        "Not sure I'd buy it again, but it works.",
        "Three stars.",
        "Mixed feelings overall.",
        "Does what it says, nothing more.",
    ],
}
CONTRAST = [" but ", ", although ", ". On the other hand, ", ". Sadly ", ". That said, "]


def _aspect(template: str, aspect: str, fill: dict) -> str:
    """Fill a phrase for an aspect, agreeing in number ("the lid is", "the blades are")."""
    plural = aspect.endswith("s") and not aspect.endswith(("ss", "ness", "cushioning"))
    verbs = {
        "be": "are" if plural else "is",
        "s": "" if plural else "s",
        "has": "have" if plural else "has",
        "does": "do" if plural else "does",
    }
    return template.format(aspect=aspect, **verbs, **fill)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def review(rng: random.Random, label: str) -> str:
    """One review whose overall verdict is ``label``."""
    product = rng.choice(list(PRODUCTS))
    aspects = rng.sample(PRODUCTS[product], 3)
    weeks = rng.randint(2, 12)
    fill = {"product": product, "person": rng.choice(PEOPLE), "weeks": weeks}
    parts = [rng.choice(OPENERS).format(**fill)]
    main = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}[label]
    first = _aspect(rng.choice(main), aspects[0], fill)
    if label == "neutral":
        # mixed reviews: one good and one bad point, or lukewarm throughout
        if rng.random() < 0.6:
            good = _aspect(rng.choice(POSITIVE), aspects[0], fill)
            bad = _aspect(rng.choice(NEGATIVE), aspects[1], fill)
            body = good + rng.choice(CONTRAST) + bad
        else:
            body = first + " and " + _aspect(rng.choice(NEUTRAL), aspects[1], fill)
    else:
        other = NEGATIVE if label == "positive" else POSITIVE
        roll = rng.random()
        if roll < 0.3:
            twist = _aspect(rng.choice(other), aspects[1], fill)
            if label == "positive":
                body = first + ". Only complaint: " + twist
            else:
                body = twist + rng.choice(CONTRAST) + first
        elif roll < 0.7:
            body = first + " and " + _aspect(rng.choice(main), aspects[1], fill)
        else:
            body = first
    parts.append(_sentence(body) + ".")
    if rng.random() < 0.5:
        parts.append(rng.choice(CLOSERS[label]))
    text = " ".join(p for p in parts if p)
    if rng.random() < 0.15:
        text = text.lower()
    return text.replace("..", ".")


def generate(rows: int, seed: int, noise: float, weights: tuple[float, float, float]) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    seen: set[str] = set()
    while len(texts) < rows:
        label = rng.choices(LABELS, weights=weights)[0]
        text = review(rng, label)
        if text in seen:
            continue
        seen.add(text)
        if rng.random() < noise:
            label = rng.choice([x for x in LABELS if x != label])
        texts.append(text)
        labels.append(label)
    return texts, labels


@dataclass(frozen=True)
class QuickstartOptions:
    rows: int = option(1200, "reviews to generate (train, validation and test together)", ge=30)
    noise: float = option(0.04, "share of labels flipped, as annotators disagree", ge=0, lt=1)
    seed: int = option(7, "generator seed", ge=0)


class Quickstart(Dataset):
    """Generated product reviews in three classes; no download needed."""

    name = "quickstart"
    Options = QuickstartOptions

    def load(self, options: QuickstartOptions, ctx: LoadContext) -> RawDataset:
        texts, labels = generate(options.rows, options.seed, options.noise, (0.35, 0.25, 0.40))
        return RawDataset({"train": Split(texts, labels)}, LABELS, source=f"{options.rows} generated product reviews")


@hookimpl
def register_datasets(register):
    register(Quickstart)
