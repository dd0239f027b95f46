"""Demo data for `make run`: categories, an admin, approved servicemen and a client. Idempotent."""

from models.actions import accounts, catalog
from models.catalog import Category
from models.foundation.settings import Settings
from models.users import User

DEMO_PASSWORD = "demo-password-123"
CATEGORIES = [
    ("Plumbing", "Leaks, blocked drains, water heaters, pipe installation."),
    ("Electrical", "Wiring, sockets, inverters, fault finding."),
    ("Carpentry", "Furniture repair, doors, fittings."),
    ("Air conditioning", "Installation, servicing and gas refill."),
    ("Painting", "Interior and exterior painting."),
]
SERVICEMEN = [
    ("emeka@demo.serviceman.ng", "Emeka", "Okafor", "Plumbing", 9, "Licensed plumber, Lagos mainland."),
    ("tunde@demo.serviceman.ng", "Tunde", "Adebayo", "Plumbing", 5, "Drains and water heaters."),
    ("ngozi@demo.serviceman.ng", "Ngozi", "Eze", "Electrical", 7, "Domestic wiring and inverters."),
    ("musa@demo.serviceman.ng", "Musa", "Bello", "Electrical", 4, "Fault finding, fast response."),
]


def load_demo_data(settings: Settings) -> list[str]:
    # No transport: the demo accounts are verified (no email to queue), and their events wait in the
    # outbox for a pipeline to deliver them.
    for name, description in CATEGORIES:
        if not Category.select().where(Category.name == name).exists():
            catalog.create_category(name, description)
    ids = {c.name: c.id for c in Category.select()}

    def missing(email: str) -> bool:
        return not User.select().where(User.email == email).exists()

    if missing("admin@demo.serviceman.ng"):
        accounts.create_admin(settings, email="admin@demo.serviceman.ng", password=DEMO_PASSWORD)
    if missing("client@demo.serviceman.ng"):
        accounts.register(
            settings,
            None,
            email="client@demo.serviceman.ng",
            password=DEMO_PASSWORD,
            first_name="Ada",
            last_name="Obi",
            phone="+2348000000001",
            role="client",
            verified=True,
        )
    for email, first, last, category, years, bio in SERVICEMEN:
        if missing(email):
            user = accounts.register(
                settings,
                None,
                email=email,
                password=DEMO_PASSWORD,
                first_name=first,
                last_name=last,
                phone="+2348000000002",
                role="serviceman",
                category_ids=[ids[category]],
                bio=bio,
                years_of_experience=years,
                verified=True,
            )
            accounts.set_approval(None, user.id, "approve")
    return [
        f"demo data ready: {len(CATEGORIES)} categories, {len(SERVICEMEN)} approved servicemen",
        f"  admin  admin@demo.serviceman.ng / {DEMO_PASSWORD}",
        f"  client client@demo.serviceman.ng / {DEMO_PASSWORD}",
    ]
