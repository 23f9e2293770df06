"""Readers, bad-row policy, grouped split and adaptation rules, on tiny files written in the test."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import PipelineError
from pipeline.core.params import AdaptParams, DatasetParams
from pipeline.data.adaptation import adapt, lexical_negatives
from pipeline.data.cleaning import normalise
from pipeline.data.readers import read_file
from pipeline.data.splitting import grouped_split

SCORED = DatasetParams(source="x.csv", score_range=(0, 5))


def test_scored_csv_with_0_to_5_scores_is_normalised(tmp_path: Path) -> None:
    path = tmp_path / "sts.csv"
    path.write_text("sentence1,sentence2,score\nA cat sits.,A cat is sitting.,5\nA dog runs.,A man sings.,0\n"
                    "A boy eats.,A child eats.,2.5\n")
    frame, shape, report = normalise(read_file(path), SCORED, str(path))
    assert shape == "scored"
    assert frame["score"].tolist() == [1.0, 0.0, 0.5]
    assert report.as_dict() == {"rows_in": 3, "rows_out": 3, "dropped": {}}


def test_column_mapping_and_shape_detection(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question_title": "How to sort?", "answer_body": "Use sorted()."}\n'
                    '{"question_title": "How to read a file?", "answer_body": "Use open()."}\n')
    params = DatasetParams(source=str(path), columns={"anchor": "question_title", "positive": "answer_body"})
    frame, shape, _ = normalise(read_file(path), params, str(path))
    assert shape == "pairs" and list(frame.columns) == ["anchor", "positive"]
    assert frame["anchor"].tolist() == ["How to sort?", "How to read a file?"]


def test_drop_policy_counts_each_reason() -> None:
    frame = pd.DataFrame({
        "sentence1": ["ok one", "  ", None, "ok two", "ok three", "ok four", "ok one", "bad \ufffd text"],
        "sentence2": ["fine", "fine", "fine", "fine", "fine", "fine", "fine", "fine"],
        "score": ["1", "2", "3", "nan", "inf", "7", "1", "2"],
    })
    out, _, report = normalise(frame, SCORED, "mem")
    assert out["sentence1"].tolist() == ["ok one"]
    assert report.as_dict()["dropped"] == {
        "duplicate row": 1, "empty text": 1, "missing value": 1, "score NaN or infinite": 2,
        "score outside [0, 5]": 1, "undecodable text": 1,
    }
    assert report.rows_in == 8 and report.rows_out == 1


def test_error_policy_names_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("anchor,positive\na,b\nc,\n")
    params = DatasetParams(source=str(path), bad_rows="error")
    with pytest.raises(PipelineError, match=r"pairs.csv: row 2, column 'positive': missing value"):
        normalise(read_file(path), params, str(path))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", "", "file is empty"),
        ("fields.csv", "anchor,positive\na,b\nc,d,e\n", "malformed CSV: .*Expected 2 fields in line 3, saw 3"),
        ("broken.jsonl", '{"anchor": "a", "positive": "b"}\n{"anchor": "c", \n', "line 2: broken JSON"),
        ("list.jsonl", '["a", "b"]\n', "line 1: expected a JSON object"),
        ("data.xml", "<a/>", "unknown format '.xml'"),
        ("header.csv", "anchor,positive\n", "no data rows"),
    ],
)
def test_malformed_files_give_one_line(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PipelineError, match=expected) as caught:
        read_file(path)
    assert "\n" not in str(caught.value) and name in str(caught.value)


def test_missing_file_and_wrong_columns(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="nope.csv: file not found"):
        read_file(tmp_path / "nope.csv")
    path = tmp_path / "cols.csv"
    path.write_text("foo,bar\nx,y\n")
    with pytest.raises(PipelineError, match="cannot detect the shape from columns foo, bar"):
        normalise(read_file(path), DatasetParams(source=str(path)), str(path))
    with pytest.raises(PipelineError, match="shape 'scored' needs column.* sentence1, sentence2, score"):
        normalise(read_file(path), DatasetParams(source=str(path), shape="scored"), str(path))


def _pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame({"anchor": [f"query {i}" for i in range(n)], "positive": [f"doc {i % (n // 2)}" for i in range(n)]})


def test_grouped_split_has_no_leakage_and_is_deterministic() -> None:
    frame = _pairs(400)
    splits = grouped_split(frame, "pairs", 0.1, 0.2, seed=1).frames
    assert sum(len(s) for s in splits.values()) == 400
    texts = {name: set(s["anchor"].str.casefold()) | set(s["positive"].str.casefold()) for name, s in splits.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]
    again = grouped_split(frame, "pairs", 0.1, 0.2, seed=1).frames
    assert all(splits[k].equals(again[k]) for k in splits)
    other = grouped_split(frame, "pairs", 0.1, 0.2, seed=2).frames
    assert not splits["test"].equals(other["test"])
    assert 0.1 < len(splits["test"]) / 400 < 0.3


ADAPT = AdaptParams()


def test_adaptation_rules() -> None:
    pairs = pd.DataFrame({"anchor": ["a1", "a2", "a3"], "positive": ["p1", "p2", "p3"]})
    scored, rule = adapt(pairs, "pairs", "scored", ADAPT, seed=0)
    assert rule and "0.0" in rule
    assert scored["score"].tolist().count(1.0) == 3 and set(scored["score"]) == {0.0, 1.0}
    triplets, rule = adapt(pairs, "pairs", "triplets", ADAPT, seed=0)
    assert list(triplets.columns) == ["anchor", "positive", "negative"]
    assert (triplets["negative"] != triplets["positive"]).all() and "most words" in rule
    _, random_rule = adapt(pairs, "pairs", "triplets", AdaptParams(negatives="random"), seed=0)
    assert "at random" in random_rule

    native, rule = adapt(triplets, "triplets", "pairs", ADAPT, seed=0)
    assert rule is None and native.equals(triplets)
    from_triplets, _ = adapt(triplets, "triplets", "scored", ADAPT, seed=0)
    assert from_triplets["score"].tolist() == [1.0, 0.0] * 3

    graded = pd.DataFrame({"sentence1": ["s", "s", "t"], "sentence2": ["x", "y", "z"], "score": [0.9, 0.1, 0.6]})
    binary, rule = adapt(graded, "scored", "binary", ADAPT, seed=0)
    assert binary["score"].tolist() == [1.0, 0.0, 1.0] and "binarised" in rule
    assert not any(math.isnan(v) for v in binary["score"])


SCORED_PAIRS = pd.DataFrame(
    [("q1", "red cherry pie", 1.0), ("q1", "green apple tart", 0.6), ("q1", "stone wall", 0.0),
     ("q2", "blue sky", 0.6), ("q2", "grey sky", 0.4),  # a gap of exactly 0.2, which floats make 0.19999...
     ("q3", "apple juice fresh", 0.9), ("q3", "apple juice cold", 0.8),  # within the gap: no partner below
     ("q4", "lone text", 0.3)],  # below the threshold, no partner
    columns=["sentence1", "sentence2", "score"],
)


def test_scored_pairs_become_graded_triplets() -> None:
    triplets, rule = adapt(SCORED_PAIRS, "scored", "triplets", ADAPT, seed=2)
    assert triplets.values.tolist() == [
        ["q1", "red cherry pie", "stone wall"],  # the lowest-scored partner at least 0.2 lower
        ["q1", "green apple tart", "stone wall"],
        ["q2", "blue sky", "grey sky"],  # ("q1", "stone wall") and ("q2", "grey sky") have no partner below: dropped
        ["q3", "apple juice fresh", "red cherry pie"],  # >= 0.5 and no partner below: a random sentence2 (seed 2)
        ["q3", "apple juice cold", "green apple tart"],
    ]
    assert rule.startswith("scored pairs -> triplets: each row whose sentence1 has another sentence2")
    assert "at least 0.2 lower" in rule and ">= 0.5" in rule and "random sentence2 of the split (seeded)" in rule
    assert "dropped when that one is a partner of the same sentence1" in rule
    pairs, rule = adapt(SCORED_PAIRS, "scored", "pairs", ADAPT, seed=2)
    assert pairs.equals(triplets) and "hard-negative column" in rule  # MNRL: the negative is an extra hard negative


def test_graded_rule_never_takes_a_partner_of_the_same_anchor_as_random_negative() -> None:
    siblings = pd.DataFrame({"sentence1": ["q", "q"], "sentence2": ["xylophone", "zither"], "score": [0.9, 0.8]})
    for seed in range(5):
        out, _ = adapt(siblings, "scored", "triplets", ADAPT, seed=seed)
        assert out.empty  # every sentence2 is scored with the same anchor (within the gap): no usable negative
    for seed in range(5):
        out, _ = adapt(SCORED_PAIRS, "scored", "triplets", ADAPT, seed=seed)
        q3 = out[out["anchor"] == "q3"]
        assert not set(q3["negative"]) & {"apple juice fresh", "apple juice cold"}


def test_threshold_rule_is_the_rule_before_the_study() -> None:
    threshold = AdaptParams(scored="threshold")
    as_pairs, rule = adapt(SCORED_PAIRS, "scored", "pairs", threshold, seed=0)
    assert as_pairs.values.tolist() == [["q1", "red cherry pie"], ["q1", "green apple tart"], ["q2", "blue sky"],
                                        ["q3", "apple juice fresh"], ["q3", "apple juice cold"]]
    assert rule == "scored pairs -> pairs: rows with normalised score >= 0.5 become (anchor, positive)"
    as_triplets, rule = adapt(SCORED_PAIRS, "scored", "triplets", threshold, seed=0)
    assert as_triplets.values.tolist()[:3] == [["q1", "red cherry pie", "stone wall"],
                                               ["q1", "green apple tart", "stone wall"], ["q2", "blue sky", "grey sky"]]
    assert as_triplets["anchor"].tolist()[3:] == ["q3", "q3"] and "random" in rule  # q3: a random other sentence2


def test_lexical_negatives_prefer_shared_words() -> None:
    positives = ["json.dumps(obj)", "json.loads(s)", "os.path.join(a, p)", "os.path.split(p)", "zlib.crc32(data)"]
    negatives = lexical_negatives(positives, random.Random(0))
    assert negatives[0] == "json.loads(s)" and negatives[1] == "json.dumps(obj)"
    assert negatives[2] == "os.path.split(p)" and negatives[3] == "os.path.join(a, p)"
    assert negatives[4] != positives[4]  # no shared word: a random other positive


def test_lexical_negatives_are_the_rule_as_written_plainly() -> None:
    # the rule in plain Python (a Counter of shared telling words per row, the ties sorted, one rng.choice): the
    # numpy counting picks the same negative for every row, equal texts and rows sharing no word included
    from collections import Counter, defaultdict

    from pipeline.data.adaptation import _other_index, _words

    def plainly(positives: list[str], rng: random.Random) -> list[str]:
        words = [_words(text) for text in positives]
        postings: dict[str, list[int]] = defaultdict(list)
        for index, row_words in enumerate(words):
            for word in row_words:
                postings[word].append(index)
        common = max(20, len(positives) // 20)
        negatives = []
        for index, row_words in enumerate(words):
            overlap: Counter = Counter()
            for word in row_words:
                if len(postings[word]) <= common:
                    overlap.update(i for i in postings[word] if positives[i] != positives[index])
            if overlap:
                best = max(overlap.values())
                choice = rng.choice(sorted(i for i, n in overlap.items() if n == best))
            else:
                choice = _other_index(rng, index, len(positives))
            negatives.append(positives[choice])
        return negatives

    vocabulary = [f"w{i}" for i in range(300)]
    for seed in range(3):
        draw = random.Random(seed)
        # "the" in about half the rows: more than 5% of them, so it is not a telling word
        positives = [" ".join(draw.sample(vocabulary, draw.randint(1, 6)) + ["the"] * draw.randint(0, 1))
                     for _ in range(800)]
        positives += draw.sample(positives, 100) + ["zz-alone", "zz-alone"]  # repeated texts, a text sharing nothing
        assert lexical_negatives(positives, random.Random(seed)) == plainly(positives, random.Random(seed))


def test_lexical_negatives_past_the_block_come_from_rows_sharing_rare_words(monkeypatch) -> None:
    # past `block` rows the split is cut into even blocks grouped by rarest shared words: pairs of rows planted
    # 500 rows apart, sharing three words nothing else has, still get each other as negatives (a contiguous or
    # random cut would part most of them), and every negative comes from its own row's block
    from pipeline.data import adaptation
    from pipeline.data.adaptation import _lexical_blocks, _words

    draw = random.Random(0)
    vocabulary = [f"w{i}" for i in range(300)]
    positives = [" ".join(draw.sample(vocabulary, 2)) for _ in range(1000)]
    for pair in range(100):
        for row in (pair, pair + 500):
            positives[row] += f" a{pair} b{pair} c{pair}"
    words = [_words(text) for text in positives]
    frequency = Counter(word for row_words in words for word in row_words)
    blocks = _lexical_blocks(words, frequency, 300)
    assert sorted(row for rows in blocks for row in rows) == list(range(1000))
    assert [len(rows) for rows in blocks] == [250, 250, 250, 250]  # even: 1,000 rows need 4 blocks of <= 300

    negatives = lexical_negatives(positives, random.Random(0), block=300)
    block_of = {row: number for number, rows in enumerate(blocks) for row in rows}
    for pair in range(100):
        assert negatives[pair] == positives[pair + 500] and negatives[pair + 500] == positives[pair]
    for row, negative in enumerate(negatives):
        assert negative != positives[row] and block_of[positives.index(negative)] == block_of[row]
    # at or under the block, one block in the input's order: the rule over the whole split
    assert _lexical_blocks(words, frequency, 1000) == [list(range(1000))]
    assert lexical_negatives(positives, random.Random(0), block=1000) != negatives  # the blocks did change picks

    frame = pd.DataFrame({"anchor": [f"q{i}" for i in range(1000)], "positive": positives})
    params = AdaptParams(negatives="lexical")
    _, whole = adapt(frame, "pairs", "triplets", params, seed=0)
    monkeypatch.setattr(adaptation, "LEXICAL_BLOCK", 300)
    triplets, blocked = adapt(frame, "pairs", "triplets", params, seed=0)
    assert "blocks" not in whole
    # the rule the card states is the one applied: the negatives come from the blocks of 300
    assert triplets["negative"].tolist() == [n for n, p in zip(negatives, positives) if n != p]
    assert "the 1,000 rows cut into even blocks of at most 300 grouped by their rarest shared words" in blocked


def test_every_local_format_reads_the_same_rows(tmp_path: Path) -> None:
    from datasets import Dataset

    frame = pd.DataFrame({"anchor": ["how to sort", "read a file"], "positive": ["sorted(x)", "open(p)"]})
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    frame.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    frame.to_json(tmp_path / "p.json", orient="records")
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "saved"))
    for name in ("p.csv", "p.tsv", "p.jsonl", "p.json", "p.parquet", "saved"):
        out, shape, _ = normalise(read_file(tmp_path / name), DatasetParams(source=name), name)
        assert shape == "pairs" and out.values.tolist() == frame.values.tolist(), name


def test_unreachable_hub_dataset_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.data.readers import read_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what a closed network amounts to, without waiting on DNS
    params = DatasetParams(source="hf:sentence-transformers/stsb", hf_split="train")
    with pytest.raises(PipelineError) as caught:
        read_source(params.source, params, seed=0)
    message = str(caught.value)
    assert message.startswith("source 'hf:sentence-transformers/stsb': could not load from the Hugging Face Hub")
    assert "save a local copy" in message and "\n" not in message


def test_mined_negatives_use_the_base_model(tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    pairs = pd.DataFrame({"anchor": [f"question number {i}" for i in range(12)],
                          "positive": [f"answer text {i} about topic {i % 3}" for i in range(12)]})
    mined, rule = adapt(pairs, "pairs", "triplets", AdaptParams(negatives="mined"), seed=0,
                        mining_model=SentenceTransformer(str(tiny_model_dir)))
    assert "mine_hard_negatives" in rule
    assert list(mined.columns) == ["anchor", "positive", "negative"] and len(mined) > 0
    assert (mined["negative"] != mined["positive"]).all()
    assert set(mined["negative"]) <= set(pairs["positive"])
