"""CTranslate2 → openai-whisper conversion: the real bundled model round trip, and sources it must refuse."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.asr.convert import (
    SUPPORTED_BINARY_VERSION,
    convert_ct2_to_openai,
    encode_alignment_heads,
    read_ct2_model,
)
from pipeline.asr.model_store import bundled_model_dir
from pipeline.errors import ModelError

BASE_DIMS = {
    "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8, "n_audio_layer": 6,
    "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6,
}


# -- a small model.bin in CTranslate2's own layout, for the sources that must be refused ---------------------
def _string(value: str) -> bytes:
    raw = value.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2_file(
    path: Path, variables: dict[str, np.ndarray], *, spec: str = "WhisperSpec", version: int = 6,
    declared: int | None = None,
) -> Path:
    """A model.bin holding ``variables`` (float32 or float16), with a chosen version and variable count."""
    ids = {np.dtype(np.float32): 0, np.dtype(np.float16): 4}
    out = [struct.pack("<I", version), _string(spec), struct.pack("<I", 3),
           struct.pack("<I", len(variables) if declared is None else declared)]
    for name, value in variables.items():
        out += [_string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", d) for d in value.shape),
                struct.pack("<BI", ids[value.dtype], value.nbytes), value.tobytes()]
    out.append(struct.pack("<I", 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(out))
    return path


def ct2_dir(root: Path, variables: dict[str, np.ndarray], **kwargs: object) -> Path:
    """A directory shaped like a CTranslate2 Whisper model around a hand-written model.bin."""
    write_ct2_file(root / "model.bin", variables, **kwargs)  # type: ignore[arg-type]
    (root / "config.json").write_text(json.dumps({"alignment_heads": [[0, 0]]}))
    (root / "vocabulary.txt").write_text("a\nb\n")
    return root


def test_reader_reads_names_shapes_values_and_dtypes(tmp_path: Path) -> None:
    q = np.arange(6, dtype=np.float32).reshape(2, 3)
    h = np.array([0.5, -2.0], dtype=np.float16)
    model = read_ct2_model(write_ct2_file(tmp_path / "model.bin", {"a/q": q, "b/h": h}, spec="TestSpec"))
    assert model.spec == "TestSpec"
    assert model.revision == 3
    assert np.array_equal(model.get("a/q"), q)
    assert model.get("b/h").dtype == np.float16
    assert np.array_equal(model.get("b/h"), h)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "missing model.bin"),
        (lambda d: ct2_dir(d, {}, version=SUPPORTED_BINARY_VERSION + 1), "binary version 7"),
        (lambda d: ct2_dir(d, {}, version=5), "binary version 5"),
        (lambda d: ct2_dir(d, {"x": np.zeros(2, np.float32)}, spec="TransformerSpec"), "not Whisper"),
        (lambda d: ct2_dir(d, {"encoder/conv1/weight": np.zeros((4, 2, 3), np.float32)}), "has no tensor"),
        (lambda d: ct2_dir(d, {"x": np.zeros(2, np.float32)}, declared=3), "ends early"),
    ],
    ids=["empty-dir", "newer-version", "older-version", "not-whisper", "missing-tensors", "truncated"],
)
def test_sources_that_cannot_be_converted_are_refused(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    src = make(tmp_path / "src")
    src.mkdir(exist_ok=True)
    with pytest.raises(ModelError, match=message):
        convert_ct2_to_openai(src, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
    assert not list(tmp_path.glob(".out.pt*"))


def test_a_file_is_not_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x06\0\0\0")
    with pytest.raises(ModelError, match="not a directory"):
        convert_ct2_to_openai(tmp_path / "model.bin", tmp_path / "out.pt")


def test_alignment_heads_outside_the_model_are_refused() -> None:
    with pytest.raises(ModelError, match="outside 6 layers"):
        encode_alignment_heads([[6, 0]], 6, 8)


# -- the real bundled model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled(model_cache_dir: Path) -> Path:
    return bundled_model_dir(model_cache_dir)


@pytest.fixture(scope="module")
def converted(bundled: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_ct2_to_openai(bundled, tmp_path_factory.mktemp("convert") / "base.pt")


@pytest.mark.model
def test_converted_bundled_model_loads_in_openai_whisper(converted: Path, bundled: Path) -> None:
    import torch
    import whisper

    checkpoint = torch.load(converted, map_location="cpu", weights_only=True)
    assert checkpoint["dims"] == BASE_DIMS
    model = whisper.load_model(str(converted), device="cpu")  # strict: every key present, no extra
    assert model.is_multilingual
    ct2 = read_ct2_model(bundled / "model.bin")
    sd = model.state_dict()
    fused = ct2.get("decoder/layer_2/self_attention/linear_0/weight").astype(np.float32)
    assert np.array_equal(sd["decoder.blocks.2.attn.query.weight"].numpy(), fused[:512])
    assert np.array_equal(sd["decoder.blocks.2.attn.key.weight"].numpy(), fused[512:1024])
    assert np.array_equal(sd["decoder.blocks.2.attn.value.weight"].numpy(), fused[1024:])
    kv_bias = ct2.get("decoder/layer_5/attention/linear_1/bias").astype(np.float32)
    assert np.array_equal(sd["decoder.blocks.5.cross_attn.value.bias"].numpy(), kv_bias[512:])
    assert np.array_equal(sd["encoder.blocks.0.mlp.2.weight"].numpy(),
                          ct2.get("encoder/layer_0/ffn/linear_1/weight").astype(np.float32))
    # the encoder's positions are Whisper's fixed sinusoids: the mapping put the right table there
    sinusoids = whisper.model.sinusoids(1500, 512).numpy()
    assert np.allclose(sd["encoder.positional_embedding"].numpy(), sinusoids, atol=2e-3)
    # the output projection is tied to the token embedding, as CTranslate2's alias says
    assert ct2.aliases.get("decoder/projection/weight") == "decoder/embeddings/weight"


@pytest.mark.model
def test_alignment_heads_come_from_the_source_config(converted: Path, bundled: Path) -> None:
    from pipeline.asr.engines.openai_whisper import load_openai_checkpoint

    heads = json.loads((bundled / "config.json").read_text())["alignment_heads"]
    model = load_openai_checkpoint(converted)
    got = sorted(map(tuple, model.alignment_heads.indices().T.tolist()))
    assert got == sorted(map(tuple, heads))
    assert len(got) < 6 * 8 // 2  # not openai-whisper's default (every head of the upper half)


@pytest.mark.model
def test_quantised_source_is_dequantised(bundled: Path) -> None:
    """An int8 weight with its per-row scale (CTranslate2's int8 layout) becomes the float it stands for."""
    from pipeline.asr.convert import Ct2Model

    ct2 = read_ct2_model(bundled / "model.bin")
    weight = ct2.get("encoder/layer_1/ffn/linear_0/weight").astype(np.float32)
    scale = 127.0 / np.abs(weight).max(axis=1)
    quantised = np.round(weight * scale[:, None]).astype(np.int8)
    variables = {**ct2.variables, "encoder/layer_1/ffn/linear_0/weight": quantised,
                 "encoder/layer_1/ffn/linear_0/weight_scale": scale.astype(np.float32)}
    restored = Ct2Model(ct2.spec, ct2.revision, variables, ct2.aliases).weight("encoder/layer_1/ffn/linear_0")
    assert restored.dtype == np.float32
    assert np.abs(restored - weight).max() <= 0.5 / scale.min() + 1e-6


@pytest.mark.model
def test_conversion_of_a_copy_with_a_missing_side_file_is_refused(bundled: Path, tmp_path: Path) -> None:
    src = tmp_path / "copy"
    src.mkdir()
    (src / "model.bin").symlink_to(bundled / "model.bin")
    shutil.copyfile(bundled / "config.json", src / "config.json")
    with pytest.raises(ModelError, match="missing vocabulary.txt"):
        convert_ct2_to_openai(src, tmp_path / "out.pt")
