"""The calltrack project: settings, URLs and the pieces every app shares.

The ``numbers`` app lives in the top-level ``numbers/`` folder, which has no
``__init__.py``: the standard library's ``numbers`` module always wins
``import numbers``. The app is imported as ``calltrack.numbers`` (a link to
that folder); its app label stays ``numbers``, so tables, migrations,
permissions and admin URLs are unchanged.
"""
