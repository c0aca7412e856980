"""Speech corpus recipes: names users have -> labels and speakers; speaker-independent splits."""

from __future__ import annotations

import pytest

from moodlens.data.speech import (drop_duplicates, expand_speakers, label_counts, load_speech_corpus, select_speakers,
                                  speaker_split)
from moodlens.errors import DataError

from voicekit import RAVDESS, touch

CASES = {
    "ravdess": [
        ("Actor_01/03-01-01-01-01-01-01.wav", "neutral", "01"),
        ("Actor_01/03-01-02-02-01-02-01.flac", "calm", "01"),
        ("Actor_12/03-01-06-02-02-01-12.wav", "fear", "12"),
        ("Actor_12/03-01-08-01-01-01-12.wav", "surprise", "12"),
        ("Audio_Song_Actors_01-24/Actor_02/03-02-05-01-02-02-02.wav", "angry", "02"),  # song
    ],
    "cremad": [
        ("AudioWAV/1001_DFA_ANG_XX.wav", "angry", "1001"),
        ("AudioWAV/1002_IEO_HAP_HI.flac", "happy", "1002"),
        ("AudioWAV/1091_TSI_NEU_X.wav", "neutral", "1091"),
        ("AudioWAV/1040_ITH_DIS_LO.wav", "disgust", "1040"),
    ],
    "tess": [
        ("OAF_angry/OAF_back_angry.wav", "angry", "OAF"),
        ("OAF_neutral/OA_bite_neutral.wav", "neutral", "OAF"),  # truncated speaker prefix
        ("YAF_pleasant_surprised/YAF_back_ps.wav", "surprise", "YAF"),
        ("OAF_Pleasant_surprise/OAF_bath_ps.flac", "surprise", "OAF"),
        ("OAF_Fear/OAF_beg_fear.wav", "fear", "OAF"),
        ("YAF_sad/YAF_germ_sad.wav", "sad", "YAF"),
    ],
    "savee": [
        ("ALL/DC_a01.wav", "angry", "DC"),
        ("ALL/JE_sa15.wav", "sad", "JE"),
        ("ALL/KL_su03.flac", "surprise", "KL"),
        ("AudioData/JK/n30.wav", "neutral", "JK"),  # original Surrey layout
        ("AudioData/DC/d02.wav", "disgust", "DC"),
    ],
    "emodb": [
        ("wav/03a01Fa.wav", "happy", "03"),
        ("wav/16b10Lb.wav", "boredom", "16"),
        ("wav/08a02Wc.flac", "angry", "08"),
        ("wav/11b03Td.wav", "sad", "11"),
    ],
}
NOISE = ["readme.txt", "notes/hello.wav", "Actor_01/01-01-03-01-01-01-01.mp4", "AudioData/info.wav"]


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_recipe_parses_labels_and_speakers(tmp_path, corpus):
    touch(tmp_path, [name for name, _, _ in CASES[corpus]] + NOISE)
    items = load_speech_corpus(corpus, tmp_path)
    got = {str(i.path.relative_to(tmp_path)): (i.label, i.speaker, i.corpus) for i in items}
    assert got == {name: (label, speaker, corpus) for name, label, speaker in CASES[corpus]}


def test_ravdess_channels_and_info(tmp_path):
    touch(tmp_path, [n for n, _, _ in CASES["ravdess"]])
    speech = load_speech_corpus("ravdess", tmp_path, channels=("speech",))
    assert len(speech) == 4 and {i.info["channel"] for i in speech} == {"speech"}
    calm = next(i for i in speech if i.label == "calm")
    assert calm.info == {"channel": "speech", "intensity": "strong", "statement": 1, "repetition": 2, "sex": "male"}
    with pytest.raises(DataError, match="none of vocal channel song"):
        load_speech_corpus("ravdess", tmp_path / "Actor_01", channels=("song",))


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_folder_with_no_matching_names_is_a_clear_error(tmp_path, corpus):
    touch(tmp_path, ["hello.wav", "notes.txt", "sub/track01.flac"])
    with pytest.raises(DataError, match=rf"{tmp_path}: not a .* folder: 2 audio files, none named like"):
        load_speech_corpus(corpus, tmp_path)


def test_missing_or_empty_folder_and_unknown_corpus(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_speech_corpus("emodb", tmp_path / "nowhere")
    with pytest.raises(DataError, match="no audio files"):
        load_speech_corpus("savee", tmp_path)
    with pytest.raises(DataError, match="unknown speech corpus 'iemocap'"):
        load_speech_corpus("iemocap", tmp_path)
    touch(tmp_path, ["03a01Fa.wav"])  # "EMO-DB" and "emo_db" spellings are accepted too
    assert len(load_speech_corpus("EMO-DB", tmp_path)) == 1


def _items(tmp_path):
    touch(tmp_path / "r", [f"Actor_{a:02d}/03-01-0{e}-01-01-01-{a:02d}.wav" for a in range(1, 9) for e in range(1, 9)])
    touch(tmp_path / "s", [f"{s}_{c}01.wav" for s in ("DC", "JE", "JK", "KL") for c in ("a", "n", "sa")])
    return load_speech_corpus("ravdess", tmp_path / "r") + load_speech_corpus("savee", tmp_path / "s")


def test_speaker_split_holds_out_whole_speakers(tmp_path):
    items = _items(tmp_path)
    for seed in range(5):
        train, val = speaker_split(items, val_fraction=0.25, seed=seed)
        assert not {i.speaker_key for i in train} & {i.speaker_key for i in val}
        assert len(train) + len(val) == len(items)
        assert {i.corpus for i in val} == {"ravdess", "savee"}  # every corpus on both sides
    train, val = speaker_split(items, val_speakers=["ravdess:07", "8", "KL"])
    assert {i.speaker_key for i in val} == {"ravdess:07", "ravdess:08", "savee:KL"}
    with pytest.raises(DataError, match="only one speaker"):
        speaker_split([i for i in items if i.speaker == "DC"])


def test_speaker_selection_with_ranges(tmp_path):
    items = _items(tmp_path)
    assert expand_speakers(["01-03", 7, "DC"]) == {"1", "2", "3", "7", "DC"}
    picked = select_speakers([i for i in items if i.corpus == "ravdess"], ["02-03", 8])
    assert sorted({i.speaker for i in picked}) == ["02", "03", "08"]
    with pytest.raises(DataError, match="none of the speakers"):
        select_speakers(items, ["99"], "test")


def test_duplicates_are_dropped(tmp_path):
    touch(tmp_path, [])
    for name, data in [("Actor_07/03-01-03-01-02-01-07.wav", b"same"), ("Actor_07/03-01-03-01-02-02-07.wav", b"same"),
                       ("Actor_07/03-01-03-01-01-01-07.wav", b"other")]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    kept, dropped = drop_duplicates(load_speech_corpus("ravdess", tmp_path))
    assert len(kept) == 2 and len(dropped) == 1
    assert dropped[0][0].name == "03-01-03-01-02-02-07.wav"


def test_shared_corpora_counts():
    if not RAVDESS.exists():
        pytest.skip(f"shared data not present: {RAVDESS}")
    ravdess = load_speech_corpus("ravdess", RAVDESS)
    assert len(ravdess) == 1200 and label_counts(ravdess)["neutral"] == 80
    kept, dropped = drop_duplicates(ravdess)
    assert [p.name for p, _ in dropped] == ["03-01-03-01-02-02-07.flac"]
    emodb = load_speech_corpus("emodb", RAVDESS.parent / "emodb")
    assert label_counts(emodb) == {"angry": 127, "boredom": 81, "disgust": 46, "fear": 69, "happy": 71,
                                   "neutral": 79, "sad": 62}
    savee = load_speech_corpus("savee", RAVDESS.parent / "savee")
    assert len(savee) == 480 and sorted({i.speaker for i in savee}) == ["DC", "JE", "JK", "KL"]
