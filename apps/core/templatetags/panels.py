"""`{% panels "<page>.<place>" %}`: the panels other apps registered for that place of a page."""

from django import template
from django.utils.safestring import mark_safe

from apps.core.panels import panels_of

register = template.Library()


@register.simple_tag(takes_context=True)
def panels(context, slot: str) -> str:
    engine = context.template.engine
    return mark_safe(  # noqa: S308 - each part is a rendered template, escaped as it rendered
        "".join(engine.get_template(p.template).render(context) for p in panels_of(slot))
    )
