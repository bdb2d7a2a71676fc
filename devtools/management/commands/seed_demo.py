from typing import Any

from django.core.management.base import BaseCommand

from devtools.demo.seed import seed


class Command(BaseCommand):
    help = "Seed the demo: example resources, demo people, and a history in every state."

    def handle(self, *args: Any, **options: Any) -> None:
        summary, wrote = seed()
        story = "story written" if wrote else "story already present"
        self.stdout.write(f"seed_demo: resources {summary}; {story}")
