from django.apps import AppConfig


class VendorsConfig(AppConfig):
    name = "apps.vendors"
    label = "vendors"

    def ready(self) -> None:
        # Models load only once the app registry is ready, so the panels and actions are
        # imported here.
        from apps.datasets.access import media_grant_register
        from apps.explorer.actions import register
        from apps.vendors import actions, panels
        from apps.vendors.access import vendor_may_see_image

        panels.register()
        register(actions.VendorBatch())
        register(actions.ActivePick())
        # A vendor annotator may fetch the images of the items assigned to them.
        media_grant_register(vendor_may_see_image)
