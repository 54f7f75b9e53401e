from django.apps import AppConfig

from apps.core import events


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        # Panels and subscribers import the app's models, which load only once every app is
        # configured.
        from apps.audit import panels, subscribers

        panels.register()
        events.subscribe(subscribers.audit_entry)
