"""Names that are also ordinary English words.

A page says "white", "will", "mark", "may", "total" and "cash" in its own words, and payers
are called "Gold PPO". A lone word from this list in a table cell is not taken as a
patient's name; the same word is still found when a page shows it as a name (first and last
name together, or in a column of patient data). The list holds common US surnames and given
names (Census surname and SSA given-name lists) that are everyday words, plus the words of
billing itself; it is a floor, not a dictionary: a lone uncommon name word in a cell is a
find.
"""

from __future__ import annotations

__all__ = ["COMMON_WORDS"]

_WORDS = """
abbey able acre alley amber angel apple april archer arm armstrong arrow art ash atlas august autumn baker balance
ball bank banks barber barley barn baron bass bat bay beach bean bear bell belle bender bent berry best bill bills
birch bird bishop black blade bliss bloom blossom blue bob bolt bond bone booth born boss bowman brain branch brand
brandy brave bray breeze brewer brick bridge bright brook brooks brown buck bud buddy bull bunch burn burns bush
butler butter cabin camp candy cane cannon cap cape car card care carpenter carter case cash castle chance
chancellor chapel charge charges charity chase cherry chest chip christian church claim claims clay clear cliff
close cloud coal coast cole colt comfort cook cooper coral corn cost cotton court crane credit crisp cross crow
crown crystal cutter daisy dale dance dancer dash dawn day days dean dear dell denial denied destiny dew diamond
dole don dove down drake draper drew driver drum due duke dusty earl early earnest easter ebony edge elder elm
ember english ernest eve even ever fair faith fall falls farmer feather fee fern field fields finch fine fish
fisher fitch flint flower flowers ford forest fort fortune fowler fox frank free freeman frost fry fuller gale game
gardner garland gate gates gay gem gene general gentle gift ginger glass glen glory gold golden good grace grand
grant grave gray green grey grove guy hail hale hall hamlet hand handy hardy harmony harp hart harvest hatch hawk
hay hazel head heart heath heather hedge herring high hill hills hitch holly home honey hood hook hope horn house
hunt hunter iris iron ivy jack jade jay jean jewel joy judge june jury justice keen key keys king kitchen knight
lake lamb lance land lane lark laurel law lawless lemon lily lime line link lion little lock long lord love lovely
lucky major man marble march mark marks marsh marshal mason match max may mayo mead meadow melody merry miles mill
miller mills mint misty money moon moss mote mountain nail neat new nice nickel noble norm north nurse oak old
olive orange page paid paige palm park parks pat patience pay payer peach pearl penny pepper person petty pierce
pike pine piper plan plant plum poll pool pope poppy port porter post potter pound power powers precious price
pride prince prudence quick rain rate ray read reading reed rich rider ring river rivers road rob robin rock rose
ruby rush rusty sage salmon salt sand sands sandy savage sea seal season sergeant shade sharp shepherd sheriff
shore short silver singer skip sky slate small smart smith snow song south spark sparks speed spring squire stamp
star stark steel stern steward still stone storm story street strong sue sugar summer summers sun sunny swan sweet
swift tall tanner taylor ted temple thorn tiny tom total trout true trust turner unit units vale valentine vine
violet visit visits wade walker wall walls ward warren water waters weaver well wells west white whitehead wild
will willow win winter wise wolf wood woods worth wren wright young
""".split()

#: Upper-case words that are names as well as ordinary words.
COMMON_WORDS: frozenset[str] = frozenset(w.upper() for w in _WORDS)
