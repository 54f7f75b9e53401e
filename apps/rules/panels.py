"""Rules' part of the sample table: a link that makes a rule of the table's query."""

from apps.core.panels import panel_register


def register() -> None:
    panel_register("samples.save_help", template="rules/panels/rule_from_query.html")
