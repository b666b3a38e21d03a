"""Beijing places in a transcript: district, street office or town, community, and the address remainder.

What it finds
    - the 16 districts (朝阳区, or 海淀 / 东城 said alone; 朝阳 alone only in a context that makes it a
      place: 在朝阳, 朝阳这边, 北京朝阳), street offices, towns, townships and area offices from the data
      file ``rules/gazetteer.yaml`` (about 340 names), with their aliases (回龙观 → 回龙观街道, 崇外 →
      崇文门外街道, 18里店 → 十八里店地区);
    - the same names written with the wrong characters by speech recognition, recovered by sound
      (海电区 → 海淀区, 和平节 → 和平街街道, 东花10街道 → 东花市街道, 锋排区 → 丰台区): Traditional
      characters are converted first, then the text's toneless pinyin is matched against every name's.
      Three tiers, each stricter about the text around it: all syllables alike with two characters as
      written (second Aho-Corasick automaton over pinyin); one stem syllable off before a suffix written
      as such (锋排区); one syllable off with the suffix misheard too, only among the streets of a
      district the caller named (通州区宋当阵 → 宋庄镇);
    - communities by pattern (煤炭科技苑社区, 西红门村), never generic ones (农村, 这个社区, 城中村);
    - the address remainder after the place (金隅小区3号楼2单元, 西街十八号; 42 Maple Avenue in English).

What it does not do
    - decide who said what: the caller passes the caller's words only;
    - know places below the community level (buildings, shops), or outside Beijing;
    - guess a district from a community or road name alone.

Example::

    >>> gaz = Gazetteer.load()
    >>> loc = gaz.resolve("我住在朝阳区和平街煤炭科技苑社区3号楼")
    >>> (loc.district, loc.street, loc.community, loc.address)
    ('朝阳区', '和平街街道', '煤炭科技苑社区', '3号楼')

Precision: ordinary words that sound like places stay ordinary (上帝 is not 上地, 河北正在 is not 河北镇,
大型区域 is not 大兴区); names that are also common words only count with their suffix (平房地区, 光明街道);
the data file can veto a name by its neighbours (张镇长, 大兴安岭).

Layout: ``data`` (the data file, validated and expanded), ``phonetics`` (how a text sounds),
``places`` (the ``Gazetteer`` and its matchers), ``address`` (communities and the address remainder).

Speed: names, readings and both automata are built once per data file (``Gazetteer.load`` caches);
``resolve`` on a 300-character transcript takes about 0.1-0.2 ms of CPU (``bench/gazetteer.py``).
"""

from __future__ import annotations

from pipeline.extractors.gazetteer.data import DATA_PATH, DISTRICTS, Location, PlaceMatch
from pipeline.extractors.gazetteer.places import Gazetteer

__all__ = ["DATA_PATH", "DISTRICTS", "Gazetteer", "Location", "PlaceMatch"]
