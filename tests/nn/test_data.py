"""The procedural captioned-scenes dataset: determinism, grammar, tokenizer, user folders."""

import numpy as np
import pytest
from PIL import Image

from ciarsim.errors import CiarsimError
from ciarsim.nn.data import (
    BACKGROUNDS,
    IMAGE_SIZE,
    MAX_CAPTION_LEN,
    SHAPES,
    CaptionTokenizer,
    DataError,
    load_folder,
    make_dataset,
    make_scene,
    parse_caption,
)


@pytest.fixture(scope="module")
def scenes():
    return make_dataset(300, seed=0)


def test_scene_depends_only_on_seed_and_index():
    batch = make_dataset(5, seed=3, start=10)
    alone = make_scene(3, 12)
    assert batch.images[2].tobytes() == alone.image.tobytes()
    assert batch.captions[2] == alone.caption
    assert batch.attrs[2] == alone.attrs
    other_batch = make_dataset(3, seed=3, start=12)
    assert other_batch.images[0].tobytes() == alone.image.tobytes()


def test_seeds_give_different_scenes():
    a, b = make_dataset(4, seed=0), make_dataset(4, seed=1)
    assert not np.array_equal(a.images, b.images)


def test_shapes_and_dtype(scenes):
    assert scenes.images.shape == (300, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert scenes.images.dtype == np.uint8
    assert len(scenes) == len(scenes.captions) == len(scenes.attrs) == 300


def test_vocabulary_coverage(scenes):
    objects = [o for a in scenes.attrs for o in a.objects]
    assert {o.shape for o in objects} == set(SHAPES)
    assert {a.background_kind for a in scenes.attrs} == set(BACKGROUNDS)
    assert {len(a.objects) for a in scenes.attrs} == {1, 2, 3}
    for a in scenes.attrs:
        assert len({o.cell for o in a.objects}) == len(a.objects)
        assert all(o.colour != a.background_colour for o in a.objects)


def test_caption_parses_back_to_attrs(scenes):
    for caption, attrs in zip(scenes.captions, scenes.attrs):
        assert parse_caption(caption) == attrs


def test_parse_is_order_and_case_insensitive():
    a = parse_caption("A small blue ring in the centre and a large red star at the top left, "
                      "on an orange two-tone background.")  # fmt: skip
    b = parse_caption("a large red star at the top left and a small blue ring in the centre "
                      "on an orange two-tone background")  # fmt: skip
    assert a == b
    assert [o.cell for o in a.objects] == [0, 4]
    assert a.background_kind == "two_tone"


@pytest.mark.parametrize(
    "caption, word",
    [
        ("a huge red circle at the top on a plain green background", "huge"),
        ("a large red circle at the top", "the end of the caption"),
        ("a large red circle at the top and a small blue star at the top "
         "on a plain green background", "share"),
    ],
)  # fmt: skip
def test_bad_caption_names_the_problem(caption, word):
    with pytest.raises(DataError, match=word):
        parse_caption(caption)


def test_tokenizer_round_trip(scenes):
    tok = CaptionTokenizer()
    assert tok.vocab[0] == "<pad>" and tok.vocab[1] == "<unk>"
    for caption in scenes.captions:
        ids = tok.encode(caption)
        assert len(ids) == MAX_CAPTION_LEN
        assert ids[-1] == tok.PAD  # every generated caption fits with room to spare
        assert tok.decode(ids) == caption
    assert tok.encode_batch(scenes.captions[:3]).shape == (3, MAX_CAPTION_LEN)


def test_tokenizer_unknown_words_and_truncation():
    tok = CaptionTokenizer(max_len=4)
    ids = tok.encode("a gigantic red circle at the top")
    assert ids == [tok.encode("a")[0], tok.UNK, tok.encode("red")[0], tok.encode("circle")[0]]
    assert tok.decode(ids) == "a <unk> red circle"


def _write_png(path, size, colour):
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype=np.uint8)).save(path)


def test_load_folder(tmp_path):
    _write_png(tmp_path / "one.png", (100, 80), (255, 0, 0))
    _write_png(tmp_path / "two.png", (64, 64), (0, 0, 255))
    (tmp_path / "captions.csv").write_text(
        "file,caption\none.png,a red square\ntwo.png,\"a blue thing, big\"\n"
    )
    ds = load_folder(tmp_path)
    assert ds.images.shape == (2, 64, 64, 3) and ds.images.dtype == np.uint8
    assert ds.captions == ["a red square", "a blue thing, big"]
    assert ds.attrs is None
    assert tuple(ds.images[0, 10, 10]) == (255, 0, 0)
    assert tuple(ds.images[1, 10, 10]) == (0, 0, 255)


@pytest.mark.parametrize(
    "csv_text, message",
    [
        ("name,text\none.png,a red square\n", "columns 'file,caption'"),
        ("file,caption\n", "no rows"),
        ("file,caption\nmissing.png,a cat\n", "'missing.png'"),
        ("file,caption\none.png,\n", "line 2"),
    ],
)
def test_bad_csv_gives_clear_error(tmp_path, csv_text, message):
    _write_png(tmp_path / "one.png", (64, 64), (0, 0, 0))
    (tmp_path / "captions.csv").write_text(csv_text)
    with pytest.raises(CiarsimError, match=message):
        load_folder(tmp_path)


def test_missing_folder_and_csv(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="captions.csv"):
        load_folder(tmp_path)


def test_unreadable_image(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "captions.csv").write_text("file,caption\nbad.png,a thing\n")
    with pytest.raises(DataError, match="cannot read image"):
        load_folder(tmp_path)
