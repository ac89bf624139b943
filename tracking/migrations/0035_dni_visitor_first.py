"""A new DNI visitor's advisory lock and its "no live session yet" check run inside the statement that opens its
session (issue 26: a new visitor's assignment in two statements instead of three): the function
``dni_visitor_first`` (tracking/sql/dni_visitor_first.postgresql.sql), PostgreSQL only (elsewhere the ORM path
serializes writers with BEGIN IMMEDIATE)."""

from django.db import migrations

from tracking.db_triggers import sql_text


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(sql_text("dni_visitor_first", "postgresql"))


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS dni_visitor_first(bigint, boolean, bigint, text, timestamptz, text)")


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0032_conversion_destinations"),
        ("numbers", "0010_filters_identity_tags"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
