#!/usr/bin/env python3
"""Writes data/palisade-comments.jsonl: hand-written templates of generic comment
spam (self-promotion, giveaways, follower selling, crypto and "investment"
pitches, phishing, adult-site bait) and of ordinary comments under videos,
songs, posts and streams, filled from small word lists. Deterministic (seeded);
run it again after editing a template: `python3 scripts/data/comments.py`.

Written for Palisade; no text is taken from any data set, issue or probe
(tests/probe.rs checks the probe). Licence: as the repository's code.
"""
import hashlib
import json
import pathlib
import random

rng = random.Random(20261207)

SPAM = [
    "check out my channel, I post {thing} every {day} {emoji}",
    "sub to me and I'll sub back, let's grow together {emoji}",
    "who's watching in {year}? also go follow my page for {thing}",
    "I make {thing} too, would mean the world if you checked my profile",
    "{giveaway}! first {n} people to follow me and comment '{word}' get one free",
    "free {prize} giveaway on my page, just follow and share, ends {day}",
    "get {n} followers in {hours} hours, real accounts, cheap, link in my bio",
    "buy {n} likes for ${price}, fast delivery, DM for prices",
    "boost your {platform} with our promo service, {n}k views guaranteed, message me",
    "I earn ${money} a {period} from my phone, ask me how {emoji}",
    "my mentor {name} showed me how to trade {coin}, made ${money} in a {period}, text him on {app}",
    "invest ${price} today and get ${money} back in {days} days, guaranteed, dm me",
    "{coin} airdrop live now, connect your wallet at {domain} to claim",
    "your {service} account has been locked, verify now at {domain} or it will be deleted",
    "congratulations you won a {prize}, claim it at {domain} before {day}",
    "{adult} {emoji} {domain}",
    "bored tonight? {adult}, no signup, {domain}",
    "work from home and make ${money} a {period}, no experience needed, apply at {domain}",
    "cheap {goods} {pct}% off, only today, shop at {domain}",
    "promo code {code} gives you {pct}% off at {domain}, hurry",
    "anyone need {thing}? I do it for ${price}, fast and cheap, hit me up on {app}",
    "I was broke until I found {domain}, now I make ${money} a {period}",
    "{emoji} FREE {prize} {emoji} go to {domain} {emoji}",
    "stream my new track on {platform}, link in bio, every play helps {emoji}",
    "this song is great but my cover is better, go listen on my channel",
]

BENIGN = [
    "this {thing} made my {day}, thank you for posting it",
    "the part at {time} had me laughing so hard {emoji}",
    "been listening to this on repeat since {day}",
    "who else is here after {event}?",
    "the {part} in this {work} is unreal, how long did it take?",
    "I showed this to my {person} and now they're hooked too",
    "can you do a tutorial on the {part} next time?",
    "first time hearing this band, where should I start?",
    "this reminds me of road trips with my {person} {emoji}",
    "the editing on this one is so clean, great job",
    "I disagree with the point at {time}, the {part} was fine before the update",
    "the sound mix is a bit quiet on my end, anyone else?",
    "my {person} and I tried this recipe and it worked perfectly",
    "honestly the {part} gave me chills",
    "came for the {thing}, stayed for the comments",
    "which {gear} do you use for recording?",
    "been following since you had {n} subscribers, so proud of you",
    "please make a part two, I need to know what happens",
    "the live version is even better than the studio one",
    "thanks for explaining this so clearly, finally understood {topic}",
    "I miss when {platform} comments were like this, wholesome",
    "{year} and this still hits",
    "not my kind of {work} but the {part} is impressive",
    "anyone know the name of the song at {time}?",
    "the lighting in this shot is gorgeous",
    "the {part} at {time} is my favourite {emoji}",
    "played this at my {person}'s wedding and everyone cried",
    "my {person} sent me this and I'm so glad they did",
    "{year} me would not believe this channel got so big",
    "does anyone have the {gear} settings for this?",
    "I tried the {topic} trick from this and it finally clicked {emoji}",
    "you can hear how much fun they had making this {work}",
    "the comments under this {work} are so kind, love this community",
    "watching this on my lunch break every {day} {emoji}",
    "which {platform} playlist is this from?",
    "I learned more about {topic} here than in a whole semester",
    "the {part} could be a little louder, otherwise perfect",
    "anyone else replaying the {part} over and over?",
    "saw them live on {day} and the {part} was even better",
    "subscribed to {platform} premium just to listen to this offline",
    "took me {n} tries to get the {part} right, thanks for the tips",
    "sending this to my {person} right now {emoji}",
    "not gonna lie, I expected the {part} to go differently",
    "this deserves way more views, the {part} alone is worth it",
    "ok but who is doing the {part}? so talented",
]

FILL = {
    "thing": ["covers", "gaming clips", "beats", "makeup tutorials", "reaction videos", "edits", "memes", "vlogs", "drawings", "lo-fi mixes"],
    "day": ["monday", "friday", "weekend", "day", "sunday", "night"],
    "emoji": ["🔥", "💯", "🙏", "😍", "👇", "❤️", "😂", "✨", ""],
    "year": ["2024", "2025", "2026"],
    "giveaway": ["GIVEAWAY", "free headphones", "free skins", "gift card giveaway", "free merch"],
    "n": ["10", "50", "100", "500", "1000", "5000"],
    "word": ["done", "yes", "me", "win"],
    "prize": ["iPhone", "PS5", "gift card", "laptop", "skins pack", "$500"],
    "hours": ["24", "48", "12"],
    "price": ["5", "9.99", "19", "49", "99", "250"],
    "platform": ["spotify", "youtube", "insta", "tiktok", "soundcloud", "twitch"],
    "money": ["2,000", "5,000", "800", "12,000", "300"],
    "period": ["week", "day", "month"],
    "name": ["Mr. Harris", "Anna Lopez", "Dr. Kim", "coach Mike", "Sarah J"],
    "coin": ["bitcoin", "crypto", "forex", "ethereum", "options"],
    "app": ["whatsapp", "telegram", "signal", "instagram"],
    "days": ["3", "7", "14"],
    "domain": ["bit.ly/3xQz9", "free-rewards.click", "claim-prize.top", "secure-verify-login.net", "tinyurl.com/y8k2", "hotdeals-now.shop", "earnfast.biz"],
    "service": ["paypal", "netflix", "apple", "bank", "amazon", "steam"],
    "adult": ["hot girls in your area want to chat", "18+ pics of me in my profile", "uncensored videos, see my bio", "lonely and looking for fun"],
    "goods": ["sneakers", "watches", "sunglasses", "handbags", "perfume"],
    "pct": ["50", "70", "80", "90"],
    "code": ["SAVE50", "FREE2026", "VIP70"],
    "time": ["2:14", "0:45", "3:30", "1:02", "5:10"],
    "event": ["the finale", "that tiktok trend", "the concert", "the news story", "the trailer"],
    "part": ["bridge", "guitar solo", "ending", "intro", "animation", "second verse", "drum fill", "camera work"],
    "work": ["song", "video", "short film", "episode", "painting"],
    "person": ["dad", "mom", "sister", "best friend", "roommate", "grandma"],
    "gear": ["mic", "camera", "interface", "software"],
    "topic": ["compound interest", "chord inversions", "the rule of thirds", "recursion", "sourdough hydration"],
}


def fill(template):
    out = template
    while "{" in out:
        start = out.index("{")
        key = out[start + 1:out.index("}", start)]
        out = out[:start] + rng.choice(FILL[key]) + out[out.index("}", start) + 1:]
    return " ".join(out.split())


def rows(templates, label, per_template):
    seen = set()
    for template in templates:
        made = 0
        for _ in range(per_template * 20):
            text = fill(template)
            key = text.lower()
            if key in seen:
                continue
            seen.add(key)
            made += 1
            yield {
                "id": "comments-" + hashlib.sha256(text.encode()).hexdigest()[:12],
                "text": text,
                "label": label,
                "source": "palisade-comments",
                "source_label": "spam" if label == "SPAM" else "comment",
            }
            if made == per_template:
                break


out = pathlib.Path(__file__).resolve().parents[2] / "data" / "palisade-comments.jsonl"
with out.open("w") as f:
    for row in [*rows(SPAM, "SPAM", 16), *rows(BENIGN, "LOW_RISK", 12)]:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
print(f"wrote {out}")
