"""Pagination: page numbers by default; a cursor on the big tables (no COUNT(*), stable under inserts)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination

_DESCRIPTIONS = {
    "count": "How many rows match, over all pages.",
    "next": "The URL of the next page; null on the last page.",
    "previous": "The URL of the previous page; null on the first page.",
    "results": "The rows of this page.",
}


def _describe(schema: dict) -> dict:
    for name, prop in schema.get("properties", {}).items():
        prop.setdefault("description", _DESCRIPTIONS.get(name, ""))
    return schema


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    page_size_query_description = "Rows per page (default 50, at most 500)."
    max_page_size = 500

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return _describe(super().get_paginated_response_schema(schema))


class StartedAtCursorPagination(CursorPagination):
    """Newest first by ``started_at``; ``?ordering=`` may pick another allowed field."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    page_size_query_description = "Rows per page (default 50, at most 500)."
    cursor_query_description = "The position to continue from: follow the next/previous links rather than building it."
    ordering = ("-started_at", "-id")

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return _describe(super().get_paginated_response_schema(schema))


class CreatedAtCursorPagination(StartedAtCursorPagination):
    """Newest first by ``created_at`` (the texts); ``?ordering=`` may pick another allowed field."""

    ordering = ("-created_at", "-id")
