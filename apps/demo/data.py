"""A demonstration dataset: customer-support messages with label errors worth finding.

Everything is generated from hand-written templates and vocabulary, deterministically for a seed:
no network, nothing downloaded. The records follow the import file conventions (``id``, ``text``,
``label``, ``split``, ``metadata``), so ``write_jsonl`` produces a file ``import_samples`` takes.

The data carries deliberate problems whose ground truth ``generate`` returns alongside:

* about 6% of the train/validation/test labels flipped to a plausible wrong class (confusable
  pairs such as billing/returns and account/technical far more often than chance);
* a weak slice, ``channel == "phone"`` (noisy call transcripts), with three times the flip rate;
* about 1% near-duplicate messages (tiny edits), a few of them copied from train into test
  (leakage) and a few carrying a conflicting label;
* a handful (~0.5%) of outliers: gibberish, other languages, empty-ish "hi";
* a production split, unlabelled and drifted: later months, more technical questions and a
  new product line (``NEW_PRODUCT_LINE``) that hardly appears in the labelled splits.

``production_days`` adds a week of timed production messages for monitoring, one day drifted.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from os import PathLike
from typing import Any

DEMO_CLASSES: list[str] = [
    "billing",
    "shipping",
    "returns",
    "account",
    "technical",
    "product_question",
]

SPLIT_SHARES = {"train": 0.70, "validation": 0.10, "test": 0.15, "production": 0.05}
LABELLED_SPLITS = ("train", "validation", "test")

FLIP_RATE = 0.06
WEAK_SLICE = {"channel": "phone"}
WEAK_SLICE_FACTOR = 3.0
NEAR_DUPLICATE_RATE = 0.01
OUTLIER_RATE = 0.005
NEW_PRODUCT_LINE = "Nimbus"
MIN_SAMPLES = 200

# Plausible mistakes: when a label is flipped, most flips go to a class the message could
# honestly be confused with. Weights per wrong class; the rest is spread over all other classes.
CONFUSABLE: dict[str, dict[str, float]] = {
    "billing": {"returns": 0.5, "account": 0.3},
    "returns": {"billing": 0.5, "shipping": 0.3},
    "shipping": {"returns": 0.55, "product_question": 0.2},
    "account": {"technical": 0.55, "billing": 0.25},
    "technical": {"account": 0.5, "product_question": 0.3},
    "product_question": {"technical": 0.45, "returns": 0.2, "shipping": 0.15},
}
CONFUSABLE_SHARE = 0.85  # share of flips that go to a confusable class

_CLASS_PRIOR = {
    "billing": 0.19,
    "shipping": 0.22,
    "returns": 0.16,
    "account": 0.15,
    "technical": 0.16,
    "product_question": 0.12,
}
_PRODUCTION_PRIOR = {
    "billing": 0.14,
    "shipping": 0.15,
    "returns": 0.14,
    "account": 0.11,
    "technical": 0.27,
    "product_question": 0.19,
}
_CHANNELS = {"email": 0.40, "chat": 0.42, "phone": 0.18}
_REGIONS = {"en-US": 0.5, "en-GB": 0.25, "en-IN": 0.25}
_LABELLED_MONTHS = [f"2025-{m:02d}" for m in range(1, 11)]
_PRODUCTION_MONTHS = ["2025-11", "2025-12"]
_NEW_LINE_LAUNCH = "2025-09"

# --- vocabulary -------------------------------------------------------------------------------

_PRODUCTS: dict[str, list[str]] = {
    "Aero 2 blender": ["dishwasher safe", "BPA free", "strong enough to crush ice"],
    "Lumen smart lamp": ["dimmable", "available in white", "compatible with Alexa"],
    "Kettle Pro": ["cordless", "stainless steel inside", "able to keep water warm"],
    "TrailPack 30L backpack": ["waterproof", "small enough for cabin luggage", "lifetime warranty"],
    "TrailPack 20L daypack": [
        "waterproof",
        "fitted with a laptop sleeve",
        "comfortable for hiking",
    ],
    "Halo Buds": ["sweat resistant", "compatible with Android", "noise cancelling"],
    "Cirrus air purifier": ["quiet enough for a bedroom", "fitted with a HEPA filter"],
    "Pebble fitness band": ["waterproof for swimming", "compatible with iPhone", "rechargeable"],
    "Ember coffee grinder": ["adjustable for espresso", "easy to take apart", "quiet"],
    "Drift robot vacuum": ["good with pet hair", "able to map more than one floor"],
    "Vista 4K webcam": ["compatible with Mac", "fitted with a privacy shutter", "plug and play"],
}
_NEW_PRODUCTS: dict[str, list[str]] = {
    "Nimbus smart speaker": ["compatible with Google Home", "usable without wifi"],
    "Nimbus Mini": ["battery powered", "able to pair with a second speaker"],
    "Nimbus Hub": ["compatible with Zigbee bulbs", "wall mountable"],
}
# Products a customer would compare with each other.
_FAMILIES = [
    ["Aero 2 blender", "Kettle Pro", "Ember coffee grinder"],
    ["Lumen smart lamp", "Cirrus air purifier", "Drift robot vacuum"],
    ["Halo Buds", "Pebble fitness band", "Vista 4K webcam"],
    ["TrailPack 30L backpack", "TrailPack 20L daypack"],
]
# The products with a battery, an app or a connection, for the technical templates.
_DEVICES = ["Lumen smart lamp", "Halo Buds", "Cirrus air purifier", "Pebble fitness band"]
_DEVICES += ["Drift robot vacuum", "Vista 4K webcam"]
_APPS = ["the app", "the Kitewell app", "your app", "the mobile app", "the website"]
_ERRORS = ["error E42", "error 503", "a 'something went wrong' page", "ERR_CONNECTION_RESET"]
_ERRORS += ["error code 0x80070", "a blank white screen", "error E17", "a timeout error"]
_CARRIERS = {
    "en-US": ["UPS", "FedEx", "USPS"],
    "en-GB": ["Royal Mail", "DPD", "Evri"],
    "en-IN": ["Delhivery", "Blue Dart", "India Post"],
}
_COUNTRIES = ["Canada", "Ireland", "Norway", "Australia", "Mexico", "Singapore", "Switzerland"]
_PACKAGE = {"en-US": ["package"], "en-GB": ["parcel"], "en-IN": ["parcel", "package"]}
_MOBILE = {"en-US": ["phone", "cell"], "en-GB": ["mobile"], "en-IN": ["mobile"]}
_CARDS = {
    "en-US": ["my Visa", "my Amex", "PayPal", "Apple Pay", "my Mastercard"],
    "en-GB": ["my debit card", "my Visa", "PayPal", "my Mastercard", "Apple Pay"],
    "en-IN": ["UPI", "my debit card", "my credit card", "net banking", "Paytm"],
}
_NAMES = {
    "en-US": ["Jake", "Maria", "Tom", "Ashley", "Chris", "Dana", "Luis", "Emily"],
    "en-GB": ["Olivia", "Harry", "Siobhan", "James", "Priya", "Callum", "Sophie"],
    "en-IN": ["Priya", "Rahul", "Anjali", "Vikram", "Sneha", "Arjun", "Kavya"],
}
_WHEN = ["yesterday", "last week", "on Monday", "two days ago", "this morning", "last month"]
_WHEN += ["over a week ago", "on Friday", "a few days ago", "earlier today"]
_DAYS = ["3", "4", "5", "6", "8", "10", "12"]
_PROMO = ["SAVE15", "WELCOME10", "SPRING20", "FREESHIP", "VIP25"]

# --- message templates per class ----------------------------------------------------------------

_TEMPLATES: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for order {order}.",
        "There's a charge of {amount} on {card} that I don't recognize.",
        "Why was I billed {amount} when the price at checkout was {amount2}?",
        "Can I get a copy of the invoice for order {order}? I need it for expenses.",
        "My payment keeps getting declined even though {card} has plenty of funds.",
        "I canceled my subscription {when} but was still charged {amount}.",
        "The promo code {promo} wasn't applied and I paid full price.",
        "How do I change the card used for my subscription payments?",
        "I got charged a restocking fee of {amount} and nobody told me about it.",
        "Do you offer payment in installments for the {product}?",
        "The pending authorization of {amount} from {when} still hasn't dropped off {card}.",
        "I was charged for shipping on order {order} even though it was over the free shipping limit.",
        "My bank statement shows {amount} from Kitewell but I never placed an order.",
        "The price dropped to {amount2} two days after I bought the {product} for {amount}. "
        "Can I get the difference back?",
        "Please send me a receipt for the {amount} I paid with {card}.",
        "Why is there a monthly charge of {amount} on {card}? I don't remember signing up for anything.",
        "I need the billing address on my invoice for order {order} corrected.",
        "My gift card balance wasn't applied to order {order}, I paid {amount} extra.",
        "I paid for order {order} with {card} but the order says payment pending.",
        "Can you explain the {amount} tax added to order {order}?",
        "The checkout total was {amount2} but {card} was charged {amount}.",
        "I was double charged {when}, once on {card} and once on my gift card.",
    ],
    "shipping": [
        "Where is my order {order}? It was supposed to arrive {when}.",
        "Tracking for order {order} hasn't updated in {days} days.",
        "{carrier} says the {package} was delivered but there's nothing at my door.",
        "Can I change the delivery address for order {order}? It hasn't shipped yet.",
        "Do you ship to {country}?",
        "My {package} has been stuck in customs for {days} days, what do I do?",
        "How long does standard delivery usually take? I want to order the {product}.",
        "{carrier} left a note saying they couldn't deliver. Can I pick it up instead?",
        "Order {order} arrived with only one of the two items I ordered.",
        "Is it possible to upgrade order {order} to express shipping?",
        "The tracking number you sent me doesn't work on the {carrier} website.",
        "Order {order} shows as shipped {when} but {carrier} says they never received it.",
        "Can you deliver on a Saturday? I'm not home during the week.",
        "Why is my order still processing? I placed it {when}.",
        "Can you hold order {order} until I'm back from vacation?",
        "The {package} went to the wrong address, a neighbor two streets over has it.",
        "Will order {order} arrive before the weekend? It's a birthday present.",
        "Do you offer next day delivery on the {product}?",
        "The delivery estimate for order {order} keeps moving back, first it was Tuesday and now "
        "it's next week.",
        "The {carrier} driver marked order {order} as refused, but I never refused anything.",
        "My {package} was left in the rain and the box is soaked.",
        "I ordered the {product} {when} and there's still no tracking number.",
    ],
    "returns": [
        "I'd like to return the {product}, it's not what I expected.",
        "How do I start a return for order {order}?",
        "I sent the {product} back {when} and still haven't received my refund.",
        "The {product} arrived broken. Can I get a replacement?",
        "Can I exchange the {product} for the {product2}?",
        "The return label you emailed has expired, can you send a new one?",
        "Is the return window 30 days from purchase or from delivery?",
        "I received the wrong item in order {order}, I ordered the {product}.",
        "Do I have to pay for return shipping if the {product} is faulty?",
        "My refund for order {order} was only {amount2}, but I paid {amount}.",
        "I dropped the return off with {carrier} {when}, can you confirm you got it?",
        "The {product} stopped working after {days} days, I want my money back.",
        "Can I return the {product} if I've already opened it?",
        "I threw away the original box, can I still send the {product} back?",
        "The {product} was a gift and I'd like to return it for store credit.",
        "I want to cancel the return I started for order {order}, I've decided to keep it.",
        "The replacement {product} has the same fault as the first one. I'd rather have a refund.",
        "Can I return just one item from order {order}?",
        "How long does a refund take once the warehouse receives the return?",
        "The {product} doesn't match the color in the photos, I want to send it back.",
        "I returned the {product} in store {when}, when will the refund show up?",
        "Part of the {product} was missing from the box, can you replace the whole thing?",
    ],
    "account": [
        "I can't log in, it says my password is wrong but I just reset it.",
        "How do I change the email address on my account?",
        "Please delete my account and all my data.",
        "I never received the password reset email.",
        "Someone changed my account email without my permission, I think I was hacked.",
        "How do I stop the marketing emails?",
        "I have two accounts by mistake, can you merge them?",
        "My account got locked after too many login attempts.",
        "Can I add my partner to my account so we can share order history?",
        "I want to update the {mobile} number used for my login codes.",
        "The verification code never arrives by text message.",
        "My order history is empty since I logged in {when}, where did my old orders go?",
        "Can I change the name shown on my account?",
        "I signed up with Google and now I want to log in with a normal password.",
        "My loyalty points disappeared from my account {when}.",
        "Please update the surname on my account, I recently got married.",
        "I'm getting emails for an account I never created.",
        "How do I download a copy of my personal data?",
        "Can you remove my saved card from my profile?",
        "My account says it is suspended, why?",
        "I moved and want to change the default address in my account settings.",
        "Two-factor login keeps asking for a code from my old {mobile}.",
    ],
    "technical": [
        "{app_cap} crashes every time I open the cart.",
        "The {device} won't connect to wifi after the last update.",
        "I get {error} when I try to check out.",
        "The {device} firmware update failed halfway and now it won't turn on.",
        "The website keeps loading forever on Safari.",
        "Bluetooth pairing with the {device} fails on my Android phone.",
        "{app_cap} logs me out every few minutes.",
        "I get {error} when I click the link in the confirmation email.",
        "The {device} keeps disconnecting from {app}.",
        "The {device} display flickers and then goes blank.",
        "The battery on the {device} drains in a couple of hours, is that a known bug?",
        "Search on the website returns nothing, even when I type {product}.",
        "The checkout button is grayed out on my phone.",
        "The {product} makes a loud beeping noise and shows {error}.",
        "After updating {app} my saved settings for the {device} are gone.",
        "The {device} is not detected when I plug it into my laptop.",
        "Push notifications stopped working in {app} {when}.",
        "The {device} stopped responding to voice commands {when}.",
        "Images on your product pages don't load, I just see gray boxes.",
        "The {device} resets itself every night around 2am.",
        "{app_cap} shows {error} whenever I try to add the {product}.",
        "The {device} turns itself off after a few minutes, even when fully charged.",
    ],
    "product_question": [
        "Is the {product} {feature}?",
        "What's the difference between the {product} and the {product2}?",
        "Does the {product} come with a warranty?",
        "When will the {product} be back in stock?",
        "What are the dimensions of the {product}?",
        "Can you tell me if the {product} is {feature}? The listing doesn't say.",
        "Is there a newer model of the {product} coming out soon?",
        "Do you sell replacement parts for the {product}?",
        "How loud is the {product}? I'd want to use it at night.",
        "Which colors does the {product} come in?",
        "Is the {product} suitable for a beginner?",
        "Does the {device} include a charger or do I buy one separately?",
        "I'm choosing between the {product} and the {product2} for my mom, which would you "
        "recommend?",
        "What's the real-world battery life of the {device}?",
        "Can the {product} be used outdoors?",
        "Is there a manual for the {product} I can download?",
        "Will the {product} be on sale for Black Friday?",
        "How do I clean the {product}?",
        "Is the {product} {feature}, or is that only the newer version?",
        "Does the {product} work in {country}?",
        "How heavy is the {product}?",
        "Can I buy the {product} in a bundle with the {product2}?",
    ],
}

# Production-only phrasings about the new product line (the drift).
_NEW_LINE_TEMPLATES: dict[str, list[str]] = {
    "billing": [
        "I was charged {amount} for Nimbus Premium after the free trial, I canceled before it ended.",
        "Is the Nimbus Premium subscription billed monthly or yearly?",
    ],
    "shipping": [
        "My {new_product} preorder still hasn't shipped, it's been {days} days.",
        "When does the {new_product} ship to {country}?",
    ],
    "returns": [
        "The {new_product} sounds distorted at high volume, I'd like to return it.",
        "Can I swap my {new_product} for the {new_product2}?",
    ],
    "account": [
        "How do I link my {new_product} to my Kitewell account?",
        "My {new_product} is registered to my old account, how do I move it?",
    ],
    "technical": [
        "My {new_product} won't pair with {app} after setup.",
        "The {new_product} keeps dropping off the wifi every evening.",
        "Voice commands on the {new_product} stopped working {when}.",
        "The {new_product} is stuck on a blinking orange light after the update.",
        "Multiroom audio between two {new_product} speakers is out of sync.",
    ],
    "product_question": [
        "Can two {new_product} speakers play in stereo?",
        "Does the {new_product} support Spotify Connect?",
        "Is the {new_product} {new_feature}?",
        "What's the difference between the Nimbus Mini and the Nimbus smart speaker?",
    ],
}

_EMAIL_OPENERS = ["Hi,", "Hello,", "Dear Kitewell team,", "Good morning,", "Hi there,", "Hey,"]
_EMAIL_OPENERS += ["Hello team,", "Dear Support,", ""]
_EMAIL_PLEASANTRIES = [
    "I hope you're well.",
    "Hope you can help.",
    "Quick question.",
    "Sorry to bother you.",
]
_EMAIL_EXTRAS = [
    "Could you please look into this?",
    "Any help would be appreciated.",
    "This is getting really frustrating.",
    "Please get back to me as soon as possible.",
    "I've already tried emailing once.",
    "Thanks in advance.",
    "",
]
_EMAIL_CLOSERS = ["Thanks,", "Thank you!", "Kind regards,", "Best,", "Regards,", "Many thanks,"]
_CHAT_OPENERS = ["hi", "hey", "hello", "hi there", "Hi!", "hello?", "", "", ""]
_CHAT_TAILS = ["thx", "ty", "thanks", "pls help", "", "", "", ""]
_PHONE_OPENERS = [
    "hi yeah um I'm calling because",
    "hello uh yes so",
    "yeah hi, so basically",
    "hi um",
    "okay so the thing is",
    "hello, uh, I'm calling about this,",
    "yes hi",
]
_PHONE_CLOSERS = ["okay thank you", "yeah that's it", "um yeah", "thanks bye", "", ""]
_PHONE_FILLERS = ["uh", "um", "like", "you know", "so", "I mean"]
_IN_EXTRAS = ["Kindly look into this at the earliest.", "Please do the needful.", "Kindly help."]

_GB_SPELLING = {
    "recognize": "recognise",
    "canceled": "cancelled",
    "authorization": "authorisation",
    "color": "colour",
    "colors": "colours",
    "grayed": "greyed",
    "gray": "grey",
    "neighbor": "neighbour",
    "mom": "mum",
    "vacation": "holiday",
    "installments": "instalments",
}
_GB_RE = re.compile(r"\b(" + "|".join(_GB_SPELLING) + r")\b")

# --- outliers ---------------------------------------------------------------------------------

_FOREIGN = [
    "Hola, mi pedido no ha llegado y nadie me responde.",
    "Bonjour, je voudrais annuler ma commande s'il vous plaît.",
    "Hallo, ich habe mein Paket immer noch nicht erhalten.",
    "Olá, quero devolver o produto, veio com defeito.",
    "Buongiorno, il pagamento è stato addebitato due volte.",
    "नमस्ते, मेरा ऑर्डर अभी तक नहीं आया है।",
    "Hoi, mijn account is geblokkeerd en ik kan niet inloggen.",
    "注文した商品がまだ届いていません。",
    "Dzień dobry, chciałbym zwrócić słuchawki.",
]
_EMPTYISH = ["hi", "hello?", "?", "test", "ok", ".", "Sent from my iPhone", "thanks", "..."]
_EMPTYISH += ["hi hi", "asdf", "Out of office: I'm away until Monday with limited email access."]


@dataclass
class _Draft:
    text: str
    true_label: str
    split: str
    metadata: dict[str, Any]
    label: str | None = None  # the given label
    source: _Draft | None = None
    id: str = ""
    tags: set[str] = field(default_factory=set)


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _amount(rng: random.Random, region: str) -> str:
    if region == "en-IN":
        value = rng.choice([499, 799, 1299, 1499, 2499, 3999, 5499, 899])
        return rng.choice(["₹", "Rs. "]) + f"{value:,}"
    value = rng.choice([7.99, 12.95, 19.99, 24.50, 39.00, 49.99, 89.00, 129.99, 249.00, 15.00])
    return ("£" if region == "en-GB" else "$") + f"{value:.2f}"


def _value(amount: str) -> float:
    return float(re.sub(r"[^0-9.]", "", amount.replace("Rs. ", "")))


def _order(rng: random.Random, channel: str) -> str:
    number = str(rng.randint(100000, 999999))
    if channel == "phone" and rng.random() < 0.6:
        return " ".join(number)  # read out digit by digit
    return rng.choice(["#" + number, "KW-" + number, number])


def _neighbours(product: str) -> list[str]:
    for family in _FAMILIES:
        if product in family:
            return [p for p in family if p != product]
    return [p for p in _NEW_PRODUCTS if p != product]


def _slots(rng: random.Random, region: str, channel: str, new_line_share: float) -> dict[str, str]:
    catalog = list(_PRODUCTS)
    if rng.random() < new_line_share:
        product = rng.choice(list(_NEW_PRODUCTS))
        feature = rng.choice(_NEW_PRODUCTS[product])
    else:
        product = rng.choice(catalog)
        feature = rng.choice(_PRODUCTS[product])
    new_line = rng.random() < new_line_share
    device = rng.choice(list(_NEW_PRODUCTS) if new_line else _DEVICES)
    new_product, new_product2 = rng.sample(list(_NEW_PRODUCTS), 2)
    app = rng.choice(_APPS)
    amount, amount2 = _amount(rng, region), _amount(rng, region)
    while amount2 == amount:
        amount2 = _amount(rng, region)
    # The templates read "charged {amount} though the price was {amount2}": amount is the larger.
    if _value(amount) < _value(amount2):
        amount, amount2 = amount2, amount
    return {
        "product": product,
        "device": device,
        "product2": rng.choice(_neighbours(product)),
        "feature": feature,
        "new_product": new_product,
        "new_product2": new_product2,
        "new_feature": rng.choice(_NEW_PRODUCTS[new_product]),
        "app": app,
        "app_cap": app[0].upper() + app[1:],
        "error": rng.choice(_ERRORS),
        "order": _order(rng, channel),
        "amount": amount,
        "amount2": amount2,
        "card": rng.choice(_CARDS[region]),
        "carrier": rng.choice(_CARRIERS[region]),
        "country": rng.choice(_COUNTRIES),
        "package": rng.choice(_PACKAGE[region]),
        "mobile": rng.choice(_MOBILE[region]),
        "when": rng.choice(_WHEN),
        "days": rng.choice(_DAYS),
        "promo": rng.choice(_PROMO),
    }


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha() and w.islower()]
    if not spots:
        return text
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.random()
    if kind < 0.4:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]  # swap two letters
    elif kind < 0.7:
        w = w[:j] + w[j + 1 :]  # drop a letter
    else:
        w = w[:j] + w[j] + w[j:]  # double a letter
    words[i] = w
    return " ".join(words)


_PROPER = {"I", "Kitewell", "Nimbus", "Bluetooth"}
_PROPER |= {w.split()[0] for w in [*_PRODUCTS, *_NEW_PRODUCTS, *sum(_CARRIERS.values(), [])]}


def _lower_first(sentence: str) -> str:
    """Lower-case a sentence's first letter, unless the first word is a name."""
    first = sentence.split(" ", 1)[0]
    if first in _PROPER or first[1:] != first[1:].lower():
        return sentence
    return sentence[0].lower() + sentence[1:]


def _phone_style(rng: random.Random, body: str) -> str:
    text = body.replace(",", "")
    sentences = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]
    spoken = []
    for s in sentences:
        s = s.rstrip(".!")
        s = _lower_first(s)
        if rng.random() < 0.5:
            s = rng.choice(_PHONE_FILLERS) + " " + s
        spoken.append(s)
    parts = [rng.choice(_PHONE_OPENERS), " ".join(spoken)]
    closer = rng.choice(_PHONE_CLOSERS)
    if closer:
        parts.append(closer)
    text = " ".join(parts)
    if rng.random() < 0.5:
        text = "caller: " + text
    return text


def _compose(rng: random.Random, body: str, channel: str, region: str) -> str:
    if channel == "phone":
        return _phone_style(rng, body)
    if channel == "chat":
        opener = rng.choice(_CHAT_OPENERS)
        tail = rng.choice(_CHAT_TAILS)
        text = _lower_first(body) if opener and rng.random() < 0.6 else body
        if rng.random() < 0.4:
            text = text.rstrip(".")
        if rng.random() < 0.25:
            text = text.lower()
        text = " ".join(p for p in (opener, text, tail) if p)
        return _typo(rng, text) if rng.random() < 0.12 else text
    opener = rng.choice(_EMAIL_OPENERS)
    pleasantry = rng.choice(_EMAIL_PLEASANTRIES) if rng.random() < 0.2 else ""
    paragraph = " ".join(p for p in (pleasantry, body) if p)
    if region == "en-IN" and rng.random() < 0.4:
        extra = rng.choice(_IN_EXTRAS)
    else:
        extra = rng.choice(_EMAIL_EXTRAS)
    if extra:
        paragraph += " " + extra
    if rng.random() < 0.05:
        paragraph = _typo(rng, paragraph)
    lines = [opener, "", paragraph] if opener else [paragraph]
    if rng.random() < 0.7:
        closer = rng.choice(_EMAIL_CLOSERS)
        if region == "en-GB" and rng.random() < 0.3:
            closer = "Cheers,"
        lines += ["", closer, rng.choice(_NAMES[region])]
    return "\n".join(lines)


def _localise(text: str, region: str) -> str:
    if region == "en-US":
        return text
    return _GB_RE.sub(lambda m: _GB_SPELLING[m.group(1)], text)


def _metadata(rng: random.Random, split: str, label: str) -> dict[str, Any]:
    region = _pick(rng, _REGIONS)
    team = {"en-US": "tier1-americas", "en-GB": "tier1-emea", "en-IN": "tier1-apac"}[region]
    if label == "technical" and rng.random() < 0.35:
        team = "tier2-technical"
    elif label == "billing" and rng.random() < 0.3:
        team = "payments"
    months = _PRODUCTION_MONTHS if split == "production" else _LABELLED_MONTHS
    return {
        "channel": _pick(rng, _CHANNELS),
        "language_region": region,
        "created_month": rng.choice(months),
        "agent_team": team,
    }


def _message(rng: random.Random, label: str, split: str, meta: dict[str, Any]) -> str:
    region, channel = meta["language_region"], meta["channel"]
    if split == "production":
        new_line_share = 0.5
        use_new_template = rng.random() < 0.35
    else:
        new_line_share = 0.1 if meta["created_month"] >= _NEW_LINE_LAUNCH else 0.0
        use_new_template = False
    templates = _NEW_LINE_TEMPLATES[label] if use_new_template else _TEMPLATES[label]
    body = rng.choice(templates).format_map(_slots(rng, region, channel, new_line_share))
    return _localise(_compose(rng, body, channel, region), region)


def _wrong_label(rng: random.Random, label: str) -> str:
    if rng.random() < CONFUSABLE_SHARE:
        return _pick(rng, CONFUSABLE[label])
    return rng.choice([c for c in DEMO_CLASSES if c != label])


_SYNONYMS = [
    ("Can ", "Could "),
    ("can't", "cannot"),
    ("don't", "do not"),
    ("I'd like", "I would like"),
    ("it's", "it is"),
    ("Thanks,", "Thank you,"),
    ("Hi,", "Hello,"),
    ("Hello,", "Hi,"),
    ("hi ", "hey "),
    ("please", "pls"),
    (" the ", " my "),
]


def _near_duplicate(rng: random.Random, text: str) -> str:
    """The same message with a tiny edit or two: punctuation, a word, a typo, the sign-off."""

    def punctuation(t: str) -> str:
        spots = [m.start() for m in re.finditer(r"[.?!,]", t)]
        if not spots:
            return t + rng.choice([".", "!", "?"])
        i = rng.choice(spots)
        return t[:i] + rng.choice(["", t[i] * 2, "!" if t[i] != "!" else "."]) + t[i + 1 :]

    def wording(t: str) -> str:
        found = [(a, b) for a, b in _SYNONYMS if a in t]
        if not found:
            return t + rng.choice([" thanks", " please", " thx"])
        a, b = rng.choice(found)
        return t.replace(a, b, 1)

    def sign_off(t: str) -> str:
        lines = t.split("\n")
        if len(lines) > 3:  # an email with a name under it: sent again without the name
            return "\n".join(lines[:-1])
        return t + rng.choice([" thanks", " thank you", " ty"])

    edits = [punctuation, wording, sign_off, lambda t: _typo(rng, t)]
    out = text
    for _ in range(10):
        for _ in range(rng.choice([1, 1, 2])):
            out = rng.choice(edits)(out)
        if out != text:
            return out
    return text + "!"


def _split_sizes(n: int) -> dict[str, int]:
    sizes = {s: int(round(n * share)) for s, share in SPLIT_SHARES.items()}
    sizes["train"] += n - sum(sizes.values())
    return sizes


def generate(*, n: int = 2400, seed: int = 7) -> tuple[list[dict], dict]:
    """Build ``n`` records and the ground truth of the problems planted in them.

    Records: ``{"id", "text", "label", "split", "metadata"}`` in import-file form; ``label`` is
    None for the (unlabelled) production rows. Ground truth::

        {"flipped": {id: true_label},                   # given label != true label
         "near_duplicates": [[source_id, copy_id], ...],  # every planted pair, incl. the two below
         "leaked": [[train_id, test_id], ...],
         "conflicting_duplicates": [[source_id, copy_id], ...],  # the copy is also in "flipped"
         "outliers": [id, ...],
         "weak_slice": {"channel": "phone"},
         "drift": {"split": "production", "new_product_line": "Nimbus"}}
    """
    if n < MIN_SAMPLES:
        raise ValueError(f"n must be at least {MIN_SAMPLES}, got {n}")
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret

    n_outliers = max(3, round(n * OUTLIER_RATE))
    n_copies = max(6, round(n * NEAR_DUPLICATE_RATE))
    n_leaked = max(2, round(n_copies * 0.25))
    n_conflicting = max(2, round(n_copies * 0.15))
    n_base = n - n_outliers - n_copies

    # Base messages, split by exact shares; each label drawn from its split's class prior.
    splits = [s for s, k in _split_sizes(n_base).items() for _ in range(k)]
    seen: set[str] = set()
    drafts: list[_Draft] = []
    for split in splits:
        label = _pick(rng, _PRODUCTION_PRIOR if split == "production" else _CLASS_PRIOR)
        meta = _metadata(rng, split, label)
        text = _message(rng, label, split, meta)
        for _ in range(30):  # keep the unplanned duplicates out
            if text not in seen:
                break
            text = _message(rng, label, split, meta)
        seen.add(text)
        drafts.append(_Draft(text, label, split, meta))

    # Label flips: exact counts per stratum, the weak slice at WEAK_SLICE_FACTOR times the rate.
    # The conflicting duplicates below are flips too, so they come out of the budget.
    labelled = [d for d in drafts if d.split in LABELLED_SPLITS]
    weak = [d for d in labelled if d.metadata["channel"] == WEAK_SLICE["channel"]]
    rest = [d for d in labelled if d.metadata["channel"] != WEAK_SLICE["channel"]]
    budget = FLIP_RATE * len(labelled) - n_conflicting
    rate = budget / (WEAK_SLICE_FACTOR * len(weak) + len(rest))
    flipped_drafts = rng.sample(weak, round(WEAK_SLICE_FACTOR * rate * len(weak)))
    flipped_drafts += rng.sample(rest, round(rate * len(rest)))
    for d in drafts:
        d.label = d.true_label if d.split in LABELLED_SPLITS else None
    for d in flipped_drafts:
        d.label = _wrong_label(rng, d.true_label)
        d.tags.add("flipped")

    # Near-duplicates of clean messages: some leak from train into test, some disagree on the label.
    clean = [d for d in drafts if "flipped" not in d.tags]
    clean_train = [d for d in clean if d.split == "train"]
    sources = rng.sample(clean_train, n_leaked + n_conflicting)
    chosen = {id(d) for d in sources}
    others = [d for d in clean if id(d) not in chosen]
    sources += rng.sample(others, n_copies - n_leaked - n_conflicting)
    copies: list[_Draft] = []
    for i, src in enumerate(sources):
        text = _near_duplicate(rng, src.text)
        while text in seen:
            text = _near_duplicate(rng, text)
        seen.add(text)
        copy = _Draft(
            text,
            src.true_label,
            src.split,
            dict(src.metadata),
            label=src.label,
            source=src,
        )
        if i < n_leaked:
            copy.split = "test"
            copy.tags.add("leaked")
        elif i < n_leaked + n_conflicting:
            copy.label = _wrong_label(rng, src.true_label)
            copy.tags.update({"conflicting", "flipped"})
        copies.append(copy)

    # Outliers, spread over the splits; an annotator still had to pick some label.
    outlier_texts = _outlier_texts(rng, n_outliers)
    outliers = []
    for text in outlier_texts:
        split = _pick(rng, SPLIT_SHARES)
        label = rng.choice(DEMO_CLASSES)
        meta = _metadata(rng, split, label)
        given = label if split in LABELLED_SPLITS else None
        outliers.append(_Draft(text, label, split, meta, label=given))

    everything = drafts + copies + outliers
    rng.shuffle(everything)
    for i, d in enumerate(everything, start=1):
        d.id = f"msg-{i:06d}"

    records = [
        {"id": d.id, "text": d.text, "label": d.label, "split": d.split, "metadata": d.metadata}
        for d in everything
    ]
    truth = {
        "flipped": {d.id: d.true_label for d in everything if "flipped" in d.tags},
        "near_duplicates": [[c.source.id, c.id] for c in copies],
        "leaked": [[c.source.id, c.id] for c in copies if "leaked" in c.tags],
        "conflicting_duplicates": [[c.source.id, c.id] for c in copies if "conflicting" in c.tags],
        "outliers": [d.id for d in outliers],
        "weak_slice": dict(WEAK_SLICE),
        "drift": {"split": "production", "new_product_line": NEW_PRODUCT_LINE},
    }
    return records, truth


def _outlier_texts(rng: random.Random, k: int) -> list[str]:
    """Gibberish, other languages and empty-ish messages, in turn, all distinct."""
    foreign = rng.sample(_FOREIGN, len(_FOREIGN))
    emptyish = rng.sample(_EMPTYISH, len(_EMPTYISH))
    out: list[str] = []
    for i in range(k):
        kind = i % 3
        if kind == 0 or (kind == 1 and not foreign) or (kind == 2 and not emptyish):
            letters = "asdfghjklqwertyuiopzxcvbnm"
            words = [
                "".join(rng.choice(letters) for _ in range(rng.randint(2, 8)))
                for _ in range(rng.randint(2, 6))
            ]
            out.append(" ".join(words))
        elif kind == 1:
            out.append(foreign.pop())
        else:
            out.append(emptyish.pop())
    return out


def write_jsonl(path: str | PathLike[str], records: list[dict]) -> None:
    """One JSON object per line, UTF-8 (other-language outliers stay readable)."""
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def production_days(
    *,
    first_day: date,
    days: int = 7,
    per_day: int = 60,
    shifted_day: int | None = 5,
    seed: int = 25,
) -> list[dict]:
    """Production records for `days` days from `first_day` (UTC), each with the `timestamp`
    it was seen, for production monitoring. Days look like the labelled data, except day
    `shifted_day` (0-based), which drifts like the production split: more technical
    questions and the new product line."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret
    records = []
    for d in range(days):
        day = datetime.combine(first_day + timedelta(days=d), time(0), tzinfo=UTC)
        shifted = d == shifted_day
        seconds = sorted(rng.randrange(86_400) for _ in range(per_day))
        for i, second in enumerate(seconds):
            label = _pick(rng, _PRODUCTION_PRIOR if shifted else _CLASS_PRIOR)
            meta = _metadata(rng, "production" if shifted else "train", label)
            text = _message(rng, label, "production" if shifted else "train", meta)
            seen = day + timedelta(seconds=second)
            meta["created_month"] = f"{seen:%Y-%m}"
            records.append(
                {
                    "id": f"live-{seen:%Y%m%d}-{i:03d}",
                    "text": text,
                    "metadata": meta,
                    "timestamp": seen.isoformat(),
                }
            )
    return records
