# ruff: noqa: E501  (the catalogue is a data table: one product per line)
"""Vocabulary of the demo data: the goods each sector trades, offices, procedures, names.

The demo pictures the customs administration of Panama, a USD economy (so the reporting
currency is the national one) with seaports on two oceans, a hub airport, land borders and
the Colón Free Zone. Everything here is invented for the demo: prices, duty rates and shares
are plausible orders of magnitude, not real tariff or trade statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

HOME = "PA"
VAT_PCT = 7.0  # ITBMS on imports
VAT_ALCOHOL_PCT = 10.0
VAT_EXEMPT_CHAPTERS = frozenset({f"{c:02d}" for c in range(1, 13)} | {"30"})
LOW_VALUE_THRESHOLD_USD = 1_000.0  # imports declared below this per declaration are duty-free
SAFEGUARD_CHAPTERS = ("72", "73", "76")
SAFEGUARD_ORIGIN = "CN"
SAFEGUARD_EXTRA_PCT = 25.0
SWITCH_ORIGINS = ("VN", "MY", "TH", "ID")

# Catalogue: one line per product, grouped by sector.
#   hs6 | USD per kg | MFN duty % | unit:kg per unit | kg per line | air share | origins | texts
# `texts` are commercial descriptions separated by ';' (each unique across the catalogue).
# Products whose only origin is PA are domestic produce for export.
CATALOGUE = """
[electronics]
851713|95|0|u:0.35|300|0.6|CN:55 VN:25 KR:7 IN:5 US:4 TW:4|Smartphones 128 GB, dual SIM, with charger;Mobile phones, Android, 5G;Cellular telephones, assorted models
847130|60|0|u:2.5|600|0.5|CN:70 VN:10 TW:8 US:6 MX:6|Laptop computers 15.6 in, 16 GB RAM;Notebook computers with carrying case;Portable computers, ultrabook, 512 GB SSD
847160|25|0|u:0.6|300|0.3|CN:75 VN:10 MY:8 TH:7|Computer keyboards and mice, wireless;USB keyboards, Spanish layout
852872|12|15|u:14|2500|0.05|CN:45 MX:25 KR:12 VN:10 MY:8|LED television sets 55 in, smart TV;Colour television receivers 43 in;4K UHD televisions 65 in
852852|18|0|u:5.5|1200|0.1|CN:60 VN:15 KR:10 TW:10 MY:5|Computer monitors 24 in, LED backlit;Office monitors 27 in, HDMI/DisplayPort
851830|45|10|u:0.3|150|0.5|CN:75 VN:15 MY:5 US:5|Wireless earphones with charging case;Over-ear headphones with microphone
851762|70|0|u:0.8|200|0.5|CN:55 VN:15 MY:10 US:10 TW:10|Wi-Fi routers, dual band;Network switches, 24 port, managed
850760|20|5|u:0.05|500|0.2|CN:70 KR:12 JP:8 VN:10|Lithium-ion battery cells 18650;Lithium-ion battery packs for power tools
854231|900|0|u:0.002|20|0.95|TW:40 KR:15 MY:15 CN:15 US:10 PH:5|Microprocessors and controllers, integrated circuits;Memory chips DRAM, integrated circuits
850440|14|5|u:0.25|400|0.2|CN:80 VN:10 MY:5 TH:5|Power adapters and chargers, USB-C;Solar inverters 5 kW, grid-tie
853952|8|10|u:0.08|600|0.05|CN:85 VN:8 IN:7|LED bulbs 9 W, E27;LED tubes T8, 18 W
841510|6|10|u:35|3500|0.02|CN:55 TH:20 MY:10 MX:10 KR:5|Split air conditioners 12,000 BTU, inverter;Wall-mounted air conditioning units 18,000 BTU
845011|4.5|10|u:65|4000|0|CN:40 MX:20 KR:15 TR:15 TH:10|Washing machines, fully automatic, 10 kg;Front-loading washing machines 8 kg
841821|3.8|10|u:60|4500|0|CN:35 MX:25 KR:15 TR:15 TH:10|Refrigerators, two doors, 14 cu ft;Household refrigerator-freezers, no frost
850940|9|10|u:4|800|0.05|CN:85 TR:8 DE:7|Blenders and food processors, 600 W;Kitchen stand mixers
847150|55|0|u:8|300|0.4|CN:50 US:20 MX:15 TW:15|Desktop computer processing units (CPU towers);Mini PCs, processing units without monitor
851890|25|5|kg|200|0.3|CN:80 VN:10 US:10|Parts of loudspeakers and headphones

[machinery]
842951|9|0|u:15000|15000|0|US:35 JP:20 CN:25 KR:10 DE:10|Wheel loaders, 3 m3 bucket;Front-end loaders, diesel
843149|12|0|kg|800|0.2|US:40 CN:25 DE:15 JP:10 KR:10|Parts for excavators and loaders;Buckets and teeth for excavators
841370|18|0|u:40|600|0.1|CN:35 DE:20 US:20 IT:15 IN:10|Centrifugal water pumps, electric;Submersible pumps, stainless steel
848180|16|5|kg|500|0.1|CN:45 IT:20 US:15 DE:10 IN:10|Ball valves, brass;Industrial gate valves, cast iron
850211|7|0|u:900|2700|0|CN:40 US:25 GB:15 IT:10 IN:10|Diesel generating sets 60 kVA;Diesel generators 30 kVA, soundproof
847330|80|0|kg|60|0.7|CN:60 TW:15 MY:10 US:10 VN:5|Computer parts, motherboards and memory modules;Hard disk and SSD components
842240|30|0|u:800|2000|0.05|IT:35 DE:30 CN:25 US:10|Bottle filling and capping machines;Packaging and wrapping machines
843810|20|0|u:500|1500|0|IT:40 CN:30 DE:20 ES:10|Bakery ovens and dough mixers, industrial;Bakery machinery, dough dividers
841899|15|5|kg|300|0.15|CN:50 US:25 BR:10 MX:15|Parts of refrigerating equipment, compressors;Condensing units and evaporator coils
848210|14|5|kg|400|0.15|CN:40 JP:20 DE:15 IN:15 SE:10|Ball bearings, assorted sizes;Deep groove ball bearings

[metals]
720839|0.75|5|kg|60000|0|CN:55 KR:10 JP:8 BR:10 TR:10 IN:7|Hot-rolled steel coils, thickness under 3 mm;Hot-rolled flat steel in coils, 1,250 mm wide
721049|0.95|5|kg|40000|0|CN:55 KR:15 VN:10 IN:10 TW:10|Galvanized steel sheets in coils;Zinc-coated flat-rolled steel, 0.5 mm
721420|0.68|10|kg|80000|0|CN:45 TR:25 MX:15 BR:10 ES:5|Steel reinforcing bars, deformed, 12 mm;Rebar, grade 60, 6 m lengths
730630|1.1|10|kg|25000|0|CN:55 MX:15 KR:10 IN:10 TR:10|Welded steel pipes, round, 2 in;Galvanized steel tubes for scaffolding
730890|2.2|10|kg|15000|0|CN:50 US:20 ES:15 TR:15|Prefabricated steel structures for warehouses;Steel beams and trusses, fabricated
731815|2.4|10|kg|3000|0.02|CN:60 TW:20 IN:10 DE:5 US:5|Steel hex bolts and screws;Self-tapping screws, zinc plated
721710|0.9|5|kg|20000|0|CN:50 TR:20 MX:15 KR:15|Steel wire, non-alloy, uncoated;Annealed binding wire
732690|3.5|10|kg|2000|0.05|CN:65 US:15 IN:10 TW:10|Articles of steel, brackets and hooks;Steel cable trays and fittings
760410|3.2|5|kg|12000|0|CN:60 AE:15 TR:10 IN:10 MY:5|Aluminium bars and rods, non-alloyed;Aluminium profiles, mill finish
760429|3.4|5|kg|12000|0|CN:60 AE:15 TR:10 IN:10 MY:5|Aluminium alloy extrusions for windows;Anodised aluminium alloy profiles
760612|3.4|5|kg|15000|0|CN:55 AE:15 US:10 KR:10 IN:10|Aluminium alloy sheets 1 mm;Aluminium alloy plates, 5052
761010|6.5|10|kg|3000|0|CN:60 TR:20 US:10 ES:10|Aluminium windows and door frames;Aluminium sliding doors, glazed
761699|7|5|kg|1500|0.05|CN:60 TR:15 IT:10 US:15|Articles of aluminium, ladders and fittings;Aluminium household articles n.e.s.
720449|0.35|0|kg|100000|0|PA:100|Ferrous scrap, heavy melting steel;Iron and steel scrap, shredded
740400|6.5|0|kg|20000|0|PA:100|Copper scrap, bare bright wire;Copper waste and scrap, mixed

[textiles]
610910|16|15|u:0.18|900|0.1|CN:40 BD:20 VN:15 IN:10 HN:10 GT:5|Cotton T-shirts, knitted, short sleeve;Men's cotton T-shirts, printed;Women's knitted cotton tops
611030|18|15|u:0.35|700|0.1|CN:50 BD:15 VN:15 KH:10 TR:10|Pullovers of synthetic fibres;Knitted sweaters, acrylic
620342|17|15|u:0.6|900|0.1|CN:35 BD:25 MX:15 VN:10 PK:10 TR:5|Men's denim jeans, cotton;Men's cotton trousers, chino
620462|19|15|u:0.5|700|0.1|CN:40 BD:20 VN:15 IN:10 TR:10 MX:5|Women's cotton trousers;Women's denim jeans, stretch
620520|22|15|u:0.3|500|0.15|CN:40 BD:20 IN:15 VN:15 TR:10|Men's cotton shirts, long sleeve;Men's woven cotton shirts, formal
611595|12|15|pr:0.05|400|0.05|CN:60 TR:15 PK:10 IN:10 HN:5|Cotton socks, assorted colours;Men's cotton crew socks
520942|7|5|kg|5000|0|CN:35 IN:25 PK:20 TR:15 MX:5|Denim fabric, cotton 98%, indigo;Woven denim, 12 oz
540752|5|5|kg|4000|0|CN:70 KR:10 TW:10 IN:10|Woven polyester filament fabric, dyed;Polyester lining fabric
630231|10|15|kg|1500|0|CN:40 PK:30 IN:20 TR:10|Cotton bed sheets and pillowcases;Bed linen sets, 100% cotton
600622|6.5|5|kg|3000|0|CN:50 IN:20 PK:15 TR:15|Knitted cotton jersey fabric, dyed;Cotton rib knit fabric, dyed
550320|1.3|0|kg|20000|0|CN:50 IN:20 TH:15 KR:15|Polyester staple fibre;Synthetic staple fibre for spinning
630533|2.2|10|kg|8000|0|CN:50 IN:25 VN:15 TH:10|Woven polypropylene sacks, 50 kg;Polyethylene strip bags for grain

[footwear]
640399|38|15|pr:0.9|600|0.1|CN:40 VN:25 BR:15 IT:10 IN:10|Men's leather shoes, lace-up;Women's leather boots;Leather-upper casual footwear
640299|12|10|pr:0.6|1200|0.05|CN:60 VN:25 ID:10 BR:5|Rubber sandals and flip-flops;Plastic clogs, moulded
640411|30|15|pr:0.7|800|0.1|VN:45 CN:35 ID:15 KH:5|Running shoes with textile uppers;Sports trainers, mesh upper
420221|60|15|u:0.8|200|0.3|CN:40 IT:25 VN:15 IN:10 FR:10|Leather handbags for women;Genuine leather shoulder bags
420222|18|15|u:0.5|600|0.1|CN:75 VN:15 IN:10|Handbags of textile material;Synthetic leather handbags
420292|12|15|u:1.2|1000|0.05|CN:80 VN:15 KH:5|Backpacks of polyester;Travel duffel bags, nylon

[food]
020230|5.8|30|kg|25000|0|US:40 NI:20 BR:15 AR:10 CR:10 UY:5|Frozen boneless beef cuts;Frozen beef, boneless, striploin
020714|2.2|25|kg|25000|0|US:80 BR:15 CL:5|Frozen chicken leg quarters;Frozen chicken wings
020629|2.9|10|kg|20000|0|US:60 NI:20 BR:20|Frozen beef tripe;Frozen bovine offal, kidneys and hearts
040221|3.9|15|kg|20000|0|NZ:35 US:30 CL:10 NL:10 UY:15|Whole milk powder, 26% fat;Full cream milk powder in 25 kg bags
040690|6|20|kg|8000|0|US:45 NL:15 NZ:10 CR:15 DE:10 IT:5|Cheddar cheese blocks;Gouda cheese wheels;Processed cheese slices
100630|0.6|40|kg|40000|0|US:50 GY:20 UY:15 VN:10 TH:5|Milled white rice, long grain;Parboiled rice, 5% broken
100590|0.25|0|kg|500000|0|US:85 AR:10 BR:5|Yellow maize for feed, bulk;Corn grain, yellow, No. 2
100199|0.3|0|kg|400000|0|US:50 CA:35 AR:15|Hard red winter wheat, bulk;Milling wheat, bulk
080810|1.2|15|kg|20000|0|US:60 CL:40|Fresh apples, Gala;Fresh apples, Red Delicious
080610|2.2|15|kg|18000|0|CL:60 US:30 PE:10|Fresh table grapes, seedless;Fresh red globe grapes
070320|1.8|15|kg|20000|0|CN:70 AR:20 ES:10|Fresh garlic, white;Garlic bulbs, fresh, 5 cm
170490|4.5|20|kg|4000|0|MX:30 US:25 CO:20 GT:10 ES:10 CN:5|Hard candies and lollipops;Chewing gum and gummy sweets
190590|3.8|10|kg|5000|0|MX:30 US:30 CO:20 CR:10 ES:10|Bread and buns, baked;Crackers and cakes, packaged
190531|3.5|15|kg|5000|0|MX:35 US:25 CO:20 CR:10 ES:10|Sweet biscuits and cookies;Cream-filled biscuits
210690|6|10|kg|5000|0.02|US:50 MX:20 CR:15 CO:10 DE:5|Food preparations, flavouring syrups;Protein powder supplements
200410|1.1|15|kg|22000|0|US:40 NL:25 BE:20 CA:15|Frozen french fries;Frozen potato wedges
160414|4.5|15|kg|18000|0|EC:40 TH:30 CO:15 ES:15|Canned tuna in vegetable oil;Tuna chunks in brine, cans
150790|1.2|10|kg|20000|0|US:40 AR:40 BR:20|Refined soybean oil;Soybean cooking oil, 1 l bottles
230990|0.9|5|kg|20000|0|US:60 MX:20 BR:10 CR:10|Dog and cat food, dry;Poultry feed premix
030617|9|0|kg|12000|0.1|PA:100|Frozen white shrimp, headless;Frozen shrimp, peeled and deveined
090111|8|0|kg|15000|0.05|PA:100|Green coffee beans, Arabica, Boquete;Specialty green coffee, Geisha
080390|0.55|0|kg|20000|0|PA:100|Fresh bananas, Cavendish;Fresh bananas in 18 kg boxes
080430|0.6|0|kg|18000|0|PA:100|Fresh pineapples, MD2;Fresh pineapples, golden
080711|0.4|0|kg|20000|0|PA:100|Fresh watermelons;Seedless watermelons
170114|0.45|0|kg|200000|0|PA:100|Raw cane sugar, bulk;Raw cane sugar in 50 kg bags
030389|3.2|0|kg|15000|0.05|PA:100|Frozen red snapper, whole;Frozen grouper, whole

[beverages]
220830|9|15|l:0.95|8000|0|GB:75 US:20 IE:5|Scotch whisky, 12 years;Blended whisky, 1 l bottles
220421|4.5|15|l:1|8000|0|CL:40 ES:20 AR:15 IT:15 FR:10|Red wine, Cabernet Sauvignon, 750 ml;White wine, Sauvignon Blanc
220300|1|15|l:1|20000|0|MX:50 NL:20 US:15 CO:10 DE:5|Lager beer in cans, 355 ml;Beer in bottles, 330 ml
220210|0.9|15|l:1|20000|0|MX:40 CR:30 US:20 GT:10|Soft drinks, carbonated, 2 l;Energy drinks in cans

[chemicals]
281511|0.5|0|kg|25000|0|US:60 CN:30 MX:10|Caustic soda flakes, 99%;Sodium hydroxide, solid
290511|0.4|0|kg|200000|0|TT:60 US:25 CL:15|Methanol, bulk
310210|0.38|0|kg|250000|0|QA:25 RU:20 CN:20 US:15 OM:10 SA:10|Granular urea 46% N;Prilled urea, bulk
310520|0.55|0|kg|100000|0|RU:25 US:20 CN:15 NO:15 BE:10 MX:15|NPK fertiliser 15-15-15;Compound fertiliser NPK, bags
320890|4|10|kg|6000|0|US:40 MX:20 CO:15 DE:15 CN:10|Enamel paints, solvent based;Industrial coatings, epoxy
340290|1.6|10|kg|15000|0|MX:40 US:25 CO:20 CR:15|Laundry detergent powder;Dishwashing liquid, retail packs
380893|6|0|kg|10000|0|US:30 CN:30 IN:15 DE:15 IL:10|Glyphosate herbicide;Selective herbicides for rice
382499|3|5|kg|5000|0|CN:35 US:30 DE:20 IN:15|Chemical preparations, concrete admixtures;Industrial chemical mixtures

[cosmetics]
330499|25|10|kg|1500|0.3|US:30 FR:25 KR:20 MX:10 CO:10 DE:5|Face creams and serums;Make-up foundations and powders
330510|3.5|10|kg|8000|0|MX:40 US:25 CO:20 BR:15|Shampoos, 400 ml bottles;Anti-dandruff shampoo
330300|30|10|kg|800|0.3|FR:45 ES:15 US:15 IT:10 AE:10 GB:5|Perfumes, eau de parfum 100 ml;Eau de toilette, assorted brands
340111|2.5|10|kg|6000|0|MX:35 US:20 CO:20 TR:15 ID:10|Toilet soap bars;Bath soap, moisturising
330590|9|10|kg|2000|0.05|US:40 MX:25 FR:15 BR:20|Hair conditioners and styling gels;Hair dyes and colourants

[pharma]
300490|60|0|kg|800|0.5|IN:25 DE:15 US:15 CH:10 MX:10 CO:10 ES:10 FR:5|Medicaments, tablets, antibiotics;Analgesic tablets, retail packs;Antihypertensive medicines, blister packs
300241|900|0|kg|50|0.95|BE:35 US:25 IN:20 FR:10 GB:10|Vaccines for human use, vials;Influenza vaccines
300215|3000|0|kg|10|1|US:40 CH:30 DE:20 IE:10|Monoclonal antibodies, immunological products;Immunological products, infusion
901839|22|0|kg|800|0.3|US:35 CN:25 MX:20 DE:10 IE:10|Catheters and cannulae;Syringes and needles, sterile
902214|150|0|u:400|400|0.2|DE:30 US:30 JP:20 NL:10 CN:10|X-ray apparatus for medical use;Digital radiography systems
401512|5|0|pr:0.012|3000|0.05|MY:60 TH:25 CN:10 VN:5|Nitrile examination gloves;Surgical latex gloves, sterile
382219|120|0|kg|100|0.9|US:40 DE:25 IE:10 CN:10 KR:15|Diagnostic reagent kits;Laboratory reagents, test kits

[plastics]
390110|1.2|0|kg|50000|0|US:55 SA:15 KR:10 MX:10 CO:10|Low-density polyethylene resin;LDPE film grade pellets
390210|1.25|0|kg|50000|0|US:40 CO:30 KR:15 SA:15|Polypropylene homopolymer resin;PP injection grade pellets
390761|1.1|0|kg|40000|0|CN:40 MX:25 US:20 KR:15|PET resin, bottle grade;Polyethylene terephthalate chips
392321|2.5|10|kg|8000|0|CN:40 MX:25 US:20 CO:15|Polyethylene bags and sacks;Plastic garbage bags, rolls
392490|4|15|kg|3000|0.02|CN:75 MX:10 US:10 VN:5|Plastic kitchenware and containers;Household articles of plastics
401110|4.2|10|u:9|8000|0|CN:40 KR:15 JP:15 TH:15 ID:10 VN:5|Passenger car tyres 205/55 R16;Radial tyres for SUVs
401120|3.8|10|u:55|15000|0|CN:50 TH:20 JP:15 KR:15|Truck and bus radial tyres 295/80 R22.5;Tyres for lorries
391723|2.3|10|kg|6000|0|CN:30 MX:30 CO:20 US:20|PVC pipes, rigid, 4 in;PVC pressure pipes

[vehicles]
870323|16|15|u:1400|14000|0|JP:35 KR:25 US:15 MX:15 CN:10|Passenger cars, petrol, 2.0 l, sedan;Sport utility vehicles, petrol, 2.5 l
870322|14|15|u:1150|11500|0|JP:30 KR:25 CN:20 IN:15 MX:10|Passenger cars, petrol, 1.4 l, hatchback;Compact cars, 1.2 l
870340|18|10|u:1500|9000|0|JP:60 KR:20 US:10 CN:10|Hybrid passenger cars;Hybrid SUVs, petrol-electric
870380|22|0|u:1900|9500|0|CN:50 US:20 KR:15 DE:15|Electric passenger cars;Battery electric SUVs
870421|13|10|u:1900|9500|0|JP:45 TH:35 US:10 MX:10|Diesel pickup trucks, double cab;Light diesel trucks, 3.5 t
871120|5.5|15|u:120|3600|0|CN:45 IN:30 JP:10 TH:10 CO:5|Motorcycles 150 cc;Motorcycles 125 cc, street
870830|7|10|kg|1500|0.05|CN:40 US:20 MX:15 JP:10 DE:10 BR:5|Brake pads and discs;Brake calipers and parts
870899|8|10|kg|2000|0.05|CN:35 US:25 JP:20 MX:15 KR:5|Motor vehicle parts, suspension components;Vehicle parts n.e.s., radiators
870870|5.5|10|kg|2500|0|CN:60 TH:15 US:10 IT:10 TW:5|Alloy road wheels 17 in;Steel wheels for trucks
871160|14|20|u:18|1500|0.02|CN:90 VN:10|Electric scooters, 350 W;Electric motorcycles, 2 kW
840820|12|5|u:350|1500|0|JP:30 US:30 CN:20 DE:10 KR:10|Diesel engines for trucks;Diesel engines, 4-cylinder, for vehicles

[furniture]
940360|3.5|15|kg|6000|0|CN:45 VN:20 MY:10 BR:10 US:10 IT:5|Wooden dining tables and cabinets;Wooden bedroom furniture sets
940161|5|15|u:25|3000|0|CN:50 VN:20 MX:10 IT:10 US:10|Upholstered sofas with wooden frames;Upholstered armchairs, wood frame
940191|3.2|5|kg|3000|0|CN:70 VN:15 US:10 MX:5|Wooden parts of seats;Wooden frames and legs for chairs
940320|2.9|15|kg|5000|0|CN:70 VN:10 US:10 MX:10|Metal office furniture, shelving;Steel filing cabinets
940421|5|15|u:20|2000|0|CN:40 US:30 MX:20 CO:10|Foam mattresses, queen size;Memory foam mattresses
940542|9|10|kg|1500|0.05|CN:85 MX:5 US:5 ES:5|LED ceiling luminaires;LED floodlights for outdoor use
691110|3.5|15|kg|3000|0|CN:70 TH:10 PT:10 DE:10|Porcelain dinner sets;Porcelain mugs and plates
701349|2.5|15|kg|3000|0|CN:50 TR:20 FR:10 MX:20|Glass tumblers and drinkware;Glass food storage containers

[toys]
950300|8|5|kg|1500|0.05|CN:85 MX:5 VN:5 DK:5|Plastic toys and dolls;Toy vehicles and building sets;Children's ride-on toys
950450|45|10|u:4|300|0.4|CN:70 VN:15 JP:10 MX:5|Video game consoles;Handheld game consoles
950691|3.5|10|kg|4000|0|CN:80 TW:10 US:10|Treadmills and exercise bikes;Gym weights and benches
950662|6|10|u:0.45|1500|0.02|CN:50 PK:40 TH:10|Footballs, size 5;Inflatable volleyballs and basketballs
950490|7|10|kg|1500|0.05|CN:85 US:10 DE:5|Board games and playing cards;Table games, billiard accessories
871200|6|10|u:14|2500|0|CN:75 TW:15 KH:5 VN:5|Bicycles, mountain type, 26 in;Children's bicycles
950710|20|10|u:0.3|400|0.1|CN:70 JP:15 US:15|Fishing rods, carbon fibre;Fishing tackle, rods and reels

[construction]
252329|0.09|5|kg|500000|0|CO:40 MX:20 TR:20 VN:20|Grey Portland cement, bulk;Portland cement in 42.5 kg bags
690721|0.55|15|kg|25000|0|ES:35 CN:25 BR:15 MX:15 IT:10|Porcelain floor tiles 60x60;Glazed ceramic wall tiles
441231|0.7|10|kg|20000|0|CN:40 BR:30 CL:20 EC:10|Plywood sheets, 18 mm;Marine plywood, 12 mm
680291|0.8|10|kg|20000|0|IT:30 ES:20 CN:30 TR:20|Marble slabs, polished;Granite countertops
700529|0.5|10|kg|25000|0|CN:40 MX:30 CO:20 US:10|Float glass sheets, 6 mm;Clear float glass, 4 mm
854449|7|10|kg|5000|0|CN:35 MX:25 US:20 CO:10 VN:10|Electric copper cables, PVC insulated;Building wire THHN, 12 AWG

[energy]
271012|0.85|0|kg|1000000|0|US:80 CO:10 MX:10|Gasoline, unleaded 91 RON, bulk;Motor gasoline 95 RON, bulk
271019|0.8|0|kg|1200000|0|US:75 EC:10 CO:10 TT:5|Diesel fuel, ultra-low sulphur;Marine fuel oil, bunker grade
271112|0.55|0|kg|500000|0|US:90 TT:10|Liquefied propane, bulk;LPG, propane-butane mix
854143|3|0|u:22|8000|0|CN:80 VN:10 MY:5 IN:5|Solar photovoltaic modules 450 W;Monocrystalline solar panels

[paper]
481910|1.2|10|kg|10000|0|MX:30 US:30 CO:20 CR:10 GT:10|Corrugated cardboard boxes;Folding cartons, printed
480411|0.7|0|kg|60000|0|US:70 SE:10 BR:10 CL:10|Kraftliner, unbleached, in rolls;Kraft paper for sacks
482010|2.5|10|kg|4000|0|CN:50 CO:20 MX:15 IN:15|School notebooks, spiral;Diaries and notepads

[general]
910211|120|10|u:0.06|50|0.8|CN:50 HK:20 CH:15 JP:15|Wrist watches, quartz, analogue;Digital wrist watches
711319|25000|10|kg|3|1|IT:30 IN:25 TR:20 US:15 TH:10|Gold jewellery, 18 carat;Gold chains and bracelets
900410|60|10|u:0.05|100|0.5|CN:70 IT:20 US:10|Sunglasses, polarised;Fashion sunglasses
"""


@dataclass(frozen=True)
class Sector:
    """A trader sector: its share of traders, its goods, and how its names read."""

    label: str
    share: float
    size: float  # volume multiplier of a typical trader
    chapters: tuple[str, ...]  # chapters of its long-tail goods
    borrows: tuple[str, ...]  # other sectors whose goods it also trades
    words: tuple[str, ...]  # words in company names
    exporters: float  # share of its traders that export their own produce or re-export
    season: tuple[float, ...]  # monthly weights, January to December


_FLAT = (1.0,) * 12
_RETAIL = (0.85, 0.8, 0.95, 0.95, 1.0, 1.0, 1.0, 1.1, 1.2, 1.25, 1.2, 0.9)
_FOOD = (1.0, 0.95, 1.0, 1.0, 0.95, 0.95, 1.0, 1.0, 1.0, 1.05, 1.15, 1.2)
_BUILD = (0.9, 1.05, 1.15, 1.1, 1.05, 0.95, 0.9, 0.9, 0.95, 1.0, 1.0, 0.85)

SECTORS: dict[str, Sector] = {
    "general": Sector("General trading (free zone wholesale)", 0.14, 1.4,
                      ("61", "62", "64", "85", "95", "33", "42", "91", "96"),
                      ("electronics", "textiles", "footwear", "toys", "cosmetics"),
                      ("Trading", "Import Export", "Distributors", "Wholesale", "International"),
                      0.4, _RETAIL),
    "food": Sector("Food and agriculture", 0.13, 1.0,
                   ("02", "03", "04", "07", "08", "09", "15", "16", "17", "19", "20", "21"),
                   (), ("Foods", "Alimentos", "Agro", "Fresh Produce", "Food Distributors"),
                   0.35, _FOOD),
    "beverages": Sector("Beverages and spirits", 0.04, 1.0, ("22",), (),
                        ("Beverages", "Wines & Spirits", "Bebidas", "Drinks"), 0.05, _FOOD),
    "textiles": Sector("Textiles and apparel", 0.09, 0.9, ("52", "54", "55", "60", "61", "62", "63"),
                       (), ("Textiles", "Apparel", "Fashion", "Garments", "Moda"), 0.1, _RETAIL),
    "footwear": Sector("Footwear and leather goods", 0.05, 0.8, ("64", "42"), (),
                       ("Footwear", "Shoes", "Calzado", "Leather"), 0.1, _RETAIL),
    "electronics": Sector("Electronics and appliances", 0.09, 1.2, ("85", "84"), (),
                          ("Electronics", "Tech", "Digital", "Appliances", "Electro"),
                          0.1, _RETAIL),
    "machinery": Sector("Machinery and equipment", 0.07, 1.0, ("84",), (),
                        ("Machinery", "Equipment", "Industrial", "Maquinaria"), 0.03, _FLAT),
    "metals": Sector("Iron, steel and aluminium", 0.06, 1.3, ("72", "73", "76"), (),
                     ("Steel", "Metals", "Aceros", "Metalurgica", "Aluminium"), 0.3, _BUILD),
    "chemicals": Sector("Chemicals and fertilisers", 0.05, 1.1, ("28", "29", "31", "32", "38"), (),
                        ("Chemicals", "Quimica", "Agrochemicals", "Industrial Supplies"),
                        0.03, _FLAT),
    "cosmetics": Sector("Cosmetics and personal care", 0.03, 0.8, ("33", "34"), (),
                        ("Cosmetics", "Beauty", "Personal Care", "Belleza"), 0.1, _RETAIL),
    "pharma": Sector("Pharmaceuticals and medical supplies", 0.05, 1.0, ("30", "90"), (),
                     ("Pharma", "Medical", "Farmaceutica", "Health Supplies"), 0.2, _FLAT),
    "plastics": Sector("Plastics and rubber", 0.05, 1.0, ("39", "40"), (),
                       ("Plastics", "Polymers", "Plasticos", "Packaging"), 0.03, _FLAT),
    "vehicles": Sector("Motor vehicles and parts", 0.06, 1.2, ("87",), (),
                       ("Motors", "Auto Parts", "Automotriz", "Autos", "Vehicles"), 0.05, _FLAT),
    "furniture": Sector("Furniture and household goods", 0.05, 0.8, ("94", "69", "70"), (),
                        ("Furniture", "Home", "Muebles", "Interiors", "Decor"), 0.03, _RETAIL),
    "toys": Sector("Toys and sporting goods", 0.03, 0.8, ("95",), (),
                   ("Toys", "Sports", "Juguetes", "Leisure"), 0.05, _RETAIL),
    "construction": Sector("Construction materials", 0.05, 1.1, ("25", "68", "69", "70", "44"), (),
                           ("Construction", "Building Supplies", "Materiales", "Hardware"),
                           0.02, _BUILD),
    "energy": Sector("Fuels and energy", 0.008, 2.5, ("27",), (),
                     ("Energy", "Petroleum", "Fuels", "Combustibles"), 0.02, _FLAT),
    "paper": Sector("Paper and packaging", 0.02, 0.9, ("48",), (),
                    ("Paper", "Packaging", "Papelera", "Print"), 0.02, _FLAT),
}

# (true subheading, declared lower-duty subheading): goods declared under a neighbour heading.
MISCLASSIFICATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "electronics": (("852872", "852852"), ("851830", "851890")),
    "general": (("852872", "852852"),),
    "food": (("020230", "020629"), ("170490", "190590")),
    "textiles": (("610910", "600622"),),
    "footwear": (("640399", "640299"),),
    "vehicles": (("871160", "950300"), ("870870", "761699")),
    "furniture": (("940161", "940191"),),
    "toys": (("950450", "847150"),),
}


@dataclass(frozen=True)
class Office:
    """A customs office: code (used in declaration numbers), name and the modes it serves."""

    code: str
    name: str
    modes: tuple[str, ...]
    weight: float


OFFICES: tuple[Office, ...] = (
    Office("101", "Balboa Seaport", ("sea",), 0.20),
    Office("102", "Manzanillo International Terminal, Colón", ("sea",), 0.20),
    Office("103", "Colón Container Terminal", ("sea",), 0.10),
    Office("104", "Cristóbal Seaport, Colón", ("sea",), 0.07),
    Office("105", "PSA Panama International Terminal, Rodman", ("sea",), 0.06),
    Office("201", "Tocumen International Airport", ("air",), 0.85),
    Office("202", "Enrique Malek Airport, David", ("air",), 0.15),
    Office("301", "Paso Canoas Land Border", ("road",), 0.75),
    Office("302", "Guabito Land Border, Bocas del Toro", ("road",), 0.25),
    Office("401", "Colón Free Zone", ("sea", "road"), 0.25),
    Office("402", "Panamá Pacífico Special Economic Area", ("sea", "air", "road"), 0.06),
    Office("501", "Panama Canal Railway Terminal, Corozal", ("rail",), 1.0),
)

# Neighbours from which goods arrive by road through Costa Rica.
ROAD_ORIGINS = frozenset({"CR", "NI", "HN", "GT", "SV", "MX", "BZ"})
TRANSSHIPMENT_HUBS = {"sea": ("US", "CO", "MX", "ES", "NL"), "air": ("US", "MX", "ES", "NL", "DE"),
                      "road": ("CR",), "rail": ("US", "CO")}

IMPORT_PROCEDURES = (("4000", 0.76), ("4071", 0.06), ("7100", 0.09), ("5100", 0.05),
                     ("5300", 0.04))
SUSPENSIVE_PROCEDURES = frozenset({"7100", "5100", "5300"})
EXPORT_PROCEDURES = (("1000", 0.75), ("2100", 0.05))
REEXPORT_PROCEDURE = "3171"

INCOTERMS = {  # per transport mode: (incoterm, weight)
    "sea": (("FOB", 0.45), ("CIF", 0.22), ("CFR", 0.12), ("EXW", 0.08), ("FCA", 0.08),
            ("DAP", 0.05)),
    "air": (("FCA", 0.35), ("EXW", 0.2), ("CPT", 0.15), ("CIP", 0.1), ("DAP", 0.15),
            ("DDP", 0.05)),
    "road": (("DAP", 0.4), ("FCA", 0.3), ("EXW", 0.2), ("CPT", 0.1)),
    "rail": (("FCA", 0.5), ("CPT", 0.3), ("DAP", 0.2)),
}
# Customs value (CIF basis) over invoice value: freight and insurance to add.
INCOTERM_UPLIFT = {"EXW": 1.12, "FCA": 1.10, "FOB": 1.08, "CFR": 1.01, "CPT": 1.01,
                   "CIF": 1.0, "CIP": 1.0, "DAP": 1.0, "DDP": 1.0}

CURRENCIES = ("USD", "EUR", "CNY", "JPY", "GBP", "KRW", "MXN", "COP", "CHF")
USD_RATES = {"USD": 1.0, "EUR": 0.92, "CNY": 7.15, "JPY": 148.0, "GBP": 0.79, "KRW": 1330.0,
             "MXN": 17.5, "COP": 4000.0, "CHF": 0.88}
EU = frozenset({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
                "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
# Invoice currency other than USD, by the seller's country: (currency, share).
LOCAL_CURRENCY = {"CN": ("CNY", 0.2), "JP": ("JPY", 0.5), "GB": ("GBP", 0.6), "KR": ("KRW", 0.3),
                  "MX": ("MXN", 0.15), "CO": ("COP", 0.1), "CH": ("CHF", 0.5)}

# Origins with a free trade agreement: preference code 300 may be claimed.
FTA_PARTNERS = frozenset({"US", "CA", "MX", "CR", "SV", "GT", "HN", "NI", "CL", "PE", "SG",
                          "TW", "IL", "KR", "GB", "CH", "NO", "IS", "LI"}) | EU
# Price level of goods by origin, relative to the catalogue price.
ORIGIN_PRICE = {"DE": 1.35, "JP": 1.3, "US": 1.2, "IT": 1.35, "CH": 1.5, "FR": 1.35, "GB": 1.25,
                "KR": 1.1, "TW": 1.05, "CN": 0.85, "VN": 0.85, "IN": 0.8, "BD": 0.8, "PK": 0.8,
                "KH": 0.8}

REGIONS = (("Panamá", 0.52), ("Colón", 0.16), ("Panamá Oeste", 0.12), ("Chiriquí", 0.08),
           ("Coclé", 0.03), ("Veraguas", 0.025), ("Herrera", 0.02), ("Los Santos", 0.015),
           ("Bocas del Toro", 0.015), ("Darién", 0.005))

DOMESTIC_FORMS = (("S.A.", 0.55), ("Corp.", 0.15), ("Inc.", 0.12), ("S. de R.L.", 0.12),
                  ("Ltd.", 0.06))
DOMESTIC_PREFIXES = ("Importadora", "Distribuidora", "Comercial", "Inversiones", "Grupo",
                     "Corporación")
BRANDS = ("Orion", "Atlas", "Pacífico", "Istmo", "Canal", "Delta", "Alfa", "Global", "Summit",
          "Cóndor", "Tropical", "Andes", "Caribe", "Meridian", "Nova", "Sol", "Aurora", "Vertex",
          "Omega", "Titan", "Polaris", "Zenith", "Horizon", "Pioneer", "Crown", "Eagle", "Jaguar",
          "Quetzal", "Marlin", "Coral", "Bahía", "Ancla", "Puente", "Estrella", "Vista", "Sierra",
          "Cumbre", "Puma", "Halcón", "Arco", "Tucán", "Volcán", "Azuero", "Chagres", "Perla",
          "Galeón", "Brisa", "Faro", "Metro", "Unión")

# Foreign-established traders and parents of subsidiaries: Faker locale and legal forms.
FOREIGN = {
    "US": ("en_US", ("LLC", "Inc.", "Corp.")),
    "DE": ("de_DE", ("GmbH", "AG", "GmbH & Co. KG")),
    "GB": ("en_GB", ("Ltd", "PLC")),
    "FR": ("fr_FR", ("SARL", "S.A.S.")),
    "ES": ("es_ES", ("S.L.", "S.A.")),
    "IT": ("it_IT", ("S.r.l.", "S.p.A.")),
    "NL": ("nl_NL", ("B.V.", "N.V.")),
    "MX": ("es_MX", ("S.A. de C.V.",)),
    "CO": ("es_CO", ("S.A.S.",)),
    "CR": ("es_ES", ("S.A.",)),
    "TR": ("tr_TR", ("Ltd. Şti.", "A.Ş.")),
    "JP": ("en_US", ("Corporation", "Co., Ltd.", "K.K.")),
    "KR": ("en_US", ("Co., Ltd.", "Corporation")),
    "CN": ("en_US", ("Co., Ltd.", "Trading Co., Ltd.")),
}
FOREIGN_SHARES = (("US", 0.2), ("DE", 0.1), ("GB", 0.06), ("FR", 0.05), ("ES", 0.08),
                  ("IT", 0.05), ("NL", 0.04), ("MX", 0.1), ("CO", 0.1), ("CR", 0.06),
                  ("TR", 0.02), ("JP", 0.05), ("KR", 0.04), ("CN", 0.05))
EAST_ASIAN_NAMES = {
    "CN": ("Shenzhen", "Ningbo", "Guangzhou", "Xiamen", "Yiwu", "Hengda", "Jinhui", "Huaxin",
           "Dongfang", "Tianli", "Xinyuan", "Haitian", "Longsheng", "Zhongtai", "Fuxing"),
    "JP": ("Tanaka", "Sato", "Nakamura", "Yamamoto", "Kobayashi", "Fujimoto", "Okada",
           "Hoshino", "Takeda", "Mori"),
    "KR": ("Daehan", "Hanil", "Seoul", "Samil", "Dongyang", "Kumho", "Shinsung", "Hanbit",
           "Daewon", "Jinsung"),
}

AEO_TYPES = (("AEO-C", 0.45), ("AEO-F", 0.4), ("AEO-S", 0.15))

AUDIT_TYPES = (("Post-clearance audit", 0.4), ("Desk review", 0.25), ("Valuation audit", 0.15),
               ("Classification review", 0.08), ("Origin verification", 0.07),
               ("Warehouse stock audit", 0.05))
AUDIT_OUTCOMES = (("No findings", 0.45), ("Additional duty assessed", 0.3),
                  ("Additional duty and penalty", 0.12), ("Warning issued", 0.1),
                  ("Referred for investigation", 0.03))
AUDIT_FINDINGS = {
    "Post-clearance audit": (
        "freight and insurance were left out of the customs value of EXW and FOB shipments",
        "royalty payments to the licensor were not added to the customs value",
        "several consignments were declared under a lower-duty subheading",
        "preferential origin was claimed without valid proofs of origin"),
    "Desk review": (
        "invoice values did not match the payments recorded in the accounts",
        "duty relief was claimed on goods that did not qualify",
        "records for part of the period could not be produced"),
    "Valuation audit": (
        "prices paid to a related supplier were below those of comparable sales",
        "undeclared post-importation rebates reduced the price actually paid",
        "assists supplied free of charge to the foreign manufacturer were not declared"),
    "Classification review": (
        "finished goods were declared as parts to obtain a lower duty rate",
        "goods were classified by their material instead of their function"),
    "Origin verification": (
        "the origin declared did not match the supplier's production records",
        "certificates of origin were issued for goods only transshipped in the exporting country"),
    "Warehouse stock audit": (
        "stock records of the customs warehouse did not match the physical count",
        "goods left the warehouse without a declaration for release"),
}
