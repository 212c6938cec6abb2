"""The offline planner: rules that turn an analytical question into a QueryPlan.

It reuses the slot extractor (trader, periods, countries, goods, office, top-N, flow, channel:
all checked against the data of the user's scope) and reads the rest from the words: the
measure ("duty", "unit value per kg", "red-channel share"...), the grouping ("by office",
"which traders", "per month"), the shape ("compared with the previous quarter", "biggest
increase", "share of", "new importers", "but not in", "above USD 1M", "peak month",
"versus other importers") and the coded filters the data knows (transport mode, incoterm,
sector, region, AEO status, related parties).

    planned = Planner(context).plan(question, slots)
    planned.plan          # a validated QueryPlan, or None
    planned.problem       # why the question cannot be answered as asked (impossible plans)
    planned.unexplained   # words of the question the plan does not account for

The planner never guesses a value: a word becomes a filter only when the data holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from assistant.slots import MASKS, STOPWORDS, Slots, fold_plain
from tamga.period import Period
from tamga.plan import (
    AUDIT_DIMENSIONS,
    AUDIT_MEASURES,
    TIME_DIMENSIONS,
    TRADER_ATTRIBUTES,
    Filter,
    PeriodSpec,
    PlanError,
    QueryPlan,
    Threshold,
)

if TYPE_CHECKING:
    from assistant.context import DataContext

# -- measures -----------------------------------------------------------------------------------

_MEASURE_RULES: tuple[tuple[str, str], ...] = (
    (r"\b(?:average|avg\.?|mean|typical) (?:customs |declared )?value (?:per|of an?|of each|a) "
     r"(?:import |export )?(?:declaration|decl|entry|filing)s?\b|"
     r"\bvalue (?:per|a|/) ?(?:declaration|decl|entry)\b|"
     r"\b(?:declarations?|decls?|entries) (?:\w+ ){0,2}on average (?:larger|bigger|smaller|higher|"
     r"lower)\b|\b(?:average|avg\.?|mean) (?:declaration|decl|entry) (?:value|size)\b",
     "value_per_declaration"),
    (r"\b(?:average |mean )?unit values?\b|\bvalue (?:per|a|/) ?(?:kg|kilo(?:gram)?)\b|"
     r"\bprice (?:per|a|/) ?(?:kg|kilo(?:gram)?)\b|\bper[- ]kilo(?:gram)?\b|\bper kg\b|"
     r"(?:\busd|\$) ?(?:per|/) ?kg\b", "value_per_kg"),
    (r"\bper unit\b|\bunit prices?\b|\bvalue (?:per|a) (?:unit|piece|item|pair)\b|\bper pair\b|"
     r"\bprice per (?:unit|piece|item)\b", "value_per_unit"),
    (r"\b(?:effective|eff\.?|average|mean|implied) (?:duty|tariff) rates?\b|\bduty rates?\b|"
     r"\bdut(?:y|ies)\s*/\s*(?:customs )?value\b(?:\s*(?:%|percent(?:age)?|ratio|rate)\b)?|"
     r"\bduty as a (?:share|percentage|percent|proportion)\b|\bduty burden\b|"
     r"\bdut(?:y|ies) (?:paid |collected )?(?:as (?:a )?(?:%|percent(?:age)?|share) of (?:the )?"
     r"(?:customs |declared |import )?value|relative to (?:the )?(?:customs )?value)\b|"
     r"\b(?:effective |average )?tariff (?:rates?|burden)\b|"
     r"\bdut(?:y|ies)\s*(?:%|percent(?:age)?) of (?:the )?(?:customs |declared |import )?value\b|"
     r"(?:%|\bpercent(?:age)?\b|\bshare\b|\bproportion\b) of (?:the )?"
     r"(?:customs |declared |import )?value\b(?:\s+\w+){0,5}?\s+(?:as|in) (?:import )?"
     r"dut(?:y|ies)\b",
     "effective_duty_rate"),
    (r"\b(?:red|yellow)[- ]?(?:or|and|plus|\+)[- ]?(?:red|yellow)\b|\binspection rates?\b|"
     r"\b(?:checked|inspected|stopped for (?:a )?checks?)\b", "checked_share"),
    (r"\bred[- ]channel (?:share|rate|ratio|percentage|proportion)\b|"
     r"(?:\b(?:share|percentage|proportion|rate|fraction)\b|%) of (?:all |the )?(?:[\w']+ ){0,3}?"
     r"(?:declarations |entries |shipments )?(?:that )?"
     r"(?:were |was |are |is |go(?:es)? |went |sent |routed |get |got )*(?:sent |routed )?"
     r"(?:to |in(?:to)? )?(?:the )?red\b|\bred(?:[- ]channel)? (?:rate|share|ratio)\b|"
     r"\bhow often\b.*\bred\b|\b(?:sent|went|routed|go(?:es)?) (?:to )?(?:the )?red\b"
     r"(?=.*(?:%|\bpercent|\bshare\b|\brate\b|\boften\b|\bproportion\b))|"
     r"\bred (?:lane|channel) (?:share|rate)\b|(?:%|\bpercent(?:age)?\b|\bshare\b|\bproportion\b)"
     r"[^?!]{0,100}?\b(?:sent|went|routed|go(?:es)?|got) (?:to )?(?:the )?red\b|\bred\s*%",
     "red_share"),
    (r"\byellow[- ]channel (?:share|rate|ratio|percentage|proportion)\b|"
     r"(?:\b(?:share|percentage|proportion|rate|fraction)\b|%) of (?:all |the )?(?:[\w']+ ){0,3}?"
     r"(?:declarations |entries |shipments )?(?:that )?"
     r"(?:were |was |are |is |go(?:es)? |went |sent |routed )*(?:sent |routed )?(?:to |in(?:to)? )?"
     r"(?:the )?yellow\b|\byellow(?:[- ]channel)? (?:rate|share|ratio)\b|"
     r"\b(?:went|sent|routed|go(?:es)?|get|got) (?:to )?(?:the |a )?yellow\b"
     r"(?=.*(?:%|\bpercent|\bshare\b|\brate\b|\boften\b|\bproportion\b))|"
     r"(?:%|\bpercent(?:age)?\b|\bshare\b|\bhow often\b).*\byellow\b|\byellow\s*%|"
     r"\byellow (?:lane|channel)\b"
     r"(?=.*(?:%|\bpercent|\bshare\b|\brate\b|\boften\b))", "yellow_share"),
    (r"(?:\b(?:share|percentage|percent|proportion|fraction|part|how much of)\b|%)[^?!]{0,80}?"
     r"\b(?:related[- ]part(?:y|ies)|related (?:companies|sellers|suppliers|parties)|"
     r"affiliat\w+|between related(?: part(?:y|ies))?)\b|"
     r"\brelated[- ]part(?:y|ies) (?:share|ratio|percentage|proportion)\b|"
     r"\brelated[- ]party imports as a (?:percentage|share|proportion)\b|"
     r"\brelated[- ]part(?:y|ies)\s*(?:%|percent(?:age)?\b|share\b)|"
     r"(?:\b(?:share|percentage|percent|proportion|fraction|how much of)\b|%)[^?!]{0,80}?"
     r"\b(?:sellers?|suppliers?) related to\b",
     "related_party_share"),
    (r"\b(?:recover(?:ed|ies|y)?|clawed back|"
     r"(?:had to )?pa(?:y|id|ying) (?:the most |most )?after (?:an? |the )?audits?|"
     r"(?:(?:additional|extra|addl\.?) )?dut(?:y|ies)\s*(?:and|plus|&|\+|,)\s*penalt(?:y|ies)|"
     r"penalt(?:y|ies)\s*(?:and|plus|&|\+|,)\s*(?:(?:additional|extra|addl\.?) )?dut(?:y|ies)|"
     r"amounts? assessed)\b", "audit_recoveries"),
    (r"\bpenalt(?:y|ies)\b", "audit_penalties"),
    (r"\b(?:additional|addl\.?) dut(?:y|ies)\b|\bextra dut(?:y|ies)\b(?=.*\baudit)",
     "audit_additional_duty"),
    (r"\b(?:how many|number of|count of|count the) (?:\w+ ){0,2}audits?\b|\baudits? "
     r"(?:per|by|each|a) \w+|\baudits? (?:broken down|split|grouped|counted) by\b|"
     r"\baudits?\b(?= (?:were |have been |did we )?(?:opened|carried|done|"
     r"run|conducted|performed|started))|\baudits? count\b|"
     r"\b(?:open(?:ed)?|start(?:ed)?|conduct(?:ed)?|run|ran|carr(?:y|ied) out) (?:more|fewer|less) "
     r"audits\b|\b(?:more|fewer|less) audits\b", "audits"),
    (r"\bvat\b|\bvalue[- ]added tax\b|\bimport vat\b", "vat"),
    (r"\binvoice(?:d)? values?\b|\binvoice amounts?\b|\binvoices\b", "invoice_value"),
    (r"\bdut(?:y|ies)(?: paid| collected| revenue| receipts)?\b|\btariffs? (?:paid|collected)\b|"
     r"\bcustoms revenue\b|\brevenue\b|\bduty take\b", "duty"),
    (r"\bnet mass\b|\bnet weight\b|\bweight\b|\btonn(?:e|age)s?\b|\btons\b|\bkilo(?:gram)?s\b|"
     r"\bkg\b|\bhow heavy\b|\bheav(?:y|ier|iest)\b|\blight(?:er|est)\b|\bbulk(?:iest)?\b",
     "net_mass"),
    (r"\bquantit(?:y|ies)\b|\bnumber of units\b|\bpieces\b|"
     r"\bunits (?:imported|exported|declared)\b|"
     r"\bhow many units\b", "quantity"),
    (r"\b(?:how many|number of|count of|count the) (?:different |distinct |unique |individual |"
     r"active |separate |aeo |aeo[- ]certified |certified |new |registered )*"
     r"(?:traders|importers|exporters|companies|firms|businesses)\b|"
     r"\b(?:distinct|unique|different) (?:traders|importers|exporters|companies)\b|"
     r"\b(?:traders|importers|companies) count\b|"
     r"\b(?:traders|importers|exporters|companies)\b[^?!]{0,40}?\bhow many"
     r"(?: (?:distinct|unique|different|separate))?\s*(?:[?.!]|$)", "traders"),
    (r"\b(?:how many|number of|count of) (?:different |distinct |unique |separate |individual )?"
     r"(?:sellers|suppliers|vendors|foreign sellers)\b|"
     r"\b(?:distinct|unique|different|separate) (?:sellers|suppliers|vendors)\b",
     "sellers"),
    (r"\b(?:how many|number of|count of) (?:different |distinct |unique )?(?:origin |source )?"
     r"(?:countries|origins)(?: of origin)?\b|\b(?:distinct|unique|different) (?:origin "
     r"countries|origins|countries of origin|source countries)\b", "origins"),
    (r"\b(?:how many|number of|count of|count the) (?:\w+ ){0,2}(?:items|lines|item lines|"
     r"declaration lines|goods items)\b|\bitem count\b|\b(?:item|declaration|goods) "
     r"lines\b|\bgoods items\b|\b(?:most|fewest|least|more|fewer) items\b", "items"),
    (r"\b(?:how many|number of|count of|count the|total) (?:\w+ ){0,2}(?:declarations|entries|"
     r"filings|shipments|consignments)\b|\b(?:in|of|by) (?:the )?(?:number of )?"
     r"(?:declarations|entries|filings)\b(?! (?:above|over|worth|valued|of more))|"
     r"\bdeclarations? count\b|\bvolume of declarations\b|"
     r"(?:\b(?:share|percentage|proportion|fraction)\b|%) of (?:all |the )?"
     r"(?:(?!value\b|worth\b|dut(?:y|ies)\b|vat\b|mass\b)[\w']+ ){0,3}?"
     r"(?:declarations|entries|filings)\b(?! (?:value|worth))|"
     r"\b(?:reds|yellows)\b|"
     r"\b(?:most|fewest|more|fewer|extra|additional)\s+(?:(?:import|export|customs|new)\s+)?"
     r"(?:declarations|entries|filings|shipments|consignments)\b|"
     r"\b(?:declarations|shipments|entries) "
     r"(?:by|per|each|a) (?!declaration)\w+", "declarations"),
    (r"\bcustoms value\b|\bvalue\b|\bworth\b|\bhow much\b|\bspend(?:ing)?\b|\bturnover\b|"
     r"\bimports?\b|\bexports?\b|\btrade\b", "customs_value"),
)
_MEASURES = tuple((re.compile(p), m) for p, m in _MEASURE_RULES)

# -- dimensions -----------------------------------------------------------------------------------

_DIM_WORDS: tuple[tuple[str, str], ...] = (
    (r"hs[- ]?6(?: codes?)?|(?:six|6)[- ]digit (?:hs )?(?:codes?|subheadings?)|subheadings?|"
     r"tariff lines?", "hs_subheading"),
    (r"hs[- ]?4(?: codes?)?|(?:four|4)[- ]digit (?:hs )?(?:codes?|headings?)|headings?",
     "hs_heading"),
    (r"hs chapters?|chapters?|hs[- ]?2|two[- ]digit codes?|product (?:groups|categories)|"
     r"goods categories|categories of goods|commodit(?:y|ies)(?: groups?)?|hs codes?|"
     r"tariff chapters?", "hs_chapter"),
    (r"countr(?:y|ies) of dispatch|dispatch countr(?:y|ies)|countr(?:y|ies) (?:goods )?"
     r"(?:were |was )?(?:shipped|dispatched|sent) from|shipping countr(?:y|ies)",
     "dispatch_country"),
    (r"countr(?:y|ies) of origin|origin countr(?:y|ies)|origins?|source countr(?:y|ies)|"
     r"supplying countr(?:y|ies)|countr(?:y|ies)", "origin"),
    (r"customs offices?|customs houses?|offices?|ports?(?: of entry)?|border posts?|"
     r"entry points?|posts?|stations?|terminals?|airports?|seaports?", "office"),
    (r"transport modes?|modes? of transport|transport(?:ation)?|modes?|shipping methods?|modal|"
     r"means of transport", "transport_mode"),
    (r"incoterms?|delivery terms?|terms of delivery|trade terms", "incoterm"),
    (r"procedures?(?: codes?)?|customs procedures?|regimes?|customs regimes?|cpcs?",
     "procedure"),
    (r"control channels?|inspection channels?|channels?|control lanes?|lanes?", "channel"),
    (r"preference codes?|preferences?|preferential treatments?|tariff preferences?", "preference"),
    (r"(?:invoic(?:e|ing) )?currenc(?:y|ies)(?: of (?:the )?invoices?)?", "currency"),
    (r"aeo status(?:es)?|aeo certification|aeo (?:and|vs\.?|versus) non[- ]aeo|"
     r"aeo (?:or|versus|vs\.?) not|certified and uncertified", "aeo_status"),
    (r"sectors?|industr(?:y|ies)|lines of business|business sectors?", "sector"),
    (r"regions?|provinces?", "region"),
    (r"flows?|directions?|imports? (?:and|vs\.?|versus) exports?", "flow"),
    (r"sellers?|suppliers?|vendors?|foreign sellers?", "seller"),
    (r"traders?|importers?|exporters?|compan(?:y|ies)|firms?|businesses|declarants?|"
     r"(?:duty |vat |tax )?payers?", "trader"),
    (r"days?|daily|day[- ]by[- ]day|calendar days?", "day"),
    (r"months?|monthly|month[- ]by[- ]month", "month"),
    (r"quarters?|quarterly", "quarter"),
    (r"years?|yearly|annual(?:ly)?|year[- ]by[- ]year", "year"),
    (r"audit outcomes?|outcomes?|results? of (?:the )?audits?", "audit_outcome"),
    (r"audit types?|types? of audits?|kinds? of audits?", "audit_type"),
    (r"declarations?|entries|entry|shipments?|consignments?|filings?", "declaration"),
)
_DIM_ALTERNATION = "|".join(f"(?:{p})" for p, _ in _DIM_WORDS)
_NUM_WORD = (r"(?:\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|"
             r"twenty)")
#: Number words officers write for small counts ("top five"), and their values.
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20}
# How many rows were asked for, where the slot extractor found no "top N": "which 5 importers",
# "five origins whose...", "three offices", "5 of them", "Five names please", ", five".
_COUNT_N = re.compile(
    rf"\b(?P<n>{_NUM_WORD})\s+(?:[\w.'-]+\s+){{0,3}}?(?:importers|traders|companies|chapters|"
    r"headings|subheadings|codes|offices|origins|countries|sellers|suppliers|months|sectors|"
    r"names|payers|newcomers|firms|exporters|regions|products|of them|incoterms|modes|"
    r"currencies|procedures|channels|quarters|years|buyers|terms)\b|"
    rf"(?:(?<!\d),|,(?=\s))\s*(?P<tail>{_NUM_WORD})(?:\s+(?:worst|best|biggest|largest|"
    rf"smallest|lowest|highest|top|most|least))?\s*[?.!]?\s*$|\bwhich\s+(?P<which>{_NUM_WORD})\b(?!\s*%)|\((?:top\s+)?(?P<par>{_NUM_WORD})\)")
# A dimension named at the start: "offices with the largest increase", "importers whose ..."
_LEAD_DIM = re.compile(rf"^[\s.,:;'-]*(?:the\s+)?({_DIM_ALTERNATION})(?:\s+(?:with|whose|that|"
                       r"which|where|having|losing|gaining|adding|shedding|dropping|growing|"
                       r"falling|rising)\b|\s*:\s|\s+[-–]\s)")
# A single member asked for with a superlative: "in which month ... highest", "the sector with
# the lowest import value", "office with the fewest declarations", "least busy office".
_ONE_SUPERLATIVE = re.compile(
    r"(?:\b(?:in which|which|what|the)|^|[:;,]|\s-)\s*(?P<dim>month|quarter|year|customs office|"
    r"office|sector|region|country|origin|chapter|heading|subheading|trader|importer|company|seller|"
    r"supplier|transport mode|mode|incoterm|procedure)\b(?!s)(?P<rest>.*)$")
_SUPERLATIVE = re.compile(
    r"\b(?P<max>most|highest|largest|biggest|peak|record|busiest|strongest|best|heaviest|"
    r"top)\b|\b(?P<min>lowest|least|fewest|smallest|quietest|weakest|slowest|worst|rarest)\b")
# A dimension named anywhere in a question (a grouping a drafted plan may use)
_DIM_NAMED = tuple((re.compile(rf"\b(?:{p})\b"), d) for p, d in _DIM_WORDS)
# Named by most questions as whose or what ("AEO traders", "sellers related to the importer",
# "export declarations"): groupings only where the question asks for them.
# Slots whose text is a name, not words about the figures (blanked before the rules read).
_NAMED_SLOTS = ("trader", "office", "name", "declaration", "country")
_ASKED_GROUPINGS = frozenset({"trader", "declaration", "seller"})
_RATIO_SHARES = frozenset({"red_share", "yellow_share", "checked_share", "related_party_share"})
_DIM_ONLY = tuple((re.compile(rf"^(?:{p})$"), d) for p, d in _DIM_WORDS)
_BY = re.compile(
    rf"\b(?:by|per|for each|for every|each|across|broken down by|split by|grouped by|"
    rf"breakdown by|break(?:ing)? it down by|according to|in each|for all)\s+(?:the\s+)?"
    rf"(?:hs\s+)?({_DIM_ALTERNATION})\b")
_WHICH = re.compile(
    rf"\b(?:which|what|name the|list(?: the)?|show(?: me)?(?: the)?|give me(?: the)?|rank(?: the)?|"
    rf"top\s+\d*\s*|the\s+\d+\s+|bottom\s+\d*\s*|biggest|largest|smallest|busiest|quietest|"
    rf"leading|main|major|most active|least active|(?:most|least) (?:used|common|frequent|popular)|"
    rf"rarest|commonest|{_NUM_WORD}(?![\d,.]|[- ]digit))\s*(?:[\w.'-]+\s+){{0,2}}?"
    rf"({_DIM_ALTERNATION})\b")
_PEAK = re.compile(
    rf"\b(?P<word>peak|busiest|highest|largest|biggest|record|best|top|strongest|heaviest|"
    rf"most valuable|quietest|lowest|smallest|slowest|weakest|worst|least|rarest)[\s-]+"
    rf"(?:single\s+)?(?:(?:import|export|busy|active|trading|duty|vat|value|revenue)[\s-]+)?"
    rf"(?P<dim>{_DIM_ALTERNATION})\b")
_MIN_WORDS = ("quietest", "lowest", "smallest", "slowest", "weakest", "worst", "least",
              "fewest", "rarest")
_PEAK_VERBS = frozenset({"receive", "get", "see", "handle", "record", "bring", "pay", "lodge",
                         "file", "take", "clear", "process"})
_WHICH_PEAK = re.compile(
    rf"\b(?:which|what)\s+(?:single\s+)?(?P<dim>{_DIM_ALTERNATION})\s+(?:\w+\s+){{0,3}}?"
    rf"(?:had|saw|was|were|has|have|did|recorded|showed|brought|got|handled|paid|received|"
    rf"(?:did|does|do)\s+(?:\S+\s+){{0,5}}?(?:receive|get|see|handle|record|bring|pay|lodge|"
    rf"file|take|clear|process))\s+"
    rf"(?:(?:we|you|they|it|us)\s+\w+\s+)?(?:the\s+)?(?P<word>most|highest|largest|biggest|"
    rf"lowest|least|fewest|smallest|strongest|weakest|top)\b")
# "Of all our offices, which one ...": the grouping, named before the question
_OF_ALL = re.compile(rf"\bof (?:all )?(?:our |the |these )?({_DIM_ALTERNATION}),?\s+which"
                     r"(?:\s+one|\s+of them)?\b")
_AND_DIM = re.compile(rf"\b(?:by|per|for (?:each|every))\s+(?:the\s+)?(?:{_DIM_ALTERNATION})\s+"
                      rf"(?:and|&)\s+(?:by\s+|each\s+|every\s+)?(?:the\s+)?({_DIM_ALTERNATION})\b")
# A cross-tabulation of two dimensions: "mode of transport x control channel", "office × sector"
_CROSS = re.compile(rf"\b({_DIM_ALTERNATION})\s+(?:x|×|crossed with|against)\s+(?:the\s+)?"
                    rf"({_DIM_ALTERNATION})\b")
_CROSS_WORDS = re.compile(r"\bcross[- ]?tab(?:ulat(?:e|ed|ion))?s?\b|\btabulat\w*")
_DIM_SPLIT = re.compile(rf"\b(?!declarations?\b|entr|shipments?\b|imports?\b)({_DIM_ALTERNATION})"
                        r"\s+(?:split|breakdown|mix)\b")
# "How many different subheadings", "# distinct HS6 codes": a count of the groups
_DISTINCT_DIM = re.compile(rf"\b(?:different|distinct|unique|separate)\s+(?:[\w-]+\s+){{0,2}}?"
                           rf"({_DIM_ALTERNATION})\b")
#: Groupings whose distinct count is a measure of its own ("how many different importers").
_COUNTED_BY_MEASURE = frozenset({"trader", "seller", "origin"})
_VALUE_WORDS = re.compile(r"\bvalue\b|\bworth\b|\bdut(?:y|ies)\b|\bvat\b|\bmass\b|\bweight\b")
_BAD_N = re.compile(r"\b(?:top|bottom|first|best|largest|biggest)\s*(?P<n>-\s*\d+|0+)\b")

# -- shapes ---------------------------------------------------------------------------------------

_COMPARE = re.compile(
    r"\bcompar(?:e|ed|ing|ison)\b|\bversus\b|\bvs\.?\b|\bagainst\b|\brelative to\b|"
    r"\bchange(?:d)? (?:from|between|since|over|on)\b|\b(?:growth|grew|grow|increase|decrease|"
    r"rise|fall|drop|decline|change)\b|\bdifference between\b|\byear[- ]on[- ]year\b|"
    r"\byear[- ]over[- ]year\b|\byoy\b|\bfrom \S+ to \S+|\bhow did .* (?:do|develop|evolve|move)\b|"
    r"\bmore or less\b|\bthan (?:in )?(?:19|20)\d\d\b|"
    r"\bthan (?:(?:it|they|we|he|she) )?(?:(?:had|did|paid|was|were) )?(?:at |by |on )?"
    r"(?:this|the same) (?:point|time|stage|date|day) (?:last|a) year\b|"
    r"\bthan (?:in )?(?:last|the previous|the prior) (?:year|quarter|month)\b")
_CHANGE = re.compile(r"\b(?:growth|grew|grow|increase[ds]?|decrease[ds]?|rise|rose|fall|fell|"
                     r"drop(?:ped)?|decline[ds]?|change[ds]?|evolve[ds]?|develop(?:ed)?)\b")
_PREVIOUS = re.compile(
    r"\b(?:the )?(?:previous|prior|preceding|last|same) (?:quarter|year|month|period|half)\b|"
    r"\bthe one before\b|\bbefore that\b|\ba year (?:earlier|before|ago)\b|\byear[- ]on[- ]year\b|"
    r"\byear[- ]over[- ]year\b|\byoy\b|\bsame period\b")
_YOY = re.compile(r"\bsame (?:quarter|month|period|half)\b|\ba year (?:earlier|before|ago)\b|"
                  r"\byear[- ]on[- ]year\b|\byear[- ]over[- ]year\b|\byoy\b|\blast year'?s same\b")
# "the same month last year": the later period's own span, a year earlier (not all of last year)
_SAME_UNIT = re.compile(r"\b(?:the )?same (?:month|quarter|half|period|week|day)\b")
_UP = re.compile(
    r"\b(?:biggest|largest|highest|greatest|most|top|strongest|fastest|sharpest|steepest)\s+"
    r"(?:\w+\s+){0,3}?(?:increases?|growth|rises?|jumps?|gains?|growers?|climbs?|surges?)\b|"
    r"\b(?:grew|increased|rose|jumped|climbed|surged|gained|grown|grow|increase|rise|jump|"
    r"climb|surge|gain)\b(?:\s+\w+){0,4}\s+"
    r"(?:the\s+)?(?:most|fastest|strongest|the most)\b|\bgrown the most\b|\bmost growth\b|"
    r"\bfastest[- ]growing\b|\b(?:went|gone|go) up (?:the )?most\b|"
    r"\bby (?:\w+ )?(?:growth|increase)\b|\b(?:most|biggest|largest) extra\b")
_DOWN = re.compile(
    r"\b(?:biggest|largest|greatest|sharpest|steepest|most)\s+(?:\w+\s+){0,3}?"
    r"(?:drops?|declines?|decreases?|falls?|fall-offs?|reductions?|losses?|shrinkage)\b|"
    r"\b(?:fell|dropped|declined|decreased|shrank|shrunk|fallen|slumped|fall|drop|decline|"
    r"decrease|shrink|slump|los(?:e|ing|t))\b(?:\s+\w+){0,4}\s+"
    r"(?:the\s+)?(?:most|fastest|the most)\b|\bfastest[- ]shrinking\b|\bmost decline\b|"
    r"\b(?:went|gone|go) down (?:the )?most\b|\bby (?:\w+ )?(?:drop|decline|decrease)\b")
_SHARE = re.compile(
    r"\bshares?\b|\bproportion\b|\bpercentage\b|\bpercent\b|\bfraction\b|\bportion\b|%|"
    r"\bhow much of\b|\bwhat part of\b|\b(?:slice|chunk|piece) of\b")
_PEERS = re.compile(
    r"\bpeers?\b|\bother (?:importers|traders|companies|firms|exporters|buyers)\b|"
    r"\b(?:the )?(?:market|sector|industry) (?:average|median|norm)\b|"
    r"\b(?:compared?|relative|vs\.?|versus|against) (?:to |with )?(?:the )?"
    r"(?:average|market|others|rest|everyone else|typical)\b|\bthe rest of the market\b|"
    r"\beveryone else\b|\bthe average (?:importer|trader)\b|\bcompetitors?\b|"
    r"\bthe rest of (?:the )?(?:importers|traders|market|companies)\b|\bvs\.? the rest\b|"
    r"\bthan (?:the )?others\b|\bother traders\b")
_NOT_IN = re.compile(
    r"\bbut not\b|\bbut (?:then )?(?:did not|didn'?t|never|no)\b|"
    r"\bbut (?:(?:have|has|had) )?(?:\w+ )?(?:none|nothing)\b|,\s*(?:none|nothing)\b|"
    r"\band (?:then )?(?:did not|didn'?t|never)\b|\bdropped off\b|"
    r"\bfell away\b|\bnot (?:again )?in\b|\bstopped\b(?! for)|"
    r"\bno longer\b|\bdropped out\b|\bdisappeared\b|\blost\b|\bceased\b|\bquit\b|"
    r"\bnothing (?:\w+ ){0,3}?in\b|\bwithout any\b|\bwent quiet\b|\binactive in\b|\bsilent in\b|"
    r"\bgone in\b|\bnone in\b|\bnone the following\b|\bdid not \w+ (?:\w+ ){0,3}in\b|"
    r"\bdidn'?t \w+ (?:\w+ ){0,3}in\b|\b(?:have|has|had) not\b|\b(?:haven|hasn|hadn)'?t\b|"
    r"\bno (?:imports?|exports?|declarations?|shipments?|entries|trade|activity|sales)\b")
_NEW = re.compile(
    r"\bnew (?:importers?|traders?|exporters?|compan(?:y|ies)|firms?|sellers?|suppliers?|"
    r"origins?|countr(?:y|ies)|source countr(?:y|ies)|businesses|players|entrants|names|"
    r"customers|declarants)\b|\bfirst[- ]time\b|\bvery first\b|"
    r"\bfirst (?:(?:chapter|heading|subheading|hs) \d+ )(?:import|declaration|shipment|entry)\b|"
    r"\bfirst (?:declaration|import|export|appearance|"
    r"ever)\b|\bfirst[- ]ever\b|\bstarted (?:importing|trading|declaring|exporting)\b|"
    r"\bnewcomers?\b|"
    r"\bnew entrants?\b|\bnever (?:imported|traded|declared) before\b|\bappeared for the first\b|"
    r"\bfirst seen\b|\bfor the first time\b|\b(?:importers|traders|exporters|companies|sellers|"
    r"suppliers|origins|countries|offices) (?:that (?:are|were) )?new (?:to|in)\b")
_THRESHOLD = re.compile(
    r"\b(?P<op>above|over|more than|greater than|larger than|higher than|exceeding|exceed(?:s|ed)?|"
    r"in excess of|at least|upwards of|bigger than|below|under|less than|fewer than|"
    r"lower than|smaller than|at most|no more than)\s+(?:an?\s+)?(?:usd|us\$|\$|krw|eur|€)?\s*"
    r"(?P<num>\d[\d,]*(?:\.\d+)?)\s*(?P<scale>k|m|mn|mm|million|millions|thousand|"
    r"thousands|bn|billion|billions)?\b(?:\s*(?:(?:import|export|red|yellow|green|"
    r"red[- ]channel|yellow[- ]channel)\s+)?(?P<unit>usd|dollars|declarations|entries|"
    r"shipments|items|lines|kg|kilos|tonnes|tons|%|percent|per ?cent|audits|times))?")
_SCALES = {"k": 1e3, "thousand": 1e3, "thousands": 1e3, "m": 1e6, "mn": 1e6, "mm": 1e6,
           "million": 1e6, "millions": 1e6, "bn": 1e9, "billion": 1e9, "billions": 1e9}
_HOW_MANY = re.compile(r"\bhow many\b|\bnumber of\b|\bcount (?:of|the)\b|\bhow much of\b")
_TOP = re.compile(r"\btop\b|\blargest\b|\bbiggest\b|\bleading\b|\bhighest\b|\bmost\b|"
                  r"\bmain\b|\bmajor\b|\bheaviest\b|\bbusiest\b|\bstrongest\b|\brank")
_BOTTOM = re.compile(r"\bbottom\b|\bfoot of the (?:table|list|ranking)\b|\bsmallest\b|"
                     r"\blowest\b|\bleast\b|\bfewest\b|\bweakest\b|\bquietest\b|\bslowest\b|\brarest\b")
_TRANSPORT = re.compile(
    r"\b(?:by|via|through|per)\s+(?P<a>air|sea|road|rail|truck|lorry|ship|vessel|plane|train)"
    r"(?:\s*(?:freight|cargo|transport|mode))?\b|\b(?P<b>air|sea|road|rail|ocean|maritime)"
    r"[- ](?:freight|cargo|transport|shipments?|imports?|declarations?|mode)\b|"
    r"\b(?P<c>air|sea|road|rail)borne\b|\bshipped by (?P<d>air|sea|road|rail)\b|"
    r"\bcame by (?P<e>air|sea|road|rail)\b|\b(?:arriving|arrived|coming|came) by (?P<f>air|sea|"
    r"road|rail)\b")
_TRANSPORT_WORD = {"truck": "road", "lorry": "road", "ship": "sea", "vessel": "sea",
                   "plane": "air", "train": "rail", "ocean": "sea", "maritime": "sea"}
_INCOTERM = re.compile(r"\b(EXW|FCA|FAS|FOB|CFR|CIF|CPT|CIP|DAP|DPU|DDP|DAT)\b")
_PROCEDURE = re.compile(r"\b(?:procedure(?: code)?|cpc)\s+(\d{4})\b|\bunder (\d{4})\b")
_AEO_SPLIT = re.compile(r"\b(?:aeo|certified|authori[sz]ed economic operators?|trusted traders?)\b"
                        r".*\b(?:vs\.?|versus|compared|and|or|against|than|with th(?:at|ose) of)"
                        r"\b.*\b(?:non[- ]?aeo|non[- ]certified|uncertified|without|other|others|"
                        r"rest|not)\b|\bby aeo\b(?![- ](?:certified|holders?|compan|traders?|"
                        r"importers?|operators?|firms?|[csf]\b))|"
                        r"(?<!holding )(?<!holds )(?<!with )(?<!having )\baeo status\b|"
                        r"\baeo\s*/\s*(?:not|non)\b|"
                        r"\baeo certificate types?\b|\bper aeo\b")
# Two groups only (AEO or not), unless the question asks for the status or certificate type.
_AEO_BY_STATUS = re.compile(r"\baeo status(?:es)?\b|\bcertificate types?\b|\bper aeo\b|"
                            r"\bby aeo (?:status|type|certificate)\b")
_CURRENCY = re.compile(r"\b(?P<a>usd|eur|euros?|dollars?|gbp|jpy|cny|krw)[- ]invoiced\b|"
                       r"\binvoiced in "
                       r"(?P<b>usd|eur|us dollars|dollars|euros?)\b|\b(?P<c>usd|eur|euro|dollar) "
                       r"invoices?\b")
_CURRENCY_CODE = {"us dollars": "USD", "dollars": "USD", "dollar": "USD", "euros": "EUR",
                  "euro": "EUR"}
# "without AEO status" is a filter (the uncertified ones), not a split by status, unless the
# question also sets them against the others.
_WITHOUT_AEO = re.compile(r"\b(?:without|lacking|no) (?:an? )?aeo\b")
_AGAINST = re.compile(r"\b(?:vs\.?|versus|compared|against)\b")
_NON_AEO = re.compile(rf"\bnon[- ]?aeo\b|{_WITHOUT_AEO.pattern}|\bnot aeo\b|\buncertified\b")
_AEO = re.compile(r"\baeo\b|\bauthori[sz]ed economic operators?\b|\btrusted traders?\b")
_RELATED = re.compile(r"\brelated[- ]part(?:y|ies)\b|"
                      r"\brelated (?:sellers|suppliers|vendors|companies)\b|"
                      r"\baffiliated (?:sellers|suppliers)\b|"
                      r"\bintra[- ]group\b|\bbuyer and seller are related\b|\bare related\b")
_UNRELATED = re.compile(r"\bunrelated\b|\bnon[- ]related\b|\barm'?s[- ]length\b")
_EXPORT_WORDS = re.compile(r"\bexport(?:s|ed|ers?|ing)?\b")
_IMPORT_WORDS = re.compile(r"\bimport(?:s|ed|ers?|ing)?\b")
_BOTH = re.compile(r"\bimports? and exports?\b|\bexports? and imports?\b|\bboth flows\b|"
                   r"\ball trade\b|\btotal trade\b|\btwo[- ]way\b")
_DISPATCH = re.compile(r"\b(?:shipped|dispatched|sent|consigned)\s+(?:to us\s+)?from\b|"
                       r"\bdispatch(?:ed)?\b|\bfrom (?:which|what) (?:\w+ )?countr(?:y|ies)\b"
                       r"(?=.*\b(?:shipped|dispatched|sent|consigned)\b)")
_LARGEST_DECL = re.compile(r"\b(?:largest|biggest|most valuable|highest[- ]value|priciest|"
                           r"smallest|cheapest|lowest[- ]value)\s+(?:single\s+)?(?:import\s+)?"
                           r"(?:declarations?|entr(?:y|ies)|shipments?|consignments?)\b")
_WORD = re.compile(r"[a-z]+")

# Words that any analytical question may use without asking for anything of its own.
_GENERIC_TEXT = """
customs value values valued worth much many total totals number numbers count amount amounts
show list give tell me please what which who whose where when how did does do was were is are be
been being the a an of in on at to for from by with per each every all any our their its it this
that these those there here than then also only just and or but not no vs versus compared
compare comparison against between over under above below more less most least top bottom
largest biggest smallest lowest highest leading main major rank ranked ranking order year years
month months quarter quarters period periods annual monthly quarterly yearly import imports
imported importer importers importing export exports exported exporter exporters exporting trade
trades traded trader traders company companies firm firms business businesses goods declaration
declarations item items line lines shipment shipments entry entries consignment consignments
duty duties vat tax taxes paid collected revenue share shares percentage percent proportion
fraction portion part rate rates ratio average mean median growth grew grow grown increase
increased decrease decreased rise rose fall fell drop dropped decline declined change changed
changes difference new first time ever since before after during within across broken down split
breakdown break grouped according country countries origin origins office offices channel
channels sector sectors region regions mode modes transport seller sellers supplier suppliers
audit audits data overall so far date far yet now current latest recent recently previous prior
last same next this that single peak busiest quietest distinct different unique kg per unit
units weight mass net value price prices declared paid pay came come coming arrive arrived bring
brought get got see know need want could would should can may might will shall us we they them
you i my mine ours summary summarise summarize overview picture figures figure stats statistics
opened conducted carried performed run done started closed had have has saw see seen recorded
handled received collect collecting collects point stage shown showed appear appeared appears
foot table
active among national nationwide anything paying pays buy buys bought buying made make
makes sales higher lower earlier later
supplied supply supplies sold sell selling lodged lodge lodging cleared clear
clearing shipped ship sent send went go goes going reach reached bringing based registered
entered account accounts carry carried relative exceeded exceeding exceeds bill names name
separately collection collected certified operators ones checked inspection inspected stopped
check often slice big terms digit present gone lost none nothing following kind type
outcomes record weakest strongest busy least fewest please add adds up them its their
originating workload declaring cheaper dearer expensive everyone else rest peers competitors
yielded yield yields yielding processed process processes processing holding hold holds
others cost costs one two three four five six seven eight nine ten twelve fifteen twenty
"""
_GENERIC = frozenset(_GENERIC_TEXT.split())


@dataclass
class Cues:
    """What a question's own words support: the shapes it cues, the groupings it names, the
    rows and direction it asks for, its threshold. A plan another reader (a language model)
    drafts must stay within them."""

    shapes: set[str]
    dimensions: set[str]
    groupings: list[str] = field(default_factory=list)  # "by office", "per month": in order
    n: int | None = None
    direction: Literal["up", "down"] | None = None
    lowest: bool | None = None
    how_many: bool = False
    threshold: Threshold | None = None


@dataclass
class Planned:
    """What the planner made of a question."""

    plan: QueryPlan | None = None
    problem: str | None = None
    unexplained: list[str] = field(default_factory=list)
    specific: bool = False  # a shape the verified intents do not have (compare by group, ...)


def _aeo_split(q: str) -> bool:
    """Whether the question splits figures by AEO (status), rather than filtering on it."""
    if _WITHOUT_AEO.search(q) and not _AGAINST.search(q):
        rest = _WITHOUT_AEO.sub(" ", q)  # "compare AEO-certified importers with those without"
        if not (re.search(r"\bcompar(?:e|ing)\b|\bwith th(?:at|ose) of\b", q)
                and (_AEO.search(rest) or re.search(r"\bcertified\b", rest))):
            return False
    return bool(_AEO_SPLIT.search(q))


def _normalised(question: str) -> str:
    """A question lower-cased, with typographic apostrophes plain and spaces collapsed."""
    return " ".join(question.lower().replace("’", "'").split())


class Planner:
    """Builds QueryPlans for the questions of one data context (one database and scope)."""

    def __init__(self, context: DataContext) -> None:
        self.context = context

    # -- public ---------------------------------------------------------------------------------

    def plan(self, question: str, slots: Slots) -> Planned:
        """The plan of one (cleaned) question, with its slots already extracted."""
        q = _normalised(question)
        masked_q = self._without_slot_text(question, slots).lower()
        try:
            return self._plan(q, masked_q, question, slots)
        except PlanError as exc:
            return Planned(problem=str(exc))
        except ValidationError as exc:
            return Planned(problem=_validation_message(exc))

    def filters_for(self, question: str, slots: Slots, measures: list[str]
                    ) -> tuple[list[Filter], bool | None, Literal["import", "export", "both"]]:
        """The filters, related-party choice and flow a question states (for a plan whose
        shape and measure a language model chose)."""
        q = _normalised(question)
        explained: set[str] = set()
        filters, _dims = self._filters(q, slots, explained)
        return filters, self._related(q, measures, explained), self._flow(q, slots, measures)

    def measures_for(self, question: str) -> list[str]:
        """The measures a question names in words ("duty", "VAT", "kg", "declarations"), most
        specific first; ["customs_value"] when it names none."""
        return self._measures(_normalised(question), set())

    def impossible(self, question: str) -> str | None:
        """A clear sentence when the question asks for a date, position, count or share that
        cannot exist ("month 14", "Q5", "a share above 140%"), else None."""
        return _impossible_request(_normalised(question), self.context.facts.first_date)

    def cues(self, question: str, slots: Slots) -> Cues:
        """The shapes, groupings, rows, direction and threshold the question's words support
        (necessary, not sufficient: "top" cues a ranking, it does not make one)."""
        q = _normalised(question)
        masked = self._without_slot_text(question, slots).lower()
        shapes = {"total", "breakdown"}
        n = slots.top_n or self._count_n(masked)
        if n is not None or _TOP.search(masked) or _BOTTOM.search(masked) or \
                _SUPERLATIVE.search(masked) or _PEAK.search(masked) or \
                _LARGEST_DECL.search(masked):
            shapes |= {"top", "bottom", "argmax", "argmin"}
        periods = {(p.start, p.end) for p in slots.periods}
        if _COMPARE.search(masked) or _YOY.search(q) or len(periods) >= 2:
            shapes.add("compare")
        if _CHANGE.search(masked) or _UP.search(masked) or _DOWN.search(masked) or \
                ("compare" in shapes and n is not None):
            shapes.add("change_ranking")
        measures = self._measures(masked, set())
        if _SHARE.search(masked) or set(measures) & _RATIO_SHARES:
            shapes.add("share")
        if _PEERS.search(masked):
            shapes.add("vs_peers")
        if _NOT_IN.search(masked):
            shapes.add("set_difference")
        if _NEW.search(masked):
            shapes.add("first_seen")
        threshold = None
        thr = _THRESHOLD.search(q)
        if thr is not None and not _is_year(thr.group("num"), thr.group("scale")):
            shapes.add("threshold")
            threshold, _, _ = self._threshold(thr, q, [], measures)
        groupings = self._dimensions(masked, set())
        # a month, quarter or year outside the periods ("weakest month", not "last quarter")
        unperiodic = _normalised(self._without_slot_text(question, slots, ("period",)))
        # traders, sellers and declarations: a grouping by them needs the question to ask for
        # one ("which importers", "top 5 traders", "per declaration", "largest declaration")
        dims = {d for pattern, d in _DIM_NAMED if d not in _ASKED_GROUPINGS and
                pattern.search(unperiodic if d in TIME_DIMENSIONS else masked)} | set(groupings)
        if _LARGEST_DECL.search(masked):
            dims.add("declaration")
        if re.match(r"^(?:who|whose)\b", q) or (_PEAK.search(masked) and re.search(
                r"\b(?:trader|importer|exporter|company|firm)s?\b", masked)):
            dims.add("trader")
        if shapes & {"threshold", "first_seen", "set_difference"}:
            dims |= {d for pattern, d in _DIM_NAMED if d in _ASKED_GROUPINGS and
                     pattern.search(masked)}  # "importers with more than 25 ...", "entries over"
        if _aeo_split(q):
            dims |= {"aeo", "aeo_status"}
        up, down = bool(_UP.search(masked)), bool(_DOWN.search(masked))
        top, bottom = bool(_TOP.search(masked)), bool(_BOTTOM.search(masked))
        return Cues(shapes=shapes, dimensions=dims, groupings=groupings, n=n,
                    direction="up" if up and not down else "down" if down and not up else None,
                    lowest=True if bottom and not top else False if top and not bottom else None,
                    how_many=bool(_HOW_MANY.search(masked)), threshold=threshold)

    def share_part(self, filters: list[Filter]) -> Filter | None:
        """The filter whose share of the whole a share question asks for."""
        return self._share_part(filters, "", owner=True)

    # -- the rules ------------------------------------------------------------------------------

    def _plan(self, q: str, masked: str, original: str, slots: Slots) -> Planned:
        if _LISTING.search(masked):
            return Planned()
        explained: set[str] = set()
        facts = self.context.facts
        measures = self._measures(masked, explained)
        filters, dims_from_filters = self._filters(q, slots, explained)
        flow = self._flow(q, slots, measures)
        related = self._related(q, measures, explained)
        shape = "total"
        n: int | None = slots.top_n if slots.top_n else self._count_n(masked)
        explicit_n = n is not None
        dims = self._dimensions(masked, explained)
        for d in dims_from_filters:
            if d not in dims:
                dims.insert(0, d)
        if "value_per_declaration" in measures:
            dims = [d for d in dims if d != "declaration"]  # "value per declaration" is the unit
        if "trader" in dims and _traders_of_a_group(q, filters):
            dims.remove("trader")  # "imports by traders in Fuels and energy": the sector's
        if "origin" in dims and _DISPATCH.search(masked) and not re.search(
                r"\borigin|\bmade in\b|\bproduced\b|\bmanufactured\b", masked):
            dims = ["dispatch_country" if d == "origin" else d for d in dims]
            explained.update({"shipped", "dispatched", "sent", "consigned", "dispatch"})
        if any(m in ("red_share", "yellow_share", "checked_share") for m in measures):
            filters = [f for f in filters if f.dimension != "channel"]
        if "flow" in dims:
            flow = "both"
        elif flow == "both" and dims and re.search(
                r"\bimports? and exports?\b|\bimport and export\b", masked):
            dims.append("flow")
        if currency_us(filters):
            filters = [f for f in filters if not (f.dimension == "origin" and f.values == ["US"])]
        if any(d in TIME_DIMENSIONS for d in dims) and len(dims) == 1:
            several = next((f for f in filters if len(f.values) >= 2 and f.dimension not in
                            ("aeo_status",)), None)
            if several is not None:
                dims.append(several.dimension)
        if "value_per_kg" in measures and re.search(r"\bunit values?\b", masked) and \
                any(f.dimension == "hs_subheading" for f in filters):
            measures = ["value_per_unit" if m == "value_per_kg" else m for m in measures]
        threshold = None
        # "which importers lodged more than 150 ... and how many did each lodge?" is a list
        count_only = bool(_HOW_MANY.search(masked)) and not re.search(
            r"\bhow many(?: \w+)? (?:did|does|do|has|have|had) (?:each|every one|they each)\b|"
            r"\bhow many each\b", masked)
        share_of: Filter | None = None
        entity: Filter | None = None
        order = "desc"
        periods = sorted({(p.start, p.end): p for p in slots.periods}.values(),
                         key=lambda p: (p.start, p.end))
        period: PeriodSpec | None = _spec(periods[-1]) if periods else None
        compare_to: PeriodSpec | None = None
        latest = facts.latest_date

        impossible = _impossible_request(q, facts.first_date)
        if impossible is not None:
            raise PlanError(impossible)
        per = _AVERAGE_PER.search(masked)
        if per is not None and not set(measures) & _RATE_MEASURES:
            raise PlanError(f"I cannot compute an average per {per.group('per')} yet; I can give "
                            f"the total and the number of {per.group('per')}s, or the figures "
                            f"by {per.group('per')}.")
        bad_n = _BAD_N.search(q)
        if bad_n is not None:
            raise PlanError(f"I can list between 1 and 100 rows; "
                            f"{bad_n.group('n').replace(' ', '')} is not possible.")
        peak = _PEAK.search(masked) or _WHICH_PEAK.search(masked)
        one = _ONE_SUPERLATIVE.search(masked)
        superlative = _SUPERLATIVE.search(one.group("rest")) if one is not None else None
        if one is not None and (self._dim_of(one.group("dim")) is None or re.search(
                r"\bof\s+(?:the\s+)?$", masked[:one.start("dim")])):
            one = None  # "regions of the country" names no country
        largest_decl = _LARGEST_DECL.search(masked)
        thr = _THRESHOLD.search(q)
        if thr is not None and thr.group("num") and _is_year(thr.group("num"), thr.group("scale")):
            thr = None

        if _NEW.search(masked):
            shape = "first_seen"
            for hit in _NEW.finditer(masked):
                explained.update(_WORD.findall(hit.group(0)))
            dims = dims or [self._entity_dim(masked, filters)]
            dims = [d for d in dims if d not in TIME_DIMENSIONS] or ["trader"]
            dims = newcomer_dimensions(dims, masked)
            if len(dims) == 2:  # "how many new importers did each sector gain"
                explained.update({"gain", "gained", "gains", "added", "won", "each"})
            if dims[0] == "origin" and "origins" in measures:
                measures = ["customs_value"]
            measures = [m for m in measures if m not in ("traders", "sellers", "origins")] \
                or ["customs_value"]
            if period is None:
                period = _spec(self._year(latest.year))
        elif _NOT_IN.search(masked) and (len(periods) >= 2 or re.search(
                r"\bstopped\b(?! for)|\bno longer\b|\bdropped out\b|\bnone\b|\bgone\b|\blost\b",
                masked)):
            shape = "set_difference"
            dims = [d for d in dims if d not in TIME_DIMENSIONS] or \
                [self._entity_dim(masked, filters)]
            measures = [m for m in measures if m not in ("traders", "sellers", "origins")] \
                or ["customs_value"]
            if len(periods) >= 2:
                active, absent = self._active_absent(q, periods)
            elif periods and re.search(r"\b(?:the )?(?:following|next) year\b|\bthe year after\b",
                                       masked):
                active = periods[0]
                absent = self._year(active.start.year + 1)
            elif periods:
                absent = periods[-1]
                active = self._previous(absent, yoy=False)
            else:
                absent = self._year(latest.year)
                active = self._year(latest.year - 1)
            period, compare_to = _spec(active), _spec(absent)
        elif thr is not None:
            shape = "threshold"
            threshold, tdims, tmeasure = self._threshold(thr, masked, dims, measures)
            dims = tdims
            if tmeasure not in measures:
                measures = [tmeasure] + [m for m in measures if m != tmeasure]
            measures = [m for m in measures if m not in ("traders", "sellers", "origins")] \
                or [tmeasure]
            explained.update(_WORD.findall(thr.group(0)))
        elif slots.trader is not None and _PEERS.search(masked):
            if "declaration" in dims or re.search(
                    r"\b(?:which|list|show|name)\b[^?!]{0,40}?\b(?:declarations|entries|"
                    r"shipments)\b", masked):
                return Planned()  # "which of their declarations are priced below peers": a
                #                   listing of declarations, not one figure against the peers
            shape = "vs_peers"
            entity = next(f for f in filters if f.dimension == "trader")
            filters = [f for f in filters if f.dimension != "trader"]
            dims = []
            if measures == ["customs_value"] and "unit" in masked:
                measures = ["value_per_kg"]
        elif (_UP.search(masked) or _DOWN.search(masked)) and dims and \
                dims[0] not in TIME_DIMENSIONS:
            shape = "change_ranking"
            order = "asc" if _DOWN.search(masked) and not _UP.search(masked) else "desc"
            for pattern in (_UP, _DOWN):
                for hit in pattern.finditer(masked):
                    explained.update(_WORD.findall(hit.group(0)))
            period, compare_to = self._two_periods(q, periods, latest, default_ytd=True)
            n = n or 10
        elif _COMPARE.search(masked) and (len(periods) >= 2 or _PREVIOUS.search(masked)
                                          or (_CHANGE.search(masked) and not dims)):
            shape = "compare"
            period, compare_to = self._two_periods(q, periods, latest, default_ytd=False)
            dims = [d for d in dims if d not in ("year",)]
        elif _COMPARE.search(masked) and re.search(r"\b(?:this|so far this) year\b", q) and \
                not dims:
            shape = "compare"
            period, compare_to = self._two_periods(q, periods, latest, default_ytd=True)
        elif _SHARE.search(_without_rate_words(masked, measures)) and not any(
                m in ("red_share", "yellow_share", "related_party_share") for m in measures):
            shape = "share"
            if "market share" in masked:
                explained.add("market")
            owner = any(kind == "trader" and re.match(r"\s*['\u2019]s\b", original[e:e + 4])
                        for _, e, kind in slots.spans)
            share_of = self._share_part(filters, masked, owner)
            if share_of is not None and dims and share_of.dimension != "trader" and \
                    not self._groups_own(masked, dims):
                share_of = None  # "share of 8703 imports by each origin": the groups are parts
            if share_of is not None:
                filters = [f for f in filters if f is not share_of]
                dims = [d for d in dims if d != share_of.dimension]
            elif not dims:
                return Planned()
        elif largest_decl is not None:
            shape = "argmin" if any(w in largest_decl.group(0) for w in
                                    ("smallest", "cheapest", "lowest")) else "argmax"
            dims = ["declaration"]
            n = n or 1
        elif peak is not None and self._dim_of(peak.group("dim")) is not None and (
                not peak.group("dim").endswith(("s", "ies")) or explicit_n):
            dim = self._dim_of(peak.group("dim"))
            assert dim is not None
            shape = "argmin" if peak.group("word") in _MIN_WORDS else "argmax"
            dims = [dim]
            n = n if explicit_n else 1
            explained.update(w for w in _WORD.findall(peak.group(0)) if w in _PEAK_VERBS)
            if explicit_n:
                shape = "bottom" if shape == "argmin" else "top"
            if measures == ["customs_value"] and re.search(
                    r"\bbusiest\b|\bquietest\b|\bbusy\b", masked) and \
                    not _VALUE_WORDS.search(masked):
                measures = ["declarations"]
        elif one is not None and superlative is not None and not explicit_n and (
                not dims or dims == [self._dim_of(one.group("dim"))]):
            dim = self._dim_of(one.group("dim"))
            assert dim is not None
            if dim == "origin" and _DISPATCH.search(masked):
                dim = "dispatch_country"
            shape = "argmin" if superlative.group("min") else "argmax"
            dims = [dim]
            n = 1
            if measures == ["customs_value"] and re.search(
                    r"\bbusiest\b|\bquietest\b", masked) and not _VALUE_WORDS.search(masked):
                measures = ["declarations"]
        elif dims and (explicit_n or (_TOP.search(masked) and dims[0] not in TIME_DIMENSIONS)
                       or _BOTTOM.search(masked)):
            shape = "bottom" if _BOTTOM.search(masked) and not _TOP.search(masked) else "top"
            n = n or (1 if re.search(r"\bwhich (?!\w+s\b)\w+\b", masked) and not
                      dims[0].endswith("s") else 10)
            if re.search(r"\b(?:the|which)\s+(?:single\s+)?(?:\w+\s+)?(?:trader|importer|"
                         r"company|country|office|chapter|heading|month|year|quarter|sector|"
                         r"seller|supplier)\b(?!s)", masked) and not explicit_n:
                n = 1
        elif dims:
            shape = "breakdown"

        if shape in ("compare", "change_ranking", "set_difference", "first_seen"):
            pass
        if any(d in ("audit_outcome", "audit_type") for d in dims) and not any(
                m in AUDIT_MEASURES for m in measures):
            measures = ["audits"]
        if any(m in AUDIT_MEASURES for m in measures):
            measures = [m for m in measures if m in AUDIT_MEASURES]
            if "audit_outcome" in dims and any(f.dimension == "audit_outcome" for f in filters) \
                    and not re.search(r"\b(?:by|per|each|every) (?:audit )?(?:outcome|result)", q):
                dims = [d for d in dims if d != "audit_outcome"]  # "w/ outcome in progress"
            filters = [f for f in filters if f.dimension in ("trader", "aeo_status", "sector",
                                                             "region", "audit_outcome",
                                                             "audit_type")]
            dims = [d for d in dims if d in AUDIT_DIMENSIONS]
            if shape in ("share", "threshold", "first_seen", "set_difference", "vs_peers"):
                shape = "breakdown" if dims else "total"
            if shape in ("top", "bottom", "argmax", "argmin", "breakdown") and not dims:
                shape = "total"
        if shape == "total" and count_only and measures == ["customs_value"]:
            measures = ["declarations"]
        counted = _DISTINCT_DIM.search(masked)
        counted_dim = self._dim_of(counted.group(1)) if counted is not None else None
        groups_counted = counted_dim is not None and counted_dim not in TIME_DIMENSIONS and \
            shape in ("total", "breakdown") and dims in ([], [counted_dim]) and \
            counted_dim not in _COUNTED_BY_MEASURE and \
            (count_only or not re.search(r"\b(?:which|list|show|name|what are)\b", masked))
        if groups_counted and counted is not None and counted_dim is not None:
            shape, dims = "breakdown", [counted_dim]
            explained.update([*_WORD.findall(counted.group(0)), "count"])
        if len(periods) >= 2 and compare_to is None and TIME_DIMENSIONS & set(dims):
            period = spanning(periods)  # "per year, 2024 and 2025"
        self._check_period(period, latest, facts.first_date)
        self._check_period(compare_to, latest, facts.first_date)
        if n is not None and n < 1:
            raise PlanError(f"I can list between 1 and 100 rows; {n} is not possible.")
        plan = QueryPlan(
            shape=shape, measures=measures[:3], dimensions=dims[:2], filters=filters,  # type: ignore[arg-type]
            period=period, compare_to=compare_to, flow=flow, related_party=related, n=n,
            order=order, threshold=threshold,  # type: ignore[arg-type]
            count_only=(count_only and shape in ("threshold", "first_seen", "set_difference"))
            or groups_counted, share_of=share_of, entity=entity)
        if shape == "total" and not explained and not filters and period is None and \
                related is None:
            return Planned()  # nothing analytical in the question ("?!?!")
        unexplained = self._unexplained((slots.masked or masked).lower(), explained, plan)
        specific = (shape not in ("total", "breakdown", "top", "bottom") or plan.count_only
                    or related is not None or len(plan.dimensions) > 1
                    or any(f.dimension in _CODED_FILTERS for f in filters)
                    or bool(set(plan.measures) & _SPECIAL_MEASURES))
        return Planned(plan, None, unexplained, specific)

    # -- pieces ---------------------------------------------------------------------------------

    def _without_slot_text(self, question: str, slots: Slots,
                           kinds: tuple[str, ...] = _NAMED_SLOTS) -> str:
        """The question with the text of the slots of `kinds` blanked: by default traders,
        offices and countries (so a company called 'Pacific Logistics' does not read as a
        transport word)."""
        chars = list(question)
        for s, e, kind in slots.spans:
            if kind in kinds:
                for k in range(s, min(e, len(chars))):
                    chars[k] = " "
        return " ".join("".join(chars).split())

    @staticmethod
    def _count_n(q: str) -> int | None:
        """Rows asked for in words the slot extractor leaves ("which 5 importers", ", five")."""
        for m in _COUNT_N.finditer(q):
            word = m.group("n") or m.group("tail") or m.group("par") or m.group("which")
            if m.group("n") and re.search(r"\b(?:chapter|heading|subheading|hs|code|procedure|last|"
                                          r"past|previous|next|recent|first)\s*$", q[:m.start()]):
                continue
            n = int(word) if word.isdigit() else NUMBER_WORDS.get(word)
            if n is not None:
                return n
        return None

    def _measures(self, q: str, explained: set[str]) -> list[str]:
        found: list[str] = []
        original = q
        for pattern, measure in _MEASURES:
            m = pattern.search(q)
            if m and measure not in found:
                if measure == "customs_value" and found:
                    continue
                found.append(measure)
                for hit in pattern.finditer(q):  # every wording of it ("inspection rate (red +
                    explained.update(_WORD.findall(hit.group(0)))  # yellow)") is explained
                    q = q[:hit.start()] + " " * (hit.end() - hit.start()) + q[hit.end():]
            if len(found) >= 2 and measure != "customs_value":
                break
        if "value_per_kg" in found or "value_per_unit" in found:
            found = [m for m in found if m not in ("net_mass", "quantity")]
        if re.search(r"\bgreen\b", original):  # every channel named: counts by channel
            found = [m for m in found if m not in ("checked_share", "red_share",
                                                   "yellow_share")]
        if "red_share" in found or "yellow_share" in found:
            found = [m for m in found if m not in ("declarations", "customs_value")] or found
        parts = ("audit_penalties", "audit_additional_duty")
        if "audit_recoveries" in found or all(m in found for m in parts):  # both: recoveries
            found = list(dict.fromkeys("audit_recoveries" if m in parts else m for m in found))
        for special in ("audit_recoveries", *parts):
            if special in found and "audits" not in found and not re.search(r"\baudit",
                                                                             original):
                found.remove(special)
        if "audit_recoveries" in found:
            explained.update({"additional", "duty", "plus", "penalty", "penalties", "extra",
                              "recover", "recovered", "recoveries"})
        if not found or found == ["customs_value"]:
            usage = re.search(r"\b(?:used?|using) (?:the )?(?:most|least)\b|\b(?:most|least) "
                              r"(?:used|common|"
                              r"frequent|popular)\b|\bmost often\b|\bhow often\b|\bbusy\b|"
                              r"\brarest\b|\bcommonest\b|"
                              r"\bbusiest\b|\bquietest\b|\bworkload\b", original)
            counted = re.search(r"\bdeclarations\b", q) and not re.search(
                r"\b(?:value|worth|duty|duties|vat|customs value|usd|\$|kg|weight)\b", original)
            named_value = found == ["customs_value"] and _VALUE_WORDS.search(original)
            found = ["declarations"] if (usage and not named_value) or counted \
                else ["customs_value"]
            if usage:
                explained.update({"used", "use", "using", "most", "least", "common", "often"})
        if len(found) > 1 and found[-1] == "customs_value":
            found.pop()
        return found

    def _dimensions(self, q: str, explained: set[str]) -> list[str]:
        dims: list[str] = []
        for pattern in (_LEAD_DIM, _BY, _WHICH, _AND_DIM, _DIM_SPLIT, _OF_ALL):
            for m in pattern.finditer(q):
                dim = self._dim_of(m.group(1))
                if dim is not None and dim not in dims:
                    if pattern is _WHICH and dim == "declaration" and not re.search(
                            r"\b(?:which|list|show|name)\s+(?:\w+\s+)?declarations?\b", q):
                        continue
                    if pattern is _AND_DIM and not dims:
                        continue
                    if dim in TIME_DIMENSIONS and re.search(
                            rf"\b(?:last|this|previous|prior|next|same|that|the|past|recent|"
                            rf"first)\s+(?:{_NUM_WORD}\s+)?$", q[:m.start(1)]) and not (
                            re.search(rf"\bthe\s+{_NUM_WORD}\s+$", q[:m.start(1)])
                            and re.match(r"\s+(?:of|in|with|that|which|where|when)\b",
                                         q[m.end(1):])):
                        continue  # "last quarter" is a period, not a grouping ("the 3 months
                        #           of 2025 with the most duty" are groups)
                    if re.match(r"\s*\d", q[m.end(1):]) and not (
                            dim not in _CODED_BY_NUMBER
                            and re.match(r"\s*(?:19|20)\d\d\b", q[m.end(1):])):
                        continue  # "heading 8703" is a filter ("by office 2025" is a year)
                    if dim == "trader" and re.match(
                            r"\s+(?:based|registered|located|headquartered|from the|in the|holding|"
                            r"having|who hold|that hold)\b"
                            if pattern is not _BY else
                            r"\s+(?:based|registered|located|headquartered|from the|holding|having|"
                            r"who hold|that hold)\b",
                            q[m.end(1):]):
                        continue  # "traders based in Panamá": whose imports, not by whom
                    owned = re.match(rf"'s?\s+({_DIM_ALTERNATION})\b", q[m.end(1):])
                    if owned is not None and self._dim_of(owned.group(1)) == "trader":
                        explained.update(_WORD.findall(owned.group(0)))  # "regions' traders"
                    elif owned is not None and self._dim_of(owned.group(1)) not in (None, dim):
                        dim = self._dim_of(owned.group(1)) or dim  # "by the importers' sector"
                        if dim in dims:
                            continue
                        explained.update(_WORD.findall(owned.group(0)))
                    dims.append(dim)
                    explained.update(_WORD.findall(m.group(0)))
        for m in _CROSS.finditer(q):
            pair = [self._dim_of(m.group(1)), self._dim_of(m.group(2))]
            if None not in pair and pair[0] != pair[1] and not re.match(r"\s*\d", q[m.end():]):
                dims.extend(d for d in pair if d is not None and d not in dims)
                explained.update(_WORD.findall(m.group(0)))
                explained.update(_WORD.findall(" ".join(_CROSS_WORDS.findall(q))))
        if re.match(r"^whose\b", q) and "trader" not in dims:
            dims.insert(0, "trader")
        elif re.match(r"^who\s+(?!should|must|can|may|is|are|was|were)\w+", q) and not dims:
            dims.append("trader")  # "who imports from affiliated sellers?": the traders
        modes = set(re.findall(r"\b(sea|air|road|rail)\b", q))
        if len(modes) >= 2 and "transport_mode" not in dims:
            dims.insert(0, "transport_mode")
            explained.update(modes | {"split"})
        channels = set(re.findall(r"\b(green|yellow|red)\b", q))
        if re.search(r"\bg\s*/\s*y\s*/\s*r\b", q):  # "(G/Y/R)"
            channels |= {"green", "yellow", "red", "g", "y", "r"}
        if len(channels) >= 3 and "channel" not in dims:
            dims.insert(0, "channel")
            explained.update(channels)
        if "channel" in dims:
            explained.update(channels)  # "by channel (green/yellow/red)"
        if "transport_mode" in dims:
            explained.update(modes)
        if re.search(r"\baudits?\b", q):
            if re.search(r"\b(?:by|per) type\b|\beach (?:kind|type)\b|\bof each (?:kind|type)\b",
                         q) and \
                    "audit_type" not in dims:
                dims.insert(0, "audit_type")
                explained.update({"type", "kind"})
            if re.search(r"\boutcomes?\b|\bresults?\b", q) and "audit_outcome" not in dims:
                dims.insert(0, "audit_outcome")
                explained.update({"outcome", "outcomes", "results"})
            if "audit_outcome" in dims:  # "ended in each outcome", "closed with which result"
                explained.update({"ended", "end", "ending", "closed", "finished", "concluded"})
        if re.search(r"\bmonth[- ]by[- ]month\b|\bmonthly\b|\beach month\b|\bper month\b|"
                     r"\s/\s?month\b", q) \
                and "month" not in dims:
            dims.append("month")
        if re.search(r"\bdaily\b|\beach day\b|\bper day\b|\bday[- ]by[- ]day\b", q) and \
                "day" not in dims:
            dims.append("day")
        if re.search(r"\bquarterly\b|\beach quarter\b|\bper quarter\b", q) and \
                "quarter" not in dims:
            dims.append("quarter")
        if re.search(r"\b(?:yearly|annual(?:ly)?|each year|per year|year by year)\b", q) and \
                "year" not in dims:
            dims.append("year")
        if _aeo_split(q) and "aeo_status" not in dims and "aeo" not in dims:
            dims.insert(0, "aeo_status" if _AEO_BY_STATUS.search(_WITHOUT_AEO.sub(" ", q))
                        else "aeo")
            explained.update({"aeo", "non", "certified", "uncertified", "without", "other",
                              "others", "rest", "status", "certificate", "type", "including",
                              "operators", "ones", "firms"})
        if "currency" in dims:  # "invoiced in each currency": the invoice's currency
            explained.update({"invoiced", "invoice", "invoices", "invoicing"})
        values = self.values()
        for listed in re.findall(r"\(([^()]*)\)", q):  # "by currency (USD, EUR, CNY...)"
            words = set(_WORD.findall(listed))
            for dim in dims:
                known = words & {str(v).lower() for v in values.get(dim, [])}
                if len(known) >= 2:
                    explained.update(known | {"etc", "and", "so", "on", "e", "g", "eg"})
        if re.search(r"\bimports? (?:and|vs\.?|versus) exports?\b", q) and "flow" not in dims and \
                re.search(r"\b(?:split|compare|vs|versus|each|by)\b", q):
            dims.append("flow")
        return dims

    @staticmethod
    def _dim_of(words: str) -> str | None:
        text = " ".join(words.split())
        for pattern, dim in _DIM_ONLY:
            if pattern.match(text):
                return dim
        return None

    def _entity_dim(self, q: str, filters: list[Filter] | None = None) -> str:
        """Who is new or gone: the sellers, origins, offices, goods... the question names, but
        not a dimension it filters on ("newcomers to chapter 27" are traders, not chapters)."""
        fixed = {f.dimension for f in filters or [] if f.op == "eq" and len(f.values) == 1}
        if re.match(r"\s*(?:who|whom)\b", q):
            return "trader"
        if re.search(r"\bdispatch countr|\bcountr(?:y|ies) of dispatch\b|\bshipping countr", q) \
                and "dispatch_country" not in fixed:
            return "dispatch_country"
        for word, dim in (("seller", "seller"), ("supplier", "seller"), ("origin", "origin"),
                          ("countr", "origin"), ("office", "office"),
                          ("subheading", "hs_subheading"), ("chapter", "hs_chapter"),
                          ("heading", "hs_heading")):
            if word in q and dim not in fixed:
                return dim
        return "trader"

    def _filters(self, q: str, slots: Slots, explained: set[str]) -> tuple[list[Filter],
                                                                            list[str]]:
        filters: list[Filter] = []
        dims: list[str] = []
        if slots.trader is not None:
            filters.append(Filter(dimension="trader", values=[slots.trader.trader_id],
                                  labels=[slots.trader.name]))
        if slots.countries:
            dim = "dispatch_country" if _DISPATCH.search(q) else "origin"
            if dim == "dispatch_country":
                explained.update({"dispatch", "dispatched", "shipped", "sent", "consigned",
                                  "country"})
            filters.append(Filter(dimension=dim, values=[c.code for c in slots.countries],  # type: ignore[arg-type]
                                  labels=[c.name for c in slots.countries]))
        if slots.hs is not None:
            code = slots.hs.code
            hs_dim = {2: "hs_chapter", 4: "hs_heading", 6: "hs_subheading"}.get(len(code))
            if hs_dim is not None:
                filters.append(Filter(dimension=hs_dim, values=[code],  # type: ignore[arg-type]
                                      labels=[f"{code} ({slots.hs.label})"
                                              if slots.hs.label else code]))
            else:
                filters.append(Filter(dimension="hs_subheading", op="prefix", values=[code]))
        if slots.office is not None:
            filters.append(Filter(dimension="office", values=[slots.office]))
        if slots.channel is not None and not re.search(
                r"\b(?:share|percentage|proportion|rate|ratio|how often|%)\b", q) and \
                len(set(re.findall(r"\b(green|yellow|red)\b", q))) < 2:
            filters.append(Filter(dimension="channel", values=[slots.channel]))
            explained.add(slots.channel)
        values = self.values()
        transport = _TRANSPORT.search(q)
        if transport is not None and len(set(re.findall(r"\b(sea|air|road|rail)\b", q))) < 2:
            word = next(g for g in transport.groups() if g)
            mode = _TRANSPORT_WORD.get(word, word)
            if mode in values.get("transport_mode", []):
                filters.append(Filter(dimension="transport_mode", values=[mode]))
                explained.update(_WORD.findall(transport.group(0)))
        incoterms = [t for t in _INCOTERM.findall(q.upper()) if t in values.get("incoterm", [])]
        if re.search(r"\bex[- ]?works\b", q) and "EXW" in values.get("incoterm", []):
            incoterms.append("EXW")
        grouped = re.search(r"\b(?:by|per|across|each|split|broken down by)\s+(?:the\s+)?"
                            r"(?:incoterms?|delivery terms?|terms of delivery|trade terms)\b", q)
        if grouped and len(set(incoterms)) >= 2:
            explained.update(t.lower() for t in incoterms)  # "(FOB, CIF, EXW and so on)"
            incoterms = []
        # CIF and FOB also name a valuation basis ("CIF value"): they filter with a cue; the
        # other terms name nothing else
        if incoterms and (set(incoterms) - {"CIF", "FOB"} or re.search(
                r"\b(?:incoterms?|under|on|with|terms?|priced|basis|contracts?|sold)\b", q)) \
                and not re.search(r"\bby incoterms?\b", q):
            filters.append(Filter(dimension="incoterm", values=sorted(set(incoterms))))
            explained.update(t.lower() for t in incoterms)
            explained.update({"terms", "term", "incoterm", "incoterms", "priced", "basis", "ex",
                              "works"})
        procedure = _PROCEDURE.search(q)
        if procedure is not None:
            code = procedure.group(1) or procedure.group(2)
            if code in values.get("procedure", []):
                filters.append(Filter(dimension="procedure", values=[code]))
                explained.update({code, "procedure", "code", "entered", "declared", "cpc"})
        preference = re.search(r"\b(?:preference|preferential) (?:code|regime|treatment )?\s*"
                               r"([a-z0-9]{2,6})\b", q)
        if preference is not None and preference.group(1).upper() in values.get("preference", []):
            filters.append(Filter(dimension="preference",
                                  values=[preference.group(1).upper()]))
            explained.update({preference.group(1), "preference", "preferential", "code",
                              "regime", "treatment", "under"})
        currency = _CURRENCY.search(q)
        if currency is None and values.get("currency"):
            codes = "|".join(re.escape(c.lower()) for c in values["currency"] if c)
            currency = re.search(
                rf"\b(?:invoiced|billed|priced|paid) in (?P<a>{codes})\b|"
                rf"\binvoic(?:e|ing) currency (?:of |is |was |= ?|: ?)?(?P<b>{codes})\b|"
                rf"\b(?P<c>{codes})[- ](?:invoiced|invoices?|denominated)\b", q)
        if currency is not None:
            word = next(g for g in currency.groups() if g)
            filters.append(Filter(dimension="currency",
                                  values=[_CURRENCY_CODE.get(word, word.upper())]))
            explained.update(_WORD.findall(currency.group(0)))
        free = fold_plain(self._without_slot_text(q, slots)) if slots.spans else fold_plain(q)
        whole = fold_plain(q)
        for dim in ("sector", "region"):
            for value in values.get(dim, []):
                folded = fold_plain(value)
                if len(folded) < 4:
                    continue
                if dim == "region" and not re.search(
                        rf"\b(?:based|registered|located|headquartered|established) in "
                        rf"{re.escape(folded)}\b|\b{re.escape(folded)} (?:region|province)\b|"
                        rf"\b(?:region|province) (?:of )?{re.escape(folded)}\b", whole):
                    continue  # place names are countries or offices unless called a region
                if dim == "sector" and not re.search(rf"\b{re.escape(folded)}\b", free) and \
                        re.search(rf"\b{re.escape(folded)}\b", whole):
                    # the sector's name was read as a trader ("Fuels and energy companies")
                    filters = [f for f in filters if f.dimension != "trader"]
                    free = whole
                if re.search(rf"\b{re.escape(folded)}\b", free if dim == "sector" else whole):
                    hs = slots.hs
                    if dim == "sector" and hs is not None and hs.via != "code" and hs.words and \
                            re.search(rf"\b{re.escape(fold_plain(hs.words))}\b", folded):
                        # "the Motor vehicles and parts sector" names the traders, not goods
                        filters = [f for f in filters if not f.dimension.startswith("hs_")]
                    filters.append(Filter(dimension=dim, values=[value]))  # type: ignore[arg-type]
                    explained.update(folded.split())
                    explained.update({"based", "registered", "located", "region", "sector"})
                    if dim == "region":  # the place is the traders', not the goods' origin
                        filters = [f for f in filters if not (
                            f.dimension == "origin" and slots.countries and
                            fold_plain(slots.countries[0].name) == folded)]
                    break
        if re.search(r"\baudits?\b", q) and not any(
                f.dimension == "audit_outcome" for f in filters):
            ongoing = re.search(r"\b(?:still )?in progress\b|\bongoing\b|\bopen audits?\b|"
                                r"\bstill open\b|\bnot yet (?:closed|finished)\b|\bunfinished\b",
                                q)
            in_progress = [v for v in values.get("audit_outcome", [])
                           if v.lower() == "in progress"]
            if ongoing and in_progress:
                filters.append(Filter(dimension="audit_outcome", values=in_progress))
                if not re.search(r"\b(?:by|per|each|every) (?:audit )?(?:outcome|result)", q):
                    dims = [d for d in dims if d != "audit_outcome"]  # "outcome in progress"
                explained.update([*_WORD.findall(ongoing.group(0)), "outcome", "w"])
        if not _aeo_split(q):
            aeo = values.get("aeo_status", [])
            if _NON_AEO.search(q) and "none" in aeo:
                filters.append(Filter(dimension="aeo_status", values=["none"],
                                      labels=["none (not AEO)"]))
                explained.update({"non", "aeo", "uncertified", "without", "lacking", "status",
                                  "certificate", "certification", "an", "no"})
            elif _AEO.search(q):
                certified = [a for a in aeo if a != "none"]
                # one kind of certificate named ("AEO-S holders"): that kind only
                named = [a for a in certified if re.search(
                    rf"\baeo[- ]?{re.escape(a.lower().removeprefix('aeo-'))}\b", q, re.I)]
                if named:
                    filters.append(Filter(dimension="aeo_status", values=named,
                                          labels=[" or ".join(named)]))
                    explained.update({"holding", "holders", "holder", "certificate", "with",
                                      "certified"})
                elif certified:
                    filters.append(Filter(dimension="aeo_status", values=certified,
                                          labels=["any AEO status"]))
                if certified:
                    explained.update({"aeo", "authorised", "authorized", "economic",
                                      "operator", "operators", "trusted", "status"})
        return filters, dims

    def values(self) -> dict[str, list[str]]:
        """The coded values this scope's data holds, by plan dimension (loaded once)."""
        return self.context.coded_values

    @staticmethod
    def _flow(q: str, slots: Slots, measures: list[str]) -> Literal["import", "export", "both"]:
        if _BOTH.search(q) or slots.flow == "both":
            return "both"
        if slots.flow == "export" or (_EXPORT_WORDS.search(q) and not _IMPORT_WORDS.search(q)):
            return "export"
        return "import"

    @staticmethod
    def _related(q: str, measures: list[str], explained: set[str]) -> bool | None:
        if "related_party_share" in measures:
            return None
        if _UNRELATED.search(q):
            explained.update({"unrelated", "non", "related", "arm", "length", "sellers"})
            return False
        if _RELATED.search(q):
            explained.update({"related", "party", "parties", "affiliated", "intra", "group"})
            return True
        return None

    def _threshold(self, m: re.Match[str], q: str, dims: list[str], measures: list[str]
                   ) -> tuple[Threshold, list[str], str]:
        op_word = m.group("op")
        op = "lt" if op_word in ("below", "under", "less than", "fewer than", "lower than",
                                 "smaller than") else "le" if op_word in (
            "at most", "no more than") else "ge" if op_word in ("at least", "upwards of") else "gt"
        value = float(m.group("num").replace(",", "")) * _SCALES.get(
            (m.group("scale") or "").lower(), 1.0)
        unit = (m.group("unit") or "").lower()
        counted = {"declarations": "declarations", "entries": "declarations",
                   "shipments": "declarations", "times": "declarations", "items": "items",
                   "lines": "items",
                   "audits": "audits"}.get(unit)
        if unit in ("kg", "kilos", "tonnes", "tons"):
            measure = "net_mass"
            value *= 1000 if unit in ("tonnes", "tons") else 1
        elif unit in ("%", "percent", "per cent", "percent"):
            measure = next((x for x in measures if x in ("effective_duty_rate", "red_share",
                                                        "yellow_share", "related_party_share")),
                           "effective_duty_rate")
        elif counted:
            measure = counted
        else:
            measure = next((x for x in measures if x not in ("declarations", "items", "traders",
                                                            "sellers", "origins")),
                           "customs_value")
        # What is compared: declarations ("declarations above USD 1M") or a group ("traders
        # with more than 100 declarations").
        before = q[:m.start()]
        subject = None
        for word in ("declaration", "entr", "shipment", "consignment"):
            if re.search(rf"\b{word}", before):
                subject = "declaration"
                break
        if subject is None:  # the group named first: "suppliers whose sales to importers ..."
            named = [(hit.start(), dim) for word, dim in (
                ("trader", "trader"), ("importer", "trader"), ("compan", "trader"),
                ("firm", "trader"), ("exporter", "trader"), ("supplier", "seller"),
                ("seller", "seller"), ("countr", "origin"), ("origin", "origin"),
                ("office", "office"), ("chapter", "hs_chapter"), ("heading", "hs_heading"),
                ("month", "month")) for hit in [re.search(rf"\b{word}", before)] if hit]
            subject = min(named)[1] if named else None
        if subject is None:
            subject = next((d for d in dims if d not in ("year",)), "declaration")
        if counted == "declarations" and subject == "declaration":
            subject = next((d for d in dims if d != "declaration"), "trader")
        if measure in ("declarations",) and subject == "declaration":
            measure = "customs_value"
        return Threshold(measure=measure, op=op, value=value), [subject], measure  # type: ignore[arg-type]

    def _groups_own(self, q: str, dims: list[str]) -> bool:
        """Whether the groups own the whole ("share of each office's imports that is 8703",
        "of their imports"), so that a filter is the part whose share is asked."""
        if re.search(r"\btheir (?:own )?(?:imports?|exports?|trade|value|duty|declarations)\b", q):
            return True
        return any(self._dim_of(m.group(1)) in dims
                   for m in re.finditer(rf"\b({_DIM_ALTERNATION})'s?(?=\s)", q)
                   if re.match(r"'", q[m.end(1):]))

    def _share_part(self, filters: list[Filter], q: str, owner: bool = False) -> Filter | None:
        """The filter whose share is asked ("what share of imports comes from China"); a
        trader is the part when the question asks for its share of the rest ("X's market share
        in 8703", "what share of 8703 does X account for"), not when it owns the imports
        ("what share of X's imports came from China")."""
        trader = next((f for f in filters if f.dimension == "trader"), None)
        if trader is not None and len(filters) > 1 and (
                re.search(r"\bmarket share\b|\baccount(?:s|ed)? for\b|\bhow much of all\b", q)
                or not owner):
            return trader
        if re.search(r"\b(?:came|come|comes|arrived|arrive|arrives|went|go|goes|moved|shipped|"
                     r"sent|travell?ed)\s+(?:in\s+)?(?:by|via)\b|\bflown\b", q):
            # "what share of our imports from Mexico came by air": the mode is the part
            mode = next((f for f in filters if f.dimension == "transport_mode"), None)
            if mode is not None:
                return mode
        preferred = ("origin", "dispatch_country", "transport_mode", "office", "hs_chapter",
                     "hs_heading", "hs_subheading", "incoterm", "aeo_status", "sector", "region",
                     "trader", "channel", "procedure")
        for dim in preferred:
            for flt in filters:
                if flt.dimension == dim:
                    return flt
        return None

    def _two_periods(self, q: str, periods: list[Period], latest: date, *,
                     default_ytd: bool) -> tuple[PeriodSpec, PeriodSpec]:
        ex = self.context.extractor
        yoy = bool(_YOY.search(q))
        if len(periods) >= 2:
            earlier, later = periods[0], periods[-1]
            if _SAME_UNIT.search(q):  # "this month versus the same month last year"
                base = ex.previous(later, yoy=True)
                if earlier.start <= base.start and base.end <= earlier.end and \
                        later.end - later.start < earlier.end - earlier.start:
                    earlier = base
            return _pair(later, ex.like_for_like(earlier, later))
        if periods:
            later = periods[0]
            earlier = ex.previous(later, yoy=yoy)
            return _pair(later, ex.like_for_like(earlier, later))
        if re.search(r"\blast quarter\b", q) or re.search(r"\bthis quarter\b", q):
            later = ex.extract("this quarter" if "this quarter" in q else "last quarter").periods[0]
        elif re.search(r"\blast month\b|\bthis month\b", q):
            later = ex.extract("this month" if "this month" in q else "last month").periods[0]
        elif default_ytd or re.search(r"\bthis year\b|\bso far\b|\byear to date\b|\bytd\b", q):
            found = ex.extract("this year").periods
            later = found[0] if found else self._year(latest.year)
        else:
            later = self._year(latest.year)
        earlier = ex.previous(later, yoy=yoy)
        return _pair(later, ex.like_for_like(earlier, later))

    def _active_absent(self, q: str, periods: list[Period]) -> tuple[Period, Period]:
        """("imported in 2024 but not in 2025") -> (2024, 2025): the period a negation stands
        right before is the absent one ("nothing in 2026 but did in 2025"); else the order in
        the text."""
        first, second = sorted(periods[:2], key=lambda p: _position(q, p))
        negated = [p for p in (first, second) if _NEGATED.search(q[:_position(q, p)][-24:])]
        if len(negated) == 1:
            absent = negated[0]
            return (second if absent is first else first), absent
        return first, second

    def _previous(self, period: Period, yoy: bool) -> Period:
        return self.context.extractor.previous(period, yoy=yoy)

    def _year(self, year: int) -> Period:
        return self.context.extractor.year_period(year)

    @staticmethod
    def _check_period(period: PeriodSpec | None, latest: date, first: date) -> None:
        if period is None:
            return
        if period.start > latest:
            raise PlanError(f"The data ends on {latest.isoformat()}: there is nothing yet for "
                            f"{period.label()} (it is in the future for this data).")
        if period.end <= first:
            raise PlanError(f"The data starts on {first.isoformat()}: there is nothing for "
                            f"{period.label()}, which ends before it.")

    def _unexplained(self, q: str, explained: set[str], plan: QueryPlan) -> list[str]:
        masks = {w for m in MASKS.values() for w in _WORD.findall(m.lower())}
        out = []
        for word in _WORD.findall(q):
            if len(word) < 3 or word in _GENERIC or word in STOPWORDS or word in explained \
                    or word in masks:
                continue
            if word.rstrip("s") in _GENERIC or word + "s" in _GENERIC:
                continue
            if word not in out:
                out.append(word)
        return out


# Measures the verified intents mostly do not compute: a plan with one is worth answering.
_SPECIAL_MEASURES = frozenset({
    "value_per_kg", "value_per_unit", "effective_duty_rate", "red_share", "yellow_share",
    "related_party_share", "traders", "sellers", "origins", "value_per_declaration",
    *AUDIT_MEASURES,
    "items", "quantity", "invoice_value"})
# Questions that ask for records, not figures: the verified intents list them.
_LISTING = re.compile(
    r"(?:latest|most recent(?:ly)?|recent|newest|last \d+)\b(?:\s+\w+){0,3}\s+"
    r"(?:declarations|audits|entries|shipments)\b|\b(?:show|list)\s+(?:me\s+)?(?:all\s+)?"
    r"(?:the\s+)?(?:\w+\s+){0,3}(?:declarations|audits)\b(?!\s+(?:by|per|above|over|with))")
#: Dimensions whose values are numbers, so that "heading 2009" is a code and not a year.
_CODED_BY_NUMBER = frozenset({"hs_chapter", "hs_heading", "hs_subheading", "procedure",
                              "preference"})
_CODED_FILTERS = frozenset({"transport_mode", "incoterm", "procedure", "sector", "region",
                            "aeo_status"})


_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")
#: A month as officers write it: in full or shortened ("Feb", "Sept", "oct.").
_MONTH_RE = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
             r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
#: A day of the month, plain or ordinal ("30", "32nd", "the 1st of").
_DAY_RE = r"(?:the )?(\d{1,2})(?:st|nd|rd|th)?(?: of)?"


def _day_month_year(groups: tuple[str | Any, ...]) -> tuple[str, str, str]:
    """Day, month word and year of one date matched as "30 Feb 2025" (groups 0-2) or as
    "February 30, 2025" (groups 3-5)."""
    return (groups[0], groups[1], groups[2]) if groups[0] else (groups[4], groups[3], groups[5])


def _month_number(word: str) -> int:
    """1-12 for a month word, full or shortened."""
    return [m[:3] for m in _MONTH_NAMES].index(word[:3]) + 1


def _impossible_request(q: str, first: date) -> str | None:
    """A clear sentence for a date, position or count that cannot exist (13th month, Q5,
    30 February, week 60, a range that ends before it starts, 1850, 'last 0 months')."""
    m = re.search(r"\b(\d+)(?:st|nd|rd|th) month\b|\bmonth (?:number |no\.? )?(\d+)\b", q)
    if m and not 1 <= int(m.group(1) or m.group(2)) <= 12:
        return f"There is no {m.group(0)}: months run from 1 to 12."
    m = re.search(r"\b(?:share|proportion|fraction)\b[^?!]{0,40}?\b(?:above|over|more than|"
                  r"greater than|exceeding|at least|higher than)\s+(\d+(?:\.\d+)?)\s*"
                  r"(?:%|percent|per ?cent)", q)
    if m and float(m.group(1)) > 100:
        return (f"A share cannot be more than 100%, so nothing has a share above "
                f"{m.group(1)}%. Did you mean a lower figure?")
    m = re.search(r"\bq([05-9])\b", q)
    if m:
        return f"There is no Q{m.group(1)}: quarters run from Q1 to Q4."
    m = re.search(r"\bweek (\d+)\b", q)
    if m and not 1 <= int(m.group(1)) <= 53:
        return f"There is no week {m.group(1)}: ISO weeks run from 1 to 53."
    day = (rf"(?:{_DAY_RE} ({_MONTH_RE}),? ((?:19|20)\d\d)|"
           rf"({_MONTH_RE}) (\d{{1,2}})(?:st|nd|rd|th)?,? ((?:19|20)\d\d))")
    for m in re.finditer(rf"\b{day}\b", q):
        d, mon, year = _day_month_year(m.groups())
        try:
            date(int(year), _month_number(mon), int(d))
        except ValueError:
            month = _MONTH_NAMES[_month_number(mon) - 1].capitalize()
            if not 1 <= int(d) <= 31:
                return f"There is no day {d} in a month: days run from 1 to 31."
            return f"{d} {month} {year} is not a valid date."
    m = re.search(rf"\b{_DAY_RE} ({_MONTH_RE})(?!\w)", q)
    if m and not 1 <= int(m.group(1)) <= 31:
        return f"There is no day {m.group(1)} in a month: days run from 1 to 31."
    m = re.search(rf"\bfrom ({_MONTH_RE}) ((?:19|20)\d\d) (?:to|until|till|through) "
                  rf"({_MONTH_RE}) ((?:19|20)\d\d)\b", q)
    if m and (int(m.group(4)), _month_number(m.group(3))) < (
            int(m.group(2)), _month_number(m.group(1))):
        return (f"That period ends before it starts ({m.group(3).capitalize()} {m.group(4)} is "
                f"before {m.group(1).capitalize()} {m.group(2)}); did you mean the reverse?")
    m = re.search(rf"\b(?:from|between) {day} (?:to|until|till|through|thru|and|-) {day}", q)
    if m:
        ends: list[date | None] = []
        for at in (1, 7):
            d, mon, y = _day_month_year(m.groups()[at - 1:at + 5])
            try:
                ends.append(date(int(y), _month_number(mon), int(d)))
            except ValueError:
                ends.append(None)
        if ends[0] is not None and ends[1] is not None and ends[1] < ends[0]:
            return (f"That period ends before it starts ({ends[1]:%-d %B %Y} is before "
                    f"{ends[0]:%-d %B %Y}); did you mean the reverse?")
    m = re.search(r"\b(?:rates?|shares?|proportions?|percentages?)\b[^?!]{0,40}?(?:under|below|"
                  r"less than|lower than|<)\s*(-\s*\d+(?:\.\d+)?)\s*(?:%|percent|per ?cent)", q)
    if m:
        return (f"A rate or share cannot be below 0%, so nothing is under "
                f"{m.group(1).replace(' ', '')}%. Did you mean a positive figure?")
    m = re.search(r"\b(?:last|past|previous) 0 (?:days?|weeks?|months?|quarters?|years?)\b", q)
    if m:
        return f"'{m.group(0)}' is an empty period: ask for at least one."
    if re.search(r"\b0th\b", q):
        return "There is no 0th: positions start at the first."
    if re.search(r"\b(?:fewer|less) than (?:0|zero)\b", q):
        return "A count cannot be negative, so nothing can have fewer than 0."
    m = re.search(r"\b(?:in|of|during|since|for) (1[0-8]\d\d|19[0-4]\d)\b", q)
    if m and int(m.group(1)) < first.year:
        return (f"The data starts on {first.isoformat()}: there is nothing for "
                f"{m.group(1)}, which is before it.")
    return None


#: Words for traders: "new importers per sector" counts traders, by sector.
_TRADER_WORDS = re.compile(r"\b(?:importers?|traders?|compan(?:y|ies)|firms?|exporters?|"
                           r"newcomers?|businesses)\b")


def newcomer_dimensions(dims: list[str], question: str) -> list[str]:
    """The groupings of a 'new ...' question: new traders grouped by what they are ("new
    importers per sector" -> trader, sector), otherwise `dims` as they are."""
    kind = next((d for d in dims if d in TRADER_ATTRIBUTES), None)
    if kind is not None and _TRADER_WORDS.search(question.lower()):
        return ["trader", kind]
    return dims


def _traders_of_a_group(q: str, filters: list[Filter]) -> bool:
    """Whether "by traders" only says whose imports: the traders of a sector or region the
    question filters on ("imports by traders in Fuels and energy")."""
    folded = fold_plain(q)
    return any(re.search(rf"\bby (?:the )?(?:traders|importers|companies|firms) (?:in|of|from) "
                         rf"(?:the )?{re.escape(fold_plain(v))}\b", folded)
               for f in filters if f.dimension in ("sector", "region") for v in f.values)


def _without_rate_words(q: str, measures: list[str]) -> str:
    """The question without the words that name a rate it measures: "duty as a percentage of
    value" is the duty rate, not a share of something."""
    for pattern, measure in _MEASURES:
        if measure in measures and measure in _RATE_MEASURES:
            q = pattern.sub(" ", q)
    return q


# "average value per declaration": a mean over entities, which the plan language lacks.
_AVERAGE_PER = re.compile(
    r"\b(?:average|mean|typical)\s+(?:[\w-]+\s+){0,3}?(?:per|for each|by|a|an)\s+"
    r"(?P<per>declaration|entry|shipment|consignment|trader|importer|exporter|company|item|line|"
    r"seller|supplier)\b")
_RATE_MEASURES = frozenset({"effective_duty_rate", "checked_share", "value_per_kg",
                            "value_per_unit", "value_per_declaration"})


def currency_us(filters: list[Filter]) -> bool:
    """'invoiced in US dollars' names a currency, not the origin United States."""
    return any(f.dimension == "currency" and f.values == ["USD"] for f in filters)


def spanning(periods: list[Period]) -> PeriodSpec:
    """One period that holds every named one ("per year, 2024 and 2025")."""
    ordered = sorted(periods, key=lambda p: (p.start, p.end))
    return PeriodSpec(start=ordered[0].start, end=max(p.end for p in ordered),
                      name=" to ".join(dict.fromkeys(p.name for p in ordered)))


def _spec(period: Period) -> PeriodSpec:
    return PeriodSpec(start=period.start, end=period.end, name=period.name)


def _pair(later: Period, earlier: Period) -> tuple[PeriodSpec, PeriodSpec]:
    """Two periods to compare, named by their dates when the data cuts the later one short
    ("1 Jan-30 Nov 2026" against "1 Jan-30 Nov 2025")."""
    if later.partial or later.kind == "ytd":
        return (PeriodSpec(start=later.start, end=later.end, name=_dates(later)),
                PeriodSpec(start=earlier.start, end=earlier.end, name=_dates(earlier)))
    return _spec(later), _spec(earlier)


def _dates(period: Period) -> str:
    last = period.last_day
    if period.start.year == last.year:
        return f"{period.start.day} {period.start:%b}-{last.day} {last:%b %Y}"
    return f"{period.start.day} {period.start:%b %Y}-{last.day} {last:%b %Y}"


def _is_year(num: str, scale: str | None) -> bool:
    return not scale and re.fullmatch(r"(?:19|20)\d\d", num.replace(",", "")) is not None


_NEGATED = re.compile(r"\b(?:not|no|nothing|none|never|without|didn'?t|haven'?t|hasn'?t)\b"
                      r"(?:\s+[\w']+){0,2}?\s+(?:in|during|for|since)?\s*$")


def _position(q: str, period: Period) -> int:
    for probe in (period.name.lower(), str(period.start.year)):
        k = q.find(probe)
        if k >= 0:
            return k
    return len(q)


def _validation_message(exc: ValidationError) -> str:
    for error in exc.errors():
        message = str(error.get("msg", ""))
        if message:
            return message.removeprefix("Value error, ")
    return "The question asks for something I cannot put together."


def plan_of_dict(data: dict[str, Any]) -> QueryPlan:
    """A plan from plain data (a language model's JSON), validated; PlanError when invalid."""
    try:
        return QueryPlan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_validation_message(exc)) from exc
