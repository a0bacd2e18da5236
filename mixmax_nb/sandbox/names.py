"""Word lists the seed draws from: people, companies, templates, devices, places.

Two profiles of the account's own words (:data:`PROFILES`), chosen by
``names="default"|"adversarial"`` when an account is created:

* ``default``: what a real sales team's account reads like (plausible people,
  companies, teams, sequences, subjects, polls and rules), so the first thing a
  newcomer or a Binder visitor sees does not look broken;
* ``adversarial``: the same account with hostile text on purpose (HTML and script
  fragments, quotes, emoji, right-to-left text), so every view that shows sandbox
  data can be exercised against it.

Both profiles have lists of the same lengths, entry for entry with the same
``{{variables}}``, so the seeded generator makes exactly the same draws: the two
accounts have the same ids, counts, times and rates and differ only in their words
(and addresses, whose local parts come from the names' slugs). The long subject,
links, files, zones and devices are shared. Every address uses a reserved domain
(``.example`` / ``.invalid``) so nothing here can reach a real inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as replace_fields

WORKSPACE_NAME = "Sandbox workspace (emulated data)"
CURRENT_USER_NAME = "Sam Sandbox (sandbox)"
CURRENT_USER_EMAIL = "sam@sandbox.mixmax-nb.invalid"
USER_DOMAIN = "sandbox.mixmax-nb.invalid"

TITLES = (
    "VP Sales",
    "Head of Marketing",
    "CTO",
    "Operations Manager",
    "Founder",
    "RevOps Lead",
    "Director of IT",
    "Procurement",
)
# (IANA zone, a city in it) -- recipients' live-feed cities come from their zone.
ZONES: tuple[tuple[str, str], ...] = (
    ("America/New_York", "New York"),
    ("America/Chicago", "Chicago"),
    ("America/Denver", "Denver"),
    ("America/Los_Angeles", "San Francisco"),
    ("America/Sao_Paulo", "São Paulo"),
    ("Europe/London", "London"),
    ("Europe/Berlin", "Berlin"),
    ("Europe/Paris", "Paris"),
    ("Asia/Kolkata", "Bengaluru"),
    ("Asia/Singapore", "Singapore"),
    ("Asia/Tokyo", "Tokyo"),
    ("Australia/Sydney", "Sydney"),
)
# Where a live-feed event's city lies, as geo-IP lookups report it (assumed: Mixmax
# does not document the format): (region, country) by city, the region as its ISO
# 3166-2 subdivision code without the country prefix, the country as ISO 3166-1
# alpha-2. Events store the city; ``country`` and ``region`` are read from here.
PLACES: dict[str, tuple[str, str]] = {
    "New York": ("NY", "US"),
    "Chicago": ("IL", "US"),
    "Denver": ("CO", "US"),
    "San Francisco": ("CA", "US"),
    "São Paulo": ("SP", "BR"),
    "London": ("ENG", "GB"),
    "Berlin": ("BE", "DE"),
    "Paris": ("IDF", "FR"),
    "Bengaluru": ("KA", "IN"),
    "Singapore": ("01", "SG"),
    "Tokyo": ("13", "JP"),
    "Sydney": ("NSW", "AU"),
}
# Relative weights of zones among contacts (most outreach is to the US and Europe).
ZONE_WEIGHTS = (18, 10, 4, 14, 4, 12, 8, 6, 6, 4, 3, 3)
LONG_SUBJECT = (
    "A very long subject line that keeps going because some sequences really do this, "
    "with details about {{company}}, our roadmap, the pricing tiers, the onboarding "
    "timeline, the security review, the procurement checklist, the integration plan, "
    "and a final reminder that we would love fifteen minutes of your time next week, "
    "{{firstName}}"
)
LINKS: tuple[tuple[str, str], ...] = (
    ("https://sandbox.example/pricing?utm_source=mixmax", "See pricing"),
    ("https://sandbox.example/case-study", "Read the case study"),
    ("https://sandbox.example/demo", "Book a demo"),
    ("https://sandbox.example/webinar", "Watch the webinar"),
)
FILES = ("Sandbox-Case-Study.pdf", "Pricing-2025.pdf", "Security-Overview.pdf")
CALL_SUBJECT = "Call {{firstName}} at {{company}}"
LINKEDIN_SUBJECT = "Connect with {{firstName}} on LinkedIn"
# (os, program, is_mobile, weight)
DEVICES: tuple[tuple[str, str, int, int], ...] = (
    ("Mac OS X", "Gmail", 0, 30),
    ("Windows", "Outlook", 0, 28),
    ("iOS", "Apple Mail", 1, 20),
    ("Android", "Gmail", 1, 12),
    ("Windows", "Chrome", 0, 10),
)


@dataclass(frozen=True)
class Names:
    """The words of one profile: every list the same length, and the same
    ``{{variables}}`` entry for entry, in every profile (checked by a test)."""

    first_names: tuple[tuple[str, str], ...]
    """(display name, ascii slug for the address)"""
    last_names: tuple[tuple[str, str], ...]
    companies: tuple[tuple[str, str], ...]
    """(name, the domain of its people's addresses)"""
    team_names: tuple[str, ...]
    sequence_names: tuple[str, ...]
    email_subjects: tuple[str, ...]
    email_bodies: tuple[str, ...]
    """HTML with ``{link}`` and ``{text}`` filled from :data:`LINKS`."""
    one_off_subjects: tuple[str, ...]
    poll_questions: tuple[tuple[str, tuple[str, ...]], ...]
    rule_names: tuple[tuple[str, str], ...]
    """(name, the event that triggers it)"""


ADVERSARIAL = Names(
    first_names=(
        ("Ana", "ana"),
        ("Ben", "ben"),
        ("Chloé", "chloe"),
        ("Dmitri", "dmitri"),
        ("Emeka", "emeka"),
        ("Fatima", "fatima"),
        ("Grace", "grace"),
        ("Hiro", "hiro"),
        ("Isabel", "isabel"),
        ("Jamal", "jamal"),
        ("Kiri", "kiri"),
        ("Lena", "lena"),
        ("Mateo", "mateo"),
        ("Nia", "nia"),
        ("Oskar", "oskar"),
        ("Priya", "priya"),
        ("Quinn", "quinn"),
        ("Rosa", "rosa"),
        ("Sven", "sven"),
        ("Tomás", "tomas"),
        ("Uma", "uma"),
        ("Victor", "victor"),
        ("Wen", "wen"),
        ("Yara", "yara"),
        ("Zoë", "zoe"),
        ("محمد", "mohammed"),
        ("שרה", "sarah"),
        ("🦄 Uni", "uni"),
        ("<script>alert('first')</script>", "script"),
        ('Bob "Bobby"', "bob"),
    ),
    last_names=(
        ("Lopez", "lopez"),
        ("Okafor", "okafor"),
        ("Nguyen", "nguyen"),
        ("Schmidt", "schmidt"),
        ("Tanaka", "tanaka"),
        ("Rossi", "rossi"),
        ("Kowalski", "kowalski"),
        ("Silva", "silva"),
        ("Haddad", "haddad"),
        ("Johansson", "johansson"),
        ("Patel", "patel"),
        ("Murphy", "murphy"),
        ("Dubois", "dubois"),
        ("Kim", "kim"),
        ("Novak", "novak"),
        ("O'Brien", "obrien"),
        ("Müller-Lüdenscheidt", "muller"),
        ("<b>Bold</b>", "bold"),
        ("العلي", "alali"),
        ("Lévy 🎉", "levy"),
    ),
    companies=(
        ("Northwind Traders", "northwind.example"),
        ("Globex", "globex.example"),
        ("Initech", "initech.example"),
        ("Umbrella Analytics", "umbrella.example"),
        ("Hooli", "hooli.example"),
        ("Vandelay Industries", "vandelay.example"),
        ("Stark Logistics", "stark.example"),
        ("Wayne Health", "wayne.example"),
        ("Tyrell Data", "tyrell.example"),
        ("Soylent Foods", "soylent.example"),
        ("Acme <img src=x onerror=alert(1)>", "acme.example"),
        ('"Quote" & Co\'s', "quote.example"),
        ("شركة الأفق", "ufuq.example"),
        ("Café ☕ Labs", "cafe.example"),
        ("Pied Piper", "piedpiper.example"),
        ("Massive Dynamic", "massive.example"),
    ),
    team_names=(
        "Sandbox SDR team",
        "Account Executives (West)",
        'Growth <script>alert("team")</script> 🚀',
        "فريق المبيعات EMEA",
        "Customer Success",
        'Partnerships & "Alliances"',
        "Enterprise",
        "Mid-market",
    ),
    sequence_names=(
        "Outbound Q3 — VP Sales",
        "Webinar follow-up",
        "Trial nurture",
        "<b>Enterprise</b> cold outreach",
        "Re-engage closed-lost",
        "Event: SaaStr 2025 🎟️",
        "Inbound demo requests",
        'Partner intro "warm"',
        "عرض تجريبي — الشرق الأوسط",
        "Churn-risk check-in",
        "New feature launch <script>x()</script>",
        "Pricing page visitors",
        "Expansion: upsell seats",
        "Conference no-shows",
        "Founder-led outreach",
    ),
    email_subjects=(
        "Quick question, {{firstName}}",
        "{{company}} + Sandbox Co",
        "Idea for the {{title}} team at {{company}}",
        "Following up",
        "Worth a chat? ☕",
        '<b>Bold</b> offer & "quotes" for {{company}}',
        "عرض خاص لـ {{company}}",
        "Re: {{company}}'s plans for next quarter",
        LONG_SUBJECT,
        "Last note from me 🙂",
    ),
    email_bodies=(
        "<p>Hi {{firstName}},</p><p>Teams like {{company}} use us to cut prep time in half. "
        '<a href="{link}">{text}</a></p>',
        "<p>Hello {{firstName}}, as {{title}} you probably own this problem. "
        '<a href="{link}">{text}</a></p>',
        "<p>{{firstName}}, following up on my note below. Worth a look? "
        '<a href="{link}">{text}</a></p>',
        "<p>Hi {{firstName}} <script>alert('body')</script>, one last idea for {{company}}. "
        '<a href="{link}">{text}</a></p>',
    ),
    one_off_subjects=(
        "Notes from today's call",
        "Proposal for {{company}}",
        "Intro: {{firstName}} <> Sandbox Co",
        "Your trial is ready 🎉",
        "Agenda for Thursday",
    ),
    poll_questions=(
        ("Which day works for a call?", ("Tuesday", "Wednesday", "Thursday")),
        ("How did you hear about us?", ("Search", "A colleague", "An event", "LinkedIn")),
        ("Interested in a demo?", ("Yes 👍", "Not now", "<i>Maybe</i>")),
        ("Preferred meeting length?", ("15 min", "30 min")),
    ),
    rule_names=(
        ("Notify Slack on reply", "message:received"),
        ("Sync opens to CRM", "opened"),
        ("Log clicks", "clicked"),
        ("Bounce alert", "bounced"),
        ("Sent-mail archive", "message:sent"),
        ("Poll votes to sheet", "poll:vote"),
        ("Unopened nudge", "unopened"),
        ("Downloads <b>tracker</b>", "downloaded"),
        ("Q&A submissions", "qa:submit"),
        ("Meeting confirmed", "meetinginvited:confirmed"),
    ),
)


def _benign(hostile: Names, **swaps: dict[int, object]) -> Names:
    """``hostile`` with the entries at the given positions of each list replaced: the
    lists keep their lengths and order, so the generator draws exactly the same."""
    fields = {}
    for name, replace in swaps.items():
        words = list(getattr(hostile, name))
        for index, word in replace.items():
            if not 0 <= index < len(words):
                raise IndexError(f"{name}[{index}] is not in the hostile list")
            words[index] = word
        fields[name] = tuple(words)
    return replace_fields(hostile, **fields)


# What a real sales team's account reads like: the adversarial words, with each hostile
# entry swapped for a plausible one at the same place.
DEFAULT = _benign(
    ADVERSARIAL,
    first_names={
        25: ("Mohammed", "mohammed"),
        26: ("Sarah", "sarah"),
        27: ("Noah", "noah"),
        28: ("Aisha", "aisha"),
        29: ("Bob", "bob"),
    },
    last_names={
        16: ("Müller", "muller"),
        17: ("Bennett", "bennett"),
        18: ("Al-Ali", "alali"),
        19: ("Lévy", "levy"),
    },
    companies={
        10: ("Acme Corp", "acme.example"),
        11: ("Baker & Quinn", "bakerquinn.example"),
        12: ("Horizon Holdings", "horizon.example"),
        13: ("Café Labs", "cafe.example"),
    },
    team_names={
        2: "Growth",
        3: "EMEA Sales",
        5: "Partnerships & Alliances",
    },
    sequence_names={
        3: "Enterprise cold outreach",
        5: "Event: SaaStr 2025 follow-up",
        7: "Warm partner intros",
        8: "Middle East demo offer",
        10: "New feature launch",
    },
    email_subjects={
        4: "Worth a chat?",
        5: "A tailored offer for {{company}}",
        6: "A special offer for {{company}}",
        9: "Last note from me",
    },
    email_bodies={
        3: '<p>Hi {{firstName}}, one last idea for {{company}}. <a href="{link}">{text}</a></p>',
    },
    one_off_subjects={
        2: "Intro: {{firstName}} and Sandbox Co",
        3: "Your trial is ready",
    },
    poll_questions={
        2: ("Interested in a demo?", ("Yes", "Not now", "Maybe")),
    },
    rule_names={
        7: ("Downloads tracker", "downloaded"),
    },
)

PROFILES: dict[str, Names] = {"default": DEFAULT, "adversarial": ADVERSARIAL}
"""``default``: a real company's words; ``adversarial``: hostile text on purpose."""
NAME_PROFILES = tuple(PROFILES)


def profile(name: str) -> Names:
    """The words of profile ``name``; ValueError naming the choices otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(f"names must be one of {NAME_PROFILES}, not {name!r}") from None
