#!/usr/bin/env python3
"""Extraction speed: ticket drafts per second on one core, over generated hotline transcripts.

    python bench/extract.py [--calls 400] [--seconds 5] [--seed 7]

The transcripts are made here from templates (problems, places, names, spoken phone numbers, the
agent's script; stereo and mono; Mandarin, Traditional characters and English), so the benchmark needs
no data files. Rules and the gazetteer are loaded before timing starts, as a worker does.
Prints one line: ``extract: N transcripts, X transcripts/s per core (mean Y ms, p95 Z ms)``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.extractors import extract_ticket, warm_up  # noqa: E402
from pipeline.transcript import Segment, Transcript  # noqa: E402

ZH_PROBLEMS = [
    "我们小区从昨天晚上开始停水，到现在还没来水", "楼上卫生间漏水，把我家天花板都泡坏了",
    "楼下饭店油烟特别大，窗户都不敢开", "隔壁装修噪音太大，早上七点就开始砸墙",
    "小区门口马路上有个大坑，晚上骑车特别危险", "家里暖气一点都不热，屋里才十几度",
    "我们这片突然停电了，冰箱里的东西都要坏了", "楼道里有很大的煤气味，怕是漏气了",
    "健身房办了预付卡花了八千块，现在老板跑路了", "公司拖欠工资三个月了，一共两万多块钱",
    "我想咨询一下孩子上小学入学需要什么材料", "我们是老楼想加装电梯，一楼住户不同意",
    "小区垃圾好几天没人清运了，臭得不行", "路灯坏了好几盏，晚上黑漆漆的",
    "物业费交了物业什么都不管", "对面楼着火了，冒了好多黑烟", "大风把树刮倒了横在马路上",
]
ZH_DETAILS = ["家里有刚出生的孩子", "家里有个七十多岁的老人", "我爱人怀孕了", "我母亲坐轮椅", "", "", ""]
ZH_PLACES = ["我是海淀区中关村街道的", "我们是朝阳区和平街街道煤炭科技苑社区的", "我住在东城区东花市街道",
             "丰台区方庄这边", "通州区永顺镇", "昌平区回龙观", "西城区金融街街道", ""]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
DIGITS_ZH = "零幺二三四五六七八九"
EN_PROBLEMS = [
    "there's a huge pothole outside {n} Maple Avenue and someone is going to get hurt",
    "our heating has been off for three days in the whole building",
    "the restaurant downstairs blows fumes into our window every night",
    "my upstairs neighbour plays loud music until two in the morning",
    "the water has been off since yesterday morning", "a tree fell across the road after the storm",
    "I'd like to know how to apply for a residential parking permit",
    "the gym took twelve hundred dollars for a membership and won't refund me",
]
EN_NAMES = ["Sarah Collins", "James Wilson", "Emily Clark", "David Chen", "Maria Lopez", "Tom Becker"]
EN_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _phone(rng: random.Random) -> str:
    return rng.choice(["13", "15", "18", "19"]) + "".join(rng.choice("0123456789") for _ in range(9))


def _spoken_zh(number: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.5:
        return "".join(DIGITS_ZH[int(d)] for d in number)
    if style < 0.8:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    return "".join(DIGITS_ZH[int(d)] if i % 2 else d for i, d in enumerate(number))


def make_call(rng: random.Random) -> Transcript:
    if rng.random() < 0.2:
        number = "555" + "".join(rng.choice("0123456789") for _ in range(7))
        spoken = ", ".join(" ".join(EN_DIGITS[int(d)] for d in part)
                           for part in (number[:3], number[3:6], number[6:]))
        turns = [
            ("agent", "City services hotline, how can I help you?"),
            ("caller", f"Hi, this is {rng.choice(EN_NAMES)}. "
                       + rng.choice(EN_PROBLEMS).format(n=rng.randint(2, 200)) + "."),
            ("agent", "What number can we reach you on?"),
            ("caller", spoken.capitalize() + "."),
            ("agent", "Thank you, I have logged your request."),
        ]
        language = "en"
    else:
        problem = rng.choice(ZH_PROBLEMS)
        detail = rng.choice(ZH_DETAILS)
        place = rng.choice(ZH_PLACES)
        caller = "，".join(p for p in (f"你好{place}" if place else "你好", problem, detail) if p) + "。"
        contact = f"我姓{rng.choice(SURNAMES)}，电话{_spoken_zh(_phone(rng), rng)}。"
        turns = [
            ("agent", "您好，市民服务热线，请问有什么可以帮您？"), ("caller", caller),
            ("agent", "您贵姓？联系电话是多少？"), ("caller", contact),
            ("agent", "好的，您反映的问题已经记录，我们会尽快转交相关部门办理，请保持电话畅通。"),
        ]
        if rng.random() < 0.3:
            turns = [(s, t.replace("，", "").replace("。", "")) for s, t in turns]  # no punctuation
        if rng.random() < 0.2:
            turns = [(s, _to_traditional(t)) for s, t in turns]
        language = "zh"
    mono = rng.random() < 0.5
    segments, t = [], 0.0
    for speaker, text in turns:
        length = len(text) / (4.0 if language == "zh" else 14.0)
        segments.append(Segment(t, t + length, "mixed" if mono else speaker, text))
        t += length + 0.4
    return Transcript(language=language, segments=tuple(segments), duration=t)


_T = str.maketrans("们这里话电号码来楼门问题还没气热东区边让请帮录转办处",
                   "們這裡話電號碼來樓門問題還沒氣熱東區邊讓請幫錄轉辦處")


def _to_traditional(text: str) -> str:
    return text.translate(_T)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=5.0, help="keep cycling the calls for at least this long")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    calls = [make_call(rng) for _ in range(args.calls)]
    rules = warm_up()
    received = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    extract_ticket(calls[0], received_at=received, rules=rules)  # warm: gazetteer, converters, cn2an
    times: list[float] = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    while True:
        for call in calls:
            t0 = time.perf_counter()
            extract_ticket(call, received_at=received, rules=rules)
            times.append(time.perf_counter() - t0)
        if time.perf_counter() - started >= args.seconds:
            break
    cpu = time.process_time() - cpu_started
    n = len(times)
    p95 = sorted(times)[int(0.95 * (n - 1))]
    print(f"extract: {n} transcripts ({args.calls} distinct), {n / cpu:,.0f} transcripts/s per core "
          f"(mean {statistics.mean(times) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
