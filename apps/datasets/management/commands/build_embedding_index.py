"""Build the HNSW index of an embedding space now (imports queue it for a worker)."""

from django.core.management.base import BaseCommand, CommandError

from apps.datasets.models import EmbeddingSpace
from apps.datasets.services import embedding_index_build


class Command(BaseCommand):
    help = "Build the HNSW cosine index of an embedding space and print how long it took."

    def add_arguments(self, parser):
        parser.add_argument("--space", type=int, required=True, help="Embedding space id.")

    def handle(self, *args, space: int, **options):
        if not EmbeddingSpace.objects.filter(pk=space).exists():
            raise CommandError(f"No embedding space with id {space}.")
        seconds = embedding_index_build(space_id=space)
        if seconds is None:
            self.stdout.write(f"Space {space} already has its index.")
        else:
            self.stdout.write(f"Built the index of space {space} in {seconds:.1f} s.")
