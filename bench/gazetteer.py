"""How fast the gazetteer resolves a location: prints microseconds per transcript and transcripts/s.

Run: ``.venv/bin/python bench/gazetteer.py [--n 3000]``. The texts are made-up caller turns of about 300
characters (clean, sound-alike, Traditional, English, and with no place at all), so that every path of
``Gazetteer.resolve`` is exercised. The extractor as a whole aims at 1,000 transcripts/s per core; the
location part should stay well under 0.5 ms a transcript.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.extractors.gazetteer import Gazetteer  # noqa: E402

FILLER = (
    "喂你好，我想反映一个问题，就是我们这边最近一直有这个情况，already好几个星期了，物业也不管，"
    "打了好多次电话都没有人来处理，家里还有老人和孩子，晚上根本睡不着觉，希望你们能尽快派人过来看一下，"
    "我的电话是一三九一一零二三四五六，我姓王，谢谢你们了，麻烦尽快给个答复，"
)
PLACES = (
    "我住在朝阳区和平街街道煤炭科技苑社区3号楼2单元，",
    "我是海电区中官村这边的，",
    "我家在回龙观，龙泽园那个小区，",
    "北京市豐臺區右安門街道翠林小區五號樓，",
    "通州永顺真西街十八号，",
    "大兴区西红门村，",
    "我在18里店那边住，",
    "",
)
ENGLISH = (
    "Hello, I live at 42 Maple Avenue in Chaoyang District near Sanlitun, and the street light outside "
    "has been broken for two weeks. My neighbour at 1830 Oak Street says the same. Please send someone. "
) * 2


def texts() -> list[tuple[str, str]]:
    out = []
    for i, place in enumerate(PLACES):
        text = (FILLER[: 60 + 20 * i] + place + FILLER)[:300]
        out.append((text, "zh"))
    out.append((ENGLISH[:300], "en"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="resolutions per text")
    args = parser.parse_args()
    start = time.perf_counter()
    gaz = Gazetteer.load()
    print(f"load: {(time.perf_counter() - start) * 1000:.0f} ms (version {gaz.version}, "
          f"{len(gaz.entries)} places, {len(gaz.variants)} written forms)")
    per_text = []
    for text, language in texts():
        gaz.resolve(text, language=language)  # warm the reading caches
        t0 = time.process_time()  # CPU time: other processes on the machine do not count
        for _ in range(args.n):
            gaz.resolve(text, language=language)
        us = (time.process_time() - t0) / args.n * 1e6
        per_text.append(us)
        loc = gaz.resolve(text, language=language)
        print(f"{us:7.1f} µs  {len(text):3d} chars  {language}  → {loc.district} / {loc.street} / "
              f"{loc.community} / {loc.address}")
    mean = statistics.mean(per_text)
    print(f"mean {mean:.1f} µs CPU per transcript, max {max(per_text):.1f} µs "
          f"→ {1e6 / mean:,.0f} transcripts/s")


if __name__ == "__main__":
    main()
