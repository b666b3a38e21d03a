"""Converting a CTranslate2 Whisper model into a standard openai-whisper checkpoint, offline.

Both engines run on the same weights: the bundled model is a CTranslate2 directory (``model.bin``,
``config.json``, ``tokenizer.json``, ``vocabulary.txt``), and openai-whisper loads a ``.pt`` file holding
``{"dims": {...}, "model_state_dict": {...}}``. The two hold the same tensors under other names, except
that CTranslate2 fuses the query/key/value projections of self-attention into one matrix (and key/value
of cross-attention into another). openai-whisper's key projection has no bias; CTranslate2 stores zeros
there, and any constant key bias would cancel in the softmax anyway, so dropping it changes nothing.

``model.bin`` layout (little-endian, binary version 6, what CTranslate2 3.x and 4.x write)::

    u32 version | str spec name | u32 spec revision | u32 variable count
    per variable: str name | u8 rank | u32 dims[rank] | u8 dtype id | u32 byte count | raw bytes
    u32 alias count | per alias: str alias | str target
    str = u16 length (including a trailing NUL) + UTF-8 bytes + NUL

Quantised models (``int8``/``int16`` weights with a ``weight_scale`` per output row) are dequantised to
float32; float16 weights stay float16, as in the official checkpoints. The alignment heads from
``config.json`` (needed for word timings) are written under the extra key ``alignment_heads`` in the
encoding ``Whisper.set_alignment_heads`` takes; ``whisper.load_model`` ignores the key and still loads
the file, ``pipeline.asr.engines.openai_whisper.load_openai_checkpoint`` applies it.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pipeline.errors import ModelError

log = logging.getLogger(__name__)

#: the model.bin layout this reader understands
SUPPORTED_BINARY_VERSION = 6
#: CTranslate2's DataType enum, in order
_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SIDE_FILES = ("config.json", "vocabulary.txt")


@dataclass(frozen=True)
class Ct2Model:
    """The parsed contents of a CTranslate2 ``model.bin``: spec name, revision, named arrays, aliases."""

    spec: str
    revision: int
    variables: Mapping[str, np.ndarray]
    aliases: Mapping[str, str]

    def get(self, name: str) -> np.ndarray:
        """A variable by name (following an alias), as stored; ``ModelError`` when it is missing."""
        name = self.aliases.get(name, name)
        try:
            return self.variables[name]
        except KeyError:
            raise ModelError(f"the CTranslate2 model has no tensor {name!r}") from None

    def weight(self, prefix: str, suffix: str = "weight") -> np.ndarray:
        """A weight as floating point: int8/int16 storage is divided by its per-row ``weight_scale``."""
        value = self.get(f"{prefix}/{suffix}")
        if value.dtype.kind in "iu" and suffix == "weight":
            scale = self.get(f"{prefix}/weight_scale").astype(np.float32)
            return value.astype(np.float32) / scale.reshape(-1, *([1] * (value.ndim - 1)))
        if value.dtype not in (np.float16, np.float32):
            return value.astype(np.float32)
        return value

    def scalar(self, name: str) -> int:
        return int(self.get(name).reshape(-1)[0])

    def count_layers(self, stack: str) -> int:
        n = 0
        while f"{stack}/layer_{n}/ffn/linear_0/bias" in self.variables:
            n += 1
        return n


def _read_exact(fh: BinaryIO, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ModelError(f"model.bin ends early while reading {what}: truncated or not a CTranslate2 model")
    return data


def _u(fh: BinaryIO, fmt: str, what: str) -> int:
    return int(struct.unpack("<" + fmt, _read_exact(fh, struct.calcsize(fmt), what))[0])


def _string(fh: BinaryIO, what: str) -> str:
    length = _u(fh, "H", what)
    raw = _read_exact(fh, length, what)
    return raw.rstrip(b"\0").decode("utf-8", errors="strict")


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin`` (binary version 6) into named numpy arrays.

    It reads any model type (the spec name is returned, not checked); it does not read the side files.
    bfloat16 tensors come back as float32 (numpy has no bfloat16).

    >>> read_ct2_model(Path("data/models/faster-whisper-base/model.bin")).spec   # doctest: +SKIP
    'WhisperSpec'
    """
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ModelError(f"cannot open {path}: {exc}") from exc
    with fh:
        version = _u(fh, "I", "the binary version")
        if version != SUPPORTED_BINARY_VERSION:
            raise ModelError(
                f"{path} has CTranslate2 binary version {version}; only version {SUPPORTED_BINARY_VERSION} "
                "(written by CTranslate2 3.x and 4.x) can be converted"
            )
        try:
            spec = _string(fh, "the spec name")
        except UnicodeDecodeError as exc:
            raise ModelError(f"{path} is not a CTranslate2 model (unreadable spec name)") from exc
        revision = _u(fh, "I", "the spec revision")
        count = _u(fh, "I", "the variable count")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = _string(fh, "a variable name")
            rank = _u(fh, "B", f"the rank of {name}")
            shape = tuple(_u(fh, "I", f"the shape of {name}") for _ in range(rank))
            type_id = _u(fh, "B", f"the dtype of {name}")
            nbytes = _u(fh, "I", f"the size of {name}")
            if type_id >= len(_DTYPES):
                raise ModelError(f"{path}: tensor {name} has an unknown dtype id {type_id}")
            dtype = _DTYPES[type_id]
            raw = bytearray(nbytes)  # writable, so that torch can share it without a copy
            if fh.readinto(raw) != nbytes:
                raise ModelError(f"model.bin ends early inside {name}: truncated or not a CTranslate2 model")
            if dtype == "bfloat16":  # the upper half of a float32
                halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                array = halves.view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            expected = int(np.prod(shape)) if shape else 1
            if array.size != expected:
                raise ModelError(f"{path}: tensor {name} holds {array.size} values for shape {shape}")
            variables[name] = array.reshape(shape)
        aliases: dict[str, str] = {}
        for _ in range(_u(fh, "I", "the alias count")):
            alias = _string(fh, "an alias")
            aliases[alias] = _string(fh, "an alias target")
    return Ct2Model(spec=spec, revision=revision, variables=variables, aliases=aliases)


def _check_source(src_dir: Path) -> dict[str, Any]:
    if not src_dir.is_dir():
        raise ModelError(f"{src_dir} is not a directory (expected a CTranslate2 Whisper model directory)")
    missing = [name for name in ("model.bin", *_SIDE_FILES) if not (src_dir / name).is_file()]
    if missing:
        raise ModelError(f"{src_dir} is not a CTranslate2 Whisper directory: missing {', '.join(missing)}")
    try:
        config = json.loads((src_dir / "config.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{src_dir / 'config.json'} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelError(f"{src_dir / 'config.json'} is not a JSON object")
    return config


def _dims(model: Ct2Model) -> dict[str, int]:
    conv1 = model.get("encoder/conv1/weight")
    enc_pos = model.get("encoder/position_encodings/encodings")
    embed = model.get("decoder/embeddings/weight")
    dec_pos = model.get("decoder/position_encodings/encodings")
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(enc_pos.shape[0]),
        "n_audio_state": int(enc_pos.shape[1]),
        "n_audio_head": model.scalar("encoder/num_heads"),
        "n_audio_layer": model.count_layers("encoder"),
        "n_vocab": int(embed.shape[0]),
        "n_text_ctx": int(dec_pos.shape[0]),
        "n_text_state": int(embed.shape[1]),
        "n_text_head": model.scalar("decoder/num_heads"),
        "n_text_layer": model.count_layers("decoder"),
    }
    if not dims["n_audio_layer"] or not dims["n_text_layer"]:
        raise ModelError("the CTranslate2 model has no encoder or no decoder layers")
    return dims


def _linear(model: Ct2Model, src: str, dst: str, *, bias: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{dst}.weight", model.weight(src)
    if bias:
        yield f"{dst}.bias", model.weight(src, "bias")


def _norm(model: Ct2Model, src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{dst}.weight", model.weight(src, "gamma")
    yield f"{dst}.bias", model.weight(src, "beta")


def _attention(
    model: Ct2Model, src: str, dst: str, state: int, *, cross: bool
) -> Iterator[tuple[str, np.ndarray]]:
    """One attention block; CTranslate2 fuses q|k|v (self) or k|v (cross) along the output rows."""
    if cross:
        yield from _linear(model, f"{src}/linear_0", f"{dst}.query")
        kv_w, kv_b = model.weight(f"{src}/linear_1"), model.weight(f"{src}/linear_1", "bias")
        parts_w = {"key": kv_w[:state], "value": kv_w[state:]}
        parts_b = {"value": kv_b[state:]}
        out = f"{src}/linear_2"
    else:
        qkv_w, qkv_b = model.weight(f"{src}/linear_0"), model.weight(f"{src}/linear_0", "bias")
        parts_w = {"query": qkv_w[:state], "key": qkv_w[state: 2 * state], "value": qkv_w[2 * state:]}
        parts_b = {"query": qkv_b[:state], "value": qkv_b[2 * state:]}
        out = f"{src}/linear_1"
    for name, weight in parts_w.items():
        if weight.shape != (state, state):
            raise ModelError(f"{src}: a fused projection part has shape {weight.shape}, not {(state, state)}")
        yield f"{dst}.{name}.weight", weight
        if name in parts_b:
            yield f"{dst}.{name}.bias", parts_b[name]
    yield from _linear(model, out, f"{dst}.out")
    yield from _norm(model, f"{src}/layer_norm", f"{dst}_ln")


def _block(
    model: Ct2Model, src: str, dst: str, state: int, *, decoder: bool
) -> Iterator[tuple[str, np.ndarray]]:
    yield from _attention(model, f"{src}/self_attention", f"{dst}.attn", state, cross=False)
    if decoder:
        yield from _attention(model, f"{src}/attention", f"{dst}.cross_attn", state, cross=True)
    yield from _linear(model, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
    yield from _linear(model, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    yield from _norm(model, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")


def whisper_state_dict(model: Ct2Model, dims: Mapping[str, int]) -> dict[str, np.ndarray]:
    """openai-whisper state-dict entries (name → array) for a parsed CTranslate2 Whisper model."""
    out: dict[str, np.ndarray] = {}
    out.update(_linear(model, "encoder/conv1", "encoder.conv1"))
    out.update(_linear(model, "encoder/conv2", "encoder.conv2"))
    out["encoder.positional_embedding"] = model.weight("encoder/position_encodings", "encodings")
    for i in range(dims["n_audio_layer"]):
        out.update(_block(model, f"encoder/layer_{i}", f"encoder.blocks.{i}", dims["n_audio_state"],
                          decoder=False))
    out.update(_norm(model, "encoder/layer_norm", "encoder.ln_post"))
    out["decoder.token_embedding.weight"] = model.weight("decoder/embeddings")
    out["decoder.positional_embedding"] = model.weight("decoder/position_encodings", "encodings")
    for i in range(dims["n_text_layer"]):
        out.update(_block(model, f"decoder/layer_{i}", f"decoder.blocks.{i}", dims["n_text_state"],
                          decoder=True))
    out.update(_norm(model, "decoder/layer_norm", "decoder.ln"))
    return out


def encode_alignment_heads(heads: Sequence[Sequence[int]], n_layer: int, n_head: int) -> bytes:
    """(layer, head) pairs as the gzip+base85 boolean mask that ``Whisper.set_alignment_heads`` takes."""
    mask = np.zeros((n_layer, n_head), dtype=bool)
    for layer, head in heads:
        if not (0 <= int(layer) < n_layer and 0 <= int(head) < n_head):
            raise ModelError(f"alignment head ({layer}, {head}) is outside {n_layer} layers x {n_head} heads")
        mask[int(layer), int(head)] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def convert_ct2_to_openai(src_dir: Path, dst: Path) -> Path:
    """Write the CTranslate2 Whisper model in ``src_dir`` as an openai-whisper checkpoint at ``dst``.

    The file is ``torch.save({"dims", "model_state_dict", "alignment_heads"})``, loadable with
    ``whisper.load_model(str(dst))``; it is written to a temporary name and renamed, so a reader never
    sees half a file. The tokenizer is not converted: openai-whisper brings its own, so the source must
    use Whisper's standard vocabulary (checked by size). Raises ``ModelError`` for a directory that is not
    a CTranslate2 Whisper model, an unsupported binary version, or missing tensors.

    >>> convert_ct2_to_openai(Path("data/models/faster-whisper-base"), Path("base.pt"))  # doctest: +SKIP
    PosixPath('base.pt')
    """
    import torch

    config = _check_source(src_dir)
    model = read_ct2_model(src_dir / "model.bin")
    if model.spec != "WhisperSpec":
        raise ModelError(f"{src_dir} holds a CTranslate2 {model.spec or 'unnamed'} model, not Whisper")
    dims = _dims(model)
    with (src_dir / "vocabulary.txt").open("r", encoding="utf-8") as fh:
        vocab_size = sum(1 for _ in fh)
    if vocab_size != dims["n_vocab"]:
        log.warning("%s: vocabulary.txt has %d entries, the embedding %d rows", src_dir, vocab_size,
                    dims["n_vocab"])
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in
             whisper_state_dict(model, dims).items()}
    checkpoint: dict[str, Any] = {"dims": dims, "model_state_dict": state}
    heads = config.get("alignment_heads")
    if heads:
        checkpoint["alignment_heads"] = encode_alignment_heads(
            heads, dims["n_text_layer"], dims["n_text_head"])
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise ModelError(f"cannot write {dst}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("converted %s (%d tensors) to %s", src_dir, len(state), dst)
    return dst
