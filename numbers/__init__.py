"""The ``numbers`` app: receiving and tracking numbers, pools, sessions, carriers, porting.

The project layout names this app ``numbers``, which is also the name of a
standard-library module (the numeric ABCs: ``Number``, ``Integral``, ...).
Whoever imports ``numbers`` with the project on ``sys.path`` gets this package,
so it re-exports the standard module's ABCs: ``decimal``, ``fractions`` and
friends keep working. ``calltrack._stdlib_numbers`` covers the other order
(the standard module was imported first, as pytest does).
"""

from calltrack._stdlib_numbers import stdlib_numbers as _stdlib

Number = _stdlib.Number
Complex = _stdlib.Complex
Real = _stdlib.Real
Rational = _stdlib.Rational
Integral = _stdlib.Integral

__all__ = ["Number", "Complex", "Real", "Rational", "Integral"]
