"""Pagination: page numbers by default; a cursor on the big tables (no COUNT(*), stable under inserts)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class StartedAtCursorPagination(CursorPagination):
    """Newest first by ``started_at``; ``?ordering=`` may pick another allowed field."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-started_at", "-id")
