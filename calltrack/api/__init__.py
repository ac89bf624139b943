"""Shared pieces of the REST API: permissions and scoping, the exception handler, fields, pagination."""
