"""Generated run names, "adjective-noun-123", as MLflow gives unnamed runs."""

import random

ADJECTIVES = (
    "agreeable", "amazing", "bold", "brave", "bright", "calm", "capable", "clean", "clever", "crisp", "curious",
    "dapper", "delicate", "eager", "elegant", "fearless", "gentle", "glamorous", "grandiose", "handsome",
    "honest", "intelligent", "jovial", "kindly", "likeable", "loud", "luminous", "merciful", "nimble", "orderly",
    "peaceful", "polite", "quiet", "rebellious", "resilient", "rumbling", "sedate", "shivering", "silent",
    "skillful", "smiling", "spiffy", "stately", "sunny", "thundering", "tasteful", "trusting", "unique",
    "upbeat", "vaunted", "victorious", "welcoming", "whimsical", "wise", "youthful", "zealous",
)
NOUNS = (
    "ant", "ape", "asp", "auk", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf", "carp", "cat",
    "chimp", "cod", "colt", "conch", "cow", "crab", "crane", "croc", "crow", "cub", "deer", "doe", "dog",
    "dolphin", "donkey", "dove", "duck", "eel", "elk", "fawn", "finch", "fish", "flea", "fly", "foal", "fowl",
    "fox", "frog", "gnat", "gnu", "goat", "goose", "grouse", "grub", "gull", "hare", "hawk", "hen", "hog",
    "horse", "hound", "jay", "kit", "kite", "koi", "lamb", "lark", "loon", "lynx", "mare", "midge", "mink",
    "mole", "moose", "moth", "mouse", "mule", "newt", "owl", "ox", "panda", "penguin", "perch", "pig", "pug",
    "quail", "ram", "rat", "ray", "robin", "roo", "rook", "seal", "shad", "shark", "sheep", "shoat", "shrew",
    "shrike", "shrimp", "skink", "skunk", "sloth", "slug", "smelt", "snail", "snake", "snipe", "sow", "sponge",
    "squid", "squirrel", "stag", "steed", "stoat", "stork", "swan", "tern", "toad", "trout", "turtle", "vole",
    "wasp", "whale", "wolf", "worm", "wren", "yak", "zebra",
)


def random_run_name() -> str:
    return f"{random.choice(ADJECTIVES)}-{random.choice(NOUNS)}-{random.randint(0, 999)}"
