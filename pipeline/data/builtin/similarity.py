"""similarity_pairs: (sentence1, sentence2, score in [0, 5]) STS-B-like pairs built from slot paraphrases."""

from __future__ import annotations

import functools
import itertools
import random

# Slot -> groups of related meanings -> meanings -> interchangeable phrasings. A slot changed within its
# group ("a man" -> "an old man") keeps half its weight, as STS annotators give partial credit.
_SLOT_VOCAB: dict[str, tuple[tuple[tuple[str, ...], ...], ...]] = {
    "subject": (
        (("A man", "A guy", "A gentleman"), ("An old man", "An elderly man", "An elderly gentleman")),
        (("A woman", "A lady"), ("An old woman", "An elderly woman", "An elderly lady")),
        (("A boy", "A young boy", "A little boy"), ("A girl", "A young girl", "A little girl")),
        (("A police officer", "A cop", "A policeman"), ("A security guard", "A guard")),
        (("A chef", "A cook"), ("A baker", "A pastry chef")),
        (("A student", "A college student", "A pupil"), ("A teacher", "An instructor")),
    ),
    "action": (
        (("is carrying", "carries"), ("is lifting", "lifts", "is picking up")),
        (("is cleaning", "cleans", "is wiping down"), ("is polishing", "polishes", "is shining")),
        (("is repairing", "repairs", "is fixing", "fixes"), ("is assembling", "assembles", "is putting together")),
        (("is buying", "buys", "is purchasing"), ("is selling", "sells")),
        (("is photographing", "photographs", "is taking a picture of"), ("is drawing", "draws", "is sketching")),
        (("is dropping", "drops"), ("is throwing", "throws", "tosses")),
        (("is wrapping", "wraps", "is gift-wrapping"), ("is unpacking", "unpacks", "is unwrapping")),
    ),
    "object": (
        (("a guitar", "the guitar"), ("a violin", "a fiddle")),
        (("a bicycle", "a bike"), ("a scooter", "a kick scooter")),
        (("a box", "a cardboard box", "a carton"), ("a crate", "a wooden crate")),
        (("a chair", "the chair"), ("a stool", "a bar stool")),
        (("a lamp", "a table lamp"), ("a lantern", "a camping lantern")),
        (("a suitcase", "a piece of luggage"), ("a backpack", "a rucksack")),
        (("a vase", "a flower vase"), ("a bowl", "the bowl")),
    ),
    "place": (
        (("in the park", "at the park"), ("in the garden", "in a garden")),
        (("in the kitchen", "in a kitchen"), ("in the living room", "in the lounge")),
        (("on the street", "out on the street"), ("on the sidewalk", "on the pavement")),
        (("at the beach", "on the beach"), ("at the harbor", "by the harbor", "at the port")),
        (("in a store", "in a shop"), ("at the market", "at a market")),
        (("on stage", "on the stage"), ("in a concert hall", "at a concert venue")),
    ),
}
# Importance of each slot to the meaning, in score points out of 5: who, does what, to what matter most; where
# is scenery. score = 5 * sum(weight * credit) / sum(weight), credit 1 kept, 0.5 related, 0 unrelated.
_SLOT_WEIGHTS = {"subject": 1.5, "action": 1.5, "object": 1.5, "place": 0.5}
_KEEP, _RELATED, _UNRELATED = 0, 1, 2
_CREDIT = (1.0, 0.5, 0.0)


@functools.lru_cache(maxsize=1)
def _score_levels() -> tuple[tuple[float, tuple[tuple[int, ...], ...]], ...]:
    """Each reachable score with the per-slot change patterns that give it (21 levels, 0.0 to 5.0 in 0.25s)."""
    total = sum(_SLOT_WEIGHTS.values())
    by_score: dict[float, list[tuple[int, ...]]] = {}
    for pattern in itertools.product((_KEEP, _RELATED, _UNRELATED), repeat=len(_SLOT_WEIGHTS)):
        kept = sum(w * _CREDIT[p] for w, p in zip(_SLOT_WEIGHTS.values(), pattern))
        by_score.setdefault(round(5 * kept / total, 2), []).append(pattern)
    return tuple((score, tuple(patterns)) for score, patterns in sorted(by_score.items()))


def _sentence(phrases: list[str], place_first: bool) -> str:
    subject, action, obj, place = phrases
    if place_first:
        return f"{place[0].upper()}{place[1:]}, {subject[0].lower()}{subject[1:]} {action} {obj}."
    return f"{subject} {action} {obj} {place}."


def similarity_pairs(n: int, seed: int) -> list[dict[str, object]]:
    """(sentence1, sentence2, score) with score a float in [0, 5], like STS-B."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = random.Random(seed)
    draw = rng.random  # the hot loop: 300k rows feed the scale benchmark, so index by float, not rng.choice
    levels = _score_levels()
    slots = [[(g, meaning) for g, group in enumerate(groups) for meaning in range(len(group))] for groups in _SLOT_VOCAB.values()]
    vocab = list(_SLOT_VOCAB.values())
    rows: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()
    while len(rows) < n:
        # Uniform over score levels, not over change patterns, so 0-5 is covered evenly.
        score, patterns = levels[int(draw() * len(levels))]
        pattern = patterns[int(draw() * len(patterns))]
        first, second = [], []
        for slot, change in enumerate(pattern):
            groups = vocab[slot]
            group, meaning = slots[slot][int(draw() * len(slots[slot]))]
            other_group, other_meaning = group, meaning
            if change == _RELATED:
                other_meaning = (meaning + 1 + int(draw() * (len(groups[group]) - 1))) % len(groups[group])
            elif change == _UNRELATED:
                other_group = (group + 1 + int(draw() * (len(groups) - 1))) % len(groups)
                other_meaning = int(draw() * len(groups[other_group]))
            phrases, other_phrases = groups[group][meaning], groups[other_group][other_meaning]
            first.append(phrases[int(draw() * len(phrases))])
            second.append(other_phrases[int(draw() * len(other_phrases))])
        pair = (_sentence(first, draw() < 0.3), _sentence(second, draw() < 0.3))
        if pair[0] != pair[1] and pair not in seen:
            seen.add(pair)
            rows.append({"sentence1": pair[0], "sentence2": pair[1], "score": score})
    return rows
