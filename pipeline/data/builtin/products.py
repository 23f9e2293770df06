"""product_triplets: (anchor, positive, negative) = (shopper query, matching listing, hard-negative listing)
from a small made-up catalog, in English ("en") or Chinese ("zh")."""

from __future__ import annotations

import functools
import itertools
import math
import random
from bisect import bisect_right
from typing import NamedTuple


class _Category(NamedTuple):
    noun: str
    article: str  # en: "a" (a/an picked by the next word) or "a pair of"; zh: the measure word
    features: tuple[str, ...]
    blurbs: tuple[str, ...]  # one listing sentence per feature; says nothing about color, material or size
    materials: tuple[str, ...]
    sizes: tuple[str, ...]
    uses: tuple[str, ...]


# Parallel vocabularies: same keys, same tuple lengths, item i of one language translates item i of the other.
_CATALOG: dict[str, dict[str, _Category]] = {
    "en": {
        "backpack": _Category("hiking backpack", "a", ("waterproof", "lightweight", "anti-theft"), (
            "Roll-top pack that keeps gear dry on rainy trails.", "Stripped-down frame that barely registers on long climbs.",
            "Hidden zippers and a lockable main compartment deter pickpockets."),
            ("nylon", "canvas", "polyester"), ("20L", "30L", "45L"), ("hiking", "commuting", "travel")),
        "headphones": _Category("headphones", "a pair of", ("noise-cancelling", "wireless", "foldable"), (
            "Active noise cancelling silences engines and office chatter.",
            "Bluetooth 5.3 with a 40-hour battery and no cable to tangle.",
            "Hinged earcups fold flat into a pocket-sized pouch."),
            ("plastic", "aluminum", "leather"), ("on-ear", "over-ear", "in-ear"), ("running", "the gym", "flights")),
        "kettle": _Category("electric kettle", "a", ("temperature-control", "keep-warm", "quick-boil"), (
            "Five preset temperatures for green tea, coffee and baby formula.",
            "Holds water hot for up to two hours after boiling.",
            "A 1800 W element boils a full pot in under four minutes."),
            ("stainless steel", "glass", "ceramic"), ("1L", "1.5L", "1.7L"), ("the office", "tea", "dorm rooms")),
        "running_shoes": _Category("running shoes", "a pair of", ("breathable", "cushioned", "waterproof"), (
            "Ventilated upper lets heat escape on summer runs.", "Thick foam midsole softens every stride on hard pavement.",
            "Sealed membrane keeps socks dry through puddles."),
            ("mesh", "leather", "knit"), ("size 38", "size 40", "size 42"), ("road running", "trail running", "marathons")),
        "desk_lamp": _Category("desk lamp", "a", ("dimmable", "eye-care", "rechargeable"), (
            "Stepless dimming from reading-bright to a soft night glow.",
            "Flicker-free LEDs reduce eye strain during long study sessions.",
            "Built-in battery runs eight hours away from the socket."),
            ("metal", "wooden", "plastic"), ("small", "medium", "large"), ("reading", "studying", "crafts")),
        "water_bottle": _Category("water bottle", "a", ("insulated", "leak-proof", "wide-mouth"), (
            "Double-wall vacuum keeps drinks cold for 24 hours.", "Locking lid survives being tossed upside down in a bag.",
            "Wide opening takes ice cubes and is easy to scrub clean."),
            ("stainless steel", "glass", "plastic"), ("500ml", "750ml", "1L"), ("the gym", "school", "hiking")),
        "rain_jacket": _Category("rain jacket", "a", ("packable", "hooded", "reflective"), (
            "Stuffs into its own pocket for the bottom of a bag.", "Adjustable hood stays put in gusty wind.",
            "Reflective trim keeps you visible to drivers after dark."),
            ("nylon", "polyester", "softshell"), ("size S", "size M", "size L"), ("cycling", "hiking", "commuting")),
        "yoga_mat": _Category("yoga mat", "a", ("non-slip", "extra-thick", "foldable"), (
            "Textured grip holds firm even in a sweaty flow.", "Extra padding cushions knees and wrists on hard floors.",
            "Folds into a square that fits in a suitcase."),
            ("TPE", "natural rubber", "cork"), ("4mm", "6mm", "10mm"), ("hot yoga", "pilates", "travel")),
        "office_chair": _Category("office chair", "a", ("ergonomic", "reclining", "swivel"), (
            "Adjustable lumbar support eases back strain over long workdays.",
            "Back tilts to 135 degrees for a break between meetings.",
            "Smooth 360-degree swivel and quiet casters glide across the room."),
            ("mesh", "leather", "fabric"), ("compact", "standard", "big-and-tall"), ("gaming", "home offices", "studying")),
        "coffee_grinder": _Category("coffee grinder", "a", ("burr", "manual", "quiet"), (
            "Conical burrs give an even grind from espresso to French press.", "Hand-cranked and silent, no outlet required.",
            "Low-noise motor won't wake the house at dawn."),
            ("stainless steel", "wooden", "plastic"), ("30g", "50g", "100g"), ("espresso", "pour-over", "camping")),
        "phone_case": _Category("phone case", "a", ("shockproof", "magnetic", "slim"), (
            "Reinforced corners absorb drops onto concrete.", "Built-in magnets snap onto wireless chargers and car mounts.",
            "Barely-there profile that adds almost no bulk."),
            ("silicone", "leather", "TPU"), ("5.4-inch", "6.1-inch", "6.7-inch"), ("everyday use", "sports", "business")),
        "smartwatch": _Category("smartwatch", "a", ("GPS", "waterproof", "solar-powered"), (
            "Built-in GPS tracks pace and route without a phone.", "Rated to 50 m, so it can stay on in the pool.",
            "Solar glass tops up the battery on every sunny walk."),
            ("aluminum", "titanium", "stainless steel"), ("41mm", "45mm", "49mm"), ("swimming", "running", "sleep tracking")),
        "suitcase": _Category("suitcase", "a", ("expandable", "spinner", "lockable"), (
            "Zip-out gusset adds room for souvenirs.", "Four spinner wheels roll smoothly in any direction.",
            "Built-in TSA lock secures your belongings at checkpoints."),
            ("polycarbonate", "aluminum", "fabric"), ("20-inch", "24-inch", "28-inch"),
            ("business trips", "family vacations", "weekend getaways")),
        "tent": _Category("tent", "a", ("instant", "four-season", "ultralight"), (
            "Pop-up poles pitch it in under a minute.", "Low profile and snow skirts handle winter storms.",
            "Trail weight under one kilogram for long treks."),
            ("nylon", "polyester", "canvas"), ("1-person", "2-person", "4-person"), ("camping", "backpacking", "festivals")),
        "blender": _Category("blender", "a", ("high-speed", "portable", "programmable"), (
            "A 1200 W motor crushes ice in seconds.", "USB-rechargeable so you can blend at the gym.",
            "One-touch presets for smoothies, soups and nut butter."),
            ("glass", "plastic", "stainless steel"), ("350ml", "1L", "2L"), ("smoothies", "soups", "baby food")),
        "mouse": _Category("wireless mouse", "a", ("silent", "ergonomic", "rechargeable"), (
            "Quiet clicks that won't disturb a shared office.", "Vertical grip keeps the wrist in a natural handshake position.",
            "USB-C charging gives two months per charge."),
            ("plastic", "aluminum", "rubberized"), ("mini", "standard-size", "large"), ("gaming", "laptops", "office work")),
        "sleeping_bag": _Category("sleeping bag", "a", ("ultralight", "winter", "machine-washable"), (
            "Packs down to the size of a water bottle.", "Rated comfortable down to -10 degrees Celsius.",
            "Toss it in the washer after a muddy trip."),
            ("down", "synthetic", "flannel"), ("regular", "long", "double"), ("camping", "backpacking", "car camping")),
        "umbrella": _Category("umbrella", "a", ("windproof", "automatic", "UV-blocking"), (
            "Vented double canopy flexes instead of flipping in gusts.", "One-button open and close for crowded doorways.",
            "UPF 50+ coating doubles as a sun shade."),
            ("nylon", "polyester", "carbon-fiber"), ("compact", "standard", "golf-size"), ("commuting", "golf", "travel")),
        "speaker": _Category("bluetooth speaker", "a", ("waterproof", "portable", "bass-boosted"), (
            "IPX7 sealed, so it survives a drop in the pool.", "Clip-on strap and a 12-hour battery for days out.",
            "Dual passive radiators add punchy bass."),
            ("fabric", "rubber", "aluminum"), ("mini", "medium", "large"), ("the beach", "parties", "the shower")),
        "keyboard": _Category("mechanical keyboard", "a", ("hot-swappable", "backlit", "wireless"), (
            "Switches pull out for tuning without soldering.", "Per-key RGB lighting for late-night typing.",
            "Tri-mode Bluetooth, 2.4 GHz and USB-C connection."),
            ("aluminum", "plastic", "wooden"), ("60%", "75%", "full-size"), ("gaming", "programming", "the office")),
    },
    "zh": {
        "backpack": _Category("登山背包", "个", ("防水", "轻量", "防盗"), (
            "卷口设计，雨天也能保持装备干燥", "精简背架，长距离爬升几乎感觉不到重量", "隐藏式拉链和可上锁主仓，有效防扒"),
            ("尼龙", "帆布", "涤纶"), ("20升", "30升", "45升"), ("徒步", "通勤", "旅行")),
        "headphones": _Category("耳机", "副", ("降噪", "无线", "可折叠"), (
            "主动降噪，隔绝引擎声和办公室噪音", "蓝牙5.3连接，续航40小时，告别线缆缠绕", "耳罩可折叠，收进随身小包"),
            ("塑料", "铝合金", "皮革"), ("贴耳式", "头戴式", "入耳式"), ("跑步", "健身", "坐飞机")),
        "kettle": _Category("电热水壶", "个", ("控温", "保温", "速热"), (
            "五档预设温度，泡绿茶、冲咖啡、冲奶粉都合适", "烧开后可保温长达两小时", "1800瓦大功率，不到四分钟烧开一整壶"),
            ("不锈钢", "玻璃", "陶瓷"), ("1升", "1.5升", "1.7升"), ("办公室", "泡茶", "宿舍")),
        "running_shoes": _Category("跑鞋", "双", ("透气", "缓震", "防水"), (
            "透气鞋面，夏天跑步也不闷脚", "厚实泡棉中底，硬路面也能减轻冲击", "防水薄膜，踩水坑袜子也不湿"),
            ("网布", "皮革", "针织"), ("38码", "40码", "42码"), ("路跑", "越野跑", "马拉松")),
        "desk_lamp": _Category("台灯", "盏", ("可调光", "护眼", "充电式"), (
            "无级调光，从阅读亮度到柔和夜灯随心切换", "无频闪LED，长时间学习也不累眼", "内置电池，离开插座也能用八小时"),
            ("金属", "木质", "塑料"), ("小号", "中号", "大号"), ("阅读", "学习", "手工")),
        "water_bottle": _Category("水杯", "个", ("保温", "防漏", "宽口"), (
            "双层真空，冷饮可保冷24小时", "锁扣杯盖，倒放在包里也不漏", "宽口设计，方便加冰块和清洗"),
            ("不锈钢", "玻璃", "塑料"), ("500毫升", "750毫升", "1升"), ("健身", "上学", "徒步")),
        "rain_jacket": _Category("雨衣", "件", ("可收纳", "带帽", "反光"), (
            "可收进自带口袋，轻松塞进包底", "可调节帽兜，大风天也不会被吹掉", "反光饰条，夜间让司机看得见你"),
            ("尼龙", "涤纶", "软壳"), ("S码", "M码", "L码"), ("骑行", "徒步", "通勤")),
        "yoga_mat": _Category("瑜伽垫", "张", ("防滑", "加厚", "可折叠"), (
            "纹理防滑表面，出汗也抓得牢", "加厚垫层，硬地板上也能保护膝盖和手腕", "可折叠成方块，能放进行李箱"),
            ("TPE", "天然橡胶", "软木"), ("4毫米", "6毫米", "10毫米"), ("高温瑜伽", "普拉提", "旅行")),
        "office_chair": _Category("办公椅", "把", ("人体工学", "可躺", "旋转"), (
            "可调节腰托，久坐办公也能缓解背部压力", "靠背可后仰至135度，会议间隙也能小憩", "360度平稳旋转，静音脚轮滑动自如"),
            ("网布", "皮革", "布艺"), ("小巧款", "标准款", "加大款"), ("电竞", "居家办公", "学习")),
        "coffee_grinder": _Category("磨豆机", "台", ("锥刀", "手摇", "静音"), (
            "锥形刀盘研磨均匀，从意式到法压都适用", "手摇研磨，安静无声，不需要插电", "低噪音电机，清晨使用也不会吵醒家人"),
            ("不锈钢", "木质", "塑料"), ("30克", "50克", "100克"), ("意式浓缩", "手冲", "露营")),
        "phone_case": _Category("手机壳", "个", ("防摔", "磁吸", "超薄"), (
            "四角加固，摔在水泥地上也能缓冲", "内置磁铁，轻松吸附无线充电器和车载支架", "轻薄贴合，几乎不增加厚度"),
            ("硅胶", "皮革", "TPU"), ("5.4英寸", "6.1英寸", "6.7英寸"), ("日常使用", "运动", "商务")),
        "smartwatch": _Category("智能手表", "块", ("GPS", "防水", "太阳能"), (
            "内置GPS，不带手机也能记录配速和路线", "50米防水，游泳时也能佩戴", "太阳能表镜，晴天散步就能补充电量"),
            ("铝合金", "钛合金", "不锈钢"), ("41毫米", "45毫米", "49毫米"), ("游泳", "跑步", "睡眠监测")),
        "suitcase": _Category("行李箱", "个", ("可扩容", "万向轮", "带密码锁"), (
            "拉链扩容层，多装几件纪念品也没问题", "四个万向轮，任意方向都能顺滑推行", "内置海关密码锁，过安检也安心"),
            ("PC", "铝镁合金", "牛津布"), ("20寸", "24寸", "28寸"), ("出差", "家庭旅行", "周末短途")),
        "tent": _Category("帐篷", "顶", ("速开", "四季", "超轻"), (
            "弹簧杆设计，一分钟内搭好", "低风阻外形加雪裙，冬季风雪也扛得住", "整帐不到一公斤，长线徒步负担更小"),
            ("尼龙", "涤纶", "帆布"), ("单人", "双人", "四人"), ("露营", "背包旅行", "音乐节")),
        "blender": _Category("搅拌机", "台", ("高速", "便携", "智能预设"), (
            "1200瓦电机，几秒就能碎冰", "USB充电，健身房也能随时打杯", "一键预设，果昔、浓汤、坚果酱都能做"),
            ("玻璃", "塑料", "不锈钢"), ("350毫升", "1升", "2升"), ("做果昔", "煮浓汤", "做辅食")),
        "mouse": _Category("无线鼠标", "个", ("静音", "人体工学", "充电式"), (
            "静音按键，共享办公室里也不打扰别人", "垂直握姿，让手腕保持自然握手姿势", "USB-C充电，一次充电用两个月"),
            ("塑料", "铝合金", "类肤涂层"), ("迷你", "标准尺寸", "大号"), ("游戏", "笔记本电脑", "办公")),
        "sleeping_bag": _Category("睡袋", "个", ("超轻", "冬季", "可机洗"), (
            "压缩后只有水瓶大小", "舒适温标低至零下10摄氏度", "露营回来直接丢进洗衣机"),
            ("羽绒", "化纤", "法兰绒"), ("常规", "加长", "双人"), ("露营", "背包旅行", "自驾露营")),
        "umbrella": _Category("雨伞", "把", ("防风", "自动", "防晒"), (
            "双层透气伞面，强风中也不易翻转", "一键自动开合，进门出门更方便", "UPF50+涂层，晴天也能遮阳"),
            ("尼龙", "涤纶", "碳纤维"), ("迷你", "标准", "高尔夫大号"), ("通勤", "打高尔夫", "旅行")),
        "speaker": _Category("蓝牙音箱", "个", ("防水", "便携", "重低音"), (
            "IPX7级防水，掉进泳池也没事", "挂绳设计，续航12小时，出门随身带", "双被动振膜，低音更有冲击力"),
            ("布面", "橡胶", "铝合金"), ("迷你", "中号", "大号"), ("海边", "派对", "淋浴")),
        "keyboard": _Category("机械键盘", "把", ("热插拔", "背光", "无线"), (
            "轴体可直接拔插更换，无需焊接", "单键RGB背光，深夜打字也看得清", "蓝牙、2.4G、有线三模连接"),
            ("铝合金", "塑料", "木质"), ("60%配列", "75%配列", "全尺寸"), ("游戏", "编程", "办公")),
    },
}
_COLORS = {"en": ("black", "white", "red", "blue", "green", "gray", "pink", "yellow"),
           "zh": ("黑色", "白色", "红色", "蓝色", "绿色", "灰色", "粉色", "黄色")}
_BRANDS = {"en": ("Trailhead", "Northwind", "Lumio", "Kestrel", "Bluefin", "Cedarline", "Nimbus", "Orbita", "Harborpine",
                  "Mosswood"),
           "zh": ("山径", "北风", "璐明", "红隼", "蓝鳍", "雪松", "雨云", "轨迹", "港松", "苔林")}
# {a} is the noun phrase with its article (en) or measure word (zh), {np} the bare noun phrase.
_QUERY_TEMPLATES = {
    "en": ("I want to buy {a}", "looking for {a}", "{np}", "best {np}", "where can I buy {a}?", "need {a}",
           "can you recommend {a}?", "{np} on sale", "shopping for {a}", "show me {a}", "buy {np} online", "gift idea: {a}"),
    "zh": ("我想买{a}", "有没有{np}", "{np}", "求推荐{np}", "{np}哪款好", "帮我找{a}", "想入手{a}", "{np}推荐",
           "哪里能买到{np}", "{np}有优惠吗", "网购{np}", "送礼选{a}"),
}
_KINDS = ("size", "feature", "color", "material", "use")  # also the word order of an English noun phrase
_ATTRIBUTE_COUNT_WEIGHTS = {1: 0.3, 2: 0.4, 3: 0.3}  # real search logs favor short queries over exhaustive ones
_OTHER_CATEGORY_NEGATIVES = 0.25  # share of negatives that are an easy, different-category product


_KIND_FIELDS = {"size": "sizes", "feature": "features", "material": "materials", "use": "uses"}


def _values(language: str, category: _Category, kind: str) -> tuple[str, ...]:
    return _COLORS[language] if kind == "color" else getattr(category, _KIND_FIELDS[kind])


class _QuerySpec(NamedTuple):
    category: str
    attributes: dict[str, int]  # kind -> value index, only the kinds the query names
    color_after_noun: bool  # en only: "hiking backpack in black" instead of "black hiking backpack"
    template: int


class _Group(NamedTuple):
    category: str
    kinds: tuple[str, ...]
    color_after_noun: bool
    template: int
    size: int


@functools.cache
def _query_space(language: str, attribute_count: int) -> tuple[tuple[_Group, ...], tuple[int, ...]]:
    """All (category, named kinds, phrasing) groups of queries naming `attribute_count` attributes, with
    cumulative sizes, so a query can be drawn by index without listing all 170k (zh) to 300k (en) of them."""
    groups: list[_Group] = []
    for key, category in _CATALOG[language].items():
        for kinds in itertools.combinations(_KINDS, attribute_count):
            size = math.prod(len(_values(language, category, kind)) for kind in kinds)
            styles = (False, True) if language == "en" and "color" in kinds else (False,)
            for style, template in itertools.product(styles, range(len(_QUERY_TEMPLATES[language]))):
                groups.append(_Group(key, kinds, style, template, size))
    return tuple(groups), tuple(itertools.accumulate(g.size for g in groups))


def _query_spec(language: str, attribute_count: int, index: int) -> _QuerySpec:
    groups, ends = _query_space(language, attribute_count)
    position = bisect_right(ends, index)
    group = groups[position]
    offset = index - (ends[position] - group.size)
    category = _CATALOG[language][group.category]
    attributes = {}
    for kind in group.kinds:
        offset, attributes[kind] = divmod(offset, len(_values(language, category, kind)))
    return _QuerySpec(group.category, attributes, group.color_after_noun, group.template)


def _allocate(n: int, capacities: dict[int, int]) -> dict[int, int]:
    """Rows per attribute count: proportional to the weights, overflow from a full count spills to the rest."""
    counts = {k: 0 for k in capacities}
    remaining, weight_left = n, sum(_ATTRIBUTE_COUNT_WEIGHTS.values())
    for k in sorted(capacities, key=lambda k: capacities[k] / _ATTRIBUTE_COUNT_WEIGHTS[k]):
        counts[k] = min(capacities[k], round(remaining * _ATTRIBUTE_COUNT_WEIGHTS[k] / weight_left))
        remaining, weight_left = remaining - counts[k], weight_left - _ATTRIBUTE_COUNT_WEIGHTS[k]
    for k in capacities:
        extra = min(remaining, capacities[k] - counts[k])
        counts[k], remaining = counts[k] + extra, remaining - extra
    return counts


def _article(category: _Category, phrase: str) -> str:
    if category.article != "a":
        return f"{category.article} {phrase}"
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def _query(language: str, spec: _QuerySpec) -> str:
    category = _CATALOG[language][spec.category]
    word = {kind: _values(language, category, kind)[i] for kind, i in spec.attributes.items()}
    if language == "en":
        before = [word[k] for k in ("size", "feature", "color", "material")
                  if k in word and not (k == "color" and spec.color_after_noun)]
        phrase = " ".join(before + [category.noun])
        phrase += f" in {word['color']}" if spec.color_after_noun else ""
        phrase += f" for {word['use']}" if "use" in word else ""
        article_phrase = _article(category, phrase)
    else:
        phrase = (f"适合{word['use']}的" if "use" in word else "") + word.get("size", "")
        phrase += word["feature"] + ("的" if "color" in word or "material" in word else "") if "feature" in word else ""
        phrase += word.get("color", "") + word.get("material", "") + category.noun
        article_phrase = f"一{category.article}{phrase}"
    return _QUERY_TEMPLATES[language][spec.template].format(a=article_phrase, np=phrase)


def _capitalize(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split())


def _listing(language: str, key: str, product: dict[str, int], brand: str) -> str:
    """A product title plus one-sentence description; `product` holds a value index for every kind."""
    category = _CATALOG[language][key]
    word = {kind: _values(language, category, kind)[i] for kind, i in product.items()}
    blurb = category.blurbs[product["feature"]]
    if language == "en":
        title = _capitalize(f"{brand} {word['feature']} {word['material']} {category.noun}")
        return f"{title}, {_capitalize(word['size'])}, {_capitalize(word['color'])} — {blurb} Great for {word['use']}."
    return (f"{brand} {word['feature']}{word['material']}{category.noun} {word['size']} {word['color']} "
            f"—— {blurb}，适合{word['use']}。")


def _random_product(language: str, key: str, rng: random.Random) -> dict[str, int]:
    category = _CATALOG[language][key]
    return {kind: rng.randrange(len(_values(language, category, kind))) for kind in _KINDS}


def _hard_negative(language: str, spec: _QuerySpec, positive: dict[str, int], rng: random.Random) -> tuple[str, dict[str, int]]:
    if rng.random() < _OTHER_CATEGORY_NEGATIVES:
        other = rng.choice([key for key in _CATALOG[language] if key != spec.category])
        return other, _random_product(language, other, rng)
    # Same product except 1..all of the attributes the shopper asked for, so only those words separate it.
    category = _CATALOG[language][spec.category]
    negative = dict(positive)
    for kind in rng.sample(sorted(spec.attributes), rng.randint(1, len(spec.attributes))):
        choices = len(_values(language, category, kind))
        negative[kind] = (positive[kind] + rng.randrange(1, choices)) % choices
    return spec.category, negative


def _product_capacities(language: str) -> dict[int, int]:
    return {k: _query_space(language, k)[1][-1] for k in _ATTRIBUTE_COUNT_WEIGHTS}


def product_triplets(n: int, seed: int, language: str = "en") -> list[dict[str, str]]:
    """(anchor, positive, negative) product-search triplets; language "en" or "zh"."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if language not in _CATALOG:
        raise ValueError(f"language must be one of {sorted(_CATALOG)}, got {language!r}")
    capacities = _product_capacities(language)
    if n > sum(capacities.values()):
        raise ValueError(f"n={n} exceeds the {sum(capacities.values())} unique {language} product queries "
                         f"the catalog can produce")
    rng = random.Random(seed)
    specs = [_query_spec(language, k, i) for k, count in _allocate(n, capacities).items()
             for i in rng.sample(range(capacities[k]), count)]
    rng.shuffle(specs)
    brands = _BRANDS[language]
    rows, seen = [], set()
    for spec in specs:
        anchor = _query(language, spec)
        if anchor in seen:  # the query space is built injective; this guards edits to the vocabulary
            raise RuntimeError(f"duplicate product query {anchor!r}: two catalog phrases coincide")
        seen.add(anchor)
        positive = {**_random_product(language, spec.category, rng), **spec.attributes}
        negative_key, negative = _hard_negative(language, spec, positive, rng)
        rows.append({"anchor": anchor, "positive": _listing(language, spec.category, positive, rng.choice(brands)),
                     "negative": _listing(language, negative_key, negative, rng.choice(brands))})
    return rows
