"""The fast path of `fold_plain` (ASCII text) gives exactly what the character-by-character
`fold_text` gives, on random strings of the tricky characters and on real names."""

from __future__ import annotations

import random
from pathlib import Path

from assistant.slots import fold_plain
from tools.traders import fold_text
from tradedata.db import connect


def _slow(text: str) -> str:
    return " ".join(fold_text(text)[0].split())


def test_fast_and_slow_folding_agree_on_random_text() -> None:
    rng = random.Random(20261203)
    alphabet = "abcXYZ's.'S 09-,&()/’éÑ"
    for _ in range(50_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert fold_plain(text) == _slow(text), repr(text)


def test_fast_and_slow_folding_agree_on_the_demo_names(demo_db: Path) -> None:
    with connect(demo_db, read_only=True) as con:
        texts = [r[0] for r in con.execute(
            "SELECT description FROM hs_nomenclature UNION ALL SELECT name FROM traders "
            "UNION ALL SELECT DISTINCT customs_office FROM declarations").fetchall()]
    assert len(texts) > 1000
    assert [fold_plain(t) for t in texts] == [_slow(t) for t in texts]
    assert fold_plain("Oller & Benítez Plastics, S. de R.L.") == "oller benitez plastics s de rl"
    assert fold_plain("Puma's S.A.") == "puma sa"
