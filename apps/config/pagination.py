"""Cursor pagination for every API list: stable under inserts, no OFFSET scans."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000


class NewestFirstPagination(CursorPagination):
    ordering = "-id"
