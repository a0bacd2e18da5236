"""Word lists the seed draws from: people, companies, templates, devices, places.

Some entries are hostile on purpose (HTML and script fragments, quotes, emoji,
right-to-left text, a very long subject) so every view that shows sandbox data is
exercised against them. Every address uses a reserved domain (``.example`` /
``.invalid``) so nothing here can reach a real inbox.
"""

from __future__ import annotations

WORKSPACE_NAME = "Sandbox workspace (emulated data)"
CURRENT_USER_NAME = "Sam Sandbox (sandbox)"
CURRENT_USER_EMAIL = "sam@sandbox.mixmax-nb.invalid"
USER_DOMAIN = "sandbox.mixmax-nb.invalid"

# (display name, ascii slug for the address)
FIRST_NAMES: tuple[tuple[str, str], ...] = (
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
)
LAST_NAMES: tuple[tuple[str, str], ...] = (
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
)
COMPANIES: tuple[tuple[str, str], ...] = (
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
)
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
TEAM_NAMES = (
    "Sandbox SDR team",
    "Account Executives (West)",
    'Growth <script>alert("team")</script> 🚀',
    "فريق المبيعات EMEA",
    "Customer Success",
    'Partnerships & "Alliances"',
    "Enterprise",
    "Mid-market",
)
SEQUENCE_NAMES = (
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
)
LONG_SUBJECT = (
    "A very long subject line that keeps going because some sequences really do this, "
    "with details about {{company}}, our roadmap, the pricing tiers, the onboarding "
    "timeline, the security review, the procurement checklist, the integration plan, "
    "and a final reminder that we would love fifteen minutes of your time next week, "
    "{{firstName}}"
)
EMAIL_SUBJECTS = (
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
)
EMAIL_BODIES = (
    "<p>Hi {{firstName}},</p><p>Teams like {{company}} use us to cut prep time in half. "
    '<a href="{link}">{text}</a></p>',
    "<p>Hello {{firstName}}, as {{title}} you probably own this problem. "
    '<a href="{link}">{text}</a></p>',
    "<p>{{firstName}}, following up on my note below. Worth a look? "
    '<a href="{link}">{text}</a></p>',
    "<p>Hi {{firstName}} <script>alert('body')</script>, one last idea for {{company}}. "
    '<a href="{link}">{text}</a></p>',
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
ONE_OFF_SUBJECTS = (
    "Notes from today's call",
    "Proposal for {{company}}",
    "Intro: {{firstName}} <> Sandbox Co",
    "Your trial is ready 🎉",
    "Agenda for Thursday",
)
# (os, program, is_mobile, weight)
DEVICES: tuple[tuple[str, str, int, int], ...] = (
    ("Mac OS X", "Gmail", 0, 30),
    ("Windows", "Outlook", 0, 28),
    ("iOS", "Apple Mail", 1, 20),
    ("Android", "Gmail", 1, 12),
    ("Windows", "Chrome", 0, 10),
)
POLL_QUESTIONS = (
    ("Which day works for a call?", ("Tuesday", "Wednesday", "Thursday")),
    ("How did you hear about us?", ("Search", "A colleague", "An event", "LinkedIn")),
    ("Interested in a demo?", ("Yes 👍", "Not now", "<i>Maybe</i>")),
    ("Preferred meeting length?", ("15 min", "30 min")),
)
RULE_NAMES = (
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
)
