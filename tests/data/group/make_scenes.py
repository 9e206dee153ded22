"""Writes scenes.jsonl: scripted group scenes for `basechat eval` (run once; the file is what is
measured). Each scene: 3 or 4 members with a description, a short history in which several of them
spoke, and the person's message, which names one member (``addressed``) in one of many phrasings
— at the start, at the end, in the middle, after mentioning another member — or names nobody
(``addressed`` ""; those scenes measure letting them talk). Halves alternate: even lines tune,
odd lines are held."""

import json
import random
from pathlib import Path

NAMES = [
    "Mira",
    "Tomas",
    "Ines",
    "Kofi",
    "Yuki",
    "Bram",
    "Leila",
    "Oskar",
    "Priya",
    "Dmitri",
    "Noor",
    "Felix",
    "Amara",
    "Jonas",
    "Sofia",
    "Rafael",
    "Hana",
    "Emeka",
    "Greta",
    "Luca",
    "Zara",
    "Ivan",
    "Maya",
    "Theo",
]
ROLES = [
    "a cheerful baker who talks about bread and her shop",
    "a grumpy old fisherman who complains about the weather",
    "a curious astronomy student who loves the night sky",
    "a calm gardener who grows tomatoes and roses",
    "a nervous young doctor on her first week at the hospital",
    "a retired sailor full of stories about distant ports",
    "a sarcastic teenager who plays video games all night",
    "a strict librarian who loves quiet and old maps",
    "an enthusiastic chef who runs a small noodle bar",
    "a shy painter who paints the sea at dawn",
    "a cheerful mechanic who fixes old motorbikes",
    "a wise grandmother who knits and gives advice",
    "a busy journalist chasing a story about the harbour",
    "a patient music teacher who plays the cello",
    "a bold mountain guide who has climbed every peak nearby",
    "a sleepy night-shift baker's apprentice",
]
OPENERS = [
    ("Good morning, everyone!", None),
    ("What a storm last night.", None),
    ("Did anyone see the fireworks?", None),
    ("I just moved into the flat upstairs.", None),
    ("The market is closed today, isn't it?", None),
    ("I brought some coffee for all of you.", None),
]
REPLIES = [
    "Good morning to you!",
    "It kept me awake all night.",
    "I saw them from the roof.",
    "Welcome to the building!",
    "Only until noon, I think.",
    "Oh, thank you, that's kind.",
    "I hope the roads are clear.",
    "That sounds lovely.",
    "Not again!",
    "I was asleep, sadly.",
]
ADDRESSED = [
    "{n}, what do you think?",
    "What do you think, {n}?",
    "{n}, how was your day?",
    "And you, {n}? Any news?",
    "Hey {n}, could you help me with something?",
    "I wonder what {n} would say about that.",
    "{other} told me you were busy. {n}, is that true?",
    "{n}! Long time no see. How have you been?",
    "So, {n}, what are your plans for the weekend?",
    "Tell me, {n}, do you like this town?",
    "What about you, {n}?",
    "Let's hear from {n} first.",
    "{n}, be honest: was it you who left the door open?",
    "I agree with {other}. But {n}, you said something different yesterday, didn't you?",
    "Could {n} answer this one? What time does the bus leave?",
    "Quick question for {n}: tea or coffee?",
]
UNADDRESSED = [
    "So, what's everyone doing later?",
    "Isn't the weather strange this week?",
    "I heard there's a festival on Saturday.",
    "Who wants to go for a walk?",
]


def scene(rng: random.Random, index: int) -> dict:
    members = rng.sample(NAMES, rng.choice([3, 3, 4]))
    roles = rng.sample(ROLES, len(members))
    opener = rng.choice(OPENERS)[0]
    speakers = rng.sample(members, 2)
    history = [{"speaker": "", "text": opener}]
    history += [{"speaker": s, "text": r} for s, r in zip(speakers, rng.sample(REPLIES, 2), strict=True)]
    if index % 5 == 4:
        message, addressed = rng.choice(UNADDRESSED), ""
    else:
        addressed = rng.choice(members)
        other = rng.choice([m for m in members if m != addressed])
        message, addressed = rng.choice(ADDRESSED).format(n=addressed, other=other), addressed
    return {
        "members": [{"name": n, "description": d} for n, d in zip(members, roles, strict=True)],
        "history": history,
        "message": message,
        "addressed": addressed,
        "half": "tune" if index % 2 == 0 else "held",
    }


if __name__ == "__main__":
    rng = random.Random(2026)
    lines = [json.dumps(scene(rng, i)) for i in range(100)]
    Path(__file__).with_name("scenes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
