"""Words of names and streets as the register compares them: folded, cut into tokens, common words known."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rules.words import TITLE_WORDS

# Names that are also ordinary words: in lower case they are the word, not the name.
_COMMON_WORD_NAMES = """
aker akter alg all alla allvar alm an anar and anda andan ande andel andra andras andre ange anger
annan anse anser anta antal antar april arena arlig armen art artist arton arv ask asp att augusti
av back backa backe bada bage bak bana banan bank bar bara bas bat be benet ber berg bero bett bevis
bil bilar bilda bilen binda binder bitar bjork bjorn bla blad bland blanka blick blom blomma bo bok
bom bonus bor bra brand branden brant bred breda brett bro bron bror bruk bruna bud buss by ca
champagne chans chili dag dal damen damer data december deg degen dela delas delat delta dem dennes
dess det din dina dit dollar dom domen dotter drama drar driva dyra ek eko eld elden eleven elva en
ena enas enda ene eng enkel er era ett etta ettan euro euron fagel falk fall falla falt fan fann far
fara fars fast fat februari fem fester filmer fin fina finna fira firas fisk flicka for forde fors
foto fredag fri fria frid frisk frost fulla fyra gammal gas ge gift gilla gjord glad glada gladje
glas god goda goras gra gran gren gron grund gul gula guld ha hade hall hals halvan hamn hamna han
hand hans har hard hare hat hav havet hed hel hela heller helt hem hemma hennes heta hette hinna
hissen hjalte hjarta hjartat hjort hockey hog hojer hok holm hon hopp hoppa host hud hur husen hyra
i icke ideal illa in inga inne is isen ja jag jagare januari jord jorden ju jul juli juni just kakel
kall kalla kameran kamp kan kanel kanin kap karlek karleken kartan kassar katt kedja kemi kl klara
klipp kniv ko koka kol kompis konst kopp kor kors kort kosta kr kraft kring kris kristna kron kul
kulan kung kungen kvist kyla ladda lade lag lager land lang lax led leda lejon lek ler leta leva
lider liga lika lilja lilla lille lind lita liten liv livet ljusa lo lock lonn lucia lund lura lust
luva lycka lyder maj maka malar malm mamma man manus mar mark marken marker mars massa master mat
maten matta max me med medel media mej melodi men menar mer mera merit metod mig miljon min mina
minne minus missa mod mode mor moral mork morse mot mun namn natt ned ner ni nio nog noga nord norr
novell november nu ny nya nye och oktober olika olja om on op ord orn oron orten ost oster pa par
parker parti passion patient penna per perfekta person piano pil plus pojken polis prast prins
privat punkt rad rada radion raka rally ram ramen ras rask red reda redan redo regi regn ren rena
renar resa resan rik rika rike rikta ring ringa ringer rinna ris riva road rod roll roman ros rosa
rusa rut ruta rymma sa sade sades sag saga saker sal salen samma samman sand sann sant se seger
sekel sen september ser si sida sidor sig silver sin sina sitta sjo sju sk ska skala skara skarp
skatt skog skott skriver skuggan slott smart smed smita sno socker soder sol solen som sommar son
spar spela springer st stal stan stark staten sten stenar stig stilla stjarna stolt stor strand
strid strider strom styrka summan sund sur svan svart svensk syster ta tag tak tal tala talar talat
tar tas te tegel tema til till timme ting tio tisdag titta to tom tomma tomt tomten ton topp tor
torp tre trea tro tron tros trygg tuff tuffa tung tunga tur tusen ty tysk udd ull undra ung unik
unika ur ut ute va vackra vagn val valda valde valdes vall vana vann var vara varan varna ved velat
verka veta vi via vice vid vida vik vika viken vikt vila vilar vilda vilja viljan vill ville vin
vind vindar vinet vinna vinter visa visar vit vita vred
"""
# Folded. Names of SCB's statistics that stand in lower case three times or more in the SUC 3.0
# and klintan news corpora (../shared/data/ner), with a few added by hand (berg, lind, ek, strand,
# holm, ...); less the titles, the particles of surnames (af, von, de), which are written in
# lower case inside a name, and given names whose word is rare in mail (karl, håkan, sanna, ...).
COMMON_WORD_NAMES = frozenset(_COMMON_WORD_NAMES.split())

# Letters that do not decompose into a base letter and a mark.
_SPECIAL_FOLDS = {
    "ø": "o",
    "æ": "ae",
    "œ": "oe",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
    "'": "",
    "’": "",
    "ʼ": "",
}


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {ord(k): v for k, v in _SPECIAL_FOLDS.items()}
    for code in range(0xC0, 0x250):
        ch = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if base and base != ch and code not in table:
            table[code] = base.casefold()
    return table


_FOLD = _fold_table()


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """Case and diacritics folded, apostrophes dropped: `Öberg` -> `oberg`, `O'Neil` -> `oneil`."""
    return word.casefold().translate(_FOLD)


TITLES = frozenset(fold(w) for w in TITLE_WORDS)


def _written_endings() -> dict[str, frozenset[str]]:
    endings: dict[str, set[str]] = {}
    for ch in [chr(c) for c in range(0x61, 0x7B)] + [chr(c) for c in _FOLD]:
        if folded := fold(ch):
            endings.setdefault(folded[-1], set()).add(ch)
    return {k: frozenset(v) for k, v in endings.items()}


# A folded word's last letter -> the letters the word may end with as written (`a`: a, å, ä, á, ...).
WRITTEN_ENDINGS = _written_endings()

# A word (apostrophes inside it belong to it), optionally with a genitive suffix that cannot be
# read as part of the word (`Eva:s`, `Lars'`); a run of digits; a comma (`Andersson, Anna`).
TOKEN = re.compile(
    r"(?P<word>[^\W\d_]+(?:['’ʼ][^\W\d_]+)*)(?P<gen>:s(?![^\W\d_])|['’ʼ](?![^\W\d_]))?"
    r"|(?P<num>\d+)|(?P<comma>,)"
)
# Marks a raw word may begin or end with and still be one plain word: none can join it to
# another word of a name (a hyphen, an apostrophe, a colon before a genitive s can, so they are
# not here).
_LEADS = frozenset('([{"“”«»')
_TAILS = frozenset('.,;:!?)]}"“”«»')


def words(text: str) -> list[str]:
    """The folded words of a name or street, hyphens as spaces."""
    return [fold(m["word"]) for m in TOKEN.finditer(text) if m["word"]]


def eligible(written: str) -> bool:
    """A common word in lower case is the word, not a name."""
    return not (written.islower() and fold(written) in COMMON_WORD_NAMES)


def holds_lower_case_name(raw: str) -> bool:
    """A raw word in lower case that holds a word that is not a common word: `strand-eriksson`."""
    return raw.islower() and any(m["word"] and eligible(m["word"]) for m in TOKEN.finditer(raw))


def plain_word(raw: str) -> str | None:
    """The one word a raw word is, between an opening bracket or quote and a closing mark; else None.

    Such a raw word is exactly one word token (`[^\\W\\d_]+` holds every letter), so it can be
    judged without the tokenizer.
    """
    if raw.isalpha():
        return raw
    start = 1 if raw[0] in _LEADS else 0
    end = -1 if raw[-1] in _TAILS else len(raw)
    word = raw[start:end]
    return word if word.isalpha() else None


@dataclass(slots=True)
class Token:
    start: int
    end: int  # end of the word itself
    end_genitive: int  # end including a genitive suffix such as `:s` or `'`
    written: str
    folded: str
    kind: str  # word | num | comma
    final: bool  # a genitive suffix ends the name here
    eligible: bool = True  # False for a common word in lower case


def _token(m: re.Match[str]) -> Token:
    if m["word"]:
        word = m["word"]
        folded = fold(word)
        eligible = not (word.islower() and folded in COMMON_WORD_NAMES)
        return Token(m.start(), m.end("word"), m.end(), word, folded, "word", bool(m["gen"]), eligible)
    if m["num"]:
        return Token(m.start(), m.end(), m.end(), m["num"], m["num"], "num", False)
    return Token(m.start(), m.end(), m.end(), ",", ",", "comma", False)


class Tokens:
    """The tokens from a position on, read only as far as a walk goes (most stop after two)."""

    __slots__ = ("_found", "_source")

    def __init__(self, text: str, start: int, limit: int) -> None:
        self._source = TOKEN.finditer(text, start, limit)
        self._found: list[Token] = []

    def get(self, i: int) -> Token | None:
        found = self._found
        while len(found) <= i:
            m = next(self._source, None)
            if m is None:
                return None
            found.append(_token(m))
        return found[i]

    def span(self, start: int, end: int) -> list[Token]:
        return self._found[start:end]
