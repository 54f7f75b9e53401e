from django.apps import AppConfig


class VendorsConfig(AppConfig):
    name = "apps.vendors"
    label = "vendors"

    def ready(self) -> None:
        # Models load only once the app registry is ready, so the panels are imported here.
        from apps.datasets.access import media_grant_register
        from apps.vendors import panels
        from apps.vendors.access import vendor_may_see_image

        panels.register()
        # A vendor annotator may fetch the images of the items assigned to them.
        media_grant_register(vendor_may_see_image)
