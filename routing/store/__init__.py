"""Voice routing's load and write: the only modules on the call path that run SQL (besides ``calltrack.fastdb``).

``voice``: the hot path's constant statements (loads of a call, a number, a step's legs; the turn's flush, a leg's end, the
call's answer and end). ``counters``: handlers' live counters and cap locks. ``lookups``: the occasional ORM reads.
"""
